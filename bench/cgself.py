#!/usr/bin/env python3
# cgself.py: self cost (Ir) per function of one callgrind output file, highest first (callgrind_annotate 3.19 puts
# every cost of a dump taken with callgrind_control under "clone"). Usage: cgself.py FILE [N]
import re
import sys

names = {}
cost = {}
fn = None
skip = False
with open(sys.argv[1]) as f:
    for line in f:
        if skip:
            skip = False
            continue
        m = re.match(r'^(fn|cfn|cfi|cfl|fl|fi|fe|ob|cob)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
        if m:
            kind, i, name = m.groups()
            if kind in ('fn', 'cfn'):
                key = ('fn', i)
                if name is not None:
                    names[key] = name
                if kind == 'fn':
                    fn = names.get(key, i)
            continue
        if line.startswith('calls='):
            skip = True
            continue
        if line[:1].isdigit() or line[:1] in '+-*':
            parts = line.split()
            if len(parts) >= 2 and fn is not None:
                cost[fn] = cost.get(fn, 0) + int(parts[1])
total = sum(cost.values())
for name, c in sorted(cost.items(), key=lambda kv: -kv[1])[: int(sys.argv[2]) if len(sys.argv) > 2 else 30]:
    print(f'{c:>14,} {100.0 * c / total:5.1f}%  {name}')
print(f'{total:>14,} total')

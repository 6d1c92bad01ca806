#!/usr/bin/env python3
"""bench/wstail.py: where a WebSocket round-trip tail comes from (docs/benchmarks.md, "The WebSocket tail, pinned").

Usage: bench/wstail.py TRACE [--sched PERF_DATA --own PID,PID,...] [--slow US] [--guard MS] [--top N]

TRACE is what `wsload --trace FILE` wrote: one line per message echoed in the window (send time in us since the
window's start, round trip in us, connection). Without --sched it prints the percentiles and the slow messages
(round trip >= --slow, default the p99) grouped in clusters (sent less than 2 ms apart): clustered in time means
stalls, spread means queueing.

With --sched (a `perf record -k CLOCK_MONOTONIC -e sched:sched_switch -C 0,1` of the same window; bench/wsab.sh
AB_SCHED=1 records it) and --own (the thread ids of the proxy, the origin and the load generator: anything else
that ran on those CPUs is "foreign", other than the idle task and kernel threads; perf itself is foreign), it also
prints:
  - the foreign run time on each CPU;
  - "clean" percentiles: over the messages during whose round trip no foreign task ran on either CPU, nor had
    run in the time it takes to drain what it held up (the longer of --guard ms, default 2, and twice its run).
    On a shared machine that is the proxy's own tail; the plain percentiles mix in whatever else ran there;
  - for the largest clusters, what ran on each CPU meanwhile.
"""
import bisect
import collections
import re
import subprocess
import sys

KERNEL = re.compile(r"^(swapper|ksoftirqd|rcu_|migration|kworker|idle_inject|cpuhp|watchdog)")


def quantile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def read_trace(path):
    start = None
    msgs = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                m = re.search(r"MONOTONIC (\d+)", line)
                if m:
                    start = int(m.group(1)) / 1e9
                continue
            sent, rtt, conn = line.split()
            msgs.append((float(sent) / 1e6, float(rtt), int(conn)))
    msgs.sort()
    return start, msgs


def clusters(slow, gap_s=0.002):
    out = []
    for x in slow:
        if out and x[0] - out[-1][-1][0] < gap_s:
            out[-1].append(x)
        else:
            out.append([x])
    return out


def read_sched(path):
    """Per CPU: [(time_s, comm, tid)] of each task switched in. Where perf lost events (a switch away from a task
    other than the one last switched in), the time since the last known switch is a hole: comm "?", tid -1."""
    text = subprocess.run(["perf", "script", "-i", path, "-F", "cpu,time,event,trace"], capture_output=True,
                          text=True, check=True).stdout
    sw = collections.defaultdict(list)
    pat = re.compile(r"\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:.*prev_pid=(\d+).*==> "
                     r"next_comm=(.*?) next_pid=(\d+)")
    for line in text.splitlines():
        m = pat.match(line)
        if m:
            cpu, t, prev = int(m.group(1)), float(m.group(2)), int(m.group(3))
            v = sw[cpu]
            if v and v[-1][2] != prev:
                v[-1] = (v[-1][0], "?", -1)
            v.append((t, m.group(4), int(m.group(5))))
    return sw


def main(argv):
    args = {"--slow": None, "--guard": "2", "--top": "6", "--sched": None, "--own": None}
    pos = []
    i = 0
    while i < len(argv):
        if argv[i] in args and i + 1 < len(argv):
            args[argv[i]] = argv[i + 1]
            i += 2
        elif argv[i].startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            pos.append(argv[i])
            i += 1
    if len(pos) != 1 or (args["--sched"] is None) != (args["--own"] is None):
        print(__doc__, file=sys.stderr)
        return 2
    start, msgs = read_trace(pos[0])
    if not msgs:
        print(f"{pos[0]}: no messages")
        return 1
    rtts = sorted(x[1] for x in msgs)
    slow_us = float(args["--slow"]) if args["--slow"] else quantile(rtts, 0.99)
    top = int(args["--top"])
    print(f"{pos[0]}: {len(msgs)} messages, p50 {quantile(rtts, .5):.0f} p99 {quantile(rtts, .99):.0f} "
          f"p99.9 {quantile(rtts, .999):.0f} max {rtts[-1]:.0f} us")
    cl = clusters([x for x in msgs if x[1] >= slow_us])
    sizes = sorted((len(c) for c in cl), reverse=True)
    print(f"  {sum(sizes)} messages >= {slow_us:.0f} us in {len(cl)} clusters (sent < 2 ms apart); largest: "
          + " ".join(str(s) for s in sizes[:10]))
    if args["--sched"] is None:
        for c in sorted(cl, key=len, reverse=True)[:top]:
            print(f"   at {c[0][0] * 1e3:.1f} ms: {len(c)} messages over {(c[-1][0] - c[0][0]) * 1e3:.1f} ms, "
                  f"max {max(x[1] for x in c):.0f} us")
        return 0
    if start is None:
        print("  the trace has no window start (an older wsload): cannot match it with the scheduler trace")
        return 1
    own = {int(p) for p in args["--own"].split(",") if p}
    sw = read_sched(args["--sched"])
    if not sw:
        print("  no sched_switch events in", args["--sched"])
        return 1
    t_lo = max(v[0][0] for v in sw.values()) - start
    t_hi = min(v[-1][0] for v in sw.values()) - start
    foreign = []
    per_cpu = collections.Counter()
    who = collections.Counter()
    for cpu, v in sw.items():
        for j in range(len(v) - 1):
            t, comm, tid = v[j]
            if tid in own or (tid != -1 and KERNEL.match(comm)):
                continue
            a, b = t - start, v[j + 1][0] - start
            foreign.append((a, b))
            per_cpu[cpu] += b - a
            who[comm] += b - a
    guard = float(args["--guard"]) / 1e3
    # A foreign run leaves a backlog that takes about as long again to drain (docs/benchmarks.md): its shadow
    # lasts the guard or twice its length after it, whichever is longer.
    foreign = sorted((a, b + max(guard, 2 * (b - a))) for a, b in foreign)
    merged = []
    for a, b in foreign:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    starts = [a for a, _ in merged]

    def touched(a, b):
        k = bisect.bisect_right(starts, b) - 1
        while k >= 0:
            if merged[k][1] > a:
                return True
            if merged[k][1] <= a:
                return False
            k -= 1
        return False

    span = t_hi - t_lo
    inside = [x for x in msgs if x[0] >= t_lo + guard and x[0] + x[1] / 1e6 <= t_hi]
    clean = sorted(x[1] for x in inside if not touched(x[0], x[0] + x[1] / 1e6))
    allr = sorted(x[1] for x in inside)
    print(f"  scheduler trace {span:.2f} s; foreign run time: " +
          ", ".join(f"CPU {c} {per_cpu[c] * 1e3:.0f} ms" for c in sorted(sw)) + "; most: " +
          ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in who.most_common(4)))
    print(f"  in the trace: all {len(allr)} p50 {quantile(allr, .5):.0f} p99 {quantile(allr, .99):.0f}; "
          f"clean {len(clean)} ({100 * len(clean) / max(1, len(allr)):.0f}%) p50 {quantile(clean, .5):.0f} "
          f"p99 {quantile(clean, .99):.0f} p99.9 {quantile(clean, .999):.0f} us")
    print(f"CLEAN n={len(clean)} p50_us={quantile(clean, .5):.0f} p99_us={quantile(clean, .99):.0f} "
          f"p999_us={quantile(clean, .999):.0f} all_p99_us={quantile(allr, .99):.0f} "
          f"foreign_ms={sum(per_cpu.values()) * 1e3:.0f}")

    def ran(cpu, a, b):
        acc = collections.Counter()
        v = sw[cpu]
        for j in range(len(v) - 1):
            lo, hi = max(v[j][0] - start, a), min(v[j + 1][0] - start, b)
            if hi > lo:
                acc[v[j][1]] += hi - lo
        return acc

    for c in sorted(cl, key=len, reverse=True)[:top]:
        a = c[0][0]
        b = max(x[0] + x[1] / 1e6 for x in c)
        if a < t_lo or b > t_hi:
            continue
        print(f"   at {a * 1e3:.1f} ms: {len(c)} messages over {(b - a) * 1e3:.1f} ms, max {max(x[1] for x in c):.0f} us")
        for cpu in sorted(sw):
            print(f"     CPU {cpu}: " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in ran(cpu, a, b).most_common(5)) + " ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

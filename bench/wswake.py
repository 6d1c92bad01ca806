#!/usr/bin/env python3
"""bench/wswake.py: how long the WebSocket benchmark's threads wait for a CPU once woken, and behind what.

Usage: bench/wswake.py PERF_DATA --own TID,TID,...

PERF_DATA is a `perf record -k CLOCK_MONOTONIC -e sched:sched_switch,sched:sched_wakeup` of every CPU over a
wslat window (bench/wsab.sh AB_SCHED=1 AB_WAKE=1 records it); --own lists the thread ids of the proxy, the origin
(wsecho) and the load generator (wsload). For each of the three it prints, over every wakeup of one of its threads,
the delay from the wakeup to the thread running (the hop's scheduling delay), then the same split by what the
woken thread's target CPU was running at the wakeup: idle, the proxy, wsecho, wsload, a kernel thread or a
foreign task (anything else: other sessions' work on a shared machine). On loopback a socket write wakes the
reader with a sync hint, so "target busy with the proxy" is mostly the proxy waking its peer onto its own CPU.

Each message of wslat is 4 such hops (client -> proxy -> origin -> proxy -> client): a round-trip p99 far above the
hops' p99 says that the tail is queueing (bursts: several messages behind each other in one thread), not one
thread waiting for a CPU. docs/benchmarks.md, "The WebSocket tail, unpinned".
"""
import collections
import re
import subprocess
import sys

KERNEL = re.compile(r"^(swapper|ksoftirqd|rcu_|migration|kworker|idle_inject|cpuhp|watchdog)")
LINE = re.compile(r"\s*\[(\d+)\]\s+([\d.]+):\s+(sched:sched_switch|sched:sched_wakeup):\s+(.*)")
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*next_comm=(.*?) next_pid=(\d+)")
WAKEUP = re.compile(r"comm=(.*?) pid=(\d+) prio=-?\d+ target_cpu=(\d+)")


def role(tid, comm, own):
    if tid == 0:
        return "idle"
    if tid in own:
        if comm.startswith("wsecho"):
            return "wsecho"
        if comm.startswith("wsload"):
            return "wsload"
        return "proxy"
    return "kernel" if KERNEL.match(comm) else "foreign"


def quantile(v, q):
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main(argv):
    if len(argv) != 4 or argv[2] != "--own":
        sys.exit(__doc__)
    own = {int(x) for x in argv[3].split(",") if x}
    text = subprocess.run(["perf", "script", "-i", argv[1], "-F", "cpu,time,event,trace"], capture_output=True,
                          text=True, check=True).stdout
    running = {}                    # cpu -> (tid, comm) switched in last
    pending = {}                    # tid -> (wakeup time, role of what ran on the target CPU)
    delays = collections.defaultdict(list)      # (role of woken, role on target) -> [us]
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        cpu, t, ev, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        if ev == "sched:sched_switch":
            s = SWITCH.search(rest)
            if not s:
                continue
            nxt, ncomm = int(s.group(4)), s.group(3)
            running[cpu] = (nxt, ncomm)
            if nxt in pending:
                t0, on = pending.pop(nxt)
                delays[(role(nxt, ncomm, own), on)].append((t - t0) * 1e6)
        else:
            w = WAKEUP.search(rest)
            if not w or int(w.group(2)) not in own:
                continue
            tid, target = int(w.group(2)), int(w.group(3))
            on_tid, on_comm = running.get(target, (0, "swapper"))
            pending[tid] = (t, role(on_tid, on_comm, own))
    for who in ("proxy", "wsecho", "wsload"):
        allv = sorted(x for (k, _), v in delays.items() if k == who for x in v)
        if not allv:
            continue
        print(f"WAKE {who} n={len(allv)} p50_us={quantile(allv, .5):.0f} p90_us={quantile(allv, .9):.0f} "
              f"p99_us={quantile(allv, .99):.0f} p999_us={quantile(allv, .999):.0f} "
              f"over_200us={sum(x > 200 for x in allv)}")
        for (k, on), v in sorted(delays.items()):
            if k != who:
                continue
            v.sort()
            print(f"  target_busy_with={on} share={100 * len(v) / len(allv):.1f}% p50_us={quantile(v, .5):.0f} "
                  f"p99_us={quantile(v, .99):.0f} over_200us={sum(x > 200 for x in v)}")


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""bench/wsiter.py: a proxy's event-loop iterations, and how often it loses its CPU in the middle of one.

Usage: bench/wsiter.py PERF_DATA

PERF_DATA: `perf record -k CLOCK_MONOTONIC -e syscalls:sys_enter_epoll_wait,syscalls:sys_exit_epoll_wait,
sched:sched_switch -p PROXY_PID -- sleep 2` during a wslat window (any epoll-based proxy: ssegate, HAProxy, nginx).
An iteration is the time from an epoll_wait's return to the thread's next epoll_wait: the work on the events it
returned. Prints, over every thread of the process:
  - iterations, events per iteration (mean, p99, max);
  - the busy time of the iterations the thread kept its CPU through (p50 ... max), and per event;
  - the iterations during which it was switched out, and among the switches out of the proxy's threads those
    in state R (preempted: a woken task took the CPU) with the task that took it. Every message read in such an
    iteration and not yet passed on waits for the CPU to come back (docs/benchmarks.md, "The WebSocket tail,
    unpinned").
"""
import collections
import re
import subprocess
import sys

LINE = re.compile(r"\s*(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)")
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")


def quantile(v, q):
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    text = subprocess.run(["perf", "script", "-i", argv[1], "-F", "tid,time,event,trace"], capture_output=True,
                          text=True, check=True).stdout
    open_iter = {}                  # tid -> (epoll_wait return time, events)
    switched = collections.Counter()
    iters = []                      # (events, busy us, switched out during it)
    preempted_by = collections.Counter()
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        tid, t, ev, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        if ev.endswith("sys_exit_epoll_wait"):
            r = re.search(r"0x([0-9a-f]+)", rest)
            open_iter[tid] = (t, int(r.group(1), 16) if r else 0)
            switched[tid] = 0
        elif ev.endswith("sys_enter_epoll_wait"):
            if tid in open_iter:
                t0, n = open_iter.pop(tid)
                iters.append((n, (t - t0) * 1e6, switched[tid] > 0))
        elif ev == "sched:sched_switch":
            s = SWITCH.search(rest)
            if not s or int(s.group(2)) != tid:
                continue
            if tid in open_iter:
                switched[tid] += 1
            if s.group(3).startswith("R"):
                preempted_by[re.sub(r"[-:/]?\d+$", "", s.group(4))] += 1
    if not iters:
        sys.exit("no epoll_wait iterations in " + argv[1])
    kept = sorted(b for n, b, sw in iters if not sw)
    per_event = sorted(b / n for n, b, sw in iters if not sw and n > 0)
    events = sorted(n for n, _, _ in iters)
    lost = sorted(b for _, b, sw in iters if sw)
    print(f"ITER iterations={len(iters)} events_mean={sum(events) / len(events):.2f} events_p99={quantile(events, .99)} "
          f"events_max={events[-1]} switched_out={len(lost)} ({100 * len(lost) / len(iters):.1f}%)")
    print(f"  kept_cpu busy_us p50={quantile(kept, .5):.0f} p90={quantile(kept, .9):.0f} p99={quantile(kept, .99):.0f} "
          f"p999={quantile(kept, .999):.0f} max={kept[-1]:.0f}; per event p50={quantile(per_event, .5):.1f} "
          f"p99={quantile(per_event, .99):.1f}")
    if lost:
        print(f"  switched_out busy_us p50={quantile(lost, .5):.0f} p99={quantile(lost, .99):.0f} max={lost[-1]:.0f}")
    print(f"  preempted={sum(preempted_by.values())} by: " +
          ", ".join(f"{k} {v}" for k, v in preempted_by.most_common(6)))


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Where the cores go during a measurement, from /proc (Linux), for BENCHMARKS.md.

  cpu-use.py snapshot NAME=PID ...     prints a snapshot (JSON) of the CPU time used so far
  cpu-use.py report BEFORE AFTER SECS  prints each process's share of a core between two
                                       snapshots, and for `shop` its threads by kind

A process's own counters include its ended threads (the commit threads, which live for one
checkpoint each); a thread's kind is its name without its number (`timely:work-0` and
`timely:work-1` are `timely:work-`), and what ended threads used is "ended threads".
"""

import json
import os
import re
import sys

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def ticks(stat_path):
    """User plus system time of a process or thread, in clock ticks."""
    with open(stat_path) as stat:
        text = stat.read()
    # The name, in parentheses, may hold spaces: the fields start after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def threads(pid):
    """Each live thread's kind and CPU time, by thread id."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                kind = re.sub(r"\d+$", "", comm.read().strip())
            found[tid] = [kind, ticks(f"/proc/{pid}/task/{tid}/stat")]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def snapshot(named_pids):
    taken = {}
    for named in named_pids:
        name, pid = named.split("=", 1)
        try:
            taken[name] = {"total": ticks(f"/proc/{pid}/stat"), "threads": threads(pid)}
        except (FileNotFoundError, ProcessLookupError):
            continue
    print(json.dumps(taken))


def report(before, after, seconds):
    def share(used):
        return f"{100 * used / TICKS_PER_SECOND / seconds:5.1f} %"

    for name, later in after.items():
        earlier = before.get(name, {"total": 0, "threads": {}})
        print(f"cpu {name}: {share(later['total'] - earlier['total'])} of a core")
        if name != "shop":
            continue
        # A thread seen only in the later snapshot started in between; one seen only in
        # the earlier ended in between, and counts among the ended threads.
        used = {}
        for tid, (kind, spent) in later["threads"].items():
            spent_before = earlier["threads"].get(tid, [kind, 0])[1]
            used[kind] = used.get(kind, 0) + spent - spent_before
        used["ended threads"] = (later["total"] - earlier["total"]) - sum(used.values())
        for kind, spent in sorted(used.items(), key=lambda item: -item[1]):
            if spent > 0:
                print(f"cpu   shop {kind}: {share(spent)}")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "snapshot":
        snapshot(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(__doc__)

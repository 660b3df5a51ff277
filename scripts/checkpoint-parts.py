#!/usr/bin/env python3
"""When each participant's part of a checkpoint comes in, from a `shop run` log, for
BENCHMARKS.md: which operators a checkpoint waits for.

  checkpoint-parts.py LOG [FIRST_EPOCH [LAST_EPOCH]]

LOG is written with `--log warn,sluice::checkpoint=trace,sluice::render=trace` (the
`checkpoint participant` lines name each participant at start-up, the `checkpoint part
in` lines time each part from the checkpoint's opening). Prints, over the checkpoints of
the given epochs, the median and 90th percentile of the time to the last part, which
participant was last how often, and each participant's median and p90, in the order the
parts come in. A participant is named by its store or source topic and the worker thread it runs on.
"""

import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def field(line, name):
    # A value runs to the next field: store names may hold spaces ("late records").
    found = re.search(rf"\b{name}=(.*?)(?= \w+=|$)", line.rstrip())
    return found.group(1).strip('"') if found else None


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    last = int(sys.argv[3]) if len(sys.argv) > 3 else None
    names, parts = {}, {}
    with open(sys.argv[1], errors="replace") as log:
        for line in log:
            line = ANSI.sub("", line)
            if "checkpoint participant" in line:
                participant = int(field(line, "participant"))
                name = field(line, "store") or f"source {field(line, 'source')}"
                names[participant] = f"{name} ({field(line, 'thread')})"
            elif "checkpoint part in" in line:
                epoch = int(field(line, "epoch"))
                if epoch < first or (last is not None and epoch > last):
                    continue
                participant = int(field(line, "participant"))
                label = names.get(participant, str(participant))
                parts.setdefault(epoch, []).append((int(field(line, "since_open_us")) / 1000, label))
    if not parts:
        sys.exit("no `checkpoint part in` lines: was the log written at trace level?")
    gathering = [max(ms for ms, _ in epoch_parts) for epoch_parts in parts.values()]
    print(f"checkpoints: {len(parts)}, all parts in after p50 {statistics.median(gathering):.1f} ms,"
          f" p90 {percentile(gathering, 0.9):.1f} ms")
    lasts = {}
    for epoch_parts in parts.values():
        label = max(epoch_parts)[1]
        lasts[label] = lasts.get(label, 0) + 1
    for label, count in sorted(lasts.items(), key=lambda item: -item[1])[:5]:
        print(f"last in {count:4d} times: {label}")
    by_label = {}
    for epoch_parts in parts.values():
        for ms, label in epoch_parts:
            by_label.setdefault(label, []).append(ms)
    print(f"{'p50 ms':>8} {'p90 ms':>8}  participant")
    for median, label, p90 in sorted(
        (statistics.median(times), label, percentile(times, 0.9)) for label, times in by_label.items()
    ):
        print(f"{median:8.1f} {p90:8.1f}  {label}")


if __name__ == "__main__":
    main()

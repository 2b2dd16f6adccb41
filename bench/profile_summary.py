"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the server's time goes.

    .venv/bin/python bench/profile_summary.py bench/out/<run>/profile-20x25.txt [--top 40]

Prints, per thread, the share of samples, then the functions with the most inclusive and self
samples (line numbers dropped), and the share of samples under a few markers of the save path.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
MARKERS = {
    "draft_save (service, whole)": "draft_save (debate/services.py",
    "events.broadcast (async_to_sync group_send from the DB thread)": "broadcast (debate/events.py",
    "room_lock (SELECT ... FOR UPDATE)": "room_lock (debate/services.py",
    "psycopg execute / wait": "psycopg",
    "Django ORM compiler": "django/db/models/sql/compiler.py",
    "close_old_connections / pool": "close_old_connections",
    "channels_redis pubsub": "channels_redis/pubsub.py",
    "consumer send_json / room_event": "room_event (debate/consumers.py",
    "daphne/twisted/autobahn I/O": "autobahn",
    "json": "json/",
}


def short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for cut in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if cut in path:
            path = path.split(cut, 1)[1]
            break
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    markers: Counter[str] = Counter()
    for line in args.raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread")), "?")
        threads[re.sub(r"\(0x[0-9a-f]+\)", "", thread).strip()] += n
        names = [short(f) for f in frames if not f.startswith(("process", "thread"))]
        for name in set(names):
            inclusive[name] += n
        if names:
            self_time[names[-1]] += n
        for label, needle in MARKERS.items():
            if needle in stack:
                markers[label] += n
    if not total:
        print("no samples")
        return

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    print(f"{total} samples")
    print("\nthreads:")
    for name, n in threads.most_common(10):
        print(f"  {pct(n)}  {name}")
    print("\nmarkers (share of all samples whose stack contains it):")
    for label, n in markers.most_common():
        print(f"  {pct(n)}  {label}")
    print(f"\ntop {args.top} inclusive:")
    for name, n in inclusive.most_common(args.top):
        print(f"  {pct(n)}  {name}")
    print(f"\ntop {args.top} self:")
    for name, n in self_time.most_common(args.top):
        print(f"  {pct(n)}  {name}")


if __name__ == "__main__":
    main()

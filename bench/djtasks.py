"""Django-side helpers for the benchmark, run with the same environment as the servers.

    python bench/djtasks.py setup --rooms 80 --out setup.json
        the built-in scenario, one facilitator account (username/password written to the JSON) and
        N rooms in the lobby, created through debate.services (members join later over HTTP).

    python bench/djtasks.py snapshot --members 40 --iterations 300 --out snapshot.json
        server time of debate.selectors.room_snapshot for a drafting room of 40 members with
        every slot written (median of many calls), and its query count for 10, 20 and 40 members;
        then the same room in the review phase (every position's drafts visible to members, the
        review section built) under "review" (--no-review: drafting only).

Only bench/ code: nothing here is imported by the application.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from debate import selectors, services  # noqa: E402
from debate.models import Draft, DraftKind, Member, Room  # noqa: E402

WORDS = [
    "weights",
    "release",
    "misuse",
    "audit",
    "researchers",
    "vetting",
    "frontier",
    "capability",
    "safeguards",
    "access",
    "license",
    "liability",
    "evaluation",
    "red-team",
    "disclosure",
    "incident",
    "trust",
    "oversight",
    "replication",
    "compute",
    "benchmark",
    "jailbreak",
    "fine-tuning",
    "provenance",
    "watermark",
    "policy",
    "regulators",
    "academia",
    "startups",
    "competition",
    "openness",
    "accountability",
    "deployment",
    "monitoring",
    "revocation",
]


def setup(rooms: int, out: Path) -> None:
    scenario = services.scenario_install_builtin()
    username = f"bench-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    owner = get_user_model().objects.create_user(username=username, password=password)
    created = []
    for i in range(rooms):
        room = services.room_create(owner=owner, scenario=scenario, title=f"Bench room {i + 1}")
        created.append({"id": room.pk, "code": room.code})
    out.write_text(json.dumps({"username": username, "password": password, "rooms": created}))
    print(f"created facilitator {username} and {rooms} rooms")


def _room_with(members: int, owner, scenario) -> Room:
    room = services.room_create(owner=owner, scenario=scenario, title=f"Snapshot {members}")
    for i in range(members):
        services.member_join(code=room.code, display_name=f"Member {i + 1:02d}")
    services.phase_advance(room_id=room.pk, actor=owner, to_phase="drafting")
    room = Room.objects.select_related("scenario").get(pk=room.pk)
    rng = __import__("random").Random(members)
    for member in Member.objects.filter(room=room):
        for kind, slots in ((DraftKind.ARGUMENT, 3), (DraftKind.RISK, 1)):
            for slot in range(1, slots + 1):
                text = " ".join(rng.choice(WORDS) for _ in range(60))
                services.draft_save(
                    room_id=room.pk,
                    actor=owner,
                    member_id=member.pk,
                    client_id=secrets.token_hex(8),
                    text=text,
                    base_version=0,
                    kind=kind,
                    slot=slot,
                )
    return room


def _viewers(room: Room, owner):
    member = Member.objects.filter(room=room).order_by("pk").first()
    as_member = selectors.viewer_for(room_id=room.pk, user=None, member_id=member.pk)
    as_facilitator = selectors.viewer_for(room_id=room.pk, user=owner, member_id=None)
    return {"member": as_member, "facilitator": as_facilitator}


def _timing(viewer, iterations: int) -> dict:
    for _ in range(10):
        selectors.room_snapshot(viewer=viewer)
    samples, dump = [], []
    for _ in range(iterations):
        t = time.perf_counter()
        snap = selectors.room_snapshot(viewer=viewer)
        samples.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        body = json.dumps({"type": "snapshot", **snap}, separators=(",", ":"))
        dump.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": samples[int(0.95 * (len(samples) - 1))],
        "min_ms": samples[0],
        "json_dumps_median_ms": statistics.median(dump),
        "bytes": len(body.encode()),
        "drafts": len(snap["drafts"]),
        "members": len(snap["members"]),
    }


def snapshot(members: int, iterations: int, out: Path, review: bool = True) -> None:
    scenario = services.scenario_install_builtin()
    owner = get_user_model().objects.create_user(
        username=f"bench-snap-{secrets.token_hex(4)}", password=secrets.token_urlsafe(18)
    )
    result: dict = {"members": members, "iterations": iterations, "queries": {}}
    for size in sorted({10, 20, members}):
        room = _room_with(size, owner, scenario)
        counts = {}
        for role, viewer in _viewers(room, owner).items():
            with CaptureQueriesContext(connection) as ctx:
                selectors.room_snapshot(viewer=viewer)
            counts[role] = len(ctx.captured_queries)
        result["queries"][str(size)] = counts
        if size == members:
            result["drafts_in_room"] = Draft.objects.filter(room=room).count()
            for role, viewer in _viewers(room, owner).items():
                result[role] = _timing(viewer, iterations)
            if review:
                services.phase_advance(room_id=room.pk, actor=owner, to_phase="review")
                result["review"] = {"queries": {}}
                for role, viewer in _viewers(room, owner).items():
                    with CaptureQueriesContext(connection) as ctx:
                        selectors.room_snapshot(viewer=viewer)
                    result["review"]["queries"][role] = len(ctx.captured_queries)
                    result["review"][role] = _timing(viewer, iterations)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--rooms", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("snapshot")
    p.add_argument("--members", type=int, default=40)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-review", dest="review", action="store_false")
    args = parser.parse_args()
    if args.cmd == "setup":
        setup(args.rooms, args.out)
    else:
        snapshot(args.members, args.iterations, args.out, review=args.review)


if __name__ == "__main__":
    main()

"""Server -> client events, and the one place that broadcasts them.

A service changes data inside a transaction with the room row locked, then calls `emit`, which
takes the room's next sequence number (so sequence order is commit order) and schedules the
delivery with `transaction.on_commit`: nothing leaves before the data is committed, and nothing
leaves at all when the transaction rolls back.

Audiences (DESIGN.md, "privacy by audience"):
- ROOM: every member and facilitator of the room.
- TEAM: one position's members and the facilitators. Everyone else receives a content-free `tick`
  with the same sequence number, so their sequence has no gap and they do not resync needlessly.

Group names are built here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .models import Room

logger = logging.getLogger("quorum.events")

# The type every group message carries; consumers map it to RoomConsumer.room_event.
GROUP_MESSAGE_TYPE = "room.event"
BROADCAST_TIMEOUT_SECONDS = 3.0

# Event types (server -> client); docs/protocol.md describes each payload.
MEMBER_JOINED = "member.joined"
MEMBER_MOVED = "member.moved"
MEMBER_PRESENCE = "member.presence"
MEMBER_MUTED = "member.muted"
MEMBER_REMOVED = "member.removed"
MEMBER_READMITTED = "member.readmitted"
MEMBER_TYPING = "member.typing"  # ephemeral: no sequence number, facilitators only
DRAFT_UPDATED = "draft.updated"
DRAFT_MODERATED = "draft.moderated"
DRAFT_FEEDBACK = "draft.feedback"
PHASE_CHANGED = "phase.changed"
ROOM_SETTINGS = "room.settings"  # lock, announcement, timer, round, assignment
FACILITATORS_CHANGED = "facilitators.changed"
RECOMMENDATION_UPDATED = "recommendation.updated"
WARMUP_ATTEMPTED = "warmup.attempted"  # to the member and the facilitators
RESEARCH_NOTE_UPDATED = "research.note.updated"
RESEARCH_NOTE_DELETED = "research.note.deleted"
RESEARCH_JUDGEMENT_UPDATED = "research.judgement.updated"
TICK = "tick"
# Review, curation, vote, recommendation builder and finalize (issue 5).
COMMENT_ADDED = "comment.added"
STRONGEST_MARKED = "strongest.marked"
CASE_UPDATED = "case.updated"
VOTE_CAST = "vote.cast"  # the voter gets their vote; facilitators get the turnout only
VOTE_CLOSED = "vote.closed"  # everyone gets the results
MEMBER_CHAIR = "member.chair"
SIGNOFF_UPDATED = "signoff.updated"


def group_room(room_id: int) -> str:
    return f"room.{room_id}"


def group_team(room_id: int, position_id: int | None) -> str:
    return f"room.{room_id}.team.{position_id if position_id is not None else 'none'}"


def group_facilitators(room_id: int) -> str:
    return f"room.{room_id}.facilitators"


def group_member(room_id: int, member_id: int) -> str:
    return f"room.{room_id}.member.{member_id}"


def groups_for_member(room_id: int, member_id: int, position_id: int | None) -> list[str]:
    return [
        group_room(room_id),
        group_team(room_id, position_id),
        group_member(room_id, member_id),
    ]


def groups_for_facilitator(room_id: int) -> list[str]:
    return [group_room(room_id), group_facilitators(room_id)]


@dataclass(frozen=True)
class Audience:
    """Who receives an event's content; everyone else in the room gets a `tick` with its sequence
    number. Build with Audience.room(), .team(position_id), .member(member_id), .facilitators().
    """

    kind: str = "room"
    position_id: int | None = None
    member_id: int | None = None

    @classmethod
    def room(cls) -> Audience:
        return cls(kind="room")

    @classmethod
    def team(cls, position_id: int | None) -> Audience:
        return cls(kind="team", position_id=position_id)

    @classmethod
    def member(cls, member_id: int) -> Audience:
        return cls(kind="member", member_id=member_id)

    @classmethod
    def facilitators(cls) -> Audience:
        return cls(kind="facilitators")

    @property
    def whole_room(self) -> bool:
        return self.kind == "room"


def _current_seq(room: Room) -> int:
    """The room's sequence number, read after the room row was locked (services.room_lock):
    `room.event_seq` is the locked row's, and the drafts' highest number is read by a statement
    of its own, after the lock, so it sees every committed save (READ COMMITTED takes a fresh
    snapshot per statement). Cached on the object for the rest of the transaction."""
    current = room.__dict__.get("_seq_now")
    if current is None:
        current = room.seq
    return current


def take_seq(room: Room) -> int:
    """The next sequence number, for an event whose number the caller writes on its own row in
    the same statement as its change (draft_save stores it on the draft: one write per save).
    The caller holds the room row locked and passes the number to emit(seq=...)."""
    seq = _current_seq(room) + 1
    room.__dict__["_seq_now"] = seq
    return seq


def _next_seq(room: Room) -> int:
    # The caller holds the room row locked (services.room_lock), so no other transaction can
    # take the same number.
    seq = take_seq(room)
    room.event_seq = seq
    Room.objects.filter(pk=room.pk).update(event_seq=seq)
    return seq


_POSITION_IDS: dict[tuple[Any, ...], tuple[int, ...]] = {}
_POSITION_IDS_MAX = 10_000


def room_position_ids(room: Room) -> list[int]:
    """The ids of the room's positions (its team groups), read once per process and room. They
    cannot change while the room exists: a scenario is edited only while no room uses it
    (services.scenario_update) and a room keeps its scenario. The creation time is part of the
    key because SQLite may hand out an id again after a rollback (tests do that)."""
    key = (room.pk, room.scenario_id, room.created_at)
    ids = _POSITION_IDS.get(key)
    if ids is None:
        ids = tuple(room.scenario.positions.values_list("id", flat=True))
        if len(_POSITION_IDS) >= _POSITION_IDS_MAX:
            _POSITION_IDS.clear()
        _POSITION_IDS[key] = ids
    return list(ids)


def _deliveries(
    room: Room,
    event: dict[str, Any],
    audience: Audience,
    position_ids: list[int],
    facilitator_event: dict[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The group sends for one event. `facilitator_event`, when given, is what the facilitators
    receive instead of `event` (real names in anonymous rooms)."""

    def wrap(payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": GROUP_MESSAGE_TYPE, "event": payload}

    full = wrap(event)
    for_facilitators = wrap(facilitator_event or event)
    tick = wrap({"type": TICK, "seq": event["seq"]})
    teams = [*position_ids, None]
    if audience.kind == "room":
        if facilitator_event is None:
            return [(group_room(room.pk), full)]
        return [(group_team(room.pk, team), full) for team in teams] + [
            (group_facilitators(room.pk), for_facilitators)
        ]
    if audience.kind == "team":
        sends = [
            (group_team(room.pk, audience.position_id), full),
            (group_facilitators(room.pk), for_facilitators),
        ]
        sends += [(group_team(room.pk, t), tick) for t in teams if t != audience.position_id]
        return sends
    if audience.kind == "member":
        # The member and the facilitators also receive the tick through their other groups;
        # clients apply a content event that arrives for the sequence number of a tick.
        assert audience.member_id is not None
        return [
            (group_member(room.pk, audience.member_id), full),
            (group_facilitators(room.pk), for_facilitators),
            *[(group_team(room.pk, team), tick) for team in teams],
        ]
    if audience.kind == "facilitators":
        return [
            (group_facilitators(room.pk), for_facilitators),
            *[(group_team(room.pk, team), tick) for team in teams],
        ]
    raise ValueError(f"unknown audience {audience.kind}")


def emit(
    room: Room,
    event_type: str,
    payload: dict[str, Any],
    *,
    audience: Audience,
    position_ids: list[int] | None = None,
    facilitator_payload: dict[str, Any] | None = None,
    seq: int | None = None,
) -> int:
    """Record an event for `room` and deliver it after commit. Returns its sequence number.

    `seq`, when given, is a number from take_seq() that the caller has written on the changed
    row itself (a draft save); otherwise the room's counter (Room.event_seq) takes the next one.

    Must run inside the service's transaction, with `room` read by services.room_lock.
    `position_ids` (the scenario's positions) is needed for team audiences so that the other
    teams get their tick. `facilitator_payload` replaces `payload` for the facilitators.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events.emit must be called inside a transaction")
    if seq is None:
        seq = _next_seq(room)
    elif seq != room.__dict__.get("_seq_now"):
        raise RuntimeError("events.emit(seq=...) takes the number from events.take_seq")
    event = {"type": event_type, "seq": seq, **payload}
    facilitator_event = (
        None
        if facilitator_payload is None
        else {"type": event_type, "seq": seq, **facilitator_payload}
    )
    _deliver_on_commit(room, event, audience, position_ids, facilitator_event)
    return seq


def emit_written(
    room: Room, event_type: str, payload: dict[str, Any], *, audience: Audience, seq: int
) -> None:
    """Deliver, after commit, an event whose sequence number `seq` the caller's own statement
    took and wrote on its row: the one-statement typing save (debate/hotpath.py), which numbers
    the draft in the statement that writes it, after the room's lock. `room` needs only its id,
    scenario id and creation time (room_position_ids)."""
    event = {"type": event_type, "seq": seq, **payload}
    _deliver_on_commit(room, event, audience, None, None)


def _deliver_on_commit(
    room: Room,
    event: dict[str, Any],
    audience: Audience,
    position_ids: list[int] | None,
    facilitator_event: dict[str, Any] | None,
) -> None:
    needs_teams = audience.kind != "room" or facilitator_event is not None
    if needs_teams and position_ids is None:
        position_ids = room_position_ids(room)
    sends = _deliveries(room, event, audience, position_ids or [], facilitator_event)
    transaction.on_commit(lambda: broadcast(sends))


# The event loop of the consumer a service is running for (set by the consumer, carried into
# the database thread by asgiref's context copy).
_consumer_loop: ContextVar[asyncio.AbstractEventLoop | None] = ContextVar(
    "quorum_consumer_loop", default=None
)


def bind_consumer_loop() -> None:
    """Called by a consumer in its own task: broadcasts of the services it calls are handed to
    its event loop instead of holding the database thread (and every other socket's work) while
    the channel layer answers."""
    _consumer_loop.set(asyncio.get_running_loop())


def broadcast(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Send group messages. The channel layer is a doorbell: a failure is logged, not raised,
    because the data is committed and clients resync from the database.

    From a consumer's service call this schedules the sends on the consumer's loop and returns
    at once (the acknowledgement does not wait for Redis). Elsewhere (views, commands) it sends
    and waits, up to BROADCAST_TIMEOUT_SECONDS."""
    loop = _consumer_loop.get()
    if loop is not None and loop.is_running() and not _running_in(loop):
        asyncio.run_coroutine_threadsafe(_send_all(sends), loop)
        return
    async_to_sync(_send_all)(sends)


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async with asyncio.timeout(BROADCAST_TIMEOUT_SECONDS):
            many = getattr(layer, "group_send_many", None)  # config/channel_layers.py
            if many is not None:  # one Redis round trip for all of this event's messages
                await many(_serialised(sends))
                return
            # Started together, in order: the pub/sub layer publishes under a FIFO lock, so all
            # of this event's messages are queued before anything a consumer sends afterwards
            # (a typing relay cannot overtake the draft.updated it follows).
            await asyncio.gather(
                *(layer.group_send(group, message) for group, message in _serialised(sends))
            )
    except Exception as exc:
        _report_failure(exc, sends)


def _serialised(sends: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Each group message also carries its event as the JSON text the client receives, encoded
    once here instead of once per recipient in RoomConsumer.room_event."""
    texts: dict[int, str] = {}
    out = []
    for group, message in sends:
        event = message["event"]
        text = texts.get(id(event))
        if text is None:
            text = texts[id(event)] = json.dumps(event, separators=(",", ":"))
        out.append((group, {**message, "text": text}))
    return out


_failures = {"count": 0, "reported_at": -1e9}
FAILURE_REPORT_EVERY_SECONDS = 30.0


def _report_failure(exc: BaseException, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """One log line per outage period, not one traceback per save."""
    _failures["count"] += 1
    now = time.monotonic()
    if now - _failures["reported_at"] >= FAILURE_REPORT_EVERY_SECONDS:
        logger.error(
            "broadcast failed (%d failure(s) since the last report; latest to %s): %r",
            _failures["count"],
            sends[0][0] if sends else "?",
            exc,
        )
        _failures["count"] = 0
        _failures["reported_at"] = now

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
import logging
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
DRAFT_UPDATED = "draft.updated"
PHASE_CHANGED = "phase.changed"
RECOMMENDATION_UPDATED = "recommendation.updated"
TICK = "tick"


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
    """Who receives an event's content. Build with Audience.room() or Audience.team(id)."""

    position_id: int | None = None
    whole_room: bool = True

    @classmethod
    def room(cls) -> Audience:
        return cls(whole_room=True)

    @classmethod
    def team(cls, position_id: int) -> Audience:
        return cls(position_id=position_id, whole_room=False)


def _next_seq(room: Room) -> int:
    # The caller holds the room row locked (services.room_lock), so room.seq is current and no
    # other transaction can take the same number.
    room.seq += 1
    Room.objects.filter(pk=room.pk).update(seq=room.seq)
    return room.seq


def _deliveries(
    room: Room, event: dict[str, Any], audience: Audience, position_ids: list[int]
) -> list[tuple[str, dict[str, Any]]]:
    def wrap(payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": GROUP_MESSAGE_TYPE, "event": payload}

    if audience.whole_room:
        return [(group_room(room.pk), wrap(event))]
    tick = wrap({"type": TICK, "seq": event["seq"]})
    sends = [
        (group_team(room.pk, audience.position_id), wrap(event)),
        (group_facilitators(room.pk), wrap(event)),
    ]
    for other in [*position_ids, None]:
        if other != audience.position_id:
            sends.append((group_team(room.pk, other), tick))
    return sends


def emit(
    room: Room,
    event_type: str,
    payload: dict[str, Any],
    *,
    audience: Audience,
    position_ids: list[int] | None = None,
) -> int:
    """Record an event for `room` and deliver it after commit. Returns its sequence number.

    Must run inside the service's transaction, with `room` read by services.room_lock.
    `position_ids` (the scenario's positions) is needed for team audiences so that the other
    teams get their tick.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events.emit must be called inside a transaction")
    seq = _next_seq(room)
    event = {"type": event_type, "seq": seq, **payload}
    if not audience.whole_room and position_ids is None:
        position_ids = list(room.scenario.positions.values_list("id", flat=True))
    sends = _deliveries(room, event, audience, position_ids or [])
    transaction.on_commit(lambda: broadcast(sends))
    return seq


def broadcast(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Send group messages now. The channel layer is a doorbell: a failure is logged, not raised,
    because the data is committed and clients resync from the database."""
    try:
        async_to_sync(_send_all)(sends)
    except Exception:
        logger.exception("broadcast failed for %s", [group for group, _ in sends])


async def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async with asyncio.timeout(BROADCAST_TIMEOUT_SECONDS):
        for group, message in sends:
            await layer.group_send(group, message)

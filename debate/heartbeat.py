"""What a socket's heartbeat costs the database, shared per process (docs/architecture.md, "The
hot path"). Every member's browser pings about every 25 s, and every message may refresh the
member's `last_seen`; with one database call each, 2,000 idle members kept a core busy.

- `room_seq(room_id)`: the room's sequence number for a `pong`. Read from the database at most
  every PONG_SEQ_SECONDS per room and process, and raised by every event the process forwards
  (`seen`). A pong never reports a number the room has not reached; one that is a few seconds old
  only delays noticing a lost event by as much (docs/protocol.md §7, "Pongs").
- `touch(member_id)`: the member has a live socket here. The process writes every member touched
  since the last time in one UPDATE, at most PRESENCE_TOUCH_SECONDS / 4 after the touch; the
  presence window is twice PRESENCE_TOUCH_SECONDS, so a refresh that waits still comes in time.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings
from django.db import DatabaseError

from . import services
from .dbthreads import database_sync_to_async
from .selectors import room_seq as read_room_seq

logger = logging.getLogger("quorum.socket")

_seqs: dict[int, tuple[int | None, float]] = {}  # room id -> (number, when it was read)
_MAX_ROOMS = 4096

_touched: set[int] = set()
_flush: asyncio.TimerHandle | None = None
_flush_loop: asyncio.AbstractEventLoop | None = None
_flushing: set[asyncio.Task[None]] = set()


async def room_seq(room_id: int) -> int | None:
    """The room's number, at most PONG_SEQ_SECONDS old; None for a room that no longer exists.
    Raises DatabaseError when it has to be read and cannot be."""
    now = time.monotonic()
    cached = _seqs.get(room_id)
    if cached is not None and now - cached[1] < settings.QUORUM["PONG_SEQ_SECONDS"]:
        return cached[0]
    seq = await database_sync_to_async(read_room_seq)(room_id=room_id)
    raised = _seqs.get(room_id, (None, 0.0))[0]  # by an event forwarded during the read
    if seq is not None and raised is not None:
        seq = max(seq, raised)
    if len(_seqs) >= _MAX_ROOMS:
        _seqs.clear()
    _seqs[room_id] = (seq, now)
    return seq


def seen(room_id: int, seq: int) -> None:
    """An event with this number was forwarded to a socket of the room: the room is at least
    there (a cached number is raised, never lowered; no entry is created)."""
    cached = _seqs.get(room_id)
    if cached is not None and cached[0] is not None and seq > cached[0]:
        _seqs[room_id] = (seq, cached[1])


def touch(member_id: int) -> None:
    """Record that the member has a live socket; written with the others at the next flush.
    Called on the consumers' event loop."""
    global _flush, _flush_loop
    _touched.add(member_id)
    loop = asyncio.get_running_loop()
    if _flush is not None and _flush_loop is loop and not _flush.cancelled():
        return
    delay = settings.QUORUM["PRESENCE_TOUCH_SECONDS"] / 4
    _flush_loop = loop
    _flush = loop.call_later(delay, _start_flush)


def _start_flush() -> None:
    global _flush
    _flush = None
    task = asyncio.ensure_future(flush())
    _flushing.add(task)  # a reference until it is done (asyncio keeps only weak ones)
    task.add_done_callback(_flushing.discard)


async def flush() -> None:
    """Write `last_seen` for every member touched since the last flush, in one statement per
    500 members. If the database is away, the members are kept for the next flush."""
    if not _touched:
        return
    ids = sorted(_touched)
    _touched.clear()
    try:
        await database_sync_to_async(services.members_touch)(member_ids=ids)
    except DatabaseError:
        logger.warning("could not refresh presence of %d members", len(ids))
        _touched.update(ids)

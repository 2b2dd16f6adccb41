"""The typing save in one round trip (PostgreSQL): the common cases of services.draft_save.

A member typing in a slot is nearly every message a room receives. The general path
(services.draft_save) takes five round trips or more for it: BEGIN, the room's lock, the draft
with its author, cited cards and the room's latest number, the write, and COMMIT. Each round trip
ends, in a server process, by waiting for the GIL while the event loop delivers events; the save
holds its database thread (and the room's lock) meanwhile (bench/RESULTS.md).

Here the lock and the write go to PostgreSQL as one query of two statements (the simple query
protocol, which psycopg's client-side-binding cursor, Django's default, uses): PostgreSQL runs
them in one transaction (an implicit one in autocommit, as services are called; the caller's
inside an outer `atomic()`), so the room's row stays locked until the write commits, and the
write, a statement of its own, takes its snapshot after the lock was granted: it sees every save
of the room committed before, and numbers the draft after the room's latest number, as
events.take_seq does (READ COMMITTED: a fresh snapshot per statement, docs/architecture.md).

Two writes are covered: an edit of a slot the member has written (an UPDATE), and the first save
of a slot without citations (an INSERT … SELECT: every member's first words when drafting
starts). Each writes only when every check of the general path passes: the room is in drafting,
not paused, not solo; the member belongs to it, is neither removed nor muted, holds a position
(and the one the message names, if any); the slot exists in the scenario; for an edit, the draft
is the member's for their current position and the room's round, not hidden, at the client's
base version, and the change is not a resend (another client id), not a no-op (another text) and
leaves the citations as they are; for a first save, the slot is not written yet. When it writes
nothing, `typing_save` returns None and the caller takes the general path, which says what is
wrong, or acknowledges a resend, or writes new citations: the general path stays the only judge
of what is refused, and this one only ever does what the general path would have done. Tested
side by side in tests/debate/test_hotpath_save.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connection
from django.db.backends.postgresql.psycopg_any import IsolationLevel, is_psycopg3
from django.utils import timezone

from . import events, selectors
from .events import Audience
from .models import Draft, DraftKind, EvidenceCard, Member, Phase, Room, Scenario

if TYPE_CHECKING:
    from .services import SaveResult

logger = logging.getLogger(__name__)

_SQL: dict[str, str] = {}


def available() -> bool:
    """PostgreSQL through psycopg 3's client-side-binding cursor (Django's default): the simple
    query protocol runs several statements in one query, which server-side binding (or another
    cursor factory) cannot; and READ COMMITTED, Django's default, for the write's fresh snapshot
    after the lock (a database whose own default is stricter must not be used: docs/deploy.md)."""
    if connection.vendor != "postgresql":
        return False
    options = connection.settings_dict.get("OPTIONS", {})
    return (
        is_psycopg3
        and options.get("server_side_binding") is not True
        and "cursor_factory" not in options
        and options.get("isolation_level", IsolationLevel.READ_COMMITTED)
        == IsolationLevel.READ_COMMITTED
    )


def _sql(which: str) -> str:
    """The two queries, "edit" and "new", built once from the models' table names. Each locks the
    room, then writes only when the general path's checks would all pass."""
    if not _SQL:
        room, member = Room._meta.db_table, Member._meta.db_table
        draft, scenario = Draft._meta.db_table, Scenario._meta.db_table
        through = Draft.citations.through._meta
        card = through.get_field(EvidenceCard._meta.model_name).column
        lock = f"SELECT 1 FROM {room} WHERE id = %(room)s FOR UPDATE;"
        # The room takes writing; the member may write, for the position the message names.
        writable = """r.id = %(room)s AND r.phase = %(drafting)s AND NOT r.editing_locked
  AND NOT r.is_solo AND s.id = r.scenario_id
  AND m.id = %(member)s AND m.room_id = r.id AND m.removed_at IS NULL AND NOT m.muted
  AND m.position_id IS NOT NULL
  AND (%(position)s::bigint IS NULL OR m.position_id = %(position)s::bigint)
  AND %(slot)s <= CASE WHEN %(kind)s = %(argument)s THEN s.argument_slots ELSE s.risk_slots END"""
        # events.take_seq: the room's number is the greater of its own and its drafts' highest.
        next_seq = f"""GREATEST(r.event_seq, COALESCE((
        SELECT x.seq FROM {draft} AS x WHERE x.room_id = r.id ORDER BY x.seq DESC LIMIT 1
    ), 0)) + 1"""
        cited = f"""ARRAY(SELECT c.{card}::bigint FROM {through.db_table} AS c
          WHERE c.draft_id = d.id ORDER BY 1)"""
        _SQL["edit"] = f"""{lock}
UPDATE {draft} AS d
SET text = %(text)s, version = d.version + 1, last_client_id = %(client)s,
    last_editor_id = NULL, updated_at = %(now)s, seq = {next_seq}
FROM {room} AS r, {member} AS m, {scenario} AS s
WHERE {writable}
  AND d.author_id = m.id AND d.room_id = r.id AND d.position_id = m.position_id
  AND d.round = r.round AND d.kind = %(kind)s AND d.slot = %(slot)s
  AND NOT d.hidden AND d.version = %(base)s
  AND d.last_client_id IS DISTINCT FROM %(client)s AND d.text IS DISTINCT FROM %(text)s
  AND (%(cited)s::bigint[] IS NULL OR %(cited)s::bigint[] = {cited})
RETURNING d.id, d.position_id, d.author_id, d.kind, d.slot, d.round, d.version, d.seq,
    d.needs_source, {cited}, r.scenario_id, r.created_at
"""
        _SQL["new"] = f"""{lock}
INSERT INTO {draft} AS d (room_id, position_id, author_id, kind, slot, round, text, hidden,
    needs_source, version, last_client_id, last_editor_id, seq, created_at, updated_at)
SELECT r.id, m.position_id, m.id, %(kind)s, %(slot)s, r.round, %(text)s, false, false, 1,
    %(client)s, NULL, {next_seq}, %(now)s, %(now)s
FROM {room} AS r, {member} AS m, {scenario} AS s
WHERE {writable}
  AND NOT EXISTS (SELECT 1 FROM {draft} AS e WHERE e.author_id = m.id
      AND e.position_id = m.position_id AND e.round = r.round AND e.kind = %(kind)s
      AND e.slot = %(slot)s)
RETURNING d.id, d.position_id, d.author_id, d.kind, d.slot, d.round, d.version, d.seq,
    d.needs_source, ARRAY[]::bigint[],
    (SELECT scenario_id FROM {room} WHERE id = d.room_id),
    (SELECT created_at FROM {room} WHERE id = d.room_id)
"""
    return _SQL[which]


# What the columns hold: a value past them would fail the query (PostgreSQL casts constants
# while planning) instead of reaching the general path's refusal.
_BIGINT_MAX = 2**63 - 1
_INTEGER_MAX = 2**31 - 1
_SMALLINT_MAX = 2**15 - 1


def _whole(value: Any, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def typing_save(
    *,
    room_id: int,
    member_id: Any,
    client_id: str,
    text: str,
    base_version: int,
    kind: Any,
    slot: Any,
    position_id: Any,
    citations: list[int] | None,
) -> SaveResult | None:
    """Save a member's typing in one round trip: an edit of a slot they have written before
    (`base_version` ≥ 1), or the first save of a slot without citations (`base_version` 0, as
    every member's first words when drafting starts). None when that does not apply or a check
    fails, and then nothing was written: the caller takes the general path. `client_id`, `text`,
    `base_version` and `citations` come cleaned by draft_save."""
    from .services import SaveResult

    if not (
        _whole(room_id, _BIGINT_MAX)
        and _whole(member_id, _BIGINT_MAX)
        and kind in DraftKind.values
        and _whole(slot, _SMALLINT_MAX)
        and slot >= 1
        and (position_id is None or _whole(position_id, _BIGINT_MAX))
        and base_version <= _INTEGER_MAX
        and (base_version > 0 or not citations)  # a new slot's citations: the general path
        and available()
    ):
        return None
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _sql("edit" if base_version else "new"),
            {
                "room": room_id,
                "member": member_id,
                "position": position_id,
                "kind": kind,
                "slot": slot,
                "argument": DraftKind.ARGUMENT.value,
                "drafting": Phase.DRAFTING.value,
                "base": base_version,
                "client": client_id,
                "text": text,
                "now": now,
                "cited": citations,
            },
        )
        cursor.nextset()  # past the lock's row, to the write's
        row = cursor.fetchone()
    if row is None:
        return None
    pk, position, author, kind, slot, round_, version, seq, needs_source, cited = row[:10]
    scenario, created = row[10:]
    draft = Draft(
        pk=pk,
        room_id=room_id,
        position_id=position,
        author_id=author,
        kind=kind,
        slot=slot,
        round=round_,
        text=text,
        version=version,
        last_client_id=client_id,
        updated_at=now,
        hidden=False,
        needs_source=needs_source,
        seq=seq,
    )
    room = Room(pk=room_id, scenario_id=scenario, created_at=created)
    try:
        events.emit_written(
            room,
            events.DRAFT_UPDATED,
            {"draft": selectors.draft_payload(draft, citations=list(cited))},
            audience=Audience.team(position),
            seq=seq,
        )
    except DatabaseError:
        # Committed already: the save is acknowledged. What failed is the read of the room's
        # positions (once per room and process, for the ticks); without this event, members
        # find the gap at the next one and resync (the channel layer is a doorbell).
        logger.warning("draft.updated %s of room %s not sent", seq, room_id, exc_info=True)
    return SaveResult(id=pk, version=version, duplicate=False, seq=seq)

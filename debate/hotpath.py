"""The typing save in one round trip (PostgreSQL): the common case of services.draft_save.

A member typing in a slot they have written before is nearly every message a room receives. The
general path (services.draft_save) takes five round trips for it: BEGIN, the room's lock, the
draft with its author, cited cards and the room's latest number, the UPDATE, and COMMIT. Each
round trip ends, in a server process, by waiting for the GIL while the event loop delivers
events; the save holds its database thread (and the room's lock) meanwhile (bench/RESULTS.md).

Here the lock and the write go to PostgreSQL as one query of two statements (the simple query
protocol, which psycopg's client-side-binding cursor, Django's default, uses): PostgreSQL runs
them in one implicit transaction, so the room's row stays locked until the write commits, and the
UPDATE, a statement of its own, takes its snapshot after the lock was granted: it sees every save
of the room committed before, and numbers the draft after the room's latest number, as
events.take_seq does (READ COMMITTED: a fresh snapshot per statement, docs/architecture.md).

The UPDATE changes the draft only when every check of the general path passes: the room is in
drafting, not paused, not solo; the member belongs to it, is neither removed nor muted, and still
holds the position the draft was written for (and the one the message names, if any); the slot
exists in the scenario and the round is the room's; the draft is not hidden; the client's base
version is the draft's; the change is not a resend (another client id), not a no-op (another
text) and leaves the citations as they are. When it changes nothing, `typing_save` returns None
and the caller takes the general path, which says what is wrong, or acknowledges a resend, or
writes a new slot or new citations: the general path stays the only judge of what is refused,
and this one only ever does what the general path would have done. Tested side by side in
tests/debate/test_hotpath.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from . import events, selectors
from .events import Audience
from .models import Draft, DraftKind, EvidenceCard, Member, Phase, Room, Scenario

if TYPE_CHECKING:
    from .services import SaveResult

_SQL: str | None = None


def available() -> bool:
    """PostgreSQL through a client-side-binding cursor (Django's default with psycopg 3): the
    simple query protocol runs several statements in one query. Server-side binding cannot."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


def _sql() -> str:
    global _SQL
    if _SQL is None:
        cited = Draft.citations.through._meta
        card_column = cited.get_field(EvidenceCard._meta.model_name).column
        # Only table and column names from the models are formatted in; every value is a
        # parameter.
        _SQL = f"""
SELECT 1 FROM {Room._meta.db_table} WHERE id = %(room)s FOR UPDATE;
UPDATE {Draft._meta.db_table} AS d
SET text = %(text)s,
    version = d.version + 1,
    last_client_id = %(client)s,
    last_editor_id = NULL,
    updated_at = %(now)s,
    seq = GREATEST(r.event_seq, COALESCE((
        SELECT x.seq FROM {Draft._meta.db_table} AS x
        WHERE x.room_id = r.id ORDER BY x.seq DESC LIMIT 1
    ), 0)) + 1
FROM {Room._meta.db_table} AS r, {Member._meta.db_table} AS m, {Scenario._meta.db_table} AS s
WHERE r.id = %(room)s AND r.phase = %(drafting)s AND NOT r.editing_locked AND NOT r.is_solo
  AND s.id = r.scenario_id
  AND m.id = %(member)s AND m.room_id = r.id AND m.removed_at IS NULL AND NOT m.muted
  AND (%(position)s::bigint IS NULL OR m.position_id = %(position)s::bigint)
  AND d.author_id = m.id AND d.room_id = r.id AND d.position_id = m.position_id
  AND d.round = r.round AND d.kind = %(kind)s AND d.slot = %(slot)s
  AND d.slot <= CASE WHEN %(kind)s = %(argument)s THEN s.argument_slots ELSE s.risk_slots END
  AND NOT d.hidden
  AND d.version = %(base)s
  AND d.last_client_id IS DISTINCT FROM %(client)s
  AND (d.text IS DISTINCT FROM %(text)s)
  AND (%(cited)s::bigint[] IS NULL OR %(cited)s::bigint[] = ARRAY(
        SELECT c.{card_column}::bigint FROM {cited.db_table} AS c
        WHERE c.draft_id = d.id ORDER BY 1))
RETURNING d.id, d.position_id, d.author_id, d.kind, d.slot, d.round, d.version, d.seq,
    d.needs_source,
    ARRAY(SELECT c.{card_column}::bigint FROM {cited.db_table} AS c
          WHERE c.draft_id = d.id ORDER BY 1),
    r.scenario_id, r.created_at
"""  # noqa: S608
    return _SQL


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    """Save a member's edit of a draft they have written before, in one round trip; None when
    that does not apply or a check fails (nothing was written): the caller takes the general
    path. `client_id`, `text`, `base_version` and `citations` come cleaned by draft_save."""
    from .services import SaveResult

    if not (
        _whole(room_id)
        and _whole(member_id)
        and kind in DraftKind.values
        and _whole(slot)
        and slot >= 1
        and (position_id is None or _whole(position_id))
        and available()
    ):
        return None
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(),
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
        cursor.nextset()  # past the lock's row, to the UPDATE's
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
    events.emit_written(
        room,
        events.DRAFT_UPDATED,
        {"draft": selectors.draft_payload(draft, citations=list(cited))},
        audience=Audience.team(position),
        seq=seq,
    )
    return SaveResult(id=pk, version=version, duplicate=False, seq=seq)

"""The typing save in one round trip (debate/hotpath.py, PostgreSQL).

What must hold: for a member's edit of a slot they have written, and for the first save of a slot
without citations, it does exactly what services.draft_save's general path does (same row, same
number, same event to the same groups), in one query; for anything else (a refusal, a resend, a
no-op, citations to look up) it writes nothing, takes no number, sends nothing and hands over to
the general path, whose answer the caller then gets. On SQLite it never applies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from debate import dbthreads, events, hotpath, services
from debate.errors import Conflict, Forbidden, Invalid, WrongPhase
from debate.models import Draft, Member, Phase, Room
from tests.conftest import join
from tests.debate.conftest import _anonymous, call, db_state

pytestmark = pytest.mark.django_db


def _needs_postgresql() -> None:
    if not hotpath.available():
        pytest.skip("the one-round-trip save is PostgreSQL's (SQLite takes the general path)")


def _args(teams, name: str = "Ana", **overrides: Any) -> dict[str, Any]:
    args = {
        "room_id": teams.room.pk,
        "member_id": teams.members[name].pk,
        "client_id": "a2",
        "text": "Weights cannot be recalled, ever.",
        "base_version": 1,
        "kind": "argument",
        "slot": 1,
        "position_id": None,
        "citations": None,
    }
    return {**args, **overrides}


def _save(**args: Any) -> services.SaveResult:
    return services.draft_save(actor=_anonymous(), **args)


def _cards(teams) -> list[int]:
    return sorted(teams.room.scenario.cards.values_list("pk", flat=True))[:2]


@pytest.fixture
def written(drafting):
    """Ana and Ben (same team) each wrote argument 1, citing the scenario's first card."""
    first_card = _cards(drafting)[:1]
    for name in ("Ana", "Ben"):
        _save(**_args(drafting, name, client_id=f"{name}-1", text=f"{name}'s first words",
                      base_version=0, citations=first_card))  # fmt: skip
    return drafting


def _general_path(monkeypatch) -> None:
    monkeypatch.setattr(hotpath, "available", lambda: False)


def _same_event_but_own(short: list, general: list) -> dict[str, Any]:
    """The two saves' broadcasts go to the same groups, as the same kinds of message in the same
    order, and their drafts differ only in what is each author's (ids, text, client id, time).
    Returns the short path's draft."""
    assert [g for g, _ in short] == [g for g, _ in general]
    assert [e["type"] for _, e in short] == [e["type"] for _, e in general]
    own = {"id", "author_id", "text", "last_client_id", "updated_at"}
    short_draft = next(e["draft"] for _, e in short if "draft" in e)
    general_draft = next(e["draft"] for _, e in general if "draft" in e)
    assert {k: v for k, v in short_draft.items() if k not in own} == {
        k: v for k, v in general_draft.items() if k not in own
    }
    return short_draft


def test_on_sqlite_it_never_applies_and_the_general_path_saves(written):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite case")
    assert hotpath.available() is False
    before = db_state()
    assert hotpath.typing_save(**_args(written)) is None
    assert db_state() == before
    assert _save(**_args(written)).version == 2


def test_an_edit_is_one_statement_with_one_write_and_the_general_paths_result(
    written, broadcasts, monkeypatch
):
    """Ana's edit goes the short way, Ben's (same team, same starting point) the general way:
    the rows and events differ only in what is theirs (ids, names, text, time, number)."""
    _needs_postgresql()
    room = written.room
    start = Room.objects.get(pk=room.pk)
    start_seq = start.seq  # Room.seq is read when asked (a property)
    cited = _cards(written)[:1]
    with CaptureQueriesContext(connection) as ctx:
        ana = broadcasts(_save, **_args(written, "Ana", citations=cited))
    statements = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(statements) == 1, statements  # one query, one round trip
    sql = statements[0].upper()
    assert "FOR UPDATE" in sql and sql.count("UPDATE DEBATE_DRAFT") == 1
    assert "UPDATE DEBATE_ROOM" not in sql and "INSERT" not in sql and "DELETE" not in sql
    ana_sent = broadcasts.sent

    _general_path(monkeypatch)
    with CaptureQueriesContext(connection) as ctx:
        ben = broadcasts(_save, **_args(written, "Ben", client_id="b2", citations=cited))
    assert len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"].upper()]) > 1
    ben_sent = broadcasts.sent

    assert (ana.seq, ben.seq) == (start_seq + 1, start_seq + 2)
    assert (ana.version, ana.duplicate, ben.version, ben.duplicate) == (2, False, 2, False)
    ana_draft = _same_event_but_own(ana_sent, ben_sent)
    assert ana_draft["citations"] == cited
    assert (ana_draft["text"], ana_draft["last_client_id"]) == (_args(written)["text"], "a2")
    # The rows: text, version, number, client id and time written; the room's row untouched.
    rows = {d.author_id: d for d in Draft.objects.filter(room=room, slot=1, kind="argument")}
    a, b = rows[written.members["Ana"].pk], rows[written.members["Ben"].pk]
    assert (a.text, a.version, a.seq, a.last_client_id, a.last_editor_id) == (
        _args(written)["text"], 2, ana.seq, "a2", None,
    )  # fmt: skip
    assert (b.version, b.seq) == (2, ben.seq)
    assert a.updated_at.isoformat() == ana_draft["updated_at"]
    assert sorted(a.citations.values_list("pk", flat=True)) == cited
    after = Room.objects.get(pk=room.pk)
    assert after.event_seq == start.event_seq and after.seq == ben.seq


def test_a_first_save_is_one_statement_and_the_general_paths_result(
    written, broadcasts, monkeypatch
):
    """A slot's first save (base version 0, no citations) is one INSERT … SELECT after the lock;
    Ana's goes the short way, Ben's the general way, with the same outcome."""
    _needs_postgresql()
    room = written.room
    start_seq = Room.objects.get(pk=room.pk).seq
    new_slot = {"slot": 2, "base_version": 0, "citations": []}
    with CaptureQueriesContext(connection) as ctx:
        ana = broadcasts(_save, **_args(written, "Ana", **new_slot))
    statements = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(statements) == 1, statements
    sql = statements[0].upper()
    assert "FOR UPDATE" in sql and sql.count("INSERT INTO DEBATE_DRAFT") == 1
    assert "UPDATE DEBATE_" not in sql
    ana_sent = broadcasts.sent
    _general_path(monkeypatch)
    ben = broadcasts(_save, **_args(written, "Ben", client_id="b2", **new_slot))
    ben_sent = broadcasts.sent

    assert (ana.seq, ben.seq) == (start_seq + 1, start_seq + 2)
    assert (ana.version, ana.duplicate, ben.version, ben.duplicate) == (1, False, 1, False)
    _same_event_but_own(ana_sent, ben_sent)
    fields = ("room_id", "position_id", "kind", "slot", "round", "hidden", "needs_source",
              "picked", "version", "last_editor_id")  # fmt: skip
    a = Draft.objects.values(*fields, "seq", "text").get(pk=ana.id)
    b = Draft.objects.values(*fields).get(pk=ben.id)
    assert {k: a[k] for k in fields} == b
    assert (a["seq"], a["text"]) == (ana.seq, _args(written)["text"])
    assert Draft.objects.get(pk=ana.id).author_id == written.members["Ana"].pk
    assert list(Draft.objects.get(pk=ana.id).citations.all()) == []


def test_numbers_follow_room_events_and_the_general_paths_saves(written):
    _needs_postgresql()
    room, fac = written.room, written.facilitator
    start = Room.objects.get(pk=room.pk).seq
    services.announcement_set(room_id=room.pk, actor=fac, text="Five minutes")  # room row
    one = _save(**_args(written))
    new_slot = _save(**_args(written, "Cy", client_id="c1", base_version=0))  # general path
    two = _save(**_args(written, client_id="a3", text="again", base_version=2))
    assert [one.seq, new_slot.seq, two.seq] == [start + 2, start + 3, start + 4]
    assert Room.objects.get(pk=room.pk).seq == start + 4


def _mute(t):
    Member.objects.filter(pk=t.members["Ana"].pk).update(muted=True)


def _remove(t):
    Member.objects.filter(pk=t.members["Ana"].pk).update(removed_at=timezone.now())


def _move(t):
    Member.objects.filter(pk=t.members["Ana"].pk).update(position=t.pos("api-only"))


def _hide(t):
    Draft.objects.filter(author=t.members["Ana"]).update(hidden=True)


def _lock(t):
    Room.objects.filter(pk=t.room.pk).update(editing_locked=True)


def _review(t):
    Room.objects.filter(pk=t.room.pk).update(phase=Phase.REVIEW)


def _next_round(t):
    Room.objects.filter(pk=t.room.pk).update(round=2)


def _unplace(t):
    Member.objects.filter(pk=t.members["Ana"].pk).update(position=None)


def _nothing(t):
    pass


# (name, change before the save, the save's arguments, what happens): the general path's answer
# (an exception class and code, "duplicate", or "written", a write the general path makes), or
# "fast" (the one-query save writes it).
CASES = [
    ("resend", _nothing, {"client_id": "Ana-1", "text": "Ana's first words"}, "duplicate"),
    ("resend of an older change", _nothing, {"client_id": "Ana-1"}, "duplicate"),
    ("no-op", _nothing, {"text": "Ana's first words"}, "duplicate"),
    ("stale version", _nothing, {"base_version": 0}, (Conflict, "conflict")),
    ("version from the future", _nothing, {"base_version": 7}, (Conflict, "conflict")),
    ("muted", _mute, {}, (Forbidden, "muted")),
    ("removed", _remove, {}, (Forbidden, "forbidden")),
    ("moved to another team", _move, {}, (Conflict, "conflict")),
    ("names the team it left", _move, {"position_id": "OPEN"}, (Conflict, "position_changed")),
    ("names another team", _nothing, {"position_id": "API"}, (Conflict, "position_changed")),
    ("names a team as text", _nothing, {"position_id": "text"}, (Conflict, "position_changed")),
    ("hidden by the facilitator", _hide, {}, (Forbidden, "hidden")),
    ("editing paused", _lock, {}, (WrongPhase, "locked")),
    ("review phase", _review, {}, (WrongPhase, "wrong_phase")),
    ("next round", _next_round, {}, (Conflict, "conflict")),
    ("slot beyond the scenario's", _nothing, {"slot": 99}, (Invalid, "invalid")),
    ("slot zero", _nothing, {"slot": 0}, (Invalid, "invalid")),
    ("unknown kind", _nothing, {"kind": "essay"}, (Invalid, "invalid")),
    ("member of another room", _nothing, {"member_id": "OTHER"}, (Forbidden, "forbidden")),
    ("unknown member", _nothing, {"member_id": 10**9}, (Forbidden, "forbidden")),
    (
        "a new slot citing cards",
        _nothing,
        {"slot": 2, "base_version": 0, "citations": "BOTH"},
        "written",
    ),
    ("first save of a written slot", _nothing, {"base_version": 0}, (Conflict, "conflict")),
    (
        "first save, resent",
        _nothing,
        {"base_version": 0, "client_id": "Ana-1", "text": "Ana's first words"},
        "duplicate",
    ),
    ("new slot, muted", _mute, {"slot": 2, "base_version": 0}, (Forbidden, "muted")),
    ("new slot, removed", _remove, {"slot": 2, "base_version": 0}, (Forbidden, "forbidden")),
    (
        "new slot, no position",
        _unplace,
        {"slot": 2, "base_version": 0},
        (WrongPhase, "wrong_phase"),
    ),
    (
        "new slot, names another team",
        _nothing,
        {"slot": 2, "base_version": 0, "position_id": "API"},
        (Conflict, "position_changed"),
    ),
    ("new slot, editing paused", _lock, {"slot": 2, "base_version": 0}, (WrongPhase, "locked")),
    (
        "new slot, review phase",
        _review,
        {"slot": 2, "base_version": 0},
        (WrongPhase, "wrong_phase"),
    ),
    (
        "new slot beyond the scenario's",
        _nothing,
        {"slot": 9, "base_version": 0},
        (Invalid, "invalid"),
    ),
    (
        "new slot, risk beyond the scenario's",
        _nothing,
        {"kind": "risk", "slot": 2, "base_version": 0},
        (Invalid, "invalid"),
    ),
    (
        "new slot, another room's member",
        _nothing,
        {"slot": 2, "base_version": 0, "member_id": "OTHER"},
        (Forbidden, "forbidden"),
    ),
    ("new citations", _nothing, {"citations": "BOTH"}, "written"),
    ("citations removed", _nothing, {"citations": []}, "written"),
    (
        "same text, new citations",
        _nothing,
        {"text": "Ana's first words", "citations": []},
        "written",
    ),
    ("names its own team", _nothing, {"position_id": "OPEN"}, "fast"),
    ("a risk, not the argument", _nothing, {"kind": "risk"}, (Conflict, "conflict")),
    ("a slot not written yet", _nothing, {"slot": 3}, (Conflict, "conflict")),
    ("a team id past bigint", _nothing, {"position_id": 2**63}, (Conflict, "position_changed")),
    ("a slot past smallint", _nothing, {"slot": 40000, "base_version": 0}, (Invalid, "invalid")),
    ("a member id past bigint", _nothing, {"member_id": 2**64}, (Forbidden, "forbidden")),
    ("a version past integer", _nothing, {"base_version": 2**40}, (Conflict, "conflict")),
    (
        "a member of another room, with a draft there",
        _nothing,
        {"member_id": "OTHER_WRITER"},
        (Forbidden, "forbidden"),
    ),
    (
        "new slot, a placed member of another room",
        _nothing,
        {"slot": 2, "base_version": 0, "member_id": "OTHER_WRITER"},
        (Forbidden, "forbidden"),
    ),
]


def _resolve(teams, args: dict[str, Any], other_room_member: Member) -> dict[str, Any]:
    out = dict(args)
    positions = {"OPEN": teams.pos("open-weights").pk, "API": teams.pos("api-only").pk}
    if out.get("position_id") in positions:
        out["position_id"] = positions[out["position_id"]]
    if out.get("member_id") == "OTHER_WRITER":  # placed, with argument 1 at version 1 there
        position = other_room_member.room.scenario.positions.first()
        Member.objects.filter(pk=other_room_member.pk).update(position=position)
        Draft.objects.create(
            room=other_room_member.room,
            author=other_room_member,
            position=position,
            kind="argument",
            slot=1,
            text="Zed's",
            version=1,
        )
    if out.get("member_id") in ("OTHER", "OTHER_WRITER"):
        out["member_id"] = other_room_member.pk
    if out.get("citations") == "BOTH":
        out["citations"] = _cards(teams)
    return out


@pytest.mark.parametrize(
    ("name", "change", "overrides", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_each_case_is_written_by_one_path_and_refused_as_the_general_path_refuses(
    written, scenario, facilitator, broadcasts, name, change, overrides, expected
):
    _needs_postgresql()
    other_room = services.room_create(owner=facilitator, scenario=scenario, title="Period 4")
    other_member = join(other_room, "Zed")
    change(written)
    args = _resolve(written, _args(written, **overrides), other_member)
    if isinstance(args["citations"], list):
        args["citations"] = sorted(set(args["citations"]))  # cleaned, as draft_save passes it
    before = db_state(), Room.objects.get(pk=written.room.pk).seq
    if expected == "fast":
        assert broadcasts(hotpath.typing_save, **args).seq == before[1] + 1
        assert [e["type"] for _, e in broadcasts.sent].count(events.DRAFT_UPDATED) == 2
        return
    assert broadcasts(hotpath.typing_save, **args) is None
    assert broadcasts.sent == []
    assert (db_state(), Room.objects.get(pk=written.room.pk).seq) == before

    if isinstance(expected, tuple):
        error, code = expected
        with pytest.raises(error) as raised:
            _save(**args)
        assert raised.value.code == code
        assert (db_state(), Room.objects.get(pk=written.room.pk).seq) == before
    else:
        result = _save(**args)
        assert result.duplicate is (expected == "duplicate")
        if expected == "written":
            assert result.seq == before[1] + 1


def test_a_solo_learners_typing_takes_the_general_path(scenario, broadcasts):
    """A solo learner holds every position and their events go to the whole room: not the
    short path's (which sends to a team)."""
    _needs_postgresql()
    solo = services.solo_start(scenario_id=scenario.pk, display_name="Sam")
    position = solo.member.position_id
    args = {"room_id": solo.room.pk, "member_id": solo.member.pk, "kind": "argument", "slot": 1,
            "position_id": position, "citations": None}  # fmt: skip
    assert hotpath.typing_save(client_id="s1", text="First", base_version=0, **args) is None
    _save(client_id="s1", text="First", base_version=0, **args)
    before = db_state()
    assert hotpath.typing_save(client_id="s2", text="Second", base_version=1, **args) is None
    assert db_state() == before
    broadcasts(_save, client_id="s2", text="Second", base_version=1, **args)
    assert [g for g, _ in broadcasts.sent] == [events.group_room(solo.room.pk)]


@pytest.mark.django_db(transaction=True)
async def test_concurrent_edits_of_one_room_take_every_number_once(drafting, settings):
    """Edits on the database threads at once, with room events between them (PostgreSQL): every
    number is taken once, with no gap, and every edit lands."""
    if await call(lambda: not hotpath.available()):
        pytest.skip("the one-round-trip save is PostgreSQL's")
    settings.DB_THREADS = max(2, settings.DB_THREADS)
    room, fac = drafting.room, drafting.facilitator
    names = list(drafting.members)
    for name in names:
        await call(_save, **_args(drafting, name, client_id=f"{name}-0", base_version=0))
    start = await call(lambda: Room.objects.get(pk=room.pk).seq)
    rounds = 6

    async def typist(name: str) -> list[int]:
        numbers = []
        for n in range(1, rounds + 1):
            args = _args(drafting, name, client_id=f"{name}-{n}", text=f"{name} {n}",
                         base_version=n)  # fmt: skip
            numbers.append((await dbthreads.database_sync_to_async(_save)(**args)).seq)
        return numbers

    async def announcer() -> list[int]:
        numbers = []
        for n in range(rounds):
            await dbthreads.database_sync_to_async(services.announcement_set)(
                room_id=room.pk, actor=fac, text=f"Note {n}"
            )
            numbers.append(await call(lambda: Room.objects.get(pk=room.pk).event_seq))
        return numbers

    results = await asyncio.gather(*(typist(n) for n in names), announcer())
    saves = [seq for numbers in results[:-1] for seq in numbers]
    total = len(saves) + rounds
    assert len(set(saves)) == len(saves)
    assert not set(saves) & set(results[-1])
    assert await call(lambda: Room.objects.get(pk=room.pk).seq) == start + total
    versions = await call(
        lambda: sorted(Draft.objects.filter(room=room).values_list("version", flat=True))
    )
    assert versions == [rounds + 1] * len(names)
    assert sorted(saves) == sorted(set(range(start + 1, start + total + 1)) - set(results[-1]))


def test_the_positions_for_the_ticks_come_from_the_process_cache(written, broadcasts):
    """An edit in a room whose positions this process has not read yet reads them once."""
    _needs_postgresql()
    events._POSITION_IDS.clear()
    broadcasts(_save, **_args(written))
    ticks = [g for g, e in broadcasts.sent if e["type"] == events.TICK]
    assert len(ticks) == len(written.positions)  # the two other teams, and "no team"
    with CaptureQueriesContext(connection) as ctx:
        broadcasts(_save, **_args(written, client_id="a3", text="more", base_version=2))
    assert len(ctx.captured_queries) == 1


def test_a_typing_save_rewrites_its_row_in_place_touching_no_index(written):
    """A heap-only update (HOT): no index entry written, so one page per save, not eight. Any
    index on a column the save changes (Draft.seq, version, text...) makes this 0."""
    _needs_postgresql()
    table = Draft._meta.db_table

    def updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_stat_get_xact_tuples_updated(%s::regclass),"
                " pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
                [table, table],
            )
            return cursor.fetchone()

    before = updates()
    for version in range(1, 5):
        _save(**_args(written, "Ana", client_id=f"hot-{version}", text=f"Edit {version}.",
                      base_version=version))  # fmt: skip
    updated, hot = (now - then for now, then in zip(updates(), before, strict=True))
    assert (updated, hot) == (4, 4)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
        assert cursor.fetchone()[0] == ["fillfactor=70"]

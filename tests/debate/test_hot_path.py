"""The hot path (issue 8): one row write per save, sequence numbers off the room row, group events
that never wait for the database thread, the database executor. Speed is measured in bench/;
these tests check the behaviour the speed-ups must keep."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from debate import dbthreads, events, hotpath, selectors, services
from debate.models import Draft, Member, Room
from tests.conftest import join
from tests.debate.conftest import (
    _anonymous,
    call,
    db_state,
    drain_all,
    member_draft,
    team_sockets,
)

socket_test = pytest.mark.django_db(transaction=True)
WRITES = ("INSERT", "UPDATE", "DELETE")


def writes(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


def is_savepoint(sql: str) -> bool:  # the test's own transaction, not the service's work
    return sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))


def save(teams, name: str, text: str, *, base_version: int, client_id: str, slot: int = 1, **extra):
    return services.draft_save(
        room_id=teams.room.pk,
        actor=_anonymous(),
        member_id=teams.members[name].pk,
        client_id=client_id,
        text=text,
        base_version=base_version,
        kind="argument",
        slot=slot,
        **extra,
    )


# --- one write per save ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_slot_is_exactly_one_write_statement(drafting):
    with CaptureQueriesContext(connection) as ctx:
        result = save(drafting, "Ana", "Weights cannot be recalled", base_version=0, client_id="a1")
    if hotpath.available():  # PostgreSQL: the lock and an INSERT … SELECT, one query
        # (the room's first save in this process also reads its positions, for the ticks)
        (query,) = [q["sql"] for q in ctx.captured_queries if "INSERT" in q["sql"].upper()]
        assert query.upper().count("INSERT INTO DEBATE_DRAFT") == 1 and "FOR UPDATE" in query
        assert "UPDATE DEBATE_" not in query.upper()
    else:
        assert len(writes(ctx)) == 1
        assert writes(ctx)[0].lstrip().upper().startswith("INSERT")
        assert "debate_room" not in writes(ctx)[0]
    assert Draft.objects.get(pk=result.id).seq == result.seq


@pytest.mark.django_db
def test_an_edit_is_exactly_one_write_statement_and_few_reads(drafting):
    first = save(drafting, "Ana", "Weights cannot be recalled", base_version=0, client_id="a1")
    with CaptureQueriesContext(connection) as ctx:
        second = save(
            drafting, "Ana", "Weights cannot be recalled.", base_version=1, client_id="a2"
        )
    statements = [q["sql"] for q in ctx.captured_queries if not is_savepoint(q["sql"])]
    if hotpath.available():
        # PostgreSQL: the room's lock and the update, sent as one query (debate/hotpath.py).
        assert len(statements) == 1, statements
        assert "FOR UPDATE" in statements[0]
        assert statements[0].upper().count("UPDATE DEBATE_DRAFT") == 1
    else:
        assert [w.split()[0].upper() for w in writes(ctx)] == ["UPDATE"]
        assert '"debate_draft"' in writes(ctx)[0]
        # room lock; the draft with its author, its cited cards (unchanged: no card lookup) and
        # the drafts' latest seq; the update. The positions (for the ticks) are known already.
        assert len(statements) == 3, statements
    assert 'DEBATE_ROOM" SET' not in " ".join(statements).upper()
    assert second.seq == first.seq + 1
    stored = Room.objects.get(pk=drafting.room.pk)
    assert stored.seq == second.seq > stored.event_seq  # the room row was not written


def sent_draft(broadcasts) -> dict:
    """The draft of the draft_updated event the last call sent (the team's and the
    facilitators' group messages carry the same event)."""
    drafts = [event["draft"] for _group, event in broadcasts.sent if "draft" in event]
    assert drafts and all(d == drafts[0] for d in drafts), drafts
    return drafts[0]


@pytest.mark.django_db
def test_an_edit_sends_the_cards_the_draft_cites_read_with_the_draft(drafting, broadcasts):
    """The cited cards come with the draft in _own_draft_edit's statement (JoinedIds; on
    PostgreSQL in the one-query save's RETURNING, debate/hotpath.py): an edit
    that leaves them as they are (or does not name them) still sends them, as numbers, sorted."""
    cards = sorted(drafting.room.scenario.cards.values_list("pk", flat=True))[:3]
    assert len(cards) == 3
    save(drafting, "Ana", "Cited", base_version=0, client_id="a1", citations=cards[::-1])
    for version, citations in ((1, cards), (2, None)):
        with CaptureQueriesContext(connection) as ctx:
            broadcasts(
                save, teams=drafting, name="Ana", text=f"Cited, v{version}",
                base_version=version, client_id=f"a{version + 1}", citations=citations,
            )  # fmt: skip
        statements = [q["sql"] for q in ctx.captured_queries if not is_savepoint(q["sql"])]
        # no card lookup, no link-table write (one query on PostgreSQL: debate/hotpath.py)
        assert len(statements) == (1 if hotpath.available() else 3), statements
        draft = sent_draft(broadcasts)
        assert draft["citations"] == cards
        assert draft["text"] == f"Cited, v{version}"
    # A draft without citations: an empty list, not a failed parse of NULL.
    save(drafting, "Ben", "Uncited", base_version=0, client_id="b1")
    broadcasts(
        save, teams=drafting, name="Ben", text="Uncited, typed on", base_version=1, client_id="b2"
    )
    assert sent_draft(broadcasts)["citations"] == []


@pytest.mark.django_db
def test_an_edit_by_a_muted_removed_or_moved_member_is_refused_as_before(drafting):
    """The one-statement read of an edit (services._own_draft_edit) keeps the general path's
    refusals, and writes nothing for them."""
    from debate.errors import Conflict, Forbidden

    first = save(drafting, "Ana", "Weights cannot be recalled", base_version=0, client_id="a1")
    ana = drafting.members["Ana"]
    open_weights = ana.position_id
    before = db_state()
    Member.objects.filter(pk=ana.pk).update(muted=True)
    with pytest.raises(Forbidden) as muted:
        save(drafting, "Ana", "Muted words", base_version=1, client_id="a2")
    assert muted.value.code == "muted"
    Member.objects.filter(pk=ana.pk).update(muted=False, removed_at=timezone.now())
    with pytest.raises(Forbidden):
        save(drafting, "Ana", "Removed words", base_version=1, client_id="a3")
    other = drafting.members["Cy"].position_id
    Member.objects.filter(pk=ana.pk).update(removed_at=None, position_id=other)
    with pytest.raises(Conflict) as moved:
        save(
            drafting,
            "Ana",
            "Written for the old team",
            base_version=1,
            client_id="a4",
            position_id=open_weights,
        )
    assert moved.value.code == "position_changed"
    Member.objects.filter(pk=ana.pk).update(position_id=open_weights)
    assert db_state() == before
    assert Draft.objects.get(pk=first.id).text == "Weights cannot be recalled"


@pytest.mark.django_db
def test_a_resend_and_a_no_op_write_nothing_and_take_no_number(drafting):
    first = save(drafting, "Ana", "Weights cannot be recalled", base_version=0, client_id="a1")
    before = db_state()
    seq = Room.objects.get(pk=drafting.room.pk).seq
    with CaptureQueriesContext(connection) as ctx:
        again = save(drafting, "Ana", "Weights cannot be recalled", base_version=0, client_id="a1")
        same = save(drafting, "Ana", "Weights cannot be recalled", base_version=1, client_id="a9")
    assert writes(ctx) == []
    assert (again.duplicate, again.seq, same.duplicate, same.seq) == (True, None, True, None)
    assert again.id == first.id
    assert Room.objects.get(pk=drafting.room.pk).seq == seq
    assert db_state() == before


@pytest.mark.django_db
def test_a_stale_version_writes_nothing_and_takes_no_number(drafting):
    save(drafting, "Ana", "one", base_version=0, client_id="a1")
    save(drafting, "Ana", "two", base_version=1, client_id="a2")
    before, seq = db_state(), Room.objects.get(pk=drafting.room.pk).seq
    with pytest.raises(services.Conflict), CaptureQueriesContext(connection) as ctx:
        save(drafting, "Ana", "stale", base_version=1, client_id="a3")
    assert writes(ctx) == []
    assert (db_state(), Room.objects.get(pk=drafting.room.pk).seq) == (before, seq)


@pytest.mark.django_db
def test_sequence_numbers_stay_consecutive_across_saves_and_room_events(drafting):
    room, fac = drafting.room, drafting.facilitator
    start = Room.objects.get(pk=room.pk).seq
    a = save(drafting, "Ana", "one", base_version=0, client_id="a1").seq
    services.announcement_set(room_id=room.pk, actor=fac, text="Ten minutes left")  # room row
    c = save(drafting, "Cy", "two", base_version=0, client_id="c1").seq
    d = save(drafting, "Ana", "three", base_version=1, client_id="a2").seq
    services.member_mute(
        room_id=room.pk, actor=fac, member_id=drafting.members["Dee"].pk, muted=True
    )
    stored = Room.objects.get(pk=room.pk)
    assert [a, c, d] == [start + 1, start + 3, start + 4]
    assert stored.event_seq == start + 5  # the mute; the announcement took start + 2
    assert stored.seq == start + 5
    assert Room.objects.with_seq().get(pk=room.pk).seq == start + 5
    viewer = selectors.viewer_for(room_id=room.pk, user=fac, member_id=None)
    assert selectors.room_snapshot(viewer=viewer)["seq"] == start + 5
    e = save(drafting, "Cy", "four", base_version=1, client_id="c2").seq
    assert e == start + 6 == Room.objects.get(pk=room.pk).seq


@pytest.mark.django_db
def test_a_second_socket_of_an_online_member_takes_no_lock_and_no_number(teams):
    ana = teams.members["Ana"]
    services.member_connected(room_id=teams.room.pk, member_id=ana.pk)
    seq = Room.objects.get(pk=teams.room.pk).seq
    with CaptureQueriesContext(connection) as ctx:
        services.member_connected(room_id=teams.room.pk, member_id=ana.pk)
    statements = [q["sql"] for q in ctx.captured_queries if not is_savepoint(q["sql"])]
    assert len(statements) == 1, statements  # one UPDATE, no room lock, no event
    assert Room.objects.get(pk=teams.room.pk).seq == seq
    assert Member.objects.get(pk=ana.pk).open_sockets == 2
    services.member_disconnected(room_id=teams.room.pk, member_id=ana.pk)
    services.member_disconnected(room_id=teams.room.pk, member_id=ana.pk)
    assert Room.objects.get(pk=teams.room.pk).seq == seq + 1  # offline, once
    services.member_connected(room_id=teams.room.pk, member_id=ana.pk)
    assert Room.objects.get(pk=teams.room.pk).seq == seq + 2  # online again: announced


@pytest.mark.django_db
def test_emit_refuses_a_number_it_did_not_hand_out(drafting):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        room = services.room_lock(room_id=drafting.room.pk)
        events.emit(room, events.TICK, {}, audience=events.Audience.room(), seq=room.seq + 7)


# --- deliveries never wait for the database thread -------------------------------------------


@socket_test
async def test_group_events_are_delivered_while_the_database_thread_is_busy(drafting):
    """asgiref's single thread is held by a blocked call; a broadcast still reaches every socket
    (Channels' own dispatch would queue each delivery behind it)."""
    release, held = threading.Event(), threading.Event()

    def hold_the_thread() -> None:
        held.set()
        release.wait(10)

    async with team_sockets(drafting, "Ana", "Cy") as s:
        blocker = asyncio.ensure_future(sync_to_async(hold_the_thread)())
        try:
            await asyncio.get_running_loop().run_in_executor(None, held.wait, 5)
            event = {"type": events.TICK, "seq": 999}
            await get_channel_layer().group_send(
                events.group_room(drafting.room.pk),
                {"type": events.GROUP_MESSAGE_TYPE, "event": event},
            )
            received = [await sock.recv(timeout=2) for sock in s.values()]
        finally:
            release.set()
            await blocker
    assert received == [event, event, event]


def _held_draft_save(monkeypatch):
    """Make the consumer's draft_save wait (on its database thread) until released."""
    from debate import consumers

    release, held = threading.Event(), threading.Event()
    original = services.draft_save

    def held_save(**kwargs):
        held.set()
        release.wait(10)
        return original(**kwargs)

    monkeypatch.setattr(consumers.services, "draft_save", held_save)
    return release, held


def _save_message(client_id: str, text: str) -> dict:
    return {
        "type": "draft.save",
        "client_id": client_id,
        "kind": "argument",
        "slot": 1,
        "text": text,
        "base_version": 0,
    }


@socket_test
async def test_a_socket_gets_group_events_while_its_own_save_waits(drafting, monkeypatch):
    """A member's own message is handled by the socket's worker task: while Ana's save waits for
    the database, an event for her room still reaches her socket; her ack follows the commit."""
    release, held = _held_draft_save(monkeypatch)
    async with team_sockets(drafting, "Ana", facilitator=False) as s:
        try:
            await s["Ana"].send(_save_message("ana-held", "Weights cannot be recalled"))
            await asyncio.get_running_loop().run_in_executor(None, held.wait, 5)
            event = {"type": events.TICK, "seq": 999}
            await get_channel_layer().group_send(
                events.group_room(drafting.room.pk),
                {"type": events.GROUP_MESSAGE_TYPE, "event": event},
            )
            assert await s["Ana"].recv(timeout=2) == event  # first: before the save's ack
            # An event reporting Ana's own change (same client id) waits for her ack, and the
            # events after it wait behind it, in order.
            own = {"type": "draft.updated", "seq": 1000, "draft": {"last_client_id": "ana-held"}}
            later = {"type": events.TICK, "seq": 1001}
            for injected in (own, later):
                await get_channel_layer().group_send(
                    events.group_room(drafting.room.pk),
                    {"type": events.GROUP_MESSAGE_TYPE, "event": injected},
                )
            assert await s["Ana"].nothing_more(timeout=0.3)
        finally:
            release.set()
        (ana,) = await drain_all(s["Ana"], expect=[4])
    assert [m["type"] for m in ana[:3]] == ["ack", "draft.updated", "tick"]
    assert ana[1:3] == [own, later]
    assert ana[3]["type"] == "draft.updated" and ana[3]["seq"] == ana[0]["seq"]


@socket_test
async def test_a_disconnect_lets_the_save_in_progress_commit(drafting, monkeypatch):
    """The socket closes while its save waits for the database: the save still commits (the
    client resends what it has no ack for, and the client id makes that resend a no-op), and the
    member's disconnect is recorded after it."""
    release, held = _held_draft_save(monkeypatch)
    ana = drafting.members["Ana"]
    async with team_sockets(drafting, "Ana", facilitator=False) as s:
        await s["Ana"].send(_save_message("ana-closing", "Open weights help hospitals"))
        await asyncio.get_running_loop().run_in_executor(None, held.wait, 5)
        closing = asyncio.ensure_future(s["Ana"].close())
        await asyncio.sleep(0.2)
        assert not closing.done()  # the disconnect waits for the save in progress
        release.set()
        await closing
    draft = await call(Draft.objects.get, last_client_id="ana-closing")
    assert draft.text == "Open weights help hospitals"
    assert (await call(Member.objects.get, pk=ana.pk)).open_sockets == 0


@socket_test
async def test_deliveries_skip_the_connection_cleanup_but_socket_messages_keep_it(
    drafting, monkeypatch
):
    import channels.consumer

    cleanups: list[str] = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        cleanups.append("cleanup")
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    async with team_sockets(drafting, "Ana", "Ben", "Cy") as s:
        cleanups.clear()
        result = await call(member_draft, drafting, "Ana", "Published weights cannot be recalled")
        for sock in s.values():  # draft.updated or a tick: a delivery to each of the four
            assert (await sock.recv())["seq"] == result.seq
        assert cleanups == []
        await s["Cy"].send({"type": "ping"})
        assert (await s["Cy"].recv())["type"] == "pong"
        assert cleanups == ["cleanup"]  # a handler that may use the database still gets it


# --- the database executor ------------------------------------------------------------------


@socket_test
async def test_the_executor_runs_each_call_on_its_threads_and_closes_connections(
    drafting, settings, monkeypatch
):
    import channels.db

    settings.DB_THREADS = 2
    closes: list[str] = []
    original = channels.db.close_old_connections

    def counted(**kwargs) -> None:
        closes.append(threading.current_thread().name)
        original(**kwargs)

    monkeypatch.setattr(channels.db, "close_old_connections", counted)

    def where() -> str:
        Room.objects.filter(pk=drafting.room.pk).exists()  # uses the thread's connection
        return threading.current_thread().name

    name = await dbthreads.database_sync_to_async(where)()
    assert name.startswith("quorum-db")
    assert closes == [name, name]  # before and after the call
    settings.DB_THREADS = 0
    assert dbthreads.executor() is None


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions on separate connections need PostgreSQL")


@socket_test
async def test_concurrent_saves_on_the_executor_get_consecutive_numbers(drafting, settings):
    """Saves of one room from many threads at once (PostgreSQL): each is one transaction, every
    number is taken once, in commit order."""
    _needs_postgresql()
    settings.DB_THREADS = max(2, settings.DB_THREADS)
    room = drafting.room
    extra = [await call(join, room, f"Member {i}") for i in range(8)]
    await call(
        lambda: Member.objects.filter(pk__in=[m.pk for m in extra]).update(
            position=drafting.pos("open-weights")
        )
    )
    start = await call(lambda: Room.objects.get(pk=room.pk).seq)

    def one(member_id: int, n: int):
        return services.draft_save(
            room_id=room.pk,
            actor=_anonymous(),
            member_id=member_id,
            client_id=f"c{n}",
            text=f"argument {n}",
            base_version=0,
            kind="argument",
            slot=1,
        )

    results = await asyncio.gather(
        *(dbthreads.database_sync_to_async(one)(m.pk, n) for n, m in enumerate(extra))
    )
    assert sorted(r.seq for r in results) == list(range(start + 1, start + 9))
    stored = await call(
        lambda: sorted(Draft.objects.filter(room=room).values_list("seq", flat=True))
    )
    assert stored[-8:] == list(range(start + 1, start + 9))
    assert await call(lambda: Room.objects.get(pk=room.pk).seq) == start + 8
    # That each call gives its connection back is checked by
    # test_the_executor_runs_each_call_on_its_threads_and_closes_connections: the pool here is the
    # whole process's, shared with earlier tests' sockets, so its counts are not this test's.


@pytest.mark.django_db(transaction=True)
def test_the_room_lock_leaves_the_scenario_row_unlocked(drafting):
    """Every room on the built-in scenario shares its row: room_lock must lock the room's row
    only (FOR UPDATE OF), or saves of different rooms would queue on the scenario's row."""
    from django.db import transaction

    from debate.models import Scenario

    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        services.room_lock(room_id=drafting.room.pk)
    (lock,) = [q["sql"] for q in ctx.captured_queries if "debate_room" in q["sql"]]
    assert connection.vendor == "sqlite" or 'FOR UPDATE OF "debate_room"' in lock
    _needs_postgresql()
    held, release = threading.Event(), threading.Event()

    def hold_the_room() -> None:
        try:
            with transaction.atomic():
                services.room_lock(room_id=drafting.room.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_room)
    holder.start()
    try:
        assert held.wait(5)
        with transaction.atomic():  # NOWAIT: raises at once if another transaction holds it
            Scenario.objects.select_for_update(nowait=True).get(pk=drafting.room.scenario_id)
    finally:
        release.set()
        holder.join(10)


@socket_test
async def test_a_socket_save_is_acknowledged_after_commit_and_delivered_once(drafting):
    async with team_sockets(drafting, "Ana", "Ben") as s:
        await s["Ana"].send(
            {
                "type": "draft.save",
                "client_id": "ana-1",
                "kind": "argument",
                "slot": 1,
                "text": "A model this strong cannot be recalled",
                "base_version": 0,
            }
        )
        ana, ben, fac = await drain_all(*s.values(), expect=[2, 1, 1])
    (ack,) = [m for m in ana if m["type"] == "ack"]
    stored = await call(Draft.objects.get, pk=ack["id"])
    assert (stored.seq, stored.version, ack["duplicate"]) == (ack["seq"], 1, False)
    for received in (ana, ben, fac):
        assert [m["seq"] for m in received if m["type"] == "draft.updated"] == [ack["seq"]]


@socket_test
async def test_sync_at_the_current_number_builds_no_snapshot(drafting, monkeypatch):
    """A reconnecting page that missed nothing gets `synced` from one read of the room's number;
    one that is behind still gets the whole snapshot."""
    from debate import consumers

    async with team_sockets(drafting, "Ana", facilitator=False) as s:
        result = await call(member_draft, drafting, "Ana", "Weights cannot be recalled")
        await s["Ana"].drain(0.3)

        def no_snapshot(**kwargs):
            raise AssertionError("a snapshot was built")

        monkeypatch.setattr(consumers.selectors, "room_snapshot", no_snapshot)
        await s["Ana"].send({"type": "sync", "last_seq": result.seq})
        assert await s["Ana"].recv() == {"type": "synced", "seq": result.seq}
        monkeypatch.undo()
        await s["Ana"].send({"type": "sync", "last_seq": result.seq - 1})
        snapshot = await s["Ana"].recv()
        assert (snapshot["type"], snapshot["seq"]) == ("snapshot", result.seq)
        assert "_position_id" not in snapshot

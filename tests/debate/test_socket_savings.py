"""Per-socket and per-process savings on the hot path (issue 8): runs of ticks leave as one frame,
pongs read the room's number at most every PONG_SEQ_SECONDS per process, and presence refreshes
are written together. These tests read frames as they are sent (Socket.recv_frame)."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from debate import heartbeat, services
from debate.models import Member, Room
from tests.conftest import Socket, a_cookie_for
from tests.debate.conftest import call, drain_all, member_draft, team_sockets

socket_test = pytest.mark.django_db(transaction=True)


@pytest.fixture
def default_tick_runs(settings):
    """Runs of 200 ms, long enough to see them form (production holds them up to 600 ms, tests
    otherwise 20 ms, tests/conftest.py)."""
    settings.QUORUM = {**settings.QUORUM, "TICK_RUN_MS": 200}


@pytest.fixture(autouse=True)
def _forget_room_numbers():
    heartbeat._seqs.clear()
    yield
    heartbeat._seqs.clear()


async def room_seq(room_id: int) -> int:
    return (await call(Room.objects.with_seq().get, pk=room_id)).seq


@socket_test
async def test_other_teams_drafts_reach_a_member_as_one_run_of_ticks(drafting, default_tick_runs):
    """Three saves by Ana (open weights): her team and the facilitator get each draft; Cy (API
    only) and Dee (restricted) get one frame naming the three numbers, and nothing else."""
    async with team_sockets(drafting, "Ana", "Cy", "Dee") as s:
        start = await room_seq(drafting.room.pk)

        def three_saves():
            for slot in (1, 2, 3):
                member_draft(drafting, "Ana", f"ana-{slot}", slot=slot)

        await call(three_saves)
        end = await room_seq(drafting.room.pk)
        assert end == start + 3
        run = {"type": "tick", "seq": end, "from": start + 1}
        assert await s["Cy"].recv_frame() == run
        assert await s["Dee"].recv_frame() == run
        ana, fac = await drain_all(s["Ana"], s["fac"], expect=3)
        assert await s["Cy"].nothing_more() and await s["Dee"].nothing_more()
    for messages in (ana, fac):
        assert [(m["type"], m["seq"]) for m in messages] == [
            ("draft.updated", seq) for seq in range(start + 1, end + 1)
        ]


@socket_test
async def test_a_waiting_run_rides_in_the_next_event_and_leaves_before_the_next_reply(
    drafting, default_tick_runs
):
    """A run is never overtaken: Cy's own team's draft, numbered just after the run, carries it
    (`ticks_from`, one frame for both), at once (not at the end of the 200 ms); the pong to his
    ping comes after the run that was waiting."""
    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        start = await room_seq(drafting.room.pk)
        await call(member_draft, drafting, "Ana", "ana-1")
        await call(member_draft, drafting, "Dee", "dee-1")
        await asyncio.sleep(0.05)  # the ticks have reached Cy's socket, which holds them
        await call(member_draft, drafting, "Cy", "cy-1")
        loop = asyncio.get_running_loop()
        began = loop.time()
        frame = await s["Cy"].recv_frame()
        assert loop.time() - began < 0.15  # the content sent the run; no timer was waited for
        assert (frame["type"], frame["seq"], frame["ticks_from"]) == (
            "draft.updated",
            start + 3,
            start + 1,
        )
        assert frame["draft"]["text"] == "cy-1"
        assert await s["Cy"].nothing_more()

        await call(member_draft, drafting, "Ana", "ana-2", slot=2)
        await asyncio.sleep(0.05)
        await s["Cy"].send({"type": "ping"})
        tick = await s["Cy"].recv_frame()
        pong = await s["Cy"].recv_frame()
    assert tick == {"type": "tick", "seq": start + 4}
    assert pong["type"] == "pong" and pong["seq"] == start + 4


@socket_test
async def test_a_run_is_cut_where_a_number_is_missing(drafting, default_tick_runs):
    """Ticks that are not consecutive on this socket (the number between came as content through
    another group) are not merged across the gap."""
    from channels.layers import get_channel_layer

    from debate import events

    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        layer = get_channel_layer()
        for seq in (500, 501, 503):
            await layer.group_send(
                events.group_room(drafting.room.pk),
                {"type": events.GROUP_MESSAGE_TYPE, "event": {"type": events.TICK, "seq": seq}},
            )
        frames = [await s["Cy"].recv_frame(), await s["Cy"].recv_frame()]
    assert frames == [{"type": "tick", "seq": 501, "from": 500}, {"type": "tick", "seq": 503}]


async def _room_messages(room_id: int, *seqs_and_types: tuple[int, str]) -> None:
    """Send group messages to the whole room, as events.broadcast would (numbers made up)."""
    from channels.layers import get_channel_layer

    from debate import events

    layer = get_channel_layer()
    for seq, kind in seqs_and_types:
        event = {"type": kind, "seq": seq}
        if kind == events.PHASE_CHANGED:
            event["phase"] = "drafting"
        await layer.group_send(
            events.group_room(room_id), {"type": events.GROUP_MESSAGE_TYPE, "event": event}
        )


@socket_test
async def test_only_the_run_ending_just_before_an_event_rides_in_it(drafting, default_tick_runs):
    """An event carries the run waiting only when the run ends at the number before it; a run that
    does not (a number is missing between them) leaves first, in its own frame."""
    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        await _room_messages(
            drafting.room.pk,
            (500, "tick"),
            (501, "tick"),
            (502, "phase.changed"),
            (503, "tick"),
            (505, "phase.changed"),
        )
        frames = [await s["Cy"].recv_frame() for _ in range(3)]
        assert await s["Cy"].nothing_more()
    assert frames == [
        {"ticks_from": 500, "type": "phase.changed", "seq": 502, "phase": "drafting"},
        {"type": "tick", "seq": 503},
        {"type": "phase.changed", "seq": 505, "phase": "drafting"},
    ]


@socket_test
async def test_every_socket_gets_every_number_once_and_in_order_under_concurrent_saves(drafting):
    """Four members of three teams save over their sockets at once, as fast as they may; each
    socket, the facilitator's too, then holds every number of the room from its start to its end
    exactly once, however ticks were run together, carried by events or (on Redis) taken by the
    channel layer's sink while a socket was idle. Numbers may arrive out of order (two saves'
    broadcasts can leave in the other order than their commits; the browser buffers, protocol
    §7), but every socket has them in the same order: the order the channel layer handed them
    out, which no socket changed by holding a tick back or letting one overtake."""
    names = ("Ana", "Ben", "Cy", "Dee")
    saves = 8
    async with team_sockets(drafting, *names) as s:
        start = await room_seq(drafting.room.pk)
        positions = {name: drafting.members[name].position_id for name in names}

        async def type_fast(name: str) -> None:
            sock = s[name]
            for n in range(saves):
                await sock.send(
                    {
                        "type": "draft.save",
                        "client_id": f"{name}-{n}",
                        "kind": "argument",
                        "slot": 1 + n % 3,
                        "position_id": positions[name],
                        "base_version": n // 3,
                        "citations": [],
                        "text": f"{name} writes line {n}",
                    }
                )
                await asyncio.sleep(0.005 * (1 + names.index(name)))

        await asyncio.gather(*(type_fast(name) for name in names))

        async def frames_of(sock: Socket) -> list[dict]:
            frames = []
            while not await sock.comm.receive_nothing(timeout=0.5):
                frames.append(json.loads(await sock.comm.receive_from()))
            return frames

        received = dict(
            zip(s, await asyncio.gather(*(frames_of(sock) for sock in s.values())), strict=True)
        )
        end = await room_seq(drafting.room.pk)
    assert end == start + saves * len(names)
    orders: dict[str, list[int]] = {}
    for name, frames in received.items():
        acks = [f for f in frames if f["type"] == "ack"]
        assert len(acks) == (saves if name in names else 0), (name, acks)
        numbers: list[int] = []
        for frame in frames:
            if frame["type"] == "ack":
                continue
            first = frame.get("from") if frame["type"] == "tick" else frame.get("ticks_from")
            numbers.extend(range(first if first is not None else frame["seq"], frame["seq"] + 1))
        assert sorted(numbers) == list(range(start + 1, end + 1)), (name, frames)
        orders[name] = numbers
    for a, b in itertools.combinations(orders, 2):
        common = set(orders[a]) & set(orders[b])
        assert [n for n in orders[a] if n in common] == [n for n in orders[b] if n in common], (
            a,
            b,
            received[a],
            received[b],
        )


@socket_test
async def test_ticks_reach_an_idle_socket_without_waking_its_consumer(
    drafting, default_tick_runs, monkeypatch
):
    """With Redis, the channel layer hands a tick to an idle socket's run directly
    (config/channel_layers.py, RoomConsumer._take_tick): Cy's consumer forwards none of Ana's
    three ticks, and still sends them as one run; Ana's and the facilitator's sockets forward
    her drafts as before."""
    from channels.layers import get_channel_layer

    from debate import consumers, events

    if getattr(get_channel_layer(), "set_sink", None) is None:
        pytest.skip("the in-memory channel layer has no sinks; every message is queued")
    forwarded: list[tuple[str, int]] = []
    original = consumers.RoomConsumer.room_event

    async def counting(self, message):
        forwarded.append((message["event"]["type"], message["event"]["seq"]))
        await original(self, message)

    monkeypatch.setattr(consumers.RoomConsumer, "room_event", counting)
    async with team_sockets(drafting, "Ana", "Cy") as s:
        start = await room_seq(drafting.room.pk)
        for slot in (1, 2, 3):
            await call(member_draft, drafting, "Ana", f"ana-{slot}", slot=slot)
            await asyncio.sleep(0.02)  # Cy's socket is idle again before the next one
        assert await s["Cy"].recv_frame() == {"type": "tick", "seq": start + 3, "from": start + 1}
        await drain_all(s["Ana"], s["fac"], expect=3)
    assert [kind for kind, _seq in forwarded].count(events.TICK) == 0
    assert forwarded.count((events.DRAFT_UPDATED, start + 1)) == 2  # Ana's and the facilitator's
    # Closed sockets leave no sink (nor busy mark) in the process's layer: the facilitator's
    # socket never had one (facilitators get no ticks).
    loop_layer = get_channel_layer()._get_layer()
    assert loop_layer.sinks == {} and loop_layer.busy == set()


@socket_test
async def test_a_member_moved_to_another_team_carries_the_run_and_follows_the_team(
    drafting, default_tick_runs
):
    """Cy's socket holds ticks 700 and 701 when his own member.moved (702) arrives: the event
    carries the run, and his socket then hears his new team (open weights) and not his old."""
    from debate import events

    cy, ana = drafting.members["Cy"], drafting.members["Ana"]
    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        await _room_messages(drafting.room.pk, (700, "tick"), (701, "tick"))
        await asyncio.sleep(0.05)
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        moved = {"type": events.MEMBER_MOVED, "seq": 702, "member_id": cy.pk}
        moved["position_id"] = ana.position_id
        await layer.group_send(
            events.group_room(drafting.room.pk), {"type": events.GROUP_MESSAGE_TYPE, "event": moved}
        )
        frame = await s["Cy"].recv_frame()
        for position_id, seq in ((cy.position_id, 703), (ana.position_id, 704)):
            await layer.group_send(
                events.group_team(drafting.room.pk, position_id),
                {"type": events.GROUP_MESSAGE_TYPE, "event": {"type": "tick", "seq": seq}},
            )
        heard = await s["Cy"].recv_frame()
        assert await s["Cy"].nothing_more()
    assert frame == {"ticks_from": 700, **moved}
    assert heard == {"type": "tick", "seq": 704}


@socket_test
async def test_a_tick_waits_its_turn_behind_the_event_a_socket_is_forwarding(
    drafting, default_tick_runs, monkeypatch
):
    """While Cy's consumer is still forwarding event 600 (held here until released), tick 601
    reaches his socket: it is queued behind the event, not taken by the sink into a run that
    could leave first; and a tick that finds the socket idle again is taken (on Redis)."""
    from debate import consumers

    release = asyncio.Event()
    original = consumers.RoomConsumer.room_event

    async def slow_on_600(self, message):
        if message["event"]["seq"] == 600:
            await release.wait()
        await original(self, message)

    monkeypatch.setattr(consumers.RoomConsumer, "room_event", slow_on_600)
    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        await _room_messages(drafting.room.pk, (600, "phase.changed"), (601, "tick"))
        assert await s["Cy"].nothing_more(0.3)  # 600 is stuck, and 601 waits behind it
        release.set()
        frames = [await s["Cy"].recv_frame() for _ in range(2)]
        await _room_messages(drafting.room.pk, (602, "tick"), (603, "tick"))
        frames.append(await s["Cy"].recv_frame())
        assert await s["Cy"].nothing_more()
    assert frames == [
        {"type": "phase.changed", "seq": 600, "phase": "drafting"},
        {"type": "tick", "seq": 601},
        {"type": "tick", "seq": 603, "from": 602},
    ]


@socket_test
async def test_pongs_share_one_read_of_the_room_number_and_follow_its_events(drafting, monkeypatch):
    reads: list[int] = []
    original = heartbeat.read_room_seq

    def counted(*, room_id: int) -> int | None:
        reads.append(room_id)
        return original(room_id=room_id)

    monkeypatch.setattr(heartbeat, "read_room_seq", counted)
    async with team_sockets(drafting, "Ana", "Cy", facilitator=False) as s:
        start = await room_seq(drafting.room.pk)
        pongs = []
        for name in ("Ana", "Cy", "Ana"):
            await s[name].send({"type": "ping"})
            pongs.append(await s[name].recv_until("pong"))
        assert [p["seq"] for p in pongs] == [start] * 3
        assert reads == [drafting.room.pk]  # one read for three pings

        await call(member_draft, drafting, "Ana", "ana-1")  # forwarded here: the number moves on
        await drain_all(s["Ana"], s["Cy"], expect=1)
        await s["Cy"].send({"type": "ping"})
        pong = await s["Cy"].recv_until("pong")
    assert pong["seq"] == start + 1
    assert reads == [drafting.room.pk]


@socket_test
async def test_pongs_read_the_number_again_once_it_is_older_than_the_setting(
    drafting, monkeypatch, settings
):
    settings.QUORUM = {**settings.QUORUM, "PONG_SEQ_SECONDS": 0}
    reads: list[int] = []
    original = heartbeat.read_room_seq
    monkeypatch.setattr(
        heartbeat,
        "read_room_seq",
        lambda *, room_id: reads.append(room_id) or original(room_id=room_id),
    )
    async with team_sockets(drafting, "Ana", facilitator=False) as s:
        for _ in range(2):
            await s["Ana"].send({"type": "ping"})
            await s["Ana"].recv_until("pong")
    assert len(reads) == 2


@socket_test
async def test_presence_refreshes_of_a_process_are_written_together(
    drafting, monkeypatch, settings
):
    """With PRESENCE_TOUCH_SECONDS = 2 a socket refreshes its member after 1 s; the process writes
    the refreshes due within 0.5 s of each other in one call, and both members' last_seen moves."""
    settings.QUORUM = {**settings.QUORUM, "PRESENCE_TOUCH_SECONDS": 2}
    calls: list[list[int]] = []
    original = services.members_touch

    def recorded(*, member_ids: list[int]) -> None:
        calls.append(list(member_ids))
        original(member_ids=member_ids)

    monkeypatch.setattr(services, "members_touch", recorded)
    ana, cy = drafting.members["Ana"], drafting.members["Cy"]
    async with team_sockets(drafting, "Ana", "Cy", facilitator=False) as s:
        long_ago = timezone.now() - timedelta(seconds=30)
        await call(Member.objects.filter(pk__in=[ana.pk, cy.pk]).update, last_seen=long_ago)
        await asyncio.sleep(1.1)
        for name in ("Ana", "Cy"):
            await s[name].send({"type": "ping"})
            await s[name].recv_until("pong")
        for _ in range(40):
            if calls:
                break
            await asyncio.sleep(0.1)
        seen = await call(
            lambda: dict(
                Member.objects.filter(pk__in=[ana.pk, cy.pk]).values_list("pk", "last_seen")
            )
        )
    assert calls == [sorted([ana.pk, cy.pk])]
    assert all(when > long_ago + timedelta(seconds=25) for when in seen.values())


# --- reconnects: one database call to admit an online member, one statement to confirm a sync --


@socket_test
async def test_a_second_socket_of_an_online_member_is_counted_in_the_admitting_call(
    drafting, monkeypatch
):
    from debate import consumers

    locked: list[int] = []
    original = services.member_connected

    def recorded(*, room_id: int, member_id: int) -> None:
        locked.append(member_id)
        original(room_id=room_id, member_id=member_id)

    monkeypatch.setattr(consumers.services, "member_connected", recorded)
    ana = drafting.members["Ana"]
    async with team_sockets(drafting, "Ana", "Cy", facilitator=False) as s:
        assert locked == [ana.pk, drafting.members["Cy"].pk]  # offline before: announced
        second = Socket(drafting.room.pk, await a_cookie_for(ana))
        assert await second.connect()
        try:
            snapshot = await second.sync()
            assert [m["online"] for m in snapshot["members"] if m["id"] == ana.pk] == [True]
            assert locked == [ana.pk, drafting.members["Cy"].pk]  # no second locked call
            assert (await call(Member.objects.get, pk=ana.pk)).open_sockets == 2
            assert await s["Cy"].nothing_more()  # and no presence event for anyone
        finally:
            await second.close()


@pytest.mark.django_db
def test_a_members_sync_at_the_current_number_is_one_statement(drafting):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from debate.consumers import _sync_reply

    member_draft(drafting, "Ana", "ana-1")
    ana = drafting.members["Ana"]
    seq = Room.objects.with_seq().get(pk=drafting.room.pk).seq
    with CaptureQueriesContext(connection) as ctx:
        reply = _sync_reply(drafting.room.pk, None, ana.pk, seq)
    assert reply == {"type": "synced", "seq": seq, "_position_id": ana.position_id}
    assert len(ctx.captured_queries) == 1
    behind = _sync_reply(drafting.room.pk, None, ana.pk, seq - 1)
    assert behind["type"] == "snapshot" and behind["seq"] == seq
    Member.objects.filter(pk=ana.pk).update(removed_at=timezone.now())
    assert _sync_reply(drafting.room.pk, None, ana.pk, seq) is None
    assert _sync_reply(drafting.members["Cy"].room_id + 1000, None, ana.pk, seq) is None


@pytest.mark.django_db
def test_a_members_sync_state_is_the_rooms_number_and_their_team(drafting):
    """selectors.member_sync_state, the plain SQL a reconnect reads, agrees with Room.seq (the
    greater of the room's own number and its drafts') whichever is ahead, and with the member
    row; nobody outside the room is found."""
    from debate import selectors

    room, ana = drafting.room, drafting.members["Ana"]

    def expected():
        ana.refresh_from_db()
        seq = Room.objects.with_seq().get(pk=room.pk).seq
        return selectors.SyncState(ana.removed_at is not None, ana.position_id, seq)

    assert selectors.member_sync_state(room_id=room.pk, member_id=ana.pk) == expected()
    member_draft(drafting, "Ana", "ana-1")  # the drafts' number is ahead
    member_draft(drafting, "Ben", "ben-1")
    state = selectors.member_sync_state(room_id=room.pk, member_id=ana.pk)
    assert state == expected() and state.seq > room.event_seq
    services.announcement_set(room_id=room.pk, actor=room.owner, text="Two minutes left")
    state = selectors.member_sync_state(room_id=room.pk, member_id=ana.pk)
    assert state == expected()  # the room's own number is ahead
    assert state.seq == Room.objects.get(pk=room.pk).event_seq
    services.member_remove(room_id=room.pk, actor=room.owner, member_id=ana.pk)
    state = selectors.member_sync_state(room_id=room.pk, member_id=ana.pk)
    assert state == expected() and state.removed
    other = services.room_create(owner=room.owner, scenario=room.scenario)
    assert selectors.member_sync_state(room_id=other.pk, member_id=ana.pk) is None
    assert selectors.member_sync_state(room_id=room.pk, member_id=10**9) is None


# --- admitting a socket: the session, the user and the viewer in one database call ------------


@pytest.mark.django_db
def test_admitting_a_member_reads_the_session_and_the_member_in_one_call(drafting):
    """consumers._admit reads the session row, the member (in plain SQL) and counts the socket
    if the member is online already: one statement each."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from debate.consumers import _admit
    from tests.conftest import member_cookie

    ana = drafting.members["Ana"]
    key = member_cookie(ana).removeprefix(f"{settings.SESSION_COOKIE_NAME}=")
    with CaptureQueriesContext(connection) as ctx:
        user, admission, counted = _admit(drafting.room.pk, SessionStore(key))
    assert len(ctx.captured_queries) == 3  # the session, the member, the count if online
    assert not user.is_authenticated and not counted
    assert admission == (ana.pk, ana.position_id, False, False)
    # Online already (another tab): counted by that third statement, without the room's lock.
    Member.objects.filter(pk=ana.pk).update(open_sockets=1, last_seen=timezone.now())
    with CaptureQueriesContext(connection) as ctx:
        assert _admit(drafting.room.pk, SessionStore(key))[2] is True
    assert len(ctx.captured_queries) == 3
    assert Member.objects.get(pk=ana.pk).open_sockets == 2
    # Removed: admitted as removed (the socket is closed with its code), nothing counted.
    Member.objects.filter(pk=ana.pk).update(removed_at=timezone.now())
    removed = (ana.pk, ana.position_id, False, True)
    assert _admit(drafting.room.pk, SessionStore(key))[1:] == (removed, False)
    # Another room's id with the same session: nobody, and nothing counted.
    other = services.room_create(owner=drafting.room.owner, scenario=drafting.room.scenario)
    assert _admit(other.pk, SessionStore(key))[1:] == (None, False)
    # No cookie at all: anonymous, nobody, and nothing read.
    with CaptureQueriesContext(connection) as ctx:
        user, admission, _ = _admit(drafting.room.pk, SessionStore(None))
    assert (user.is_authenticated, admission, len(ctx.captured_queries)) == (False, None, 0)


@socket_test
async def test_a_facilitator_socket_is_admitted_from_the_session_and_refused_once_it_is_stale(
    drafting,
):
    """The user is read from the session as Django's auth reads it for a page: signed in, the
    facilitator's socket is admitted; after their password changed elsewhere (the session's
    hash no longer matches) it is refused like a stranger's, and an unknown session is nobody."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from debate import protocol
    from tests.conftest import a_user_cookie

    owner = await call(get_user_model().objects.get, pk=drafting.room.owner_id)
    cookie = await a_user_cookie(owner)
    signed_in = Socket(drafting.room.pk, cookie)
    assert await signed_in.connect()
    try:
        assert (await signed_in.sync())["me"]["role"] == "facilitator"
    finally:
        await signed_in.close()

    def change_password() -> None:
        owner.set_password("another-Unguessable-99")
        owner.save()

    await call(change_password)
    for stale_cookie in (cookie, f"{settings.SESSION_COOKIE_NAME}=no-such-session"):
        stale = Socket(drafting.room.pk, stale_cookie)
        assert await stale.connect()  # accepted, then told why it is closed
        assert await stale.closed_with() == protocol.CLOSE_NOT_PARTICIPANT


@pytest.mark.django_db
def test_a_sockets_user_is_read_from_the_session_without_writing_it(facilitator, settings):
    """classroom.identity.session_user accepts a session as a page does (current password
    hash, or one made with a fallback secret key while keys rotate) and never writes it: a socket
    cannot set the cookie, so moving the session to a new key (as Django's auth.get_user does for
    a page) would sign the browser out."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from classroom.identity import session_user
    from tests.conftest import user_cookie

    key = user_cookie(facilitator).split("=", 1)[1]
    assert session_user(SessionStore(key)) == facilitator
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-" + "x" * 40, [old_secret]
    assert session_user(SessionStore(key)) == facilitator  # rotating keys: still signed in
    assert Session.objects.filter(session_key=key).exists()  # and the session kept its key
    settings.SECRET_KEY_FALLBACKS = []
    assert isinstance(session_user(SessionStore(key)), AnonymousUser)  # the old key is gone
    assert Session.objects.filter(session_key=key).exists()  # not flushed by a socket
    settings.SECRET_KEY = old_secret
    for broken in ({}, {"_auth_user_id": str(facilitator.pk)}, None):
        store = SessionStore()
        if broken is not None:
            store.update(broken)
        assert isinstance(session_user(store if broken is not None else None), AnonymousUser)


@socket_test
async def test_a_tick_below_a_number_already_sent_is_not_held(drafting, settings):
    """Events of one room can reach a socket out of order (two database threads, or two server
    processes, publish them). A tick that arrives after a later number has gone fills a gap the
    browser is waiting on before it shows what came after: it leaves at once, not after the run's
    600 ms; a tick in order still waits for the ones after it."""
    settings.QUORUM = {**settings.QUORUM, "TICK_RUN_MS": 600}
    async with team_sockets(drafting, "Cy", facilitator=False) as s:
        # 501 first (held as a run), then 500: the run 501 leaves, and 500 right after it.
        await _room_messages(drafting.room.pk, (501, "tick"), (500, "tick"))
        loop = asyncio.get_running_loop()
        began = loop.time()
        frames = [await s["Cy"].recv_frame(), await s["Cy"].recv_frame()]
        assert loop.time() - began < 0.4
        assert frames == [{"type": "tick", "seq": 501}, {"type": "tick", "seq": 500}]
        # An event numbered 503 goes at once; 502, arriving after it, too.
        await _room_messages(drafting.room.pk, (503, "phase.changed"), (502, "tick"))
        began = loop.time()
        frames = [await s["Cy"].recv_frame(), await s["Cy"].recv_frame()]
        assert loop.time() - began < 0.4
        assert [(f["type"], f["seq"]) for f in frames] == [("phase.changed", 503), ("tick", 502)]
        # In order again: 504 waits for a follower, up to the run's 600 ms.
        await _room_messages(drafting.room.pk, (504, "tick"))
        assert await s["Cy"].nothing_more(0.3)
        assert await s["Cy"].recv_frame() == {"type": "tick", "seq": 504}

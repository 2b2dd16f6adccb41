"""debate.events: delivery after commit only, sequence numbers, and audiences (team vs tick)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from debate import events, services
from debate.events import Audience
from debate.models import Draft, Room
from tests.conftest import Socket, a_user_cookie, join
from tests.debate.conftest import (
    API,
    OPEN,
    RESTRICTED,
    advance,
    call,
    complete_recommendation,
    db_state,
    drain_all,
    member_draft,
    team_sockets,
)

socket_test = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


# --- group names and audiences (pure) -------------------------------------------------------


def test_group_names_are_built_in_one_place():
    assert events.group_room(7) == "room.7"
    assert events.group_team(7, 3) == "room.7.team.3"
    assert events.group_team(7, None) == "room.7.team.none"
    assert events.group_facilitators(7) == "room.7.facilitators"
    assert events.groups_for_member(7, 11, 3) == ["room.7", "room.7.team.3", "room.7.member.11"]
    assert events.groups_for_facilitator(7) == ["room.7", "room.7.facilitators"]


def test_room_audience_is_one_send_to_the_room_group():
    room = Room(pk=7)
    event = {"type": "phase.changed", "seq": 4, "phase": "review"}
    assert events._deliveries(room, event, Audience.room(), [1, 2, 3]) == [
        ("room.7", {"type": "room.event", "event": event})
    ]


def test_team_audience_content_to_team_and_facilitators_ticks_to_everyone_else():
    room = Room(pk=7)
    event = {"type": "draft.updated", "seq": 9, "draft": {"text": "secret"}}
    sends = dict(events._deliveries(room, event, Audience.team(2), [1, 2, 3]))
    tick = {"type": "room.event", "event": {"type": "tick", "seq": 9}}
    assert sends == {
        "room.7.team.2": {"type": "room.event", "event": event},
        "room.7.facilitators": {"type": "room.event", "event": event},
        "room.7.team.1": tick,
        "room.7.team.3": tick,
        "room.7.team.none": tick,  # members without a position keep a gap-free sequence too
    }
    assert "room.7" not in sends  # never to the whole room


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_is_refused(room):
    with pytest.raises(RuntimeError):
        events.emit(room, events.PHASE_CHANGED, {"phase": "x"}, audience=Audience.room())
    room.refresh_from_db()
    assert room.seq == 0


@pytest.mark.django_db
def test_a_failing_channel_layer_does_not_undo_the_write(
    drafting, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    class BrokenLayer:
        async def group_send(self, group, message):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(events, "get_channel_layer", lambda: BrokenLayer())
    with (
        caplog.at_level(logging.ERROR, logger="quorum.events"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = member_draft(drafting, "Ana", "Saved even if the doorbell is broken")
    assert len(callbacks) == 1
    assert Draft.objects.get(pk=result.id).version == 1
    assert "broadcast failed" in caplog.text


# --- delivery after commit (real sockets) ---------------------------------------------------


@socket_test
async def test_nothing_is_delivered_when_the_transaction_rolls_back(drafting):
    def write_then_fail():
        with transaction.atomic():
            member_draft(drafting, "Ana", "never committed")
            services.member_move(
                room_id=drafting.room.pk,
                actor=drafting.facilitator,
                member_id=drafting.members["Cy"].pk,
                position_id=drafting.pos(OPEN).pk,
            )
            services.phase_advance(
                room_id=drafting.room.pk, actor=drafting.facilitator, to_phase="review"
            )
            raise Rollback

    async with team_sockets(drafting, "Ana", "Ben", "Cy") as s:
        before = await call(db_state)
        with pytest.raises(Rollback):
            await call(write_then_fail)
        assert await drain_all(*s.values()) == [[], [], [], []]
        assert await call(db_state) == before


@socket_test
def test_each_broadcast_happens_after_its_data_is_visible_to_other_connections(
    drafting, monkeypatch
):
    """At the moment a group message is sent, a *different* database connection already sees the
    committed change (so a client that reacts by resyncing can never read older data)."""
    seen: list[tuple[int, bool, int]] = []
    real_broadcast = events.broadcast

    def committed_seq() -> int:
        try:
            return Room.objects.get(pk=drafting.room.pk).seq
        finally:
            connection.close()

    def spy(sends):
        event = sends[0][1]["event"]
        with ThreadPoolExecutor(1) as pool:  # a new thread: its own connection
            visible = pool.submit(committed_seq).result()
        seen.append((event["seq"], transaction.get_connection().in_atomic_block, visible))
        real_broadcast(sends)

    monkeypatch.setattr(events, "broadcast", spy)
    with transaction.atomic():
        member_draft(drafting, "Ana", "first")
        with transaction.atomic():  # a nested block (savepoint) does not release it either
            member_draft(drafting, "Cy", "second")
        assert seen == []
    assert [(seq, in_block) for seq, in_block, _ in seen] == [
        (seen[0][0], False),
        (seen[0][0] + 1, False),
    ]
    for seq, _in_block, visible in seen:
        assert visible >= seq


# --- sequence numbers -----------------------------------------------------------------------


@socket_test
async def test_every_event_carries_the_next_sequence_number(teams):
    room, fac = teams.room, teams.facilitator
    async with team_sockets(teams, "Ana", "Cy") as s:
        start = (await call(Room.objects.with_seq().get, pk=room.pk)).seq

        def activity():
            join(room, "Eve")  # member.joined (+ Eve is placed: the room has teams)
            services.member_move(
                room_id=room.pk,
                actor=fac,
                member_id=teams.members["Dee"].pk,
                position_id=teams.pos(API).pk,
            )
            advance(room, fac, "drafting")
            member_draft(teams, "Ana", "a1")
            member_draft(teams, "Cy", "c1")
            member_draft(teams, "Dee", "d1", kind="risk")
            advance(room, fac, "review", "recommendation")
            complete_recommendation(room, fac, teams.pos(RESTRICTED))
            advance(room, fac, "closed")

        await call(activity)
        end = (await call(Room.objects.with_seq().get, pk=room.pk)).seq
        assert end - start == 10
        received = await drain_all(*s.values(), expect=10)
    expected = list(range(start + 1, end + 1))
    for messages in received:
        # Everyone sees every sequence number exactly once, in order: content or a tick.
        assert [m["seq"] for m in messages] == expected
    ana, cy, fac_msgs = received
    assert [m["type"] for m in fac_msgs] == [
        "member.joined",
        "member.moved",
        "phase.changed",
        "draft.updated",
        "draft.updated",
        "draft.updated",
        "phase.changed",
        "phase.changed",
        "recommendation.updated",
        "phase.changed",
    ]
    assert [m["type"] for m in ana][3:6] == ["draft.updated", "tick", "tick"]
    assert [m["type"] for m in cy][3:6] == ["tick", "draft.updated", "draft.updated"]


@socket_test
async def test_team_event_reaches_team_and_facilitators_others_get_a_tick(drafting):
    async with team_sockets(drafting, "Ana", "Ben", "Cy", "Dee") as s:
        result = await call(member_draft, drafting, "Ana", "Published weights cannot be recalled")
        ana, ben, cy, dee, fac = await drain_all(*s.values(), expect=1)
    seq = result.seq
    for messages in (ana, ben, fac):
        assert len(messages) == 1
        event = messages[0]
        assert event["type"] == "draft.updated"
        assert event["seq"] == seq
        assert event["draft"]["text"] == "Published weights cannot be recalled"
        assert event["draft"]["id"] == result.id
        assert event["draft"]["position_id"] == drafting.pos(OPEN).pk
        assert event["draft"]["version"] == 1
    for messages in (cy, dee):
        assert messages == [{"type": "tick", "seq": seq}]  # no content, not even the author


@socket_test
async def test_room_events_reach_everyone_with_the_same_content(teams):
    async with team_sockets(teams, "Ana", "Cy") as s:
        await call(advance, teams.room, teams.facilitator, "drafting")
        received = await drain_all(*s.values(), expect=1)
    assert received[0] == received[1] == received[2]
    assert [m["type"] for m in received[0]] == ["phase.changed"]
    assert received[0][0]["phase"] == "drafting"


@socket_test
async def test_events_stay_in_their_room(drafting, scenario):
    # A second room of the same facilitator: its facilitator socket must hear nothing from ours.
    other = await call(services.room_create, owner=drafting.facilitator, scenario=scenario)
    other_sock = Socket(other.pk, await a_user_cookie(drafting.facilitator))
    assert await other_sock.connect()
    await other_sock.sync()
    try:
        async with team_sockets(drafting, "Ana") as s:
            await call(member_draft, drafting, "Ana", "for this room only")
            ana, fac = await drain_all(s["Ana"], s["fac"], expect=1)
            assert [m["type"] for m in ana] == [m["type"] for m in fac] == ["draft.updated"]
        assert await other_sock.drain() == []
    finally:
        await other_sock.close()

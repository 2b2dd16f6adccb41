"""The solo learner on two devices at once, through the real ASGI app: every position's drafts
reach both devices, steps move both, a resend after a reconnect changes nothing, and nobody else
gets in."""

from __future__ import annotations

import pytest

from debate import services
from debate.models import Draft, Recommendation, Room
from tests.conftest import Socket, a_cookie_for
from tests.debate.conftest import a_db_state, call, drain_all, open_sockets

pytestmark = pytest.mark.django_db(transaction=True)


def draft_msg(client_id, text, position_id, base_version=0, kind="argument", slot=1):
    return {
        "type": "draft.save",
        "client_id": client_id,
        "kind": kind,
        "slot": slot,
        "text": text,
        "base_version": base_version,
        "position_id": position_id,
    }


@pytest.fixture
def solo(scenario):
    return services.solo_start(scenario_id=scenario.pk, display_name="Lea")


async def two_devices(solo):
    cookie_a = await a_cookie_for(solo.member)
    cookie_b = await a_cookie_for(solo.member)
    # Both sockets are the same member: each announces presence only on the first connection
    # (the second is already online), so open them one after another and sync.
    a, b = Socket(solo.room.pk, cookie_a), Socket(solo.room.pk, cookie_b)
    assert await a.connect()
    await a.sync()
    assert await b.connect()
    await b.sync()
    await drain_all(a, b)
    return a, b


async def test_drafts_for_every_position_reach_both_devices(solo, scenario):
    positions = await call(lambda: list(scenario.positions.all()))
    a, b = await two_devices(solo)
    try:
        for index, position in enumerate(positions):
            await a.send(draft_msg(f"c-{index}", f"Case {index}", position.pk))
        got_a, got_b = await drain_all(a, b, expect=(2 * len(positions), len(positions)))
        acks = [m for m in got_a if m["type"] == "ack"]
        assert [m["version"] for m in acks] == [1] * len(positions)
        updates = [m for m in got_b if m["type"] == "draft.updated"]
        assert {m["draft"]["position_id"] for m in updates} == {p.pk for p in positions}
        assert [m["type"] for m in got_b] == ["draft.updated"] * len(positions)
        snapshot = await b.sync()
        assert snapshot["room"]["is_solo"] is True
        assert len(snapshot["drafts"]) == len(positions)
    finally:
        await a.close()
        await b.close()


async def test_a_resend_after_reconnecting_is_acknowledged_once(solo, scenario):
    position = await call(lambda: scenario.positions.last())
    cookie = await a_cookie_for(solo.member)
    a = Socket(solo.room.pk, cookie)
    assert await a.connect()
    await a.sync()
    await a.send(draft_msg("kept-1", "Typed before the train's tunnel", position.pk))
    ack = await a.recv_until("ack")
    assert (ack["version"], ack["duplicate"]) == (1, False)
    await a.close()  # the ack was lost on the way: the browser still holds the change
    again = Socket(solo.room.pk, cookie)
    assert await again.connect()
    try:
        await again.sync()
        await again.drain(0.2)
        before = await a_db_state()  # after the reconnection's presence event
        await again.send(draft_msg("kept-1", "Typed before the train's tunnel", position.pk))
        ack = await again.recv_until("ack")
        assert (ack["version"], ack["duplicate"], ack["seq"]) == (1, True, None)
        assert await again.drain(0.2) == []
        assert await a_db_state() == before
        assert await call(lambda: Draft.objects.filter(room=solo.room).count()) == 1
    finally:
        await again.close()


async def test_steps_and_the_recommendation_reach_both_devices(solo, scenario):
    position = await call(lambda: scenario.positions.last())
    a, b = await two_devices(solo)
    try:
        await a.send({"type": "solo.step", "to": "recommendation"})
        got_a, got_b = await drain_all(a, b, expect=1)
        assert [m["phase"] for m in got_a] == ["recommendation"]
        assert [m["phase"] for m in got_b] == ["recommendation"]
        await b.send(
            {
                "type": "recommendation.save",
                "client_id": "rec-1",
                "decision_id": position.pk,
                "rationale": "Staged access first.",
                "revisit_condition": "Leaked copies appear.",
                "base_version": 0,
            }
        )
        got_a, got_b = await drain_all(a, b, expect=(1, 2))
        assert [m["type"] for m in got_a] == ["recommendation.updated"]
        assert sorted(m["type"] for m in got_b) == ["ack", "recommendation.updated"]
        await a.send({"type": "solo.step", "to": "closed"})
        got_a, got_b = await drain_all(a, b, expect=1)
        assert got_a[0]["phase"] == got_b[0]["phase"] == "closed"
        rec = await call(Recommendation.objects.get, room_id=solo.room.pk)
        assert rec.is_complete
    finally:
        await a.close()
        await b.close()


async def test_refused_steps_answer_with_an_error_and_change_nothing(solo, room):
    a, b = await two_devices(solo)
    try:
        before = await a_db_state()
        await a.send({"type": "solo.step", "to": "closed"})
        error = await a.recv_until("error")
        assert error["code"] == "wrong_phase"
        await a.send({"type": "solo.step", "to": 3})
        assert (await a.recv_until("error"))["code"] == "invalid"
        assert await drain_all(b) == [[]]
        assert await a_db_state() == before
    finally:
        await a.close()
        await b.close()


async def test_a_group_member_cannot_take_solo_steps(teams):
    ana = teams.members["Ana"]
    (sock,) = await open_sockets(teams.room.pk, [(await a_cookie_for(ana), ana.pk)])
    try:
        before = await a_db_state()
        await sock.send({"type": "solo.step", "to": "recommendation"})
        assert (await sock.recv_until("error"))["code"] == "not_solo"
        assert await a_db_state() == before
    finally:
        await sock.close()


async def test_another_learner_cannot_open_my_solo_socket(solo, scenario):
    other = await call(services.solo_start, scenario_id=scenario.pk, display_name="Max")
    sock = Socket(solo.room.pk, await a_cookie_for(other.member))
    assert await sock.connect()
    assert await sock.closed_with() == 4401
    stranger = Socket(solo.room.pk, None)
    assert await stranger.connect()
    assert await stranger.closed_with() == 4401
    room = await call(Room.objects.with_seq().get, pk=solo.room.pk)
    assert room.seq == 0

import pytest
from asgiref.sync import sync_to_async

from debate import services
from tests.conftest import a_cookie_for, a_user_cookie, join, sockets

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_teammate_sees_draft_other_team_gets_tick(room, facilitator):
    members = [await sync_to_async(join)(room, n) for n in ("Ana", "Ben", "Cy", "Dee")]
    await sync_to_async(services.phase_advance)(
        room_id=room.pk, actor=facilitator, to_phase="drafting"
    )
    members = [await sync_to_async(lambda m: type(m).objects.get(pk=m.pk))(m) for m in members]
    by_pos = {}
    for m in members:
        by_pos.setdefault(m.position_id, []).append(m)
    team = next(ms for ms in by_pos.values() if len(ms) == 2)
    other = next(m for m in members if m.position_id != team[0].position_id)
    specs = [(room.pk, await a_cookie_for(m)) for m in (team[0], team[1], other)]
    specs.append((room.pk, await a_user_cookie(facilitator)))
    async with sockets(*specs) as (author, mate, stranger, fac):
        await author.send(
            {
                "type": "draft.save",
                "client_id": "c1",
                "kind": "argument",
                "slot": 1,
                "text": "Weights cannot be recalled",
                "base_version": 0,
            }
        )
        ack = await author.recv_until("ack")
        assert ack["version"] == 1
        ev = await mate.recv_until("draft.updated")
        assert ev["draft"]["text"] == "Weights cannot be recalled"
        ev = await fac.recv_until("draft.updated")
        tick = await stranger.recv()
        assert tick == {"type": "tick", "seq": ev["seq"]}
        assert await stranger.drain() == []

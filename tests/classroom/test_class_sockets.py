"""The room socket of a class's room: the class's facilitators get in, other facilitators do not;
a student recognised in the room is an ordinary member of it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from classroom import services
from debate import protocol
from debate import services as debate_services
from tests.conftest import Socket, a_cookie_for, a_user_cookie, sockets

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(scenario, facilitator, other_facilitator):
    klass = services.classgroup_create(owner=facilitator, name="Ethics")
    room = debate_services.room_create(owner=facilitator, scenario=scenario, classgroup=klass)
    ana = services.student_join(code=klass.code, display_name="Ana").student
    member = debate_services.member_join(code=room.code, display_name="", student=ana)
    return klass, room, member


async def test_other_facilitator_is_refused(setup, other_facilitator):
    _klass, room, _member = setup
    sock = Socket(room.pk, await a_user_cookie(other_facilitator))
    await sock.connect()
    assert await sock.closed_with() == protocol.CLOSE_NOT_PARTICIPANT
    await sock.close()


async def test_class_coowner_gets_the_facilitator_view(setup, facilitator, other_facilitator):
    klass, room, member = setup
    await sync_to_async(services.classgroup_coowner_add)(
        classgroup_id=klass.pk, actor=facilitator, username=other_facilitator.username
    )
    coowner = await a_user_cookie(other_facilitator)
    student = await a_cookie_for(member)
    async with sockets((room.pk, coowner), (room.pk, student)) as (fac, ana):
        snapshot = await fac.sync()
        assert snapshot["me"]["role"] == "facilitator"
        await fac.send({"type": "room.announce", "text": "Welcome back, class"})
        seen = await ana.recv_until("room.settings")
        assert "Welcome back, class" in str(seen)
        mine = await ana.sync()
        assert mine["me"]["role"] == "member" and mine["me"]["display_name"] == "Ana"

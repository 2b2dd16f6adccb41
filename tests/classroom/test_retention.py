"""Auto-archiving: the service, the setting, the management command, and the event sockets see."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from debate import services
from debate.errors import Invalid
from debate.models import Draft, Member, Room
from tests.conftest import a_cookie_for, sockets

pytestmark = pytest.mark.django_db


def age(room: Room, days: int) -> None:
    Room.objects.filter(pk=room.pk).update(created_at=timezone.now() - timedelta(days=days))


def test_stale_rooms_are_closed_and_archived(scenario, facilitator):
    old = services.room_create(owner=facilitator, scenario=scenario, title="Old")
    busy = services.room_create(owner=facilitator, scenario=scenario, title="Old but busy")
    fresh = services.room_create(owner=facilitator, scenario=scenario, title="Fresh")
    age(old, 40)
    age(busy, 40)
    member = Member.objects.create(room=busy, display_name="Ana")
    Draft.objects.create(
        room=busy,
        position=scenario.positions.first(),
        author=member,
        kind="argument",
        slot=1,
        text="recent work",
    )
    archived = services.rooms_archive_stale(days=30)
    assert archived == [old.pk]
    old.refresh_from_db()
    assert old.phase == "closed" and old.archived_at and old.closed_at
    for room in (busy, fresh):
        room.refresh_from_db()
        assert room.archived_at is None and room.phase == "lobby"
    assert services.rooms_archive_stale(days=30) == []  # twice: nothing more to do


def test_closed_rooms_are_archived_after_the_delay(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario)
    closed_at = timezone.now() - timedelta(days=5)
    Room.objects.filter(pk=room.pk).update(
        phase="closed", closed_at=closed_at, created_at=timezone.now() - timedelta(days=50)
    )
    assert services.rooms_archive_stale(days=30) == []  # closed recently
    assert services.rooms_archive_stale(days=3) == [room.pk]
    room.refresh_from_db()
    assert room.closed_at == closed_at  # kept


def test_setting_and_zero_turns_it_off(scenario, facilitator, settings):
    room = services.room_create(owner=facilitator, scenario=scenario)
    age(room, 400)
    settings.QUORUM = {**settings.QUORUM, "ARCHIVE_AFTER_DAYS": 0}
    assert services.rooms_archive_stale() == []
    settings.QUORUM = {**settings.QUORUM, "ARCHIVE_AFTER_DAYS": 365}
    assert services.rooms_archive_stale() == [room.pk]


@pytest.mark.parametrize("days", [-1, "3", 2.5, True])
def test_bad_days_refused(scenario, facilitator, days):
    room = services.room_create(owner=facilitator, scenario=scenario)
    age(room, 400)
    with pytest.raises(Invalid):
        services.rooms_archive_stale(days=days)
    room.refresh_from_db()
    assert room.archived_at is None


def test_management_command(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario)
    age(room, 10)
    out = StringIO()
    call_command("archive_rooms", "--days", "7", stdout=out)
    assert "archived 1 room(s)" in out.getvalue()
    assert Room.objects.get(pk=room.pk).archived_at is not None
    with pytest.raises(CommandError):
        call_command("archive_rooms", "--days", "-2", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
async def test_connected_members_see_the_room_close(scenario, facilitator):
    from asgiref.sync import sync_to_async

    room = await sync_to_async(services.room_create)(owner=facilitator, scenario=scenario)
    member = await sync_to_async(services.member_join)(code=room.code, display_name="Ana")
    await sync_to_async(age)(room, 10)
    cookie = await a_cookie_for(member)
    async with sockets((room.pk, cookie)) as (sock,):
        assert await sync_to_async(services.rooms_archive_stale)(days=7) == [room.pk]
        event = await sock.recv_until("phase.changed")
        assert event["phase"] == "closed"
        assert isinstance(event["seq"], int)

"""Solo pages: starting from the home page without an account, the PIN shown once, the resume
link and the code + PIN form (right, wrong, throttled), other learners kept out, the record."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from classroom.identity import SESSION_KEY
from debate import services, views
from debate.models import Draft, Phase, Room
from tests.debate.test_views import room_config

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def start(client: Client, scenario, name="Lea"):
    response = client.post(
        reverse("debate:solo_start"), {"solo-scenario": scenario.pk, "solo-display_name": name}
    )
    assert response.status_code == 302
    room = Room.objects.filter(is_solo=True).order_by("-pk").first()
    assert response["Location"] == reverse("debate:room", args=[room.pk])
    return room


def pin_and_link(html: str) -> tuple[str | None, str | None]:
    pin = re.search(r'id="solo-pin">(\d{6})<', html)
    link = re.search(r'id="solo-link" readonly value="([^"]+)"', html)
    return (pin.group(1) if pin else None, link.group(1) if link else None)


def test_home_offers_solo_practice_with_every_builtin_scenario(client, scenario):
    positions = [{"key": "a", "name": "A", "short_name": "A", "summary": "s"}]
    base = {"question": "?", "briefing": "b", "positions": positions}
    services.scenario_install(
        data={**base, "slug": "second", "title": "A second scenario"}, builtin=True
    )
    # A facilitator's own scenario is private to them: never offered to a learner alone.
    services.scenario_install(data={**base, "slug": "private", "title": "Somebody's own"})
    html = client.get(reverse("debate:home")).content.decode()
    assert 'action="/solo/start/"' in html
    assert "Model release committee" in html and "A second scenario" in html
    assert "Somebody&#x27;s own" not in html and "Somebody's own" not in html


def test_start_shows_the_pin_once_and_the_link_on_this_device(client, scenario):
    room = start(client, scenario)
    assert room.owner_id is None and room.phase == Phase.DRAFTING
    assert client.session[SESSION_KEY] == {str(room.pk): room.members.get().pk}
    page = client.get(reverse("debate:room", args=[room.pk]))
    html = page.content.decode()
    pin, link = pin_and_link(html)
    assert pin and link and room.code in html
    assert room_config(page)["solo"] is True
    # Shown once: the next visit has the link but no PIN.
    pin_again, link_again = pin_and_link(
        client.get(reverse("debate:room", args=[room.pk])).content.decode()
    )
    assert pin_again is None and link_again == link
    assert pin not in room.solo_pin_hash


def test_start_refuses_a_missing_scenario_and_creates_nothing(client, scenario):
    response = client.post(reverse("debate:solo_start"), {"solo-scenario": 999999})
    assert response.status_code == 302 and response["Location"] == reverse("debate:home")
    assert not Room.objects.filter(is_solo=True).exists()
    assert client.get(reverse("debate:solo_start")).status_code == 405


def test_the_link_brings_the_learner_back_on_another_device(client, scenario):
    room = start(client, scenario)
    _pin, link = pin_and_link(client.get(reverse("debate:room", args=[room.pk])).content.decode())
    other_device = Client()
    response = other_device.get(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:room", args=[room.pk])
    page = other_device.get(reverse("debate:room", args=[room.pk]))
    assert page.status_code == 200
    assert room_config(page)["memberId"] == room.members.get().pk
    # The second device may show the link too, never the PIN.
    pin, link_b = pin_and_link(page.content.decode())
    assert pin is None and link_b == link


def test_a_wrong_link_is_not_found(client, scenario):
    start(client, scenario)
    assert Client().get("/solo/resume/" + "A" * 32 + "/").status_code == 404


def test_another_learner_cannot_open_my_room(client, scenario):
    mine = start(client, scenario)
    other = Client()
    theirs = start(other, scenario, name="Max")
    assert mine.pk != theirs.pk
    response = other.get(reverse("debate:room", args=[mine.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("debate:solo_resume")
    assert other.get(reverse("debate:room_export_md", args=[mine.pk])).status_code == 404
    # Nor join it by its code.
    response = other.post(reverse("debate:join"), {"code": mine.code, "display_name": "Max"})
    assert response.status_code == 400
    assert mine.members.count() == 1


def test_the_pin_form_right_and_wrong(client, scenario):
    started = services.solo_start(scenario_id=scenario.pk, display_name="Lea")
    device = Client()
    assert device.get(reverse("debate:solo_resume")).status_code == 200
    wrong = f"{(int(started.pin) + 1) % 10**6:06d}"
    response = device.post(reverse("debate:solo_resume"), {"code": started.room.code, "pin": wrong})
    assert response.status_code == 403
    assert SESSION_KEY not in device.session
    response = device.post(
        reverse("debate:solo_resume"), {"code": started.room.code, "pin": started.pin}
    )
    assert response.status_code == 302
    assert device.session[SESSION_KEY] == {str(started.room.pk): started.member.pk}
    assert device.get(reverse("debate:room", args=[started.room.pk])).status_code == 200
    assert device.post(reverse("debate:solo_resume"), {"code": ""}).status_code == 400


def test_the_pin_form_is_throttled_per_room(client, scenario):
    started = services.solo_start(scenario_id=scenario.pk)
    wrong = f"{(int(started.pin) + 1) % 10**6:06d}"
    device = Client()
    for _ in range(services.SOLO_PIN_MAX_FAILURES):
        device.post(reverse("debate:solo_resume"), {"code": started.room.code, "pin": wrong})
    response = device.post(
        reverse("debate:solo_resume"), {"code": started.room.code, "pin": started.pin}
    )
    assert response.status_code == 429
    assert "locked" in response.content.decode()
    assert SESSION_KEY not in device.session


def test_the_pin_form_is_throttled_per_address_across_rooms(client, scenario, monkeypatch):
    monkeypatch.setattr(views, "SOLO_PIN_IP_LIMIT", 3)
    rooms = [services.solo_start(scenario_id=scenario.pk) for _ in range(4)]
    device = Client()
    for started in rooms[:3]:
        wrong = f"{(int(started.pin) + 1) % 10**6:06d}"
        response = device.post(
            reverse("debate:solo_resume"), {"code": started.room.code, "pin": wrong}
        )
        assert response.status_code == 403
    last = rooms[3]
    response = device.post(reverse("debate:solo_resume"), {"code": last.room.code, "pin": last.pin})
    assert response.status_code == 429
    assert SESSION_KEY not in device.session
    # Another address is not affected.
    other = Client(REMOTE_ADDR="10.0.0.9")
    response = other.post(reverse("debate:solo_resume"), {"code": last.room.code, "pin": last.pin})
    assert response.status_code == 302


def test_the_learner_downloads_the_same_record_at_any_step(client, scenario):
    room = start(client, scenario)
    member = room.members.get()
    for position in scenario.positions.all():
        services.draft_save(
            room_id=room.pk,
            actor=AnonymousUser(),
            member_id=member.pk,
            client_id=f"c-{position.pk}",
            text=f"Argument for {position.short_name}",
            base_version=0,
            kind="argument",
            slot=1,
            position_id=position.pk,
        )
    response = client.get(reverse("debate:room_export_md", args=[room.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    for position in scenario.positions.all():
        assert f"## {position.name}" in body
        assert f"Argument for {position.short_name}" in body
    assert body.count("— Lea") == Draft.objects.filter(room=room).count()

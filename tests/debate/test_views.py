"""Pages of the debate app: dashboard, room creation, joining, room and projector pages, the
Markdown record, and the health check."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from classroom.identity import SESSION_KEY
from debate import services, views
from debate.models import Member, Phase, Room
from tests.conftest import join
from tests.debate.conftest import OPEN, advance, build_teams

pytestmark = pytest.mark.django_db


@pytest.fixture
def fac_client(facilitator) -> Client:
    client = Client()
    client.force_login(facilitator)
    return client


def join_post(client: Client, code: str, name: str):
    return client.post(reverse("debate:join"), {"code": code, "display_name": name})


def room_config(response) -> dict:
    match = re.search(
        r'<script id="room-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the page carries its socket configuration"
    return json.loads(match.group(1))


# --- dashboard and room creation ------------------------------------------------------------


def test_home_for_visitors_offers_the_join_form(client):
    response = client.get(reverse("debate:home"))
    assert response.status_code == 200
    assert b'name="code"' in response.content
    assert b'name="display_name"' in response.content


def test_dashboard_lists_own_rooms_only(fac_client, scenario, facilitator, other_facilitator):
    mine = services.room_create(owner=facilitator, scenario=scenario, title="Period 3 mine")
    closed = services.room_create(owner=facilitator, scenario=scenario, title="Period 1 done")
    Room.objects.filter(pk=closed.pk).update(phase=Phase.CLOSED)
    theirs = services.room_create(owner=other_facilitator, scenario=scenario, title="Okafor 7B")
    response = fac_client.get(reverse("debate:home"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Period 3 mine" in page
    assert mine.code in page
    assert "Period 1 done" in page
    assert "Okafor 7B" not in page
    assert theirs.code not in page
    assert reverse("debate:room", args=[theirs.pk]) not in page
    assert {r.pk for r in response.context["rooms"]} == {mine.pk, closed.pk}


def test_room_create(fac_client, facilitator, scenario):
    response = fac_client.post(
        reverse("debate:room_create"), {"scenario": scenario.pk, "title": "Period 4"}
    )
    room = Room.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:room_present", args=[room.pk])
    assert (room.owner, room.title, room.scenario, room.phase) == (
        facilitator,
        "Period 4",
        scenario,
        Phase.LOBBY,
    )


def test_room_create_refusals(client, fac_client, scenario):
    # Not signed in: to the sign-in page, nothing created.
    response = client.post(reverse("debate:room_create"), {"scenario": scenario.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    # A GET never creates anything.
    assert fac_client.get(reverse("debate:room_create")).status_code == 405
    # An unknown scenario: back to the dashboard with a message.
    response = fac_client.post(reverse("debate:room_create"), {"scenario": 999}, follow=True)
    assert "Please choose a scenario." in response.content.decode()
    assert not Room.objects.exists()


# --- joining --------------------------------------------------------------------------------


def test_join_flow_remembers_the_member(client, room):
    assert client.get(reverse("debate:join_code", args=[room.code.lower()])).status_code == 200
    response = join_post(client, room.code.lower(), "Ana")
    member = Member.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:room", args=[room.pk])
    assert client.session[SESSION_KEY] == {str(room.pk): member.pk}

    first = client.get(reverse("debate:room", args=[room.pk]))
    second = client.get(reverse("debate:room", args=[room.pk]))
    assert first.status_code == second.status_code == 200
    assert first.context["viewer"].member == second.context["viewer"].member == member
    config = room_config(second)
    assert (config["role"], config["memberId"], config["userId"]) == ("member", member.pk, None)
    assert config["socketPath"] == f"/ws/rooms/{room.pk}/"
    assert Member.objects.count() == 1


def test_join_prefills_the_code_from_the_link(client, room):
    response = client.get(reverse("debate:join_code", args=[room.code.lower()]))
    assert response.context["form"].initial["code"] == room.code


def test_one_browser_can_be_a_member_of_two_rooms(client, room, scenario, facilitator):
    other = services.room_create(owner=facilitator, scenario=scenario)
    join_post(client, room.code, "Ana")
    join_post(client, other.code, "Ana")
    members = dict(Member.objects.values_list("room_id", "pk"))
    assert client.session[SESSION_KEY] == {str(k): v for k, v in members.items()}
    for room_id, member_id in members.items():
        response = client.get(reverse("debate:room", args=[room_id]))
        assert response.context["viewer"].member.pk == member_id


def test_join_with_a_taken_name_says_so(client, room):
    join(room, "Ana")
    response = join_post(client, room.code, "ana")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Someone in this room is already called “ana”. Please choose another name." in page
    assert response.context["form"].errors["display_name"]
    assert Member.objects.count() == 1
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize(
    ("code", "name", "field", "text"),
    [
        ("ZZZZ00", "Ana", "code", "No open room has the code ZZZZ00"),
        (None, "", "display_name", "This field is required."),
        (None, "x" * 41, "display_name", "at most 40 characters"),
    ],
)
def test_join_refusals(client, room, code, name, field, text):
    response = join_post(client, code or room.code, name)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert text in response.content.decode()
    assert not Member.objects.exists()


def test_join_a_closed_room(client, room):
    Room.objects.filter(pk=room.pk).update(phase=Phase.CLOSED)
    response = join_post(client, room.code, "Ana")
    assert response.status_code == 400
    assert "No open room has the code" in response.content.decode()
    assert not Member.objects.exists()


# --- room page ------------------------------------------------------------------------------


def test_room_page_for_a_stranger_redirects_to_join(client, room):
    response = client.get(reverse("debate:room", args=[room.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:join")


def test_room_page_for_another_facilitator_redirects_to_join(client, room, other_facilitator):
    client.force_login(other_facilitator)
    response = client.get(reverse("debate:room", args=[room.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:join")


def test_room_page_of_a_closed_room_or_no_room_is_404_for_strangers(client, room):
    Room.objects.filter(pk=room.pk).update(phase=Phase.CLOSED)
    assert client.get(reverse("debate:room", args=[room.pk])).status_code == 404
    assert client.get(reverse("debate:room", args=[room.pk + 99])).status_code == 404


def test_room_page_for_the_facilitator(fac_client, room, facilitator):
    response = fac_client.get(reverse("debate:room", args=[room.pk]))
    assert response.status_code == 200
    config = room_config(response)
    assert (config["role"], config["memberId"], config["userId"]) == (
        "facilitator",
        None,
        facilitator.pk,
    )
    assert room.code in response.content.decode()


def test_pages_escape_a_hostile_room_title(fac_client, client, room):
    hostile = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'
    Room.objects.filter(pk=room.pk).update(title=hostile)
    join_post(client, room.code, "<b>Ana</b>")
    pages = [
        fac_client.get(reverse("debate:home")),
        fac_client.get(reverse("debate:room", args=[room.pk])),
        fac_client.get(reverse("debate:room_present", args=[room.pk])),
        client.get(reverse("debate:room", args=[room.pk])),
    ]
    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        assert "<script>alert(1)" not in page
        assert "<img src=x" not in page
        assert "<b>Ana</b>" not in page
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page


# --- projector page -------------------------------------------------------------------------


def test_present_page_shows_code_and_inline_svg_qr(fac_client, room):
    response = fac_client.get(reverse("debate:room_present", args=[room.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert room.code in page
    qr = re.search(r'<div class="qr"[^>]*>\s*(<svg.*?</svg>)', page, re.S)
    assert qr, "an inline SVG QR code"
    assert "<path" in qr.group(1)
    join_url = f"http://testserver{reverse('debate:join_code', args=[room.code])}"
    assert join_url in page
    assert response.context["join_url"] == join_url


def test_present_page_is_for_facilitators_only(client, room, other_facilitator):
    ana = join(room, "Ana")
    url = reverse("debate:room_present", args=[room.pk])
    # A member (session, no account) is sent to sign in.
    session = client.session
    session[SESSION_KEY] = {str(room.pk): ana.pk}
    session.save()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    # Another facilitator gets nothing.
    client.force_login(other_facilitator)
    assert client.get(url).status_code == 404


# --- Markdown record ------------------------------------------------------------------------

PAYLOADS = [
    "[x](javascript:alert(1))",
    "<script>alert(1)</script>",
    "# heading",
    "![tracker](http://evil.example/p.png)",
    "<img src=x onerror=alert(1)>",
    "- not a list",
    "1. not a list",
    "**not bold** _not em_ `not code`",
    "| not | a table |",
    # A lone carriage return is a line ending in Markdown (CommonMark), as in Python's splitlines.
    "carriage\r- not a list\r2) not a list\r===",
]


@pytest.fixture
def hostile_room(room, facilitator):
    """A closed room whose members typed Markdown and HTML into every field they own."""
    Room.objects.filter(pk=room.pk).update(title="# Period <b>3</b> [x](javascript:alert(1))")
    room.refresh_from_db()
    teams = build_teams(room, facilitator)
    evil = join(room, "<script>alert(1)</script>")
    advance(room, facilitator, "drafting")
    evil.refresh_from_db()
    for i, text in enumerate(["\n".join(PAYLOADS), "# heading", "<script>x</script>"], start=1):
        services.draft_save(
            room_id=room.pk,
            actor=AnonymousUser(),
            member_id=evil.pk,
            client_id=f"e{i}",
            text=text,
            base_version=0,
            kind="argument",
            slot=i,
        )
    services.draft_save(
        room_id=room.pk,
        actor=AnonymousUser(),
        member_id=teams.members["Ana"].pk,
        client_id="a",
        text="[x](javascript:alert(1))",
        base_version=0,
        kind="risk",
        slot=1,
    )
    advance(room, facilitator, "review", "recommendation")
    services.recommendation_save(
        room_id=room.pk,
        actor=facilitator,
        client_id="hostile",
        decision_id=teams.pos(OPEN).pk,
        rationale="\n".join(PAYLOADS),
        revisit_condition="# heading\n<script>",
        base_version=0,
    )
    return teams


def test_markdown_export_for_the_facilitator_at_any_time(fac_client, room):
    join(room, "Ana")
    response = fac_client.get(reverse("debate:room_export_md", args=[room.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="quorum-{room.code.lower()}-record.md"'
    )
    body = response.content.decode()
    assert body.startswith("# Period 3\n")
    assert "Full open-weight release" in body
    assert "Ana" in body


def test_markdown_export_for_members_only_once_closed(client, hostile_room):
    room = hostile_room.room
    url = reverse("debate:room_export_md", args=[room.pk])
    stranger = Client()
    assert stranger.get(url).status_code == 404
    join_session = client.session
    join_session[SESSION_KEY] = {str(room.pk): hostile_room.members["Cy"].pk}
    join_session.save()
    assert client.get(url).status_code == 404  # recommendation phase: not yet
    advance(room, hostile_room.facilitator, "closed")
    response = client.get(url)
    assert response.status_code == 200
    assert "Full open-weight release" in response.content.decode()
    assert stranger.get(url).status_code == 404


def test_markdown_export_escapes_user_text(fac_client, hostile_room):
    response = fac_client.get(reverse("debate:room_export_md", args=[hostile_room.room.pk]))
    body = response.content.decode()
    # Nothing the users typed survives as live Markdown or HTML...
    assert "[x](" not in body
    assert "![tracker](" not in body
    assert not re.search(r"(?<!\\)[<\[]", body), "every < and [ is escaped"
    assert "**not bold**" not in body
    assert "`not code`" not in body
    for line in body.splitlines():
        stripped = line.strip()
        assert not stripped.startswith("# heading"), line
        assert not stripped.startswith("- not a list"), line
        assert not stripped.startswith("1. not a list"), line
        assert not stripped.startswith("2) not a list"), line
        assert not stripped.startswith("| not"), line
        assert not stripped.startswith("==="), line  # would turn the line above into a heading
    # ...and it is all still there, escaped, for a reader.
    assert "\\[x\\](javascript:alert(1))" in body
    assert "\\<script\\>alert(1)\\</script\\>" in body
    assert "\\# heading" in body
    assert "1\\. not a list" in body  # escaped so that no stray backslash is printed
    assert "\\1" not in body
    assert "\\# Period \\<b\\>3\\</b\\>" in body
    assert body.count("\\<script\\>alert(1)\\</script\\>") >= 3  # name (twice) and draft
    # The document's own structure is intact.
    headings = [line for line in body.splitlines() if line.startswith("#")]
    assert headings[0].startswith("# \\# Period")
    assert "## Committee recommendation" in headings


# --- health ---------------------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "channel_layer": "ok"},
    }


def test_healthz_names_what_failed(client, monkeypatch):
    monkeypatch.setattr(views, "get_channel_layer", lambda: None)
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "unavailable"
    assert data["failed"] == ["channel_layer"]
    assert data["checks"]["database"] == "ok"

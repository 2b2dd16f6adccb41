"""The authorisation matrix: every page, download and socket message type x every role, allowed or
refused as the tables below say, and nothing changed on refusal.

Adding a page or a message type means adding one row here: `test_every_url_is_in_the_table` and
`test_every_message_type_is_in_the_table` fail until it is.

Roles (tests/security/conftest.py): anonymous, a member of another room, a member, a muted member,
a removed member, the facilitator of another room, the room's facilitator, a co-facilitator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from debate import protocol
from debate.models import Draft, Phase
from tests.conftest import Socket
from tests.security.conftest import ROLES, World, full_state, state_diff, world_with_drafts

pytestmark = pytest.mark.django_db(transaction=True)

# ---- pages and downloads ---------------------------------------------------------------------
#
# Outcomes: a status code, or "302>name" for a redirect to that page.
# Columns:   anonymous    other_member  member  muted   removed other_fac   facilitator cofac


@dataclass(frozen=True)
class Page:
    method: str
    url: Callable[[World], str]
    phase: str
    outcomes: tuple[str, ...]
    data: Callable[[World], dict[str, Any]] | None = None
    writes_when_allowed: bool = False  # an allowed request creates something

    def expected(self, role: str) -> str:
        return self.outcomes[ROLES.index(role)]


def _room_url(name: str) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.room.pk])


LOBBY, CLOSED = Phase.LOBBY.value, Phase.CLOSED.value
LOGIN, JOIN, HOME = "302>login", "302>debate:join", "302>debate:home"
ANYONE = ("200",) * 8
SIGNED_OUT_ONLY = ("200", "200", "200", "200", "200", HOME, HOME, HOME)

PAGES: dict[str, Page] = {
    "healthz": Page("GET", lambda w: reverse("healthz"), LOBBY, ANYONE),
    "signup": Page("GET", lambda w: reverse("signup"), LOBBY, SIGNED_OUT_ONLY),
    "login": Page("GET", lambda w: reverse("login"), LOBBY, SIGNED_OUT_ONLY),
    "logout": Page("POST", lambda w: reverse("logout"), LOBBY, (HOME,) * 8),
    # Django's admin: only staff accounts, and nobody in the matrix is staff.
    "admin:*": Page("GET", lambda w: reverse("admin:index"), LOBBY, ("302>admin:login",) * 8),
    "debate:home": Page("GET", lambda w: reverse("debate:home"), LOBBY, ANYONE),
    "debate:join": Page("GET", lambda w: reverse("debate:join"), LOBBY, ANYONE),
    "debate:join_code": Page(
        "GET", lambda w: reverse("debate:join_code", args=[w.room.code]), LOBBY, ANYONE
    ),
    "debate:room_create": Page(
        "POST",
        lambda w: reverse("debate:room_create"),
        LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "302>debate:room_present", "302>debate:room_present",
         "302>debate:room_present"),
        data=lambda w: {"scenario": w.room.scenario_id, "title": "Another room",
                        "assignment_method": "balanced"},
        writes_when_allowed=True,
    ),
    "debate:room": Page(
        "GET", _room_url("debate:room"), LOBBY,
        (JOIN, JOIN, "200", "200", "403", JOIN, "200", "200"),
    ),
    "debate:room@closed": Page(
        "GET", _room_url("debate:room"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
    "debate:room_present": Page(
        "GET", _room_url("debate:room_present"), LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "200"),
    ),
    "debate:room_export_md": Page(
        "GET", _room_url("debate:room_export_md"), LOBBY,
        ("404", "404", "404", "404", "403", "404", "200", "200"),
    ),
    "debate:room_export_md@closed": Page(
        "GET", _room_url("debate:room_export_md"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
}  # fmt: skip


def _url_names(patterns, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                names.add("admin:*")
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.add(f"{namespace}{pattern.name}" if pattern.name else f"<unnamed {pattern}>")
    return names


def test_every_url_is_in_the_table():
    listed = {name.split("@")[0] for name in PAGES}
    missing = _url_names(get_resolver().url_patterns) - listed
    assert not missing, f"add these URL patterns to PAGES in {__file__}: {sorted(missing)}"


def _outcome(response) -> str:
    if response.status_code in (301, 302):
        location = response["Location"].split("?")[0]
        for name in ("login", "debate:join", "debate:home", "admin:login"):
            if location == reverse(name):
                return f"302>{name}"
        if location.endswith("/present/"):
            return "302>debate:room_present"
        return f"302>{location}"
    return str(response.status_code)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(PAGES))
def test_page(name, role, scenario):
    page = PAGES[name]
    world = world_with_drafts(scenario, page.phase)
    client = world.client(role)
    before = full_state()
    if page.method == "GET":
        response = client.get(page.url(world))
    else:
        response = client.post(page.url(world), page.data(world) if page.data else {})
    assert _outcome(response) == page.expected(role), (name, role, response.status_code)
    after = full_state()
    allowed = page.expected(role) in ("200", "302>debate:room_present")
    if allowed and page.writes_when_allowed:
        assert after != before, f"{name} as {role} was allowed but changed nothing"
    else:
        assert after == before, state_diff(before, after)
    if response.status_code in (403, 404):
        # Refusal pages never show another room's data or a stack trace.
        body = response.content.decode()
        assert "Traceback" not in body
        assert "Hospitals could run it offline" not in body


# ---- the socket ------------------------------------------------------------------------------
#
# Outcomes: "ok" (answered without an error), an error code from {"type": "error"}, or a close
# code ("close:4401") for a role that is refused when it connects.

C401, C403 = "close:4401", "close:4403"


@dataclass(frozen=True)
class Message:
    phase: str
    build: Callable[[World], dict[str, Any]]
    outcomes: tuple[str, ...]
    writes: bool  # an allowed message changes the database
    assignment: str = "balanced"

    def expected(self, role: str) -> str:
        return self.outcomes[ROLES.index(role)]


def _ana_draft(w: World) -> Draft:
    return Draft.objects.get(room=w.room, author=w.members["member"])


def _target(w: World) -> int:
    return w.members["target"].pk


DRAFTING, REVIEW, RECOMMENDATION = (
    Phase.DRAFTING.value,
    Phase.REVIEW.value,
    Phase.RECOMMENDATION.value,
)
F, M = "forbidden", "muted"
READ_ONLY = (C401, C401, "ok", "ok", C403, C401, "ok", "ok")
FACILITATORS_ONLY = (C401, C401, F, F, C403, C401, "ok", "ok")

#          anonymous other_member member muted removed other_fac facilitator cofac
SOCKET: dict[str, Message] = {
    "ping": Message(LOBBY, lambda w: {"type": "ping"}, READ_ONLY, writes=False),
    "sync": Message(LOBBY, lambda w: {"type": "sync"}, READ_ONLY, writes=False),
    "typing": Message(DRAFTING, lambda w: {"type": "typing"}, READ_ONLY, writes=False),
    "timer.expired": Message(
        DRAFTING, lambda w: {"type": "timer.expired", "phase": "drafting"}, READ_ONLY,
        writes=False,
    ),
    "draft.save": Message(
        DRAFTING,
        lambda w: {
            "type": "draft.save", "client_id": "matrix-1", "text": "A second argument.",
            # A member writes their own new slot; a facilitator edits the member's draft by id.
            # (test_socket_message sets base_version 1 for facilitators: the draft's version.)
            "kind": "argument", "slot": 2, "base_version": 0, "draft_id": _ana_draft(w).pk,
        },
        (C401, C401, "ok", M, C403, C401, "ok", "ok"),
        writes=True,
    ),
    "position.choose": Message(
        LOBBY,
        lambda w: {"type": "position.choose", "position_id": w.positions["api-only"].pk},
        (C401, C401, "ok", M, C403, C401, F, F),
        writes=True,
        assignment="choice",
    ),
    "phase.advance": Message(
        LOBBY, lambda w: {"type": "phase.advance", "to": "drafting"}, FACILITATORS_ONLY,
        writes=True,
    ),
    "positions.assign": Message(
        LOBBY, lambda w: {"type": "positions.assign"}, FACILITATORS_ONLY, writes=False,
    ),
    "member.move": Message(
        LOBBY,
        lambda w: {"type": "member.move", "member_id": _target(w),
                   "position_id": w.positions["open-weights"].pk},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.mute": Message(
        LOBBY, lambda w: {"type": "member.mute", "member_id": _target(w), "muted": True},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.remove": Message(
        LOBBY, lambda w: {"type": "member.remove", "member_id": _target(w)},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.readmit": Message(
        LOBBY, lambda w: {"type": "member.readmit", "member_id": w.members["removed"].pk},
        FACILITATORS_ONLY, writes=True,
    ),
    "draft.moderate": Message(
        DRAFTING, lambda w: {"type": "draft.moderate", "draft_id": _ana_draft(w).pk,
                             "hidden": True},
        FACILITATORS_ONLY, writes=True,
    ),
    "draft.feedback": Message(
        DRAFTING, lambda w: {"type": "draft.feedback", "draft_id": _ana_draft(w).pk,
                             "text": "Name a source."},
        FACILITATORS_ONLY, writes=True,
    ),
    "room.lock": Message(
        DRAFTING, lambda w: {"type": "room.lock", "locked": True}, FACILITATORS_ONLY, writes=True,
    ),
    "room.announce": Message(
        LOBBY, lambda w: {"type": "room.announce", "text": "Two minutes left."},
        FACILITATORS_ONLY, writes=True,
    ),
    "room.configure": Message(
        LOBBY, lambda w: {"type": "room.configure", "assignment_method": "random"},
        FACILITATORS_ONLY, writes=True,
    ),
    "timer.control": Message(
        DRAFTING, lambda w: {"type": "timer.control", "action": "start", "seconds": 60},
        FACILITATORS_ONLY, writes=True,
    ),
    "round.switch": Message(
        REVIEW, lambda w: {"type": "round.switch"}, FACILITATORS_ONLY, writes=True,
    ),
    "facilitator.add": Message(
        LOBBY, lambda w: {"type": "facilitator.add", "username": "otherfac"},
        FACILITATORS_ONLY, writes=True,
    ),
    "recommendation.save": Message(
        RECOMMENDATION,
        lambda w: {"type": "recommendation.save", "client_id": "rec-matrix",
                   "decision_id": w.positions["api-only"].pk, "rationale": "Keep control.",
                   "revisit_condition": "A leak.", "base_version": 0},
        FACILITATORS_ONLY, writes=True,
    ),
}  # fmt: skip


def test_every_message_type_is_in_the_table():
    missing = set(protocol.SCHEMAS) - set(SOCKET)
    assert not missing, f"add these message types to SOCKET in {__file__}: {sorted(missing)}"
    assert not set(SOCKET) - set(protocol.SCHEMAS), "SOCKET lists a type the protocol lacks"


a_full_state = sync_to_async(full_state)


async def _answer(sock: Socket, message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Send `message`, then a marker (an unknown type, which the server names in its error):
    the consumer handles messages in order, so everything before the marker's error is the
    answer. Returns ("ok" or the error code, every message received)."""
    marker = "end-of-answer"
    await sock.send(message)
    await sock.send({"type": marker})
    received = []
    while True:
        reply = await sock.recv(timeout=5)
        if reply.get("received_type") == marker:
            break
        received.append(reply)
    errors = [m for m in received if m["type"] == "error"]
    return (errors[0]["code"] if errors else "ok"), received


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(SOCKET))
async def test_socket_message(kind, role, scenario):
    spec = SOCKET[kind]
    world = await sync_to_async(world_with_drafts)(
        scenario, spec.phase, assignment_method=spec.assignment
    )
    message = await sync_to_async(spec.build)(world)
    if kind == "draft.save" and role in ("facilitator", "cofacilitator"):
        message["base_version"] = 1  # a facilitator edits the member's draft at its version
    expected = spec.expected(role)
    sock = Socket(world.room.pk, await sync_to_async(world.cookie)(role))
    connected = await sock.connect()
    try:
        if expected.startswith("close:"):
            assert connected  # accepted, then closed with the documented code
            before = await a_full_state()
            # A refused client that sends before the close arrives changes nothing either.
            await sock.send(message)
            assert await sock.closed_with() == int(expected.split(":")[1])
            await asyncio.sleep(0.05)
            assert await a_full_state() == before
            return
        assert connected
        await sock.sync()
        await sock.drain(0.1)
        before = await a_full_state()
        outcome, received = await _answer(sock, message)
        after = await a_full_state()
        assert outcome == expected, (kind, role, received)
        if outcome == "ok" and spec.writes:
            assert after != before, f"{kind} as {role} was accepted but changed nothing"
        else:
            assert after == before, state_diff(before, after)
        for reply in received:
            assert "Traceback" not in str(reply)
    finally:
        await sock.close()

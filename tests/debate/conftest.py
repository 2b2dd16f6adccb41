"""Fixtures for the debate tests: a room with known teams, and a snapshot of everything a refused
write must leave untouched."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from debate import events, services
from debate.models import Draft, Member, Position, Recommendation, Room
from tests.conftest import Socket, a_cookie_for, a_user_cookie

OPEN, API, RESTRICTED = "open-weights", "api-only", "restricted"


@dataclass
class Teams:
    """A room whose members sit on known teams (not random):

    Ana, Ben -> open weights; Cy -> API only; Dee -> restricted.
    """

    room: Room
    facilitator: Any
    positions: dict[str, Position]
    members: dict[str, Member] = field(default_factory=dict)

    def pos(self, key: str) -> Position:
        return self.positions[key]

    def refresh(self) -> Teams:
        self.room.refresh_from_db()
        for member in self.members.values():
            member.refresh_from_db()
        return self


TEAM_LAYOUT = {"Ana": OPEN, "Ben": OPEN, "Cy": API, "Dee": RESTRICTED}


def build_teams(room: Room, facilitator) -> Teams:
    """Seat Ana, Ben, Cy and Dee on their teams. Test setup, written directly (joining and moving
    go through the services in their own tests); the room's sequence number stays at 0."""
    positions = {p.key: p for p in room.scenario.positions.all()}
    teams = Teams(room=room, facilitator=facilitator, positions=positions)
    for name, key in TEAM_LAYOUT.items():
        teams.members[name] = Member.objects.create(
            room=room, display_name=name, position=positions[key]
        )
    return teams.refresh()


def advance(room: Room, actor, *phases: str) -> None:
    for phase in phases:
        services.phase_advance(room_id=room.pk, actor=actor, to_phase=phase)
    room.refresh_from_db()


def complete_recommendation(room: Room, actor, position: Position) -> None:
    rec = Recommendation.objects.filter(room=room).first()
    services.recommendation_save(
        room_id=room.pk,
        actor=actor,
        client_id="rec-complete",
        decision_id=position.pk,
        rationale="Staged access keeps the option to withdraw.",
        revisit_condition="Fine-tuned copies without safeguards circulate within six months.",
        base_version=rec.version if rec else 0,
    )


def member_draft(
    teams: Teams, name: str, text: str, *, slot: int = 1, kind: str = "argument", client_id=None
) -> services.SaveResult:
    """A member writes a new slot (base_version 0)."""
    member = teams.members[name]
    return services.draft_save(
        room_id=teams.room.pk,
        actor=_anonymous(),
        member_id=member.pk,
        client_id=client_id or f"{name}-{kind}-{slot}",
        text=text,
        base_version=0,
        kind=kind,
        slot=slot,
    )


def _anonymous():
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def db_state() -> dict[str, Any]:
    """Everything a refused write must not change, in every room: phase, sequence number and
    closing time of each room, every member's team, every draft and recommendation."""
    return {
        "rooms": sorted(
            Room.objects.values_list("pk", "phase", "event_seq", "closed_at", "code", "title")
        ),
        "members": sorted(
            Member.objects.values_list("pk", "room_id", "display_name", "position_id")
        ),
        "drafts": sorted(
            Draft.objects.values_list(
                "pk",
                "room_id",
                "author_id",
                "position_id",
                "kind",
                "slot",
                "text",
                "version",
                "last_client_id",
                "last_editor_id",
            )
        ),
        "recommendations": sorted(
            Recommendation.objects.values_list(
                "pk",
                "room_id",
                "decision_id",
                "rationale",
                "revisit_condition",
                "version",
                "last_client_id",
            )
        ),
    }


a_db_state = sync_to_async(db_state)


async def call(fn, /, *args, **kwargs):
    """Run a synchronous (database) function from an async test."""
    return await sync_to_async(fn)(*args, **kwargs)


async def drain_all(
    *socks: Socket, expect: int | Sequence[int] = 0, timeout: float = 0.2
) -> list[list[dict[str, Any]]]:
    """What each socket receives: first the `expect`ed number of messages (waited for as long as
    they take, so a slow machine does not make a test fail), then whatever else arrives before
    `timeout` seconds of quiet (to show that nothing more came). The waits overlap."""
    counts = [expect] * len(socks) if isinstance(expect, int) else list(expect)
    assert len(counts) == len(socks)

    async def one(sock: Socket, count: int) -> list[dict[str, Any]]:
        received = [await sock.recv() for _ in range(count)]
        return received + await sock.drain(timeout)

    return list(await asyncio.gather(*(one(s, n) for s, n in zip(socks, counts, strict=True))))


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Accounts are created in almost every test; the production hasher costs ~0.3 s each. Only
    this process checks these passwords (no separate server here), so a fast hasher is safe."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def positions(scenario) -> dict[str, Position]:
    return {p.key: p for p in scenario.positions.all()}


@pytest.fixture
def teams(room, facilitator) -> Teams:
    """The room in the lobby with Ana, Ben (open weights), Cy (API only), Dee (restricted)."""
    return build_teams(room, facilitator)


@pytest.fixture
def drafting(teams) -> Teams:
    advance(teams.room, teams.facilitator, "drafting")
    return teams.refresh()


async def open_sockets(room_id: int, cookies: list[tuple[str, int | None]]) -> list[Socket]:
    """Open sockets one after another and return them once every one has joined its groups and
    has nothing left to read. `cookies` holds (cookie, member id or None for a facilitator).

    A member's connection announces them (member.presence) to the room. Each member socket waits
    for its *own* announcement before the next socket opens: with the Redis pub/sub layer a group
    message reaches the local sockets that are in the group when it comes back from Redis, so
    without the wait a socket opened just after another may or may not hear the earlier one. With
    the wait, socket i hears exactly the members opened after it (and itself), on any layer."""
    opened: list[Socket] = []
    try:
        for cookie, member_id in cookies:
            sock = Socket(room_id, cookie)
            assert await sock.connect()
            opened.append(sock)
            if member_id is None:
                await sock.sync()  # the reply comes once `connect` has finished
            else:
                message = await sock.recv()
                assert message["type"] == "member.presence", message
                assert message["member_id"] == member_id, message
        for index, sock in enumerate(opened):
            later = [m for _cookie, m in cookies[index + 1 :] if m is not None]
            for member_id in later:
                message = await sock.recv()
                assert message["type"] == "member.presence", message
                assert message["member_id"] == member_id, message
    except BaseException:
        for sock in opened:
            await sock.close()
        raise
    return opened


@asynccontextmanager
async def team_sockets(teams: Teams, *names: str, facilitator: bool = True):
    """One open socket per named member, plus the facilitator's as "fac" (opened last); yields a
    dict name -> Socket with nothing left to read on any of them."""
    keys = list(names) + (["fac"] if facilitator else [])
    cookies = [(await a_cookie_for(teams.members[name]), teams.members[name].pk) for name in names]
    if facilitator:
        cookies.append((await a_user_cookie(teams.facilitator), None))
    opened = await open_sockets(teams.room.pk, cookies)
    try:
        yield dict(zip(keys, opened, strict=True))
    finally:
        for sock in opened:
            await sock.close()


@pytest.fixture
def broadcasts(monkeypatch, django_capture_on_commit_callbacks):
    """What the services hand to the channel layer after commit: a list of (group, event)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(sends):
        sent.extend((group, message["event"]) for group, message in sends)

    monkeypatch.setattr(events, "broadcast", record)

    class Recorder:
        def __call__(self, fn, /, **kwargs):
            sent.clear()
            with django_capture_on_commit_callbacks(execute=True):
                result = fn(**kwargs)
            return result

        @property
        def sent(self) -> list[tuple[str, dict[str, Any]]]:
            return list(sent)

        def to(self, group: str) -> list[dict[str, Any]]:
            return [event for g, event in sent if g == group]

    return Recorder()

"""The facilitator console over the real socket (config.asgi, real sessions): who receives each
console event, and who receives nothing but a tick.

The room (tests/debate/conftest.py) has Ana and Ben on "open weights", Cy on "API only" and Dee on
"restricted", plus the facilitator ("fac").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from debate import events, services
from debate.consumers import FACILITATOR_ACTIONS
from debate.models import Draft, Member, Room
from tests.conftest import Socket, a_cookie_for, a_user_cookie, join, sockets
from tests.debate.conftest import (
    API,
    OPEN,
    RESTRICTED,
    advance,
    call,
    drain_all,
    member_draft,
    team_sockets,
)
from tests.debate.test_console_services import console_state

pytestmark = pytest.mark.django_db(transaction=True)


def draft_msg(client_id: str, text: str, base_version: int = 0, slot: int = 1, **extra):
    return {
        "type": "draft.save",
        "client_id": client_id,
        "kind": "argument",
        "slot": slot,
        "text": text,
        "base_version": base_version,
        **extra,
    }


def types(messages) -> list[str]:
    return [m["type"] for m in messages]


def by_type(messages) -> list[dict[str, Any]]:
    """Messages in a stable order: a member receives its content event and the tick of the same
    number through two groups, whose relative order is not part of the contract."""
    return sorted(messages, key=lambda m: (m.get("seq") or 0, m["type"]))


async def read_seq(room: Room) -> int:
    return (await call(Room.objects.with_seq().get, pk=room.pk)).seq


async def state() -> dict[str, Any]:
    return await call(console_state)


def cookie_client(cookie: str) -> Client:
    """A test client carrying the same session as a socket's cookie."""
    client = Client()
    name, value = cookie.split("=", 1)
    client.cookies[name] = value
    return client


async def get(client: Client, url: str):
    return await call(client.get, url)


# --- audiences ------------------------------------------------------------------------------


async def test_feedback_reaches_the_drafts_team_and_facilitators_only(drafting):
    draft = await call(member_draft, drafting, "Ana", "Published weights cannot be recalled.")
    async with team_sockets(drafting, "Ana", "Ben", "Cy", "Dee") as s:
        note = "Too general: tie it to a model well above the state of the art."
        await s["fac"].send({"type": "draft.feedback", "draft_id": draft.id, "text": note})
        ana, ben, cy, dee, fac = await drain_all(*s.values())
        seq = await read_seq(drafting.room)
        for received in (ana, ben, fac):
            assert types(received) == ["draft.feedback"]
            assert received[0]["seq"] == seq
            assert received[0]["feedback"]["draft_id"] == draft.id
            assert received[0]["feedback"]["text"] == note
        assert cy == dee == [{"type": "tick", "seq": seq}]

        # Snapshots agree: the team has the note, other teams do not.
        assert [f["text"] for f in (await s["Ben"].sync())["feedback"]] == [note]
        assert (await s["Cy"].sync())["feedback"] == []

        # On a hidden draft, the note reaches its author (and the facilitators) only.
        await call(
            services.draft_moderate,
            room_id=drafting.room.pk,
            actor=drafting.facilitator,
            draft_id=draft.id,
            hidden=True,
        )
        await drain_all(*s.values())
        await s["fac"].send({"type": "draft.feedback", "draft_id": draft.id, "text": "Why hidden"})
        ana, ben, cy, dee, fac = await drain_all(*s.values())
        seq = await read_seq(drafting.room)
        tick = {"type": "tick", "seq": seq}
        assert types(fac) == ["draft.feedback"]
        assert types(by_type(ana)) == ["draft.feedback", "tick"]
        assert ben == cy == dee == [tick]


async def test_mute_reaches_the_muted_member_and_facilitators_only(drafting):
    cy_id = drafting.members["Cy"].pk
    async with team_sockets(drafting, "Ana", "Ben", "Cy", "Dee") as s:
        await s["fac"].send({"type": "member.mute", "member_id": cy_id, "muted": True})
        ana, ben, cy, dee, fac = await drain_all(*s.values())
        seq = await read_seq(drafting.room)
        event = {"type": "member.muted", "seq": seq, "member_id": cy_id, "muted": True}
        tick = {"type": "tick", "seq": seq}
        assert fac == [event]
        assert by_type(cy) == [event, tick]
        assert ana == ben == dee == [tick]

        # The muted member reads but cannot write; the refusal reaches them only.
        before = await state()
        await s["Cy"].send(draft_msg("c-1", "Let me write"))
        error = await s["Cy"].recv()
        assert (error["type"], error["code"], error["client_id"]) == ("error", "muted", "c-1")
        assert error["message"]
        assert await drain_all(*s.values()) == [[], [], [], [], []]
        assert await state() == before
        assert (await s["Cy"].sync())["me"]["muted"] is True

        await s["fac"].send({"type": "member.mute", "member_id": cy_id, "muted": False})
        await drain_all(*s.values())
        await s["Cy"].send(draft_msg("c-2", "Now I may"))
        ack = await s["Cy"].recv_until("ack")
        assert (ack["client_id"], ack["version"]) == ("c-2", 1)


async def test_hiding_a_draft_during_drafting(drafting):
    secret = "Weights on every laptop by Friday"
    draft = await call(member_draft, drafting, "Ana", secret)
    async with team_sockets(drafting, "Ana", "Ben", "Cy") as s:
        await s["fac"].send({"type": "draft.moderate", "draft_id": draft.id, "hidden": True})
        ana, ben, cy, fac = await drain_all(*s.values())
        seq = await read_seq(drafting.room)
        moderated_seq = seq - 1  # draft.moderated, then the author's draft.updated

        # Teammates: the moderation without the text, and a tick for the author's copy.
        assert types(by_type(ben)) == ["draft.moderated", "tick"]
        moderated = by_type(ben)[0]
        assert moderated["seq"] == moderated_seq
        assert moderated["draft"]["id"] == draft.id
        assert moderated["draft"]["hidden"] is True
        assert "text" not in moderated["draft"]
        # The author: the same, plus a draft.updated that keeps the text, marked hidden.
        assert types(by_type(ana)) == ["draft.moderated", "draft.updated", "tick"]
        updated = by_type(ana)[1]
        assert updated["seq"] == seq
        assert (updated["draft"]["text"], updated["draft"]["hidden"]) == (secret, True)
        assert "text" not in by_type(ana)[0]["draft"]
        # Other teams: ticks only.
        assert cy == [{"type": "tick", "seq": moderated_seq}, {"type": "tick", "seq": seq}]
        # Facilitators: both events, with the text.
        assert types(fac) == ["draft.moderated", "draft.updated"]
        assert all(e["draft"]["text"] == secret for e in fac)
        assert secret not in json.dumps(ben + cy)

        # Snapshots agree.
        assert draft.id not in {d["id"] for d in (await s["Ben"].sync())["drafts"]}
        own = {d["id"]: d for d in (await s["Ana"].sync())["drafts"]}
        assert (own[draft.id]["text"], own[draft.id]["hidden"]) == (secret, True)

        # The author cannot change it while hidden.
        before = await state()
        await s["Ana"].send(draft_msg("a-2", "Edited anyway", base_version=1))
        error = await s["Ana"].recv()
        assert (error["type"], error["code"], error["client_id"]) == ("error", "hidden", "a-2")
        assert await drain_all(*s.values()) == [[], [], [], []]
        assert await state() == before


async def test_announcement_lock_and_timer_reach_everyone(drafting):
    async with team_sockets(drafting, "Ana", "Cy", "Dee") as s:
        steps = [
            ({"type": "room.announce", "text": "Five minutes left"}, "announcement"),
            ({"type": "room.lock", "locked": True}, "editing_locked"),
            ({"type": "timer.control", "action": "start", "seconds": 300}, "timer"),
        ]
        for message, field in steps:
            await s["fac"].send(message)
            received = await drain_all(*s.values())
            seq = await read_seq(drafting.room)
            for messages in received:
                assert types(messages) == ["room.settings"], (message, messages)
                assert messages[0]["seq"] == seq
            assert all(messages == received[0] for messages in received)
            settings_now = received[0][0]["settings"]
            stored = await call(Room.objects.get, pk=drafting.room.pk)
            if field == "announcement":
                assert settings_now["announcement"] == "Five minutes left" == stored.announcement
            elif field == "editing_locked":
                assert settings_now["editing_locked"] is True
            else:
                assert settings_now["timer"]["running"] is True
                assert settings_now["timer"]["ends_at"] == stored.timer_ends_at.isoformat()
                left = (stored.timer_ends_at - timezone.now()).total_seconds()
                assert 290 < left <= 300

        # Locked: a member's save is refused for the member only.
        await s["Ana"].send(draft_msg("a-1", "While locked"))
        error = await s["Ana"].recv()
        assert (error["type"], error["code"], error["client_id"]) == ("error", "locked", "a-1")
        assert await drain_all(*s.values()) == [[], [], [], []]
        snapshot = await s["Dee"].sync()
        assert snapshot["room"]["editing_locked"] is True
        assert snapshot["room"]["announcement"] == "Five minutes left"
        assert snapshot["room"]["timer"]["running"] is True


async def test_typing_reaches_facilitators_only_without_a_sequence_number(drafting):
    async with team_sockets(drafting, "Ana", "Ben", "Cy") as s:
        seq = await read_seq(drafting.room)
        await s["Ana"].send({"type": "typing"})
        await s["Ana"].send({"type": "typing"})  # within two seconds: not relayed again
        await s["fac"].send({"type": "typing"})  # facilitators' typing is not relayed
        ana, ben, cy, fac = await drain_all(*s.values())
        assert fac == [{"type": "member.typing", "member_id": drafting.members["Ana"].pk}]
        assert ana == ben == cy == []
        assert await read_seq(drafting.room) == seq


# --- remove, reconnect, re-admit ------------------------------------------------------------


async def test_removed_member_is_closed_refused_and_readmitted(drafting):
    room, dee = drafting.room, drafting.members["Dee"]
    cookie = await a_cookie_for(dee)
    page = cookie_client(cookie)
    room_url = reverse("debate:room", args=[room.pk])
    export_url = reverse("debate:room_export_md", args=[room.pk])
    assert (await get(page, room_url)).status_code == 200
    async with team_sockets(drafting, "Ana", "Dee") as s:
        await s["fac"].send({"type": "member.remove", "member_id": dee.pk})
        removed = await s["Dee"].recv()
        assert (removed["type"], removed["member_id"]) == ("member.removed", dee.pk)
        assert await s["Dee"].closed_with() == 4403
        ana, fac = await drain_all(s["Ana"], s["fac"])
        for messages in (ana, fac):
            assert [m for m in messages if m["type"] != "member.presence"] == [removed]

        # Reconnecting is refused, and so are the pages.
        again = Socket(room.pk, cookie)
        assert await again.connect()
        assert await again.closed_with() == 4403
        assert (await get(page, room_url)).status_code == 403
        assert (await get(page, export_url)).status_code == 403

        await s["fac"].send({"type": "member.readmit", "member_id": dee.pk})
        ana, fac = await drain_all(s["Ana"], s["fac"])
        for messages in (ana, fac):
            (readmitted,) = [m for m in messages if m["type"] != "member.presence"]
            assert readmitted["type"] == "member.readmitted"
            assert (readmitted["member"]["id"], readmitted["member"]["removed"]) == (dee.pk, False)

        back = Socket(room.pk, cookie)
        assert await back.connect()
        try:
            snapshot = await back.sync()
            assert snapshot["me"]["member_id"] == dee.pk
            await back.send(draft_msg("d-1", "Vetted access keeps a name on every copy"))
            ack = await back.recv_until("ack")
            assert ack["version"] == 1
        finally:
            await back.close()
        assert (await get(page, room_url)).status_code == 200


async def test_removed_member_who_missed_the_event_is_closed_on_sync(drafting, monkeypatch):
    """The channel layer is a doorbell: if member.removed is lost, the next sync still refuses."""
    real_broadcast = events.broadcast

    def lose_removals(sends):
        real_broadcast([s for s in sends if s[1]["event"]["type"] != events.MEMBER_REMOVED])

    monkeypatch.setattr(events, "broadcast", lose_removals)
    dee = drafting.members["Dee"]
    async with team_sockets(drafting, "Dee", facilitator=False) as s:
        await call(
            services.member_remove,
            room_id=drafting.room.pk,
            actor=drafting.facilitator,
            member_id=dee.pk,
        )
        assert await s["Dee"].drain() == []  # the doorbell was lost
        await s["Dee"].send({"type": "sync"})
        assert await s["Dee"].closed_with() == 4403


# --- co-facilitators ------------------------------------------------------------------------


async def test_cofacilitator_added_by_username_has_the_same_powers(
    drafting, other_facilitator, scenario
):
    room = drafting.room
    users = get_user_model().objects
    await call(users.create_user, username="ms.third", password="x-Pw-4242")
    elsewhere = await call(users.create_user, username="mr.elsewhere", password="x-Pw-4243")
    await call(services.room_create, owner=elsewhere, scenario=scenario, title="Elsewhere")
    async with team_sockets(drafting, "Ana", "Cy") as s:
        await s["fac"].send({"type": "facilitator.add", "username": "MR.OKAFOR"})
        ana, cy, fac = await drain_all(*s.values())
        seq = await read_seq(room)
        assert fac == [
            {
                "type": "facilitators.changed",
                "seq": seq,
                "facilitators": ["ms.rivera", "mr.okafor"],
            }
        ]
        assert ana == cy == [{"type": "tick", "seq": seq}]

        co = Socket(room.pk, await a_user_cookie(other_facilitator))
        assert await co.connect()
        try:
            snapshot = await co.sync()
            assert snapshot["me"]["role"] == "facilitator"
            assert snapshot["facilitators"] == ["ms.rivera", "mr.okafor"]
            await drain_all(*s.values(), co)

            # The co-facilitator receives what facilitators receive.
            await s["Cy"].send(draft_msg("c-1", "The API can be switched off"))
            await s["Cy"].recv_until("ack")
            await s["Cy"].send({"type": "typing"})
            ana, cy, fac, co_got = await drain_all(s["Ana"], s["Cy"], s["fac"], co)
            assert types(co_got) == types(fac) == ["draft.updated", "member.typing"]
            assert co_got == fac
            assert types(ana) == ["tick"]

            # ... and acts: adds another facilitator (the owner's socket sees it) ...
            await co.send({"type": "facilitator.add", "username": "ms.third"})
            ana, cy, fac, co_got = await drain_all(s["Ana"], s["Cy"], s["fac"], co)
            names = ["ms.rivera", "mr.okafor", "ms.third"]
            assert types(fac) == ["facilitators.changed"]
            assert fac[0]["facilitators"] == names
            assert co_got == fac
            assert types(ana) == types(cy) == ["tick"]

            # ... and advances the phase for everyone.
            await co.send({"type": "phase.advance", "to": "review"})
            for messages in await drain_all(*s.values(), co):
                assert types(messages) == ["phase.changed"]
                assert messages[0]["phase"] == "review"
        finally:
            await co.close()

    # The facilitator of another room has no power here: no socket, no console.
    stranger = Socket(room.pk, await a_user_cookie(elsewhere))
    assert await stranger.connect()
    assert await stranger.closed_with() == 4401
    assert (await call(Room.objects.get, pk=room.pk)).phase == "review"


# --- switching sides, timers, choosing ------------------------------------------------------


async def test_round_switch_moves_every_socket_to_its_new_team(drafting):
    first = await call(member_draft, drafting, "Ana", "Round one: anyone can audit")
    await call(advance, drafting.room, drafting.facilitator, "review")
    api = drafting.pos(API).pk
    async with team_sockets(drafting, "Ana", "Ben", "Cy", "Dee") as s:
        await s["fac"].send({"type": "round.switch"})
        received = await drain_all(*s.values())
        for messages in received:
            assert types(messages) == ["member.moved"] * 4 + ["room.settings", "phase.changed"]
            assert messages[4]["settings"]["round"] == 2
            assert messages[5]["phase"] == "drafting"
        moves = {m["member_id"]: m["position_id"] for m in received[0][:4]}
        assert moves == {
            drafting.members["Ana"].pk: api,
            drafting.members["Ben"].pk: api,
            drafting.members["Cy"].pk: drafting.pos(RESTRICTED).pk,
            drafting.members["Dee"].pk: drafting.pos(OPEN).pk,
        }

        # Ana now writes for API only: Ben (moved with her) hears it; Cy and Dee get ticks.
        await s["Ana"].send(draft_msg("a-r2", "Round two: usage can be watched", position_id=api))
        ack = await s["Ana"].recv_until("ack")
        _ana, ben, cy, dee, fac = await drain_all(*s.values())
        assert types(ben) == types(fac) == ["draft.updated"]
        assert (ben[0]["draft"]["round"], ben[0]["draft"]["position_id"]) == (2, api)
        assert cy == dee == [{"type": "tick", "seq": ack["seq"]}]
        new = await call(Draft.objects.get, pk=ack["id"])
        assert (new.round, new.position_id, new.author_id) == (2, api, drafting.members["Ana"].pk)
        kept = await call(Draft.objects.get, pk=first.id)
        assert (kept.round, kept.position_id, kept.text) == (
            1,
            drafting.pos(OPEN).pk,
            "Round one: anyone can audit",
        )


async def test_timer_reported_expired_by_many_advances_once(drafting):
    async with team_sockets(drafting, "Ana", "Cy") as s:
        await s["fac"].send(
            {"type": "timer.control", "action": "start", "seconds": 1, "auto_advance": True}
        )
        await drain_all(*s.values())
        # Too early: the server's clock decides, and nothing happens.
        await s["Ana"].send({"type": "timer.expired", "phase": "drafting"})
        assert await drain_all(*s.values(), timeout=0.1) == [[], [], []]
        stored = await call(Room.objects.get, pk=drafting.room.pk)
        assert stored.phase == "drafting"
        left = (stored.timer_ends_at - timezone.now()).total_seconds()
        await asyncio.sleep(max(0.0, left) + 0.02)
        for sock in s.values():
            await sock.send({"type": "timer.expired", "phase": "drafting"})
        for messages in await drain_all(*s.values()):
            assert types(messages) == ["phase.changed"]
            assert messages[0]["phase"] == "review"


async def test_position_choose_over_the_socket_with_a_cap(scenario, facilitator):
    room = await call(
        services.room_create,
        owner=facilitator,
        scenario=scenario,
        assignment_method="choice",
        choice_cap=1,
    )
    ana, ben = await call(join, room, "Ana"), await call(join, room, "Ben")
    positions = {p.key: p.pk for p in await call(lambda: list(scenario.positions.all()))}
    specs = [(room.pk, await a_cookie_for(m)) for m in (ana, ben)]
    async with sockets(*specs, (room.pk, await a_user_cookie(facilitator))) as (sa, sb, sf):
        await sa.send({"type": "position.choose", "position_id": positions[OPEN]})
        for messages in await drain_all(sa, sb, sf):
            assert types(messages) == ["member.moved"]
            assert (messages[0]["member_id"], messages[0]["position_id"]) == (
                ana.pk,
                positions[OPEN],
            )
        before = await state()
        await sb.send({"type": "position.choose", "position_id": positions[OPEN]})
        error = await sb.recv()
        assert (error["type"], error["code"]) == ("error", "position_full")
        assert await drain_all(sa, sb, sf) == [[], [], []]
        assert await state() == before
        # The facilitator is not a member: choosing is refused.
        await sf.send({"type": "position.choose", "position_id": positions[API]})
        assert (await sf.recv())["code"] == "forbidden"
        await sb.send({"type": "position.choose", "position_id": positions[API]})
        assert all(types(m) == ["member.moved"] for m in await drain_all(sa, sb, sf))


# --- refusals over the socket ---------------------------------------------------------------


def console_messages(drafting, draft_id: int) -> list[dict[str, Any]]:
    cy = drafting.members["Cy"].pk
    return [
        {"type": "member.mute", "member_id": cy, "muted": True},
        {"type": "member.remove", "member_id": cy},
        {"type": "member.readmit", "member_id": cy},
        {"type": "draft.moderate", "draft_id": draft_id, "hidden": True},
        {"type": "draft.feedback", "draft_id": draft_id, "text": "From a member"},
        {"type": "room.lock", "locked": True},
        {"type": "room.announce", "text": "From a member"},
        {"type": "room.configure", "assignment_method": "manual"},
        {"type": "timer.control", "action": "start", "seconds": 60, "auto_advance": True},
        {"type": "round.switch"},
        {"type": "facilitator.add", "username": "mr.okafor"},
        {"type": "case.pick", "position_id": drafting.pos("api-only").pk, "draft_ids": []},
        {"type": "vote.close"},
        {"type": "chair.set", "member_id": cy, "chair": True},
        {"type": "recommendation.finalize"},
    ]


async def test_members_cannot_use_the_console(drafting, other_facilitator):
    draft = await call(member_draft, drafting, "Cy", "The API can be switched off")
    messages = console_messages(drafting, draft.id)
    assert {m["type"] for m in messages} == set(FACILITATOR_ACTIONS)  # every one of them
    async with team_sockets(drafting, "Ana", "Cy") as s:
        before = await state()
        for message in messages:
            await s["Ana"].send(message)
            error = await s["Ana"].recv()
            assert (error["type"], error["code"], error["request_type"]) == (
                "error",
                "forbidden",
                message["type"],
            ), error
        assert await drain_all(*s.values()) == [[], [], []]
        assert await state() == before


BAD_CONSOLE_MESSAGES = [
    {"type": "member.mute", "member_id": 1, "muted": "yes"},
    {"type": "member.mute", "member_id": "1", "muted": True},
    {"type": "member.mute", "member_id": 1},
    {"type": "member.remove"},
    {"type": "member.readmit", "member_id": True},
    {"type": "draft.moderate", "draft_id": 1, "hidden": 1},
    {"type": "draft.moderate", "draft_id": 1, "needs_source": "no"},
    {"type": "draft.feedback", "draft_id": 1, "text": 5},
    {"type": "draft.feedback", "draft_id": 1},
    {"type": "room.lock", "locked": "true"},
    {"type": "room.announce", "text": None},
    {"type": "room.configure", "assignment_method": 3},
    {"type": "room.configure", "assignment_method": "choice", "choice_cap": "2"},
    {"type": "timer.control", "action": "start", "seconds": "60"},
    {"type": "timer.control", "action": "start", "seconds": 60, "auto_advance": "on"},
    {"type": "timer.control"},
    {"type": "facilitator.add", "username": 7},
    {"type": "position.choose", "position_id": "1"},
    {"type": "timer.expired", "phase": 1},
]


async def test_bad_console_messages_are_invalid(drafting, settings):
    settings.QUORUM = {**settings.QUORUM, "RATE_BURST": 1000}
    async with team_sockets(drafting, "Ana") as s:
        before = await state()
        for message in BAD_CONSOLE_MESSAGES:
            for sock in (s["fac"], s["Ana"]):
                await sock.send(message)
                error = await sock.recv()
                assert (error["type"], error["code"]) == ("error", "invalid"), (message, error)
                assert error["field"]
        assert await drain_all(*s.values()) == [[], []]
        assert await state() == before


async def test_console_ids_from_another_room_are_not_found(drafting, scenario):
    other_room = await call(
        services.room_create, owner=drafting.facilitator, scenario=scenario, title="Period 5"
    )
    stranger = await call(join, other_room, "Zed")
    await call(advance, other_room, drafting.facilitator, "drafting")
    foreign = await call(
        services.draft_save,
        room_id=other_room.pk,
        actor=AnonymousUser(),
        member_id=stranger.pk,
        client_id="z-1",
        text="Room B's text",
        base_version=0,
        kind="argument",
        slot=1,
    )
    async with team_sockets(drafting, "Ana") as s:
        before = await state()
        for message in [
            {"type": "member.mute", "member_id": stranger.pk, "muted": True},
            {"type": "member.remove", "member_id": stranger.pk},
            {"type": "draft.moderate", "draft_id": foreign.id, "hidden": True},
            {"type": "draft.feedback", "draft_id": foreign.id, "text": "Wrong room"},
        ]:
            await s["fac"].send(message)
            error = await s["fac"].recv()
            assert (error["type"], error["code"]) == ("error", "not_found"), error
        assert await drain_all(*s.values()) == [[], []]
        assert await state() == before


# --- anonymous rooms ------------------------------------------------------------------------


REAL_NAMES = [
    "Zelda Realname",
    "Yusuf Truename",
    "Xiomara Secretname",
    "Wilhelmina Privatename",
]
LATE_NAME = "Violetta Hiddenname"


class RecordingSocket(Socket):
    """A socket that keeps every message it receives, in `log`."""

    def __init__(self, room_id: int, cookie: str, log: list[dict[str, Any]]) -> None:
        super().__init__(room_id, cookie)
        self.log = log

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        message = await super().recv(timeout)
        self.log.append(message)
        return message

    async def closed_with(self, timeout: float = 3) -> int | None:
        output = await self.comm.receive_output(timeout=timeout)
        while output["type"] == "websocket.send":
            self.log.append(json.loads(output["text"]))
            output = await self.comm.receive_output(timeout=timeout)
        assert output["type"] == "websocket.close", output
        return output.get("code")


def http_join(code: str, name: str) -> Client:
    client = Client()
    response = client.post(reverse("debate:join"), {"code": code, "display_name": name})
    assert response.status_code == 302, response.content[:500]
    return client


def client_cookie(client: Client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def test_anonymous_room_members_never_receive_real_names(scenario, facilitator):
    room = await call(
        services.room_create, owner=facilitator, scenario=scenario, title="Anon", anonymous=True
    )
    logs: dict[str, list[dict[str, Any]]] = {name: [] for name in [*REAL_NAMES, LATE_NAME, "fac"]}
    documents: dict[str, str] = {}  # exports and pages each member downloaded
    clients: dict[str, Client] = {}
    socks: dict[str, RecordingSocket] = {}

    async def open_socket(name: str) -> RecordingSocket:
        cookie = client_cookie(clients[name])
        sock = RecordingSocket(room.pk, cookie, logs[name])
        assert await sock.connect()
        await sock.sync()
        socks[name] = sock
        return sock

    async def settle() -> None:
        await drain_all(*socks.values())

    decision_id = await call(lambda: scenario.positions.get(key=RESTRICTED).pk)
    fac = RecordingSocket(room.pk, await a_user_cookie(facilitator), logs["fac"])
    assert await fac.connect()
    await fac.sync()
    socks["fac"] = fac
    try:
        # Lobby: everyone joins through the join page; each later joiner is announced.
        for name in REAL_NAMES:
            clients[name] = await call(http_join, room.code, name)
            await open_socket(name)
        await settle()
        members = {
            m.display_name: m for m in await call(lambda: list(Member.objects.filter(room=room)))
        }
        code = {name: members[name].code_name for name in REAL_NAMES}
        assert len(set(code.values())) == 4

        # Assign, then drafting; everyone writes.
        await fac.send({"type": "positions.assign"})
        await settle()
        await fac.send({"type": "phase.advance", "to": "drafting"})
        await settle()
        drafts: dict[str, int] = {}
        for index, name in enumerate(REAL_NAMES):
            await socks[name].send(draft_msg(f"d-{index}", f"Argument number {index}"))
            drafts[name] = (await socks[name].recv_until("ack"))["id"]
            await socks[name].send({"type": "typing"})
        await settle()

        # Moderation, feedback, a mute with its refusal, a hidden draft with its refusal.
        zelda, yusuf, xiomara, wilhelmina = REAL_NAMES
        await fac.send({"type": "draft.feedback", "draft_id": drafts[yusuf], "text": "Cite it"})
        await fac.send({"type": "draft.moderate", "draft_id": drafts[wilhelmina], "hidden": True})
        await fac.send({"type": "member.mute", "member_id": members[xiomara].pk, "muted": True})
        await settle()
        await socks[xiomara].send(draft_msg("x-2", "Muted words", slot=2))
        assert (await socks[xiomara].recv_until("error"))["code"] == "muted"
        await socks[wilhelmina].send(draft_msg("w-2", "Hidden edit", base_version=1))
        assert (await socks[wilhelmina].recv_until("error"))["code"] == "hidden"
        await socks[zelda].send({"type": "member.mute", "member_id": members[yusuf].pk,
                                 "muted": True})  # fmt: skip
        assert (await socks[zelda].recv_until("error"))["code"] == "forbidden"
        await socks[zelda].send_raw("not json")
        assert (await socks[zelda].recv_until("error"))["code"] == "malformed"
        await socks[yusuf].send({"type": "position.choose", "position_id": decision_id})
        assert (await socks[yusuf].recv_until("error"))["code"] == "not_choice"
        await fac.send({"type": "member.mute", "member_id": members[xiomara].pk, "muted": False})
        await settle()

        # Removed and re-admitted: the re-admission names the member again.
        await fac.send({"type": "member.remove", "member_id": members[xiomara].pk})
        assert await socks[xiomara].closed_with() == 4403
        await socks.pop(xiomara).close()
        await settle()
        await fac.send({"type": "member.readmit", "member_id": members[xiomara].pk})
        await settle()
        await open_socket(xiomara)

        # A late joiner during drafting.
        clients[LATE_NAME] = await call(http_join, room.code, LATE_NAME)
        await open_socket(LATE_NAME)
        await settle()
        for name in [*REAL_NAMES, LATE_NAME]:
            await socks[name].sync()

        # Review, recommendation, close; everyone looks at the room at each step.
        for phase in ("review", "recommendation"):
            await fac.send({"type": "phase.advance", "to": phase})
            await settle()
            for name in [*REAL_NAMES, LATE_NAME]:
                await socks[name].sync()
        await fac.send(
            {
                "type": "recommendation.save",
                "client_id": "rec-1",
                "decision_id": decision_id,
                "rationale": "Vetted access first.",
                "revisit_condition": "Leaked copies appear within six months.",
                "base_version": 0,
            }
        )
        await fac.recv_until("ack")
        await fac.send({"type": "phase.advance", "to": "closed"})
        await settle()
        for name in [*REAL_NAMES, LATE_NAME]:
            await socks[name].sync()
            client = clients[name]
            export = await get(client, reverse("debate:room_export_md", args=[room.pk]))
            assert export.status_code == 200
            page = await get(client, reverse("debate:room", args=[room.pk]))
            assert page.status_code == 200
            documents[name] = export.content.decode() + page.content.decode()
    finally:
        for sock in socks.values():
            await sock.close()

    everyone = [*REAL_NAMES, LATE_NAME]
    members = {
        m.display_name: m for m in await call(lambda: list(Member.objects.filter(room=room)))
    }
    for name in everyone:
        received = json.dumps(logs[name], ensure_ascii=False) + documents[name]
        for other in everyone:
            if other == name:
                continue
            for part in other.split():
                assert part not in received, f"{name} received {other!r}'s real name"
            # Not vacuous: they did hear of the others, by code name.
            assert members[other].code_name in received, (name, other)
        assert name in documents[name]  # their own name is theirs to see
        assert {"snapshot", "phase.changed"} <= set(types(logs[name])), name
    for name in REAL_NAMES:
        kinds = set(types(logs[name]))
        expected = {"member.joined", "member.moved", "draft.updated", "error", "tick"}
        assert expected <= kinds, (name, kinds)
    assert "member.readmitted" in types(logs[REAL_NAMES[0]])

    # The facilitator sees every real name, in events and in the snapshot.
    fac_text = json.dumps(logs["fac"], ensure_ascii=False)
    joined = [m for m in logs["fac"] if m["type"] == "member.joined"]
    assert {m["member"]["display_name"] for m in joined} == set(everyone)
    for name in everyone:
        assert name in fac_text
    assert "member.typing" in types(logs["fac"])

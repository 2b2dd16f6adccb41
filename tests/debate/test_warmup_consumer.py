"""The warm-up check over the socket: the member gets their feedback, the facilitators the
result live, the other members only a tick; refusals change nothing."""

from __future__ import annotations

import pytest

from debate.models import WarmupAttempt
from tests.debate.conftest import a_db_state, call, drain_all, team_sockets

pytestmark = pytest.mark.django_db(transaction=True)

RIGHT = {"inspect": "study", "retrain": "strip", "clinic": "access", "recall": "irreversible"}


async def test_a_try_reaches_the_member_and_the_facilitators_only(teams):
    async with team_sockets(teams, "Ana", "Cy") as s:
        snapshot = await s["Ana"].sync()
        assert [i["key"] for i in snapshot["warmup"]["items"]] == list(RIGHT)
        assert all("answer" not in i for i in snapshot["warmup"]["items"])
        await s["Ana"].send(
            {
                "type": "warmup.submit",
                "client_id": "w-1",
                "answers": {**RIGHT, "inspect": "access", "clinic": "study"},
            }
        )
        ana, cy, fac = await drain_all(s["Ana"], s["Cy"], s["fac"], expect=(3, 1, 1))
        # Ana: the event (through her member group), its tick (team group) and the ack.
        event = next(m for m in ana if m["type"] == "warmup.attempted")
        assert event["attempt"]["score"] == 2
        assert set(event["attempt"]["explanations"]) == {"retrain", "recall"}
        ack = next(m for m in ana if m["type"] == "ack")
        assert (ack["client_id"], ack["score"], ack["total"]) == ("w-1", 2, 4)
        assert [m["type"] for m in cy] == ["tick"]
        fac_event = next(m for m in fac if m["type"] == "warmup.attempted")
        assert fac_event["attempt"]["member_id"] == teams.members["Ana"].pk
        # The facilitator's snapshot holds every member's tries; Cy's holds none of Ana's.
        assert len((await s["fac"].sync())["warmup_attempts"]) == 1
        assert (await s["Cy"].sync())["warmup_attempts"] == []


async def test_refusals_over_the_socket_change_nothing(teams):
    async with team_sockets(teams, "Ana") as s:
        before = await a_db_state()
        await s["Ana"].send({"type": "warmup.submit", "client_id": "w", "answers": ["x"]})
        assert (await s["Ana"].recv_until("error"))["code"] == "invalid"
        await s["Ana"].send(
            {"type": "warmup.submit", "client_id": "w", "answers": {"inspect": "study"}}
        )
        assert (await s["Ana"].recv_until("error"))["code"] == "incomplete"
        await s["fac"].send({"type": "warmup.submit", "client_id": "w", "answers": RIGHT})
        assert (await s["fac"].recv_until("error"))["code"] == "forbidden"
        assert await a_db_state() == before
        assert await call(WarmupAttempt.objects.count) == 0

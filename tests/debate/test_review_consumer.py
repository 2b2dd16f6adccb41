"""Issue 5 over the socket, several clients at once: who receives a rebuttal, a strongest mark,
a case vote, a vote, the vote's results (and when), a chair's save, sign-off and finalize; and
that refusals reach only the sender and change nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from debate.models import Comment, Recommendation, Vote
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
from tests.debate.test_review_services import everything

pytestmark = pytest.mark.django_db(transaction=True)

a_everything = sync_to_async(everything)


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def setup_review(drafting):
    t = drafting
    t.ids = {
        "ana1": member_draft(t, "Ana", "Hospitals can run it offline.").id,
        "cy1": member_draft(t, "Cy", "Misuse can be watched and stopped.").id,
        "dee1": member_draft(t, "Dee", "Vetted access buys a year of audits.").id,
        "dee_risk": member_draft(t, "Dee", "A vetted copy may leak.", kind="risk").id,
    }
    advance(t.room, t.facilitator, "review")
    return t.refresh()


@pytest.fixture
async def review(drafting):
    return await call(setup_review, drafting)


async def test_a_rebuttal_reaches_everyone_once(review):
    t = review
    async with team_sockets(t, "Ana", "Ben", "Cy") as s:
        await s["Cy"].send(
            {
                "type": "comment.add",
                "client_id": "cy-r1",
                "draft_id": t.ids["ana1"],
                "kind": "rebuttal",
                "text": "<b>Offline</b> copies cannot be patched.",
            }
        )
        received = await drain_all(s["Ana"], s["Ben"], s["Cy"], s["fac"], expect=[1, 1, 2, 1])
        ack = next(m for m in received[2] if m["type"] == "ack")
        assert (ack["client_id"], ack["duplicate"]) == ("cy-r1", False)
        for messages in received:
            events = [m for m in messages if m["type"] == "comment.added"]
            assert len(events) == 1
            assert events[0]["comment"]["text"] == "<b>Offline</b> copies cannot be patched."
            assert events[0]["comment"]["author_id"] == t.members["Cy"].pk
        # Resent (a reconnect): acknowledged as a duplicate, no second event.
        await s["Cy"].send(
            {
                "type": "comment.add",
                "client_id": "cy-r1",
                "draft_id": t.ids["ana1"],
                "kind": "rebuttal",
                "text": "<b>Offline</b> copies cannot be patched.",
            }
        )
        received = await drain_all(s["Ana"], s["Ben"], s["Cy"], s["fac"], expect=[0, 0, 1, 0])
        assert received[2][0]["duplicate"] is True
        assert [len(r) for r in received] == [0, 0, 1, 0]
    assert await call(Comment.objects.count) == 1


async def test_refusals_reach_only_the_sender_and_change_nothing(review, scenario, facilitator):
    t = review
    messages = [
        # own team's argument
        (
            {
                "type": "comment.add",
                "client_id": "x1",
                "draft_id": t.ids["ana1"],
                "kind": "question",
                "text": "Why?",
            },
            "Ana",
            "own_position",
        ),
        # malformed: draft_ids must be a list
        ({"type": "case.pick", "position_id": t.pos(OPEN).pk, "draft_ids": 3}, "fac", "invalid"),
        # a member cannot close the vote or finalize
        ({"type": "vote.close"}, "Ana", "forbidden"),
        ({"type": "recommendation.finalize"}, "Ana", "forbidden"),
        # wrong phase for sign-off and the builder
        ({"type": "signoff.record", "stance": "sign"}, "Ana", "wrong_phase"),
        (
            {
                "type": "recommendation.save",
                "client_id": "r1",
                "decision_id": None,
                "rationale": "x",
                "revisit_condition": "y",
                "base_version": 0,
            },
            "fac",
            "wrong_phase",
        ),
        # a position of nowhere, a reason too long
        ({"type": "vote.cast", "position_id": 987654}, "Ana", "not_found"),
        (
            {"type": "vote.cast", "position_id": t.pos(OPEN).pk, "reason": "x" * 301},
            "Ana",
            "too_long",
        ),
        ({"type": "strongest.mark", "draft_id": t.ids["dee_risk"]}, "Ana", "invalid"),
    ]
    async with team_sockets(t, "Ana", "Cy") as s:
        before = await a_everything()
        for message, sender, code in messages:
            await s[sender].send(message)
            received = await drain_all(
                s["Ana"],
                s["Cy"],
                s["fac"],
                expect=[1 if sender == "Ana" else 0, 0, 1 if sender == "fac" else 0],
            )
            mine = received[["Ana", "Cy", "fac"].index(sender)]
            assert types(mine) == ["error"], (message, received)
            assert mine[0]["code"] == code, (message, mine)
            assert sum(len(r) for r in received) == 1, (message, received)
        assert await a_everything() == before


async def test_vote_results_reach_nobody_before_the_close(review):
    """Members learn their own vote only; facilitators the turnout only; nobody a count until
    the facilitator closes the vote, then everyone gets the same results."""
    t = review
    log: dict[str, list[dict[str, Any]]] = {}
    async with team_sockets(t, "Ana", "Ben", "Cy", "Dee") as s:
        names = ["Ana", "Ben", "Cy", "Dee", "fac"]
        socks = [s[n] for n in names]
        await s["Ana"].send(
            {"type": "vote.cast", "position_id": t.pos(RESTRICTED).pk, "reason": "Audits"}
        )
        received = await drain_all(*socks, expect=1)
        by = dict(zip(names, received, strict=True))
        assert by["Ana"][0]["type"] == "vote.cast"
        assert by["Ana"][0]["mine"] == {"position_id": t.pos(RESTRICTED).pk, "reason": "Audits"}
        assert "turnout" not in by["Ana"][0]
        assert by["fac"][0]["turnout"] == {"voted": 1, "eligible": 4}
        assert "mine" not in by["fac"][0]
        for name in ("Ben", "Cy", "Dee"):
            assert types(by[name]) == ["tick"]  # the sequence number, nothing else
        await s["Cy"].send({"type": "vote.cast", "position_id": t.pos(API).pk})
        await s["Dee"].send({"type": "vote.cast", "position_id": t.pos(API).pk})
        for name, messages in zip(names, await drain_all(*socks, expect=2), strict=True):
            log.setdefault(name, []).extend(messages)
        # A snapshot now holds no counts either.
        for name in names:
            snapshot = await s[name].sync()
            assert snapshot["review"]["vote"]["results"] is None
            assert snapshot["review"]["vote"]["closed"] is False
            log[name].append(snapshot)
        before_close = {n: json.dumps(m) for n, m in log.items()}
        for name, text in before_close.items():
            assert '"counts"' not in text and '"leaders"' not in text, name
        # A member cannot close it; the facilitator can.
        await s["Ben"].send({"type": "vote.close"})
        assert (await s["Ben"].recv())["code"] == "forbidden"
        await s["fac"].send({"type": "vote.close"})
        received = await drain_all(*socks, expect=1)
        results = [m[0] for m in received]
        assert all(r["type"] == "vote.closed" for r in results)
        assert all(r["results"] == results[0]["results"] for r in results)
        counts = {c["position_id"]: c["count"] for c in results[0]["results"]["counts"]}
        assert counts == {t.pos(OPEN).pk: 0, t.pos(API).pk: 2, t.pos(RESTRICTED).pk: 1}
        assert results[0]["results"]["leaders"] == [t.pos(API).pk]
        assert results[0]["results"]["tie"] is False
        # Voting after the close is refused, to the sender only.
        before = await a_everything()
        await s["Ben"].send({"type": "vote.cast", "position_id": t.pos(OPEN).pk})
        received = await drain_all(*socks, expect=[0, 1, 0, 0, 0])
        assert received[1][0]["code"] == "vote_closed"
        assert sum(len(r) for r in received) == 1
        assert await a_everything() == before
    assert await call(Vote.objects.count) == 3


async def test_chair_saves_and_sign_off_then_finalize(review):
    t = review
    await call(advance, t.room, t.facilitator, "recommendation")
    async with team_sockets(t, "Ana", "Ben") as s:
        socks = [s["Ana"], s["Ben"], s["fac"]]
        save = {
            "type": "recommendation.save",
            "client_id": "ana-1",
            "decision_id": t.pos(RESTRICTED).pk,
            "rationale": "Audits first.",
            "revisit_condition": "Stripped copies appear within six months.",
            "base_version": 0,
            "citation_ids": [t.ids["dee1"]],
            "risk_draft_id": t.ids["dee_risk"],
            "risk_text": "",
        }
        # Not a chair yet: refused.
        await s["Ana"].send(save)
        error = await s["Ana"].recv()
        assert (error["type"], error["code"]) == ("error", "forbidden")
        await s["fac"].send({"type": "chair.set", "member_id": t.members["Ana"].pk, "chair": True})
        for messages in await drain_all(*socks, expect=1):
            assert messages[0]["type"] == "member.chair"
        await s["Ana"].send(save)
        received = await drain_all(*socks, expect=[2, 1, 1])
        for messages in received:
            update = next(m for m in messages if m["type"] == "recommendation.updated")
            assert update["recommendation"]["citation_ids"] == [t.ids["dee1"]]
            assert update["recommendation"]["risk_draft_id"] == t.ids["dee_risk"]
        # A stale save by the facilitator is refused with the current text.
        await s["fac"].send({**save, "client_id": "fac-1", "rationale": "Other"})
        error = await s["fac"].recv()
        assert error["code"] == "conflict" and error["current"]["rationale"] == "Audits first."
        # Ben dissents; everyone hears it.
        await s["Ben"].send(
            {"type": "signoff.record", "stance": "dissent", "text": "Too cautious."}
        )
        for messages in await drain_all(*socks, expect=1):
            assert messages[0]["signoff"]["stance"] == "dissent"
        await s["fac"].send({"type": "recommendation.finalize"})
        for messages in await drain_all(*socks, expect=1):
            assert types(messages) == ["phase.changed"]
            assert messages[0]["phase"] == "closed"
        snapshot = await s["fac"].sync()
        assert snapshot["review"]["share_path"].startswith("/record/")
        assert (await s["Ana"].sync())["review"]["share_path"] is None
        # Afterwards, the chair's save is refused and nothing changes.
        before = await a_everything()
        await s["Ana"].send({**save, "client_id": "ana-2", "base_version": 1})
        assert (await s["Ana"].recv())["code"] == "wrong_phase"
        assert await a_everything() == before
    rec = await call(Recommendation.objects.get, room=t.room)
    assert rec.frozen_record["public"]["signoffs"][0]["text"] == "Too cautious."


async def test_marks_and_curation_reach_the_room(drafting):
    t = drafting

    def more_drafts():
        ids = {f"ana{i}": member_draft(t, "Ana", f"Ana argument {i}", slot=i).id for i in (1, 2, 3)}
        ids["ben1"] = member_draft(t, "Ben", "Ben argument 1").id  # four for three slots
        advance(t.room, t.facilitator, "review")
        return ids

    ids = await call(more_drafts)
    async with team_sockets(t, "Ana", "Ben", "Cy") as s:
        socks = [s["Ana"], s["Ben"], s["Cy"], s["fac"]]
        await s["Cy"].send({"type": "strongest.mark", "draft_id": ids["ben1"]})
        for messages in await drain_all(*socks, expect=1):
            assert messages[0]["type"] == "strongest.marked"
            assert messages[0]["mark"]["draft_id"] == ids["ben1"]
        await s["Ben"].send({"type": "case.vote", "draft_id": ids["ben1"], "chosen": True})
        for messages in await drain_all(*socks, expect=1):
            case = messages[0]["case"]
            assert messages[0]["type"] == "case.updated" and case["decided_by"] == "team"
            assert ids["ben1"] in case["selected"] and case["votes"] == {str(ids["ben1"]): 1}
        # Cy is on another team: refused, to Cy only.
        await s["Cy"].send({"type": "case.vote", "draft_id": ids["ana1"], "chosen": True})
        received = await drain_all(*socks, expect=[0, 0, 1, 0])
        assert received[2][0]["code"] == "other_team" and sum(map(len, received)) == 1
        pick = [ids["ana1"], ids["ana2"], ids["ana3"]]
        await s["fac"].send({"type": "case.pick", "position_id": t.pos(OPEN).pk, "draft_ids": pick})
        for messages in await drain_all(*socks, expect=1):
            assert messages[0]["case"]["decided_by"] == "facilitator"
            assert messages[0]["case"]["selected"] == sorted(pick)

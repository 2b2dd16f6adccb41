"""The research board and citations over the room socket: several clients on the real ASGI app,
checking who received what and who received nothing. Ana and Ben argue open weights, Cy API
only, Dee restricted; "fac" is the facilitator."""

from __future__ import annotations

import pytest

from debate.models import Draft, ResearchNote, TrendJudgement
from tests.debate.conftest import a_db_state, call, drain_all, member_draft, team_sockets

pytestmark = pytest.mark.django_db(transaction=True)


def types(messages) -> list[str]:
    return [m["type"] for m in messages]


def note_msg(client_id: str, **fields):
    return {
        "type": "research.note.save",
        "client_id": client_id,
        "base_version": 0,
        "organisation": "Example Lab",
        "year": 2025,
        "month": 3,
        "approach": "api_only",
        "summary": "Offered the new model through its paid interface only.",
        "source_url": "https://example.org/blog/launch",
        **fields,
    }


def research_rows():
    return {
        "notes": sorted(ResearchNote.objects.values_list()),
        "judgements": sorted(TrendJudgement.objects.values_list()),
    }


async def test_a_note_reaches_the_whole_room_live(teams):
    async with team_sockets(teams, "Ana", "Cy", "Dee") as s:
        await s["Ana"].send(note_msg("a-1"))
        ack = await s["Ana"].recv_until("ack")
        assert ack["request_type"] == "research.note.save" and ack["version"] == 1
        ana, cy, dee, fac = await drain_all(*s.values(), expect=[0, 1, 1, 1])
        # Research is shared: every team and the facilitator get the note itself (no ticks).
        for received in (cy, dee, fac):
            assert types(received) == ["research.note.updated"]
            note = received[0]["note"]
            assert note["organisation"] == "Example Lab"
            assert note["author_id"] == teams.members["Ana"].pk
            assert note["source_url"] == "https://example.org/blog/launch"
            assert received[0]["seq"] == ack["seq"]
        assert types(ana) == ["research.note.updated"]

        # A resend of the same change is acknowledged as a duplicate, and nobody hears of it.
        await s["Ana"].send(note_msg("a-1"))
        again = await s["Ana"].recv_until("ack")
        assert again["duplicate"] is True and again["id"] == ack["id"]
        ana, cy, dee, fac = await drain_all(*s.values())
        assert ana == cy == dee == fac == []
        assert await call(ResearchNote.objects.count) == 1

        # A snapshot (after a reconnect, say) holds the board and the cards.
        snapshot = await s["Dee"].sync()
        assert [n["id"] for n in snapshot["research"]["notes"]] == [ack["id"]]
        assert snapshot["cards"] and {"id", "title", "body"} <= set(snapshot["cards"][0])


async def test_refused_notes_reach_nobody_and_change_nothing(teams):
    async with team_sockets(teams, "Ana", "Cy") as s:
        await s["Ana"].send(note_msg("a-1"))
        ack = await s["Ana"].recv_until("ack")
        await drain_all(*s.values(), expect=[1, 1, 1])
        before = await a_db_state()
        rows = await call(research_rows)
        cases = [
            (s["Ana"], note_msg("bad-url", source_url="javascript:alert(1)"), "bad_url"),
            (s["Ana"], note_msg("bad-scheme", source_url="data:text/html,x"), "bad_url"),
            (s["Ana"], note_msg("long", summary="x" * 301), "too_long"),
            (s["Ana"], note_msg("year", year="2025"), "invalid"),
            (s["Ana"], {"type": "research.note.save", "client_id": "missing"}, "invalid"),
            (s["Cy"], note_msg("cy-edit", note_id=ack["id"], base_version=1), "not_author"),
            (s["Ana"], note_msg("stale", note_id=ack["id"], base_version=0), "conflict"),
            (s["Ana"], note_msg("ghost", note_id=ack["id"] + 1000, base_version=1), "not_found"),
            (s["Cy"], {"type": "research.note.delete", "note_id": ack["id"]}, "not_author"),
            (
                s["fac"],
                {"type": "research.judge", "client_id": "f", "trend": "mixed", "reason": "r"},
                "members_only",
            ),
            (
                s["Cy"],
                {"type": "research.judge", "client_id": "c", "trend": "up", "reason": "r"},
                "invalid",
            ),
        ]
        for sock, message, code in cases:
            await sock.send(message)
            error = await sock.recv_until("error")
            assert error["code"] == code, (message, error)
        ana, cy, fac = await drain_all(*s.values())
        assert ana == cy == fac == []
        assert await a_db_state() == before
        assert await call(research_rows) == rows


async def test_edit_delete_and_judgements_reach_everyone(teams):
    async with team_sockets(teams, "Ana", "Cy") as s:
        await s["Ana"].send(note_msg("a-1"))
        ack = await s["Ana"].recv_until("ack")
        await drain_all(*s.values(), expect=[1, 1, 1])

        # The facilitator corrects the note; then deletes it.
        await s["fac"].send(note_msg("f-1", note_id=ack["id"], base_version=1, month=4))
        fack = await s["fac"].recv_until("ack")
        ana, cy, fac = await drain_all(*s.values(), expect=[1, 1, 0])
        assert ana[0]["note"]["month"] == cy[0]["note"]["month"] == 4
        assert fack["version"] == 2
        await s["fac"].send({"type": "research.note.delete", "note_id": ack["id"]})
        ana, cy, fac = await drain_all(*s.values(), expect=1)
        for received in (ana, cy, fac):
            assert received == [
                {"type": "research.note.deleted", "seq": received[0]["seq"], "note_id": ack["id"]}
            ]

        # Judgements of the trend and the tally.
        await s["Cy"].send(
            {
                "type": "research.judge",
                "client_id": "c-1",
                "trend": "more_closed",
                "reason": "Few weights.",
            }
        )
        await s["Cy"].recv_until("ack")
        ana, cy, fac = await drain_all(*s.values(), expect=[1, 0, 1])
        event = ana[0]
        assert event["type"] == "research.judgement.updated"
        assert event["judgement"]["member_id"] == teams.members["Cy"].pk
        assert event["tally"] == {"more_open": 0, "more_closed": 1, "mixed": 0, "total": 1}
        assert fac == ana


async def test_citations_travel_with_the_draft_to_the_team_only(drafting):
    card_ids = await call(
        lambda: list(drafting.room.scenario.cards.values_list("pk", flat=True)[:2])
    )
    await call(member_draft, drafting, "Ana", "Weights cannot be recalled.")
    async with team_sockets(drafting, "Ana", "Ben", "Cy") as s:
        await s["Ana"].send(
            {
                "type": "draft.save",
                "client_id": "a-cite",
                "kind": "argument",
                "slot": 1,
                "text": "Weights cannot be recalled.",
                "base_version": 1,
                "citations": card_ids,
            }
        )
        ack = await s["Ana"].recv_until("ack")
        ana, ben, cy, fac = await drain_all(*s.values(), expect=[0, 1, 1, 1])
        assert ben[0]["draft"]["citations"] == sorted(card_ids)
        assert fac[0]["draft"]["citations"] == sorted(card_ids)
        assert cy == [{"type": "tick", "seq": ack["seq"]}]
        # Another scenario's card (or no such card) is refused and changes nothing.
        before = await call(lambda: sorted(Draft.citations.through.objects.values_list()))
        await s["Ana"].send(
            {
                "type": "draft.save",
                "client_id": "a-bad",
                "kind": "argument",
                "slot": 1,
                "text": "Weights cannot be recalled.",
                "base_version": 2,
                "citations": [10**6],
            }
        )
        error = await s["Ana"].recv_until("error")
        assert error["code"] == "card_not_found"
        await s["Ana"].send(
            {
                "type": "draft.save",
                "client_id": "a-bad2",
                "kind": "argument",
                "slot": 1,
                "text": "x",
                "base_version": 2,
                "citations": "1",
            }
        )
        assert (await s["Ana"].recv_until("error"))["code"] == "invalid"
        ana, ben, cy, fac = await drain_all(*s.values())
        assert ana == ben == cy == fac == []
        assert await call(lambda: sorted(Draft.citations.through.objects.values_list())) == before

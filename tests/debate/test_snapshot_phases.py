"""The room snapshot phase by phase: the parts it does not read in a phase keep their shape
(same keys, empty values), appear with content once the phase comes, and the rows it reads
directly have the same shapes as the payloads the events carry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from debate import selectors, services
from debate.models import (
    Comment,
    Member,
    ResearchNote,
    Signoff,
    StrongestMark,
    TrendJudgement,
)
from tests.debate.conftest import API, OPEN, RESTRICTED, advance, member_draft

pytestmark = pytest.mark.django_db

ANON = AnonymousUser()


def as_member(room, member):
    return selectors.viewer_for(room_id=room.pk, user=ANON, member_id=member.pk)


def as_facilitator(room, facilitator):
    return selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None)


def snapshot_and_sql(viewer) -> tuple[dict, str]:
    """The snapshot, and every statement it ran (lower case, joined)."""
    with CaptureQueriesContext(connection) as ctx:
        snapshot = selectors.room_snapshot(viewer=viewer)
    return snapshot, "\n".join(q["sql"].lower() for q in ctx.captured_queries)


def warmup_answers(scenario, *, right: bool) -> dict[str, str]:
    reasons = [r["key"] for r in scenario.warmup["reasons"]]
    return {
        item["key"]: item["answer"] if right else next(r for r in reasons if r != item["answer"])
        for item in scenario.warmup["items"]
    }


def test_review_section_keeps_its_shape_before_the_review_and_fills_in_it(drafting):
    t = drafting
    member_draft(t, "Ana", "Hospitals can run it offline.")
    member_draft(t, "Cy", "Misuse can be watched and stopped.")
    for viewer in (as_member(t.room, t.members["Ana"]), as_facilitator(t.room, t.facilitator)):
        snapshot, sql = snapshot_and_sql(viewer)
        assert snapshot["review"] == selectors.EMPTY_REVIEW
        for table in ("debate_comment", "debate_vote", "debate_casevote", "debate_signoff"):
            assert f'from "{table}"' not in sql
    advance(t.room, t.facilitator, "review")
    cy_draft = t.room.drafts.get(author=t.members["Cy"])
    services.comment_add(
        room_id=t.room.pk,
        member_id=t.members["Ana"].pk,
        client_id="q1",
        draft_id=cy_draft.pk,
        kind="question",
        text="Who watches?",
    )
    services.vote_cast(room_id=t.room.pk, member_id=t.members["Ana"].pk, position_id=t.pos(API).pk)
    review = selectors.room_snapshot(viewer=as_member(t.room, t.members["Ana"]))["review"]
    assert set(review) == set(selectors.EMPTY_REVIEW)
    assert [c["text"] for c in review["comments"]] == ["Who watches?"]
    assert [c["position_id"] for c in review["cases"]] == [p.pk for p in t.positions.values()]
    assert review["vote"]["mine"] == {"position_id": t.pos(API).pk, "reason": ""}
    facilitator = selectors.room_snapshot(viewer=as_facilitator(t.room, t.facilitator))
    assert facilitator["review"]["vote"]["turnout"] == {"voted": 1, "eligible": 4}


def test_signoffs_are_not_read_in_the_review_and_appear_in_the_recommendation(drafting):
    t = drafting
    ana = member_draft(t, "Ana", "Hospitals can run it offline.")
    advance(t.room, t.facilitator, "review")
    for viewer in (as_member(t.room, t.members["Ben"]), as_facilitator(t.room, t.facilitator)):
        snapshot, sql = snapshot_and_sql(viewer)
        assert 'from "debate_signoff"' not in sql  # none can exist in the review
        assert set(snapshot["review"]) == set(selectors.EMPTY_REVIEW)
        assert snapshot["review"]["signoffs"] == []
    advance(t.room, t.facilitator, "recommendation")
    services.recommendation_build(
        room_id=t.room.pk,
        actor=t.facilitator,
        client_id="b1",
        base_version=0,
        decision_id=t.pos(RESTRICTED).pk,
        rationale="Staged access keeps audits possible.",
        revisit_condition="Fine-tuned copies appear within six months.",
        citation_ids=[ana.id],
    )
    services.signoff_record(
        room_id=t.room.pk, member_id=t.members["Ben"].pk, stance="dissent", text="Too slow."
    )
    for viewer in (as_member(t.room, t.members["Ben"]), as_facilitator(t.room, t.facilitator)):
        snapshot = selectors.room_snapshot(viewer=viewer)
        assert snapshot["review"]["signoffs"] == [
            {
                "member_id": t.members["Ben"].pk,
                "stance": "dissent",
                "text": "Too slow.",
                "rec_version": 1,
            }
        ]
        assert snapshot["recommendation"]["citation_ids"] == [ana.id]


def test_member_warmup_tries_in_lobby_and_drafting_only(teams, scenario):
    t = teams
    ana = t.members["Ana"]
    services.warmup_submit(
        room_id=t.room.pk,
        member_id=ana.pk,
        client_id="w1",
        answers=warmup_answers(scenario, right=True),
    )
    public = selectors.warmup_public(scenario)
    for phase in ("lobby", "drafting"):
        if phase != "lobby":
            advance(t.room, t.facilitator, phase)
        snapshot = selectors.room_snapshot(viewer=as_member(t.room, ana))
        assert snapshot["warmup"] == public
        assert [a["client_id"] for a in snapshot["warmup_attempts"]] == ["w1"]
        assert snapshot["warmup_attempts"][0]["explanations"]  # right answers are explained
    advance(t.room, t.facilitator, "review")
    snapshot, sql = snapshot_and_sql(as_member(t.room, ana))
    # The page shows a member no warm-up after drafting: the exercise stays, the tries are not
    # read.
    assert snapshot["warmup"] == public
    assert snapshot["warmup_attempts"] == []
    assert 'from "debate_warmupattempt"' not in sql
    # Facilitators see the class's results in every phase.
    facilitator = selectors.room_snapshot(viewer=as_facilitator(t.room, t.facilitator))
    assert [a["member_id"] for a in facilitator["warmup_attempts"]] == [ana.pk]


def test_solo_learner_keeps_their_warmup_tries_in_every_step(scenario):
    start = services.solo_start(scenario_id=scenario.pk, display_name="Sam")
    services.warmup_submit(
        room_id=start.room.pk,
        member_id=start.member.pk,
        client_id="w1",
        answers=warmup_answers(scenario, right=False),
    )
    services.solo_phase_set(
        room_id=start.room.pk, member_id=start.member.pk, to_phase="recommendation"
    )
    snapshot = selectors.room_snapshot(viewer=as_member(start.room, start.member))
    assert snapshot["room"]["phase"] == "recommendation"
    assert [a["client_id"] for a in snapshot["warmup_attempts"]] == ["w1"]


def test_snapshot_rows_have_the_event_payloads_shapes(drafting, scenario):
    """The snapshot reads drafts, feedback, cards, research, comments, marks and sign-offs as rows;
    each must equal what the payload functions the events use build from the model."""
    t = drafting
    card_ids = list(scenario.cards.values_list("pk", flat=True))[:2]
    services.draft_save(
        room_id=t.room.pk,
        actor=ANON,
        member_id=t.members["Ana"].pk,
        client_id="a1",
        text="Hospitals can run it offline.",
        base_version=0,
        kind="argument",
        slot=1,
        citations=card_ids,
    )
    member_draft(t, "Cy", "Misuse can be watched and stopped.")
    member_draft(t, "Cy", "Nobody can verify our claims.", kind="risk")
    cy_draft = t.room.drafts.get(author=t.members["Cy"], kind="argument")
    ana_draft = t.room.drafts.get(author=t.members["Ana"])
    for draft in (cy_draft, ana_draft):
        services.feedback_add(room_id=t.room.pk, actor=t.facilitator, draft_id=draft.pk, text="?")
    services.research_note_save(
        room_id=t.room.pk,
        actor=ANON,
        member_id=t.members["Dee"].pk,
        client_id="n1",
        note_id=None,
        base_version=0,
        organisation="A lab",
        year=2024,
        month=3,
        approach="staged",
        summary="Weights to vetted researchers first.",
        source_url="https://example.org/a-lab",
    )
    services.research_note_save(
        room_id=t.room.pk,
        actor=t.facilitator,
        member_id=None,
        client_id="n2",
        note_id=None,
        base_version=0,
        organisation="Another lab",
        year=2023,
        month=11,
        approach="api_only",
        summary="API only.",
        source_url="https://example.org/another",
    )
    services.trend_judge(
        room_id=t.room.pk,
        actor=ANON,
        member_id=t.members["Ben"].pk,
        client_id="j1",
        trend="mixed",
        reason="Both ways.",
    )
    advance(t.room, t.facilitator, "review")
    services.comment_add(
        room_id=t.room.pk,
        member_id=t.members["Ana"].pk,
        client_id="c1",
        draft_id=cy_draft.pk,
        kind="rebuttal",
        text="Watching is not stopping.",
    )
    services.strongest_mark(room_id=t.room.pk, member_id=t.members["Ana"].pk, draft_id=cy_draft.pk)
    advance(t.room, t.facilitator, "recommendation")
    services.recommendation_build(
        room_id=t.room.pk,
        actor=t.facilitator,
        client_id="b1",
        base_version=0,
        decision_id=t.pos(OPEN).pk,
        rationale="Access.",
        revisit_condition="Misuse at scale.",
    )
    services.signoff_record(room_id=t.room.pk, member_id=t.members["Cy"].pk, stance="sign")

    for viewer in (as_facilitator(t.room, t.facilitator), as_member(t.room, t.members["Ana"])):
        snapshot = selectors.room_snapshot(viewer=viewer)
        current = selectors.Viewer(
            snapshot_room := type(viewer.room).objects.get(pk=t.room.pk),
            viewer.member and Member.objects.get(pk=viewer.member.pk),
            viewer.is_facilitator,
        )
        drafts = selectors.visible_drafts(viewer=current).prefetch_related("citations")
        assert snapshot["drafts"] == [selectors.draft_payload(d) for d in drafts]
        assert any(d["citations"] == sorted(card_ids) for d in snapshot["drafts"])
        assert snapshot["feedback"] == [
            selectors.feedback_payload(f) for f in selectors.visible_feedback(viewer=current)
        ]
        # Feedback reaches the draft's team: Ana's, not Cy's.
        assert len(snapshot["feedback"]) == (2 if viewer.is_facilitator else 1)
        assert snapshot["cards"] == [selectors.card_payload(c) for c in scenario.cards.all()]
        research = snapshot["research"]
        assert research["notes"] == [
            selectors.research_note_payload(n)
            for n in ResearchNote.objects.filter(room=snapshot_room)
        ]
        assert [n["by_facilitator"] for n in research["notes"]] == [True, False]
        assert research["judgements"] == [
            selectors.judgement_payload(j) for j in TrendJudgement.objects.all()
        ]
        assert research["tally"] == {"more_open": 0, "more_closed": 0, "mixed": 1, "total": 1}
        review = snapshot["review"]
        assert review["comments"] == [selectors.comment_payload(c) for c in Comment.objects.all()]
        assert review["marks"] == [selectors.mark_payload(m) for m in StrongestMark.objects.all()]
        assert review["signoffs"] == [selectors.signoff_payload(s) for s in Signoff.objects.all()]
        assert review["cases"] == [
            selectors.case_payload(room=snapshot_room, position_id=p.pk)
            for p in t.positions.values()
        ]
        assert len(review["comments"]) == len(review["marks"]) == len(review["signoffs"]) == 1

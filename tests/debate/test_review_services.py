"""Issue 5: review (rebuttals, questions, strongest marks), team curation, the vote, the
recommendation builder with chairs and sign-off, finalize, and the refusals of each."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from debate import selectors, services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import (
    CaseVote,
    Comment,
    Draft,
    Recommendation,
    Signoff,
    StrongestMark,
    Vote,
    VoteState,
)
from tests.conftest import join
from tests.debate.conftest import (
    API,
    OPEN,
    RESTRICTED,
    advance,
    build_teams,
    db_state,
    member_draft,
)

ANON = AnonymousUser()


def extra_state():
    return {
        "comments": sorted(Comment.objects.values_list("pk", "draft_id", "author_id", "text")),
        "marks": sorted(StrongestMark.objects.values_list("member_id", "position_id", "draft_id")),
        "case_votes": sorted(CaseVote.objects.values_list("member_id", "draft_id")),
        "picked": sorted(Draft.objects.values_list("pk", "picked")),
        "votes": sorted(Vote.objects.values_list("member_id", "position_id", "reason")),
        "vote_closed": sorted(VoteState.objects.values_list("room_id", flat=True)),
        "signoffs": sorted(Signoff.objects.values_list("member_id", "stance", "text")),
        "citations": sorted(Recommendation.citations.through.objects.values_list("pk", "draft_id")),
        "risk": sorted(Recommendation.objects.values_list("pk", "risk_draft_id", "risk_text")),
        "frozen": sorted(Recommendation.objects.values_list("pk", "finalized_at", "share_token")),
        "chairs": sorted(
            (m.pk, m.is_chair) for m in __import__("debate.models").models.Member.objects.all()
        ),
    }


def everything():
    return db_state(), extra_state()


def refused(exc_type, fn, /, *args, code: str | None = None, **kwargs):
    """Call `fn`, expect `exc_type` (with `code`), and check that nothing changed."""
    before = everything()
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    if code is not None:
        assert info.value.code == code, info.value.as_payload()
    assert everything() == before
    return info.value


@pytest.fixture
def review(drafting):
    """Every member wrote: Ana two arguments and a risk, Ben two arguments (open weights: four
    arguments for three slots), Cy one argument and a risk, Dee one argument. Then review."""
    t = drafting
    ids = {}
    ids["ana1"] = member_draft(t, "Ana", "Hospitals can run it offline.", slot=1).id
    ids["ana2"] = member_draft(t, "Ana", "Outside labs can reproduce evaluations.", slot=2).id
    ids["ana_risk"] = member_draft(t, "Ana", "Safeguards can be fine-tuned away.", kind="risk").id
    ids["ben1"] = member_draft(t, "Ben", "Researchers study internals directly.", slot=1).id
    ids["ben2"] = member_draft(t, "Ben", "No per-query fees for schools.", slot=2).id
    ids["cy1"] = member_draft(t, "Cy", "Misuse can be watched and stopped.", slot=1).id
    ids["cy_risk"] = member_draft(t, "Cy", "Nobody outside can verify our claims.", kind="risk").id
    ids["dee1"] = member_draft(t, "Dee", "Vetted access buys a year of audits.", slot=1).id
    advance(t.room, t.facilitator, "review")
    t.ids = ids
    return t.refresh()


def mid(t, name):
    return t.members[name].pk


# --- rebuttals and questions ------------------------------------------------------------------


def test_member_rebuts_another_positions_argument(review):
    t = review
    result = services.comment_add(
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        client_id="c1",
        draft_id=t.ids["ana1"],
        kind="rebuttal",
        text="  Offline copies cannot be patched.  ",
    )
    comment = Comment.objects.get(pk=result.id)
    assert (comment.author_id, comment.kind, comment.text) == (
        mid(t, "Cy"),
        "rebuttal",
        "Offline copies cannot be patched.",
    )
    # A resend of the same client id is acknowledged, not stored twice.
    again = services.comment_add(
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        client_id="c1",
        draft_id=t.ids["ana1"],
        kind="rebuttal",
        text="Offline copies cannot be patched.",
    )
    assert again.duplicate and again.id == result.id
    assert Comment.objects.count() == 1


def test_a_stored_comment_resent_after_the_review_is_acknowledged_not_refused(review):
    """The first ack can be lost with the connection while the review ends (or its author is
    muted): the browser's resend must hear "stored" (and forget its copy), not "wrong phase" or
    "muted" (and keep it as refused). A new comment is still refused then."""
    t = review
    sent = {
        "room_id": t.room.pk,
        "member_id": mid(t, "Cy"),
        "client_id": "c-before-the-end",
        "draft_id": t.ids["ana1"],
        "kind": "rebuttal",
        "text": "Mirrors keep the weights online.",
    }
    first = services.comment_add(**sent)
    services.member_mute(room_id=t.room.pk, actor=t.facilitator, member_id=mid(t, "Cy"), muted=True)
    advance(t.room, t.facilitator, "recommendation")
    again = services.comment_add(**sent)
    assert again.duplicate and again.id == first.id and again.seq is None
    assert Comment.objects.count() == 1
    refused(Forbidden, services.comment_add, **{**sent, "client_id": "c-muted-and-late"})
    services.member_mute(
        room_id=t.room.pk, actor=t.facilitator, member_id=mid(t, "Cy"), muted=False
    )
    refused(WrongPhase, services.comment_add, **{**sent, "client_id": "c-after-the-end"})
    # Another member's resend of Cy's client id is not Cy's comment: refused, nothing stored.
    refused(WrongPhase, services.comment_add, **{**sent, "member_id": mid(t, "Ana")})


def test_comment_refusals_change_nothing(review, scenario, facilitator):
    t = review
    other = services.room_create(owner=facilitator, scenario=scenario, title="Other room")
    others = build_teams(other, facilitator)
    advance(other, facilitator, "drafting")
    foreign = member_draft(others, "Ana", "A draft of another room.").id
    base = {"room_id": t.room.pk, "member_id": mid(t, "Cy"), "client_id": "x", "kind": "question"}
    refused(
        Forbidden,
        services.comment_add,
        code="own_position",
        **{**base, "member_id": mid(t, "Ben"), "draft_id": t.ids["ana1"], "text": "Mine?"},
    )
    refused(NotFound, services.comment_add, **base, draft_id=foreign, text="Other room")
    refused(
        Invalid, services.comment_add, code="required", **base, draft_id=t.ids["ana1"], text=" "
    )
    refused(
        Invalid,
        services.comment_add,
        code="too_long",
        **base,
        draft_id=t.ids["ana1"],
        text="x" * (services.COMMENT_MAX + 1),
    )
    refused(
        Invalid,
        services.comment_add,
        **{**base, "kind": "praise"},
        draft_id=t.ids["ana1"],
        text="Hi",
    )
    refused(
        Forbidden,
        services.comment_add,
        code="members_only",
        **{**base, "member_id": None},
        draft_id=t.ids["ana1"],
        text="Hi",
    )
    advance(t.room, t.facilitator, "recommendation")
    refused(WrongPhase, services.comment_add, **base, draft_id=t.ids["ana1"], text="Too late")


def test_comment_on_a_hidden_draft_is_refused(review):
    t = review
    services.draft_moderate(
        room_id=t.room.pk, actor=t.facilitator, draft_id=t.ids["ana1"], hidden=True
    )
    refused(
        NotFound,
        services.comment_add,
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        client_id="h",
        draft_id=t.ids["ana1"],
        kind="question",
        text="Why?",
    )


# --- strongest marks ----------------------------------------------------------------------------


def test_strongest_mark_once_per_position_and_changeable(review):
    t = review
    services.strongest_mark(room_id=t.room.pk, member_id=mid(t, "Cy"), draft_id=t.ids["ana1"])
    services.strongest_mark(room_id=t.room.pk, member_id=mid(t, "Cy"), draft_id=t.ids["ben1"])
    services.strongest_mark(room_id=t.room.pk, member_id=mid(t, "Cy"), draft_id=t.ids["dee1"])
    marks = sorted(StrongestMark.objects.values_list("position_id", "draft_id"))
    assert marks == sorted([(t.pos(OPEN).pk, t.ids["ben1"]), (t.pos(RESTRICTED).pk, t.ids["dee1"])])
    seq = t.room.refresh_from_db() or t.room.seq
    services.strongest_mark(room_id=t.room.pk, member_id=mid(t, "Cy"), draft_id=t.ids["ben1"])
    t.room.refresh_from_db()
    assert t.room.seq == seq  # the same mark again: no event
    refused(
        Invalid,
        services.strongest_mark,
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        draft_id=t.ids["ana_risk"],
    )
    advance(t.room, t.facilitator, "recommendation")
    refused(
        WrongPhase,
        services.strongest_mark,
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        draft_id=t.ids["ana1"],
    )


# --- curation -----------------------------------------------------------------------------------


def selection(t, position_key):
    payload = selectors.case_payload(room=t.room, position_id=t.pos(position_key).pk)
    return set(payload["selected"]), payload["decided_by"]


def test_team_vote_selects_the_case_and_the_facilitator_overrides(review):
    t = review
    # Four arguments for three slots: the team votes.
    selected, decided = selection(t, OPEN)
    assert (
        decided == "team"
        and len(selected & {t.ids[k] for k in ("ana1", "ana2", "ben1", "ben2")}) == 3
    )
    for name in ("Ana", "Ben"):
        for key in ("ana2", "ben1", "ben2"):
            services.case_vote(
                room_id=t.room.pk, member_id=mid(t, name), draft_id=t.ids[key], chosen=True
            )
    selected, decided = selection(t, OPEN)
    assert selected == {t.ids["ana2"], t.ids["ben1"], t.ids["ben2"], t.ids["ana_risk"]}
    # A fourth choice of the same kind is refused until one is taken back.
    refused(
        Conflict,
        services.case_vote,
        code="too_many_choices",
        room_id=t.room.pk,
        member_id=mid(t, "Ana"),
        draft_id=t.ids["ana1"],
        chosen=True,
    )
    # Another team cannot vote on this case.
    refused(
        Forbidden,
        services.case_vote,
        code="other_team",
        room_id=t.room.pk,
        member_id=mid(t, "Cy"),
        draft_id=t.ids["ana1"],
        chosen=True,
    )
    # The facilitator's choice overrides the vote; the rest stay in the record, not selected.
    services.case_pick(
        room_id=t.room.pk,
        actor=t.facilitator,
        position_id=t.pos(OPEN).pk,
        draft_ids=[t.ids["ana1"], t.ids["ana2"], t.ids["ben1"], t.ids["ana_risk"]],
    )
    selected, decided = selection(t, OPEN)
    assert decided == "facilitator"
    assert selected == {t.ids["ana1"], t.ids["ana2"], t.ids["ben1"], t.ids["ana_risk"]}
    record = selectors.record_data(room=t.room, audience="facilitator")
    open_case = next(p for p in record["positions"] if p["key"] == OPEN)["rounds"][0]
    flags = {a["text"]: a["selected"] for a in open_case["arguments"]}
    assert flags["No per-query fees for schools."] is False
    assert sum(flags.values()) == 3
    # Members cannot pick for the team; too many picks are refused.
    refused(
        Forbidden,
        services.case_pick,
        room_id=t.room.pk,
        actor=ANON,
        position_id=t.pos(OPEN).pk,
        draft_ids=[],
    )
    refused(
        Invalid,
        services.case_pick,
        code="too_many_choices",
        room_id=t.room.pk,
        actor=t.facilitator,
        position_id=t.pos(OPEN).pk,
        draft_ids=[t.ids[k] for k in ("ana1", "ana2", "ben1", "ben2")],
    )
    refused(
        NotFound,
        services.case_pick,
        room_id=t.room.pk,
        actor=t.facilitator,
        position_id=t.pos(OPEN).pk,
        draft_ids=[t.ids["cy1"]],
    )
    # An empty pick hands the choice back to the team vote.
    services.case_pick(
        room_id=t.room.pk, actor=t.facilitator, position_id=t.pos(OPEN).pk, draft_ids=[]
    )
    assert selection(t, OPEN)[1] == "team"


def test_a_team_within_its_slots_keeps_everything(review):
    assert selection(review, API) == ({review.ids["cy1"], review.ids["cy_risk"]}, "all")


# --- vote ---------------------------------------------------------------------------------


def test_vote_changeable_until_closed_then_refused(review):
    t = review
    room = t.room.pk
    services.vote_cast(
        room_id=room,
        member_id=mid(t, "Ana"),
        position_id=t.pos(RESTRICTED).pk,
        reason="Middle path",
    )
    services.vote_cast(room_id=room, member_id=mid(t, "Ana"), position_id=t.pos(OPEN).pk)
    assert list(Vote.objects.values_list("position_id", "reason")) == [(t.pos(OPEN).pk, "")]
    services.vote_cast(room_id=room, member_id=mid(t, "Cy"), position_id=t.pos(API).pk)
    # Nobody sees counts while it is open.
    member_view = selectors.viewer_for(room_id=room, user=ANON, member_id=mid(t, "Ben"))
    fac_view = selectors.viewer_for(room_id=room, user=t.facilitator, member_id=None)
    snap_m = selectors.room_snapshot(viewer=member_view)["review"]["vote"]
    snap_f = selectors.room_snapshot(viewer=fac_view)["review"]["vote"]
    assert snap_m == {"closed": False, "mine": None, "turnout": None, "results": None}
    assert snap_f["results"] is None and snap_f["turnout"] == {"voted": 2, "eligible": 4}
    assert selectors.record_data(room=t.room, audience="facilitator")["vote"] == {"closed": False}
    refused(Forbidden, services.vote_close, room_id=room, actor=ANON)
    results = services.vote_close(room_id=room, actor=t.facilitator)
    assert results["tie"] is True and set(results["leaders"]) == {t.pos(OPEN).pk, t.pos(API).pk}
    assert results["total"] == 2
    refused(
        WrongPhase,
        services.vote_cast,
        code="vote_closed",
        room_id=room,
        member_id=mid(t, "Dee"),
        position_id=t.pos(API).pk,
    )
    refused(
        WrongPhase,
        services.vote_cast,
        code="vote_closed",
        room_id=room,
        member_id=mid(t, "Ana"),
        position_id=t.pos(API).pk,
    )
    refused(Conflict, services.vote_close, code="vote_closed", room_id=room, actor=t.facilitator)
    snap_m = selectors.room_snapshot(viewer=member_view)["review"]["vote"]
    assert snap_m["results"]["counts"] == [
        {"position_id": t.pos(OPEN).pk, "count": 1},
        {"position_id": t.pos(API).pk, "count": 1},
        {"position_id": t.pos(RESTRICTED).pk, "count": 0},
    ]


def test_vote_refusals(review, scenario, facilitator):
    t = review
    other = services.room_create(owner=facilitator, scenario=scenario, title="Other")
    refused(
        NotFound, services.vote_cast, room_id=t.room.pk, member_id=mid(t, "Ana"), position_id=999999
    )
    refused(
        Invalid,
        services.vote_cast,
        code="too_long",
        room_id=t.room.pk,
        member_id=mid(t, "Ana"),
        position_id=t.pos(OPEN).pk,
        reason="x" * 301,
    )
    stranger = join(other, "Stranger")
    refused(
        Forbidden,
        services.vote_cast,
        room_id=t.room.pk,
        member_id=stranger.pk,
        position_id=t.pos(OPEN).pk,
    )
    refused(
        Forbidden, services.vote_cast, room_id=t.room.pk, member_id=None, position_id=t.pos(OPEN).pk
    )
    services.member_mute(
        room_id=t.room.pk, actor=t.facilitator, member_id=mid(t, "Ana"), muted=True
    )
    refused(
        Forbidden,
        services.vote_cast,
        code="muted",
        room_id=t.room.pk,
        member_id=mid(t, "Ana"),
        position_id=t.pos(OPEN).pk,
    )


def test_vote_before_review_is_refused(drafting):
    refused(
        WrongPhase,
        services.vote_cast,
        room_id=drafting.room.pk,
        member_id=drafting.members["Ana"].pk,
        position_id=drafting.pos(OPEN).pk,
    )


def test_advancing_to_the_recommendation_closes_the_vote(review):
    t = review
    services.vote_cast(room_id=t.room.pk, member_id=mid(t, "Ana"), position_id=t.pos(OPEN).pk)
    advance(t.room, t.facilitator, "recommendation")
    assert VoteState.objects.filter(room=t.room).exists()
    refused(
        WrongPhase,
        services.vote_cast,
        code="vote_closed",
        room_id=t.room.pk,
        member_id=mid(t, "Ben"),
        position_id=t.pos(OPEN).pk,
    )


# --- the recommendation builder ----------------------------------------------------------------


def build(t, *, actor=None, member_id=None, base_version=0, client_id="b1", **extra):
    fields = {
        "decision_id": t.pos(RESTRICTED).pk,
        "rationale": "Staged access keeps audits possible.",
        "revisit_condition": "Fine-tuned copies without safeguards appear within six months.",
        "citation_ids": [t.ids["dee1"], t.ids["ana2"]],
        "risk_draft_id": t.ids["cy_risk"],
        "risk_text": "A vetted copy may leak.",
    }
    fields.update(extra)
    return services.recommendation_build(
        room_id=t.room.pk,
        actor=actor or ANON,
        member_id=member_id,
        client_id=client_id,
        base_version=base_version,
        **fields,
    )


@pytest.fixture
def recommending(review):
    advance(review.room, review.facilitator, "recommendation")
    return review.refresh()


def test_chair_builds_with_citations_and_risk(recommending):
    t = recommending
    refused(Forbidden, build, t, member_id=mid(t, "Ana"))  # not a chair yet
    services.chair_set(room_id=t.room.pk, actor=t.facilitator, member_id=mid(t, "Ana"), chair=True)
    result = build(t, member_id=mid(t, "Ana"))
    rec = Recommendation.objects.get(room=t.room)
    assert result.version == rec.version == 1
    assert sorted(rec.citations.values_list("pk", flat=True)) == sorted(
        [t.ids["dee1"], t.ids["ana2"]]
    )
    assert (rec.risk_draft_id, rec.risk_text) == (t.ids["cy_risk"], "A vetted copy may leak.")
    record = selectors.record_data(room=t.room, audience="facilitator")["recommendation"]
    assert [c["author"] for c in record["citations"]] == ["Ana", "Dee"]  # record order
    assert record["citations"][1]["position"] == t.pos(RESTRICTED).name
    assert record["chairs"] == ["Ana"]
    # Stale: refused with the current text, never overwritten.
    error = refused(Conflict, build, t, actor=t.facilitator, client_id="b2", rationale="Other")
    assert error.details["current"]["rationale"] == "Staged access keeps audits possible."
    assert error.details["current"]["version"] == 1
    # A non-chair member, a member in the wrong phase.
    refused(Forbidden, build, t, member_id=mid(t, "Ben"), base_version=1, client_id="b3")


def test_builder_refuses_citations_from_another_room(recommending, scenario, facilitator):
    t = recommending
    other = services.room_create(owner=facilitator, scenario=scenario, title="Other")
    others = build_teams(other, facilitator)
    advance(other, facilitator, "drafting")
    foreign = member_draft(others, "Ana", "Another room's argument.").id
    refused(
        NotFound, build, t, actor=t.facilitator, code="citation_not_found", citation_ids=[foreign]
    )
    refused(NotFound, build, t, actor=t.facilitator, risk_draft_id=foreign)
    refused(Invalid, build, t, actor=t.facilitator, risk_draft_id=t.ids["cy1"])  # not a risk
    refused(Invalid, build, t, actor=t.facilitator, citation_ids="1,2")


def test_builder_only_in_the_recommendation_phase(review):
    refused(WrongPhase, build, review, actor=review.facilitator)


def test_signoff_and_dissent(recommending):
    t = recommending
    refused(
        WrongPhase,
        services.signoff_record,
        code="no_recommendation",
        room_id=t.room.pk,
        member_id=mid(t, "Ana"),
        stance="sign",
    )
    build(t, actor=t.facilitator)
    services.signoff_record(room_id=t.room.pk, member_id=mid(t, "Ana"), stance="sign")
    refused(
        Invalid,
        services.signoff_record,
        code="required",
        room_id=t.room.pk,
        member_id=mid(t, "Ben"),
        stance="dissent",
        text="  ",
    )
    services.signoff_record(
        room_id=t.room.pk,
        member_id=mid(t, "Ben"),
        stance="dissent",
        text="Open weights help more people than they harm.",
    )
    services.signoff_record(
        room_id=t.room.pk, member_id=mid(t, "Ana"), stance="dissent", text="Changed my mind."
    )
    assert sorted(Signoff.objects.values_list("member__display_name", "stance")) == [
        ("Ana", "dissent"),
        ("Ben", "dissent"),
    ]
    refused(
        Invalid, services.signoff_record, room_id=t.room.pk, member_id=mid(t, "Cy"), stance="maybe"
    )


# --- finalize ---------------------------------------------------------------------------------


def test_finalize_freezes_the_record_and_refuses_every_write(recommending):
    t = recommending
    services.chair_set(room_id=t.room.pk, actor=t.facilitator, member_id=mid(t, "Dee"), chair=True)
    refused(
        Invalid,
        services.recommendation_finalize,
        code="recommendation_incomplete",
        room_id=t.room.pk,
        actor=t.facilitator,
    )
    build(t, actor=t.facilitator)
    services.signoff_record(room_id=t.room.pk, member_id=mid(t, "Cy"), stance="sign")
    refused(Forbidden, services.recommendation_finalize, room_id=t.room.pk, actor=ANON)
    rec = services.recommendation_finalize(room_id=t.room.pk, actor=t.facilitator)
    t.room.refresh_from_db()
    assert t.room.phase == "closed" and rec.finalized_at is not None
    assert len(rec.share_token) >= 40
    frozen = rec.frozen_record
    assert (
        frozen["facilitator"]["recommendation"]["rationale"]
        == "Staged access keeps audits possible."
    )
    assert frozen["public"]["finalized_at"] == rec.finalized_at.isoformat()
    # Every write is refused afterwards, and nothing changes.
    room = t.room.pk
    writes = [
        (services.recommendation_finalize, {"actor": t.facilitator}),
        (build, None),
        (services.signoff_record, {"member_id": mid(t, "Ana"), "stance": "sign"}),
        (services.vote_cast, {"member_id": mid(t, "Ana"), "position_id": t.pos(OPEN).pk}),
        (
            services.comment_add,
            {
                "member_id": mid(t, "Cy"),
                "client_id": "late",
                "draft_id": t.ids["ana1"],
                "kind": "question",
                "text": "Late?",
            },
        ),
        (services.strongest_mark, {"member_id": mid(t, "Cy"), "draft_id": t.ids["ana1"]}),
        (
            services.case_vote,
            {"member_id": mid(t, "Ana"), "draft_id": t.ids["ana1"], "chosen": True},
        ),
        (
            services.case_pick,
            {"actor": t.facilitator, "position_id": t.pos(OPEN).pk, "draft_ids": []},
        ),
        (services.chair_set, {"actor": t.facilitator, "member_id": mid(t, "Ana"), "chair": True}),
        (services.vote_close, {"actor": t.facilitator}),
        (
            services.draft_moderate,
            {"actor": t.facilitator, "draft_id": t.ids["ana1"], "hidden": True},
        ),
        (
            services.feedback_add,
            {"actor": t.facilitator, "draft_id": t.ids["ana1"], "text": "Late"},
        ),
        (services.phase_advance, {"actor": t.facilitator, "to_phase": "closed"}),
        (
            services.recommendation_save,
            {
                "actor": t.facilitator,
                "client_id": "late",
                "decision_id": None,
                "rationale": "",
                "revisit_condition": "",
                "base_version": 1,
            },
        ),
    ]
    for fn, kwargs in writes:
        if kwargs is None:
            refused(
                (WrongPhase, Conflict),
                build,
                t,
                actor=t.facilitator,
                base_version=1,
                client_id="late",
            )
        else:
            refused((WrongPhase, Conflict), fn, room_id=room, **kwargs)
    # The frozen record does not follow later changes made behind the services' back.
    Draft.objects.filter(pk=t.ids["dee1"]).update(text="Edited afterwards")
    data = selectors.record_for(viewer=None, room=t.room)
    cited = data["recommendation"]["citations"]
    assert cited[1]["text"] == "Vetted access buys a year of audits."
    assert "Edited afterwards" not in str(data)


def test_closing_through_the_phase_also_freezes(recommending):
    t = recommending
    build(t, actor=t.facilitator)
    advance(t.room, t.facilitator, "closed")
    rec = Recommendation.objects.get(room=t.room)
    assert rec.frozen_record is not None and rec.share_token


def test_review_snapshot_queries_do_not_grow_with_the_room(review, django_assert_num_queries):
    """The review part of the snapshot costs a fixed number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    t = review
    viewer = selectors.viewer_for(room_id=t.room.pk, user=t.facilitator, member_id=None)
    with CaptureQueriesContext(connection) as small:
        selectors.room_snapshot(viewer=viewer)
    for i in range(12):
        member = join(t.room, f"Extra {i}")
        services.vote_cast(room_id=t.room.pk, member_id=member.pk, position_id=t.pos(API).pk)
        services.comment_add(
            room_id=t.room.pk,
            member_id=member.pk,
            client_id=f"x{i}",
            draft_id=t.ids["cy1" if member.position_id != t.pos(API).pk else "ana1"],
            kind="question",
            text="Why?",
        )
    with django_assert_num_queries(len(small.captured_queries)):
        snapshot = selectors.room_snapshot(viewer=viewer)
    assert snapshot["review"]["vote"]["turnout"]["voted"] == 12

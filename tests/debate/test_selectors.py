"""debate.selectors: what each viewer may see, and a snapshot whose cost does not grow."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from classroom.codes import JOIN_CODE_ALPHABET
from debate import selectors, services
from debate.models import (
    CaseVote,
    Comment,
    Draft,
    Member,
    Phase,
    Recommendation,
    Room,
    StrongestMark,
    Vote,
)
from tests.conftest import join
from tests.debate.conftest import advance, build_teams, member_draft

pytestmark = pytest.mark.django_db

# In drafting: the room (with its scenario, recommendation, vote state; the owner for
# facilitators), positions, members, drafts, their citations, feedback, warm-up attempts,
# evidence cards, research notes, trend judgements; facilitators also get the co-facilitators'
# names.
SNAPSHOT_QUERIES = {"member": 10, "facilitator": 11}
# In the review: a member's warm-up tries are no longer read (-1); the review adds the
# recommendation's citations, comments, case votes, votes and marks (+5), and for a member the
# current round's drafts, hidden ones included (+1; a facilitator's drafts already hold them).
# Sign-offs are not read before the recommendation phase.
REVIEW_SNAPSHOT_QUERIES = {"member": 15, "facilitator": 16}


def filled_room(scenario, facilitator, *, members: int, drafts_each: int):
    """A room in drafting with `members` members spread over the positions, each with
    `drafts_each` drafts, and a recommendation. Written directly: this is setup, not the test."""
    room = services.room_create(owner=facilitator, scenario=scenario, title=f"{members} members")
    Room.objects.filter(pk=room.pk).update(phase=Phase.DRAFTING, event_seq=members)
    positions = list(scenario.positions.all())
    created = Member.objects.bulk_create(
        Member(room=room, display_name=f"Member {i}", position=positions[i % len(positions)])
        for i in range(members)
    )
    slots = [("argument", 1), ("argument", 2), ("argument", 3), ("risk", 1)][:drafts_each]
    Draft.objects.bulk_create(
        Draft(
            room=room,
            author=member,
            position=member.position,
            kind=kind,
            slot=slot,
            text=f"{member} {kind} {slot}",
            last_client_id=f"{member.pk}-{kind}-{slot}",
            last_editor=facilitator if member.pk % 2 else None,
        )
        for member in created
        for kind, slot in slots
    )
    Recommendation.objects.create(room=room, rationale="Because.", version=1)
    room.refresh_from_db()
    return room


def count_snapshot_queries(viewer) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        snapshot = selectors.room_snapshot(viewer=viewer)
    return len(ctx.captured_queries), snapshot


@pytest.mark.parametrize("role", ["facilitator", "member"])
def test_room_snapshot_query_count_does_not_grow(
    scenario, facilitator, django_assert_num_queries, role
):
    small = filled_room(scenario, facilitator, members=3, drafts_each=1)
    large = filled_room(scenario, facilitator, members=40, drafts_each=4)
    services.member_join(code=large.code, display_name="Late")  # one more, through the service

    def viewer(room):
        if role == "facilitator":
            return selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None)
        member = room.members.first()
        return selectors.viewer_for(room_id=room.pk, user=AnonymousUser(), member_id=member.pk)

    small_count, small_snapshot = count_snapshot_queries(viewer(small))
    assert small_count == SNAPSHOT_QUERIES[role]
    large_viewer = viewer(large)
    with django_assert_num_queries(small_count):
        large_snapshot = selectors.room_snapshot(viewer=large_viewer)
    assert len(large_snapshot["members"]) == 41
    if role == "facilitator":
        assert len(small_snapshot["drafts"]) == 3
        assert len(large_snapshot["drafts"]) == 160
    else:
        # A member in drafting sees only their team's drafts.
        team = large_snapshot["me"]["position_id"]
        assert {d["position_id"] for d in large_snapshot["drafts"]} == {team}
        assert (
            len(large_snapshot["drafts"])
            == Draft.objects.filter(room=large, position_id=team).count()
            >= 4 * 13
        )


@pytest.mark.parametrize("role", ["facilitator", "member"])
def test_review_snapshot_query_count_does_not_grow(scenario, facilitator, role):
    """In the review every member sees every position's drafts and the review section is built:
    still a fixed number of queries, whatever the number of members, drafts, comments, case
    votes, votes and marks."""

    def reviewing(members: int, drafts_each: int):
        room = filled_room(scenario, facilitator, members=members, drafts_each=drafts_each)
        Room.objects.filter(pk=room.pk).update(phase=Phase.REVIEW)
        room.refresh_from_db()
        drafts = list(room.drafts.all())
        for member in room.members.all():
            other = next(d for d in drafts if d.position_id != member.position_id)
            own = next(d for d in drafts if d.position_id == member.position_id)
            Comment.objects.create(
                room=room, draft=other, author=member, kind="question", text="Why?"
            )
            StrongestMark.objects.create(
                room=room, member=member, position_id=other.position_id, draft=other
            )
            CaseVote.objects.create(room=room, member=member, draft=own)
            Vote.objects.create(room=room, member=member, position_id=member.position_id)
        return room

    def viewer(room):
        if role == "facilitator":
            return selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None)
        member = room.members.first()
        return selectors.viewer_for(room_id=room.pk, user=AnonymousUser(), member_id=member.pk)

    small, large = reviewing(3, 1), reviewing(40, 4)
    small_count, _ = count_snapshot_queries(viewer(small))
    assert small_count == REVIEW_SNAPSHOT_QUERIES[role]
    large_count, large_snapshot = count_snapshot_queries(viewer(large))
    assert large_count == small_count
    assert len(large_snapshot["drafts"]) == 160  # every position's, for members too
    review = large_snapshot["review"]
    assert (len(review["comments"]), len(review["marks"]), len(review["cases"])) == (40, 40, 3)
    assert review["signoffs"] == []


def test_snapshot_of_an_empty_room(room, facilitator):
    viewer = selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None)
    snapshot = selectors.room_snapshot(viewer=viewer)
    assert snapshot["members"] == []
    assert snapshot["drafts"] == []
    rec = snapshot["recommendation"]
    assert (rec["decision_id"], rec["rationale"], rec["revisit_condition"], rec["version"]) == (
        None,
        "",
        "",
        0,
    )
    assert snapshot["room"]["phase"] == "lobby"
    assert set(snapshot["room"]["code"]) <= set(JOIN_CODE_ALPHABET)
    assert [p["key"] for p in snapshot["scenario"]["positions"]] == [
        "open-weights",
        "api-only",
        "restricted",
    ]
    assert snapshot["scenario"]["argument_slots"] == 3


def test_viewer_for(room, facilitator, other_facilitator, scenario):
    ana = join(room, "Ana")
    other = services.room_create(owner=other_facilitator, scenario=scenario)
    zed = join(other, "Zed")
    anon = AnonymousUser()
    assert selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None).is_facilitator
    with CaptureQueriesContext(connection) as ctx:  # every member's page and socket
        as_member = selectors.viewer_for(room_id=room.pk, user=anon, member_id=ana.pk)
    assert len(ctx.captured_queries) == 1
    assert (as_member.member, as_member.role) == (ana, "member")
    assert as_member.room == room and as_member.room.scenario == scenario
    assert as_member.member.room is as_member.room and not as_member.is_removed
    Member.objects.filter(pk=ana.pk).update(removed_at=timezone.now())
    assert selectors.viewer_for(room_id=room.pk, user=anon, member_id=ana.pk).is_removed
    # A member id of another room, a stranger, another facilitator, an unknown room: nobody.
    assert selectors.viewer_for(room_id=room.pk, user=anon, member_id=zed.pk) is None
    assert selectors.viewer_for(room_id=room.pk, user=anon, member_id=None) is None
    assert selectors.viewer_for(room_id=room.pk, user=other_facilitator, member_id=None) is None
    assert selectors.viewer_for(room_id=room.pk + 99, user=facilitator, member_id=None) is None


def test_visible_drafts_by_phase(room, facilitator):
    teams = build_teams(room, facilitator)
    advance(room, facilitator, "drafting")
    for name in ("Ana", "Cy"):
        member_draft(teams, name, f"{name}'s argument")
    ana = selectors.Viewer(room=room, member=teams.members["Ana"], is_facilitator=False)
    fac = selectors.Viewer(room=room, member=None, is_facilitator=True)
    texts = lambda v: sorted(d.text for d in selectors.visible_drafts(viewer=v))  # noqa: E731
    assert texts(ana) == ["Ana's argument"]
    assert texts(fac) == ["Ana's argument", "Cy's argument"]
    for phase in ("review", "recommendation"):
        advance(room, facilitator, phase)
        assert texts(
            selectors.Viewer(room=room, member=teams.members["Ana"], is_facilitator=False)
        ) == ["Ana's argument", "Cy's argument"]

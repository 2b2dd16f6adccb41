"""The facilitator console's services: moderation, mute/remove/re-admit, feedback, lock,
announcements, server-time timers, switching sides, assignment methods, co-facilitators and
anonymous rooms.

Every refusal asserts that nothing changed: every console field of every row, and the rooms'
sequence numbers (`refused`). The room (tests/debate/conftest.py) has Ana and Ben on "open
weights", Cy on "API only" and Dee on "restricted".
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone

from debate import events, selectors, services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import AssignmentMethod, Draft, Feedback, Member, Phase, Room
from tests.conftest import join
from tests.debate.conftest import (
    API,
    OPEN,
    RESTRICTED,
    Teams,
    advance,
    build_teams,
    complete_recommendation,
    db_state,
    member_draft,
)

pytestmark = pytest.mark.django_db

ANON = AnonymousUser()


# --- helpers --------------------------------------------------------------------------------


def console_state() -> dict[str, Any]:
    """db_state() plus every field the console can change."""
    return {
        **db_state(),
        "room_console": sorted(
            Room.objects.values_list(
                "pk",
                "editing_locked",
                "announcement",
                "round",
                "timer_ends_at",
                "timer_remaining",
                "timer_auto_advance",
                "assignment_method",
                "choice_cap",
                "anonymous",
            )
        ),
        "member_console": sorted(
            Member.objects.values_list("pk", "muted", "removed_at", "code_name", "open_sockets")
        ),
        "draft_console": sorted(
            Draft.objects.values_list("pk", "hidden", "needs_source", "round", "position_id")
        ),
        "feedback": sorted(Feedback.objects.values_list("pk", "draft_id", "author_id", "text")),
        "cofacilitators": sorted(
            Room.cofacilitators.through.objects.values_list("room_id", "user_id")
        ),
    }


def refused(exc_type, fn: Callable[..., Any], /, *args, err_code: str | None = None, **kwargs):
    """Call `fn(*args, **kwargs)`, which must refuse with `exc_type` (and `err_code`), changing
    nothing."""
    before = console_state()
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    if err_code is not None:
        assert info.value.code == err_code, info.value.as_payload()
    assert console_state() == before
    return info.value


def seq_of(room: Room) -> int:
    return Room.objects.get(pk=room.pk).seq


def fresh(room: Room) -> Room:
    return Room.objects.get(pk=room.pk)


def save(teams: Teams, name: str, text: str, *, base_version: int = 0, slot: int = 1, cid=None):
    return services.draft_save(
        room_id=teams.room.pk,
        actor=ANON,
        member_id=teams.members[name].pk,
        client_id=cid or f"{name}-{slot}-{base_version}-{text[:10]}",
        text=text,
        base_version=base_version,
        kind="argument",
        slot=slot,
    )


@pytest.fixture
def drafts(drafting) -> dict[str, int]:
    """Ana's and Cy's first arguments, by author name."""
    return {
        "Ana": member_draft(drafting, "Ana", "Published weights cannot be recalled.").id,
        "Cy": member_draft(drafting, "Cy", "An API can be switched off overnight.").id,
    }


@pytest.fixture
def foreign(scenario, facilitator) -> tuple[Teams, int]:
    """A second room of the SAME facilitator, in drafting, with members and a draft: its ids
    must not reach into the first room even though the actor facilitates both."""
    room = services.room_create(owner=facilitator, scenario=scenario, title="Period 5")
    teams = build_teams(room, facilitator)
    advance(room, facilitator, "drafting")
    draft_id = member_draft(teams, "Ana", "Another room's argument").id
    return teams.refresh(), draft_id


def close_room(teams: Teams) -> None:
    advance(teams.room, teams.facilitator, "review", "recommendation")
    complete_recommendation(teams.room, teams.facilitator, teams.pos(RESTRICTED))
    advance(teams.room, teams.facilitator, "closed")


# Every console service with valid arguments for the room of `drafting` + `drafts`.
CONSOLE_CALLS: dict[str, Callable[[Teams, dict[str, int]], tuple[Callable, dict]]] = {
    "member_mute": lambda t, d: (
        services.member_mute,
        {"member_id": t.members["Cy"].pk, "muted": True},
    ),
    "member_remove": lambda t, d: (services.member_remove, {"member_id": t.members["Cy"].pk}),
    "member_readmit": lambda t, d: (services.member_readmit, {"member_id": t.members["Cy"].pk}),
    "draft_moderate": lambda t, d: (services.draft_moderate, {"draft_id": d["Cy"], "hidden": True}),
    "feedback_add": lambda t, d: (
        services.feedback_add,
        {"draft_id": d["Cy"], "text": "Tie this to the model in front of you."},
    ),
    "editing_lock": lambda t, d: (services.editing_lock, {"locked": True}),
    "announcement_set": lambda t, d: (services.announcement_set, {"text": "Five minutes left"}),
    "timer_control": lambda t, d: (services.timer_control, {"action": "start", "seconds": 60}),
    "round_switch": lambda t, d: (services.round_switch, {}),
    "room_configure": lambda t, d: (services.room_configure, {"assignment_method": "manual"}),
    "cofacilitator_add": lambda t, d: (services.cofacilitator_add, {"username": "mr.okafor"}),
}


# --- every console service: who, which room, closed rooms -----------------------------------


@pytest.mark.parametrize("who", ["member", "facilitator_of_another_room", "cofac_elsewhere"])
@pytest.mark.parametrize("name", CONSOLE_CALLS)
def test_console_services_are_for_this_rooms_facilitators_only(
    drafting, drafts, name, who, other_facilitator, scenario
):
    elsewhere = services.room_create(owner=other_facilitator, scenario=scenario)
    if who == "member":
        actor = ANON  # members have no account: their sockets carry an anonymous user
    elif who == "facilitator_of_another_room":
        actor = other_facilitator
    else:  # a co-facilitator of another room of the same owner
        actor = get_user_model().objects.create_user(username="ms.third", password="x-Pw-4242")
        mine = services.room_create(owner=drafting.facilitator, scenario=scenario)
        services.cofacilitator_add(room_id=mine.pk, actor=drafting.facilitator, username="ms.third")
        services.cofacilitator_add(
            room_id=elsewhere.pk, actor=other_facilitator, username="ms.third"
        )
    fn, kwargs = CONSOLE_CALLS[name](drafting, drafts)
    if name == "round_switch":
        advance(drafting.room, drafting.facilitator, "review")  # its own phase: only the role fails
    refused(Forbidden, fn, room_id=drafting.room.pk, actor=actor, **kwargs)


@pytest.mark.parametrize("name", CONSOLE_CALLS)
def test_console_services_refuse_a_closed_room(drafting, drafts, name):
    close_room(drafting)
    fn, kwargs = CONSOLE_CALLS[name](drafting, drafts)
    refused(WrongPhase, fn, room_id=drafting.room.pk, actor=drafting.facilitator, **kwargs)


@pytest.mark.parametrize("name", CONSOLE_CALLS)
def test_console_services_refuse_an_unknown_room(drafting, drafts, name):
    fn, kwargs = CONSOLE_CALLS[name](drafting, drafts)
    refused(NotFound, fn, room_id=drafting.room.pk + 999, actor=drafting.facilitator, **kwargs)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("member_mute", "member_id"),
        ("member_remove", "member_id"),
        ("member_readmit", "member_id"),
        ("draft_moderate", "draft_id"),
        ("feedback_add", "draft_id"),
    ],
)
def test_another_rooms_ids_are_not_found(drafting, drafts, foreign, name, field):
    other, other_draft = foreign
    fn, kwargs = CONSOLE_CALLS[name](drafting, drafts)
    kwargs[field] = other.members["Cy"].pk if field == "member_id" else other_draft
    if name == "member_readmit":  # so that a wrong hit would change something
        Member.objects.filter(pk=kwargs[field]).update(removed_at=timezone.now())
    err = refused(NotFound, fn, room_id=drafting.room.pk, actor=drafting.facilitator, **kwargs)
    assert err.details["field"] == field
    # The same id is fine in its own room: the facilitator owns both.
    fn(room_id=other.room.pk, actor=drafting.facilitator, **kwargs)


BAD_ARGUMENTS = [
    ("member_mute", {"muted": "yes"}),
    ("member_mute", {"muted": 1}),
    ("member_mute", {"muted": None}),
    ("member_mute", {"member_id": "7"}),
    ("member_mute", {"member_id": True}),
    ("member_mute", {"member_id": None}),
    ("member_remove", {"member_id": "7"}),
    ("member_remove", {"member_id": 7.0}),
    ("member_readmit", {"member_id": [7]}),
    ("draft_moderate", {"hidden": "true"}),
    ("draft_moderate", {"hidden": 1}),
    ("draft_moderate", {"hidden": None, "needs_source": "no"}),
    ("draft_moderate", {"hidden": True, "needs_source": 0}),  # one bad field: nothing applied
    ("draft_moderate", {"draft_id": "1"}),
    ("draft_moderate", {"draft_id": False}),
    ("feedback_add", {"text": None}),
    ("feedback_add", {"text": 42}),
    ("feedback_add", {"text": ""}),
    ("feedback_add", {"text": "  \n "}),
    ("feedback_add", {"text": "x" * 501}),
    ("feedback_add", {"draft_id": None}),
    ("editing_lock", {"locked": "true"}),
    ("editing_lock", {"locked": 0}),
    ("editing_lock", {"locked": None}),
    ("announcement_set", {"text": None}),
    ("announcement_set", {"text": ["hi"]}),
    ("announcement_set", {"text": "x" * 281}),
    ("timer_control", {"action": "begin"}),
    ("timer_control", {"action": None}),
    ("timer_control", {"action": "start", "seconds": None}),
    ("timer_control", {"action": "start", "seconds": 0}),
    ("timer_control", {"action": "start", "seconds": -5}),
    ("timer_control", {"action": "start", "seconds": 4 * 3600 + 1}),
    ("timer_control", {"action": "start", "seconds": "60"}),
    ("timer_control", {"action": "start", "seconds": 60.0}),
    ("timer_control", {"action": "start", "seconds": True}),
    ("timer_control", {"action": "start", "seconds": 60, "auto_advance": "no"}),
    ("timer_control", {"action": "start", "seconds": 60, "auto_advance": 1}),
    ("room_configure", {"assignment_method": "alphabetical"}),
    ("room_configure", {"assignment_method": None}),
    ("room_configure", {"assignment_method": "choice", "choice_cap": 0}),
    ("room_configure", {"assignment_method": "choice", "choice_cap": "3"}),
    ("room_configure", {"assignment_method": "choice", "choice_cap": True}),
    ("cofacilitator_add", {"username": None}),
    ("cofacilitator_add", {"username": ""}),
    ("cofacilitator_add", {"username": "   "}),
    ("cofacilitator_add", {"username": 5}),
]


@pytest.mark.parametrize(("name", "changes"), BAD_ARGUMENTS)
def test_bad_arguments_are_invalid_and_change_nothing(teams, name, changes):
    # In the lobby (room_configure's phase); a draft for the draft services is written directly.
    draft = Draft.objects.create(
        room=teams.room,
        author=teams.members["Cy"],
        position=teams.pos(API),
        kind="argument",
        slot=1,
        text="The API can be switched off.",
    )
    fn, kwargs = CONSOLE_CALLS[name](teams, {"Cy": draft.pk})
    err = refused(
        Invalid, fn, room_id=teams.room.pk, actor=teams.facilitator, **{**kwargs, **changes}
    )
    assert err.message
    assert err.code in {"invalid", "required", "too_long"}


# --- mute -----------------------------------------------------------------------------------


def test_member_mute_and_unmute(drafting, broadcasts):
    cy, room = drafting.members["Cy"], drafting.room
    seq = seq_of(room)
    muted = broadcasts(
        services.member_mute,
        room_id=room.pk,
        actor=drafting.facilitator,
        member_id=cy.pk,
        muted=True,
    )
    assert muted.pk == cy.pk and muted.muted is True
    cy.refresh_from_db()
    assert cy.muted is True
    assert seq_of(room) == seq + 1
    event = {"type": "member.muted", "seq": seq + 1, "member_id": cy.pk, "muted": True}
    tick = {"type": "tick", "seq": seq + 1}
    # The member and the facilitators; every team (the member's own included) gets a tick.
    assert broadcasts.to(events.group_member(room.pk, cy.pk)) == [event]
    assert broadcasts.to(events.group_facilitators(room.pk)) == [event]
    for position in drafting.positions.values():
        assert broadcasts.to(events.group_team(room.pk, position.pk)) == [tick]
    assert broadcasts.to(events.group_room(room.pk)) == []

    # Muting again changes nothing and sends nothing.
    before = console_state()
    broadcasts(
        services.member_mute,
        room_id=room.pk,
        actor=drafting.facilitator,
        member_id=cy.pk,
        muted=True,
    )
    assert console_state() == before
    assert broadcasts.sent == []

    # A muted member reads but does not write.
    refused(Forbidden, save, drafting, "Cy", "Let me write", err_code="muted")
    services.member_mute(room_id=room.pk, actor=drafting.facilitator, member_id=cy.pk, muted=False)
    assert fresh(room).seq == seq + 2
    assert save(drafting, "Cy", "Let me write").version == 1


def test_muted_member_sees_it_in_their_snapshot(drafting):
    cy = drafting.members["Cy"]
    services.member_mute(
        room_id=drafting.room.pk, actor=drafting.facilitator, member_id=cy.pk, muted=True
    )
    viewer = selectors.viewer_for(room_id=drafting.room.pk, user=ANON, member_id=cy.pk)
    snapshot = selectors.room_snapshot(viewer=viewer)
    assert snapshot["me"]["muted"] is True
    assert {m["display_name"]: m["muted"] for m in snapshot["members"]}["Cy"] is True


# --- remove / re-admit ----------------------------------------------------------------------


def test_member_remove_and_readmit(drafting, drafts, broadcasts):
    dee, room = drafting.members["Dee"], drafting.room
    Member.objects.filter(pk=dee.pk).update(open_sockets=2, last_seen=timezone.now())
    member_draft(drafting, "Dee", "Vetted researchers can be held to account.")
    seq = seq_of(room)

    broadcasts(
        services.member_remove, room_id=room.pk, actor=drafting.facilitator, member_id=dee.pk
    )
    dee.refresh_from_db()
    assert dee.removed_at is not None
    assert dee.open_sockets == 0
    assert seq_of(room) == seq + 1
    assert broadcasts.sent == [
        (
            events.group_room(room.pk),
            {"type": "member.removed", "seq": seq + 1, "member_id": dee.pk},
        )
    ]
    # Their drafts stay in the record; they can no longer write or choose.
    assert Draft.objects.filter(author=dee).count() == 1
    refused(Forbidden, save, drafting, "Dee", "Still here?", slot=2)
    viewer = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=dee.pk)
    assert viewer is not None and viewer.is_removed

    # Removing again changes nothing.
    before = console_state()
    services.member_remove(room_id=room.pk, actor=drafting.facilitator, member_id=dee.pk)
    assert console_state() == before

    broadcasts(
        services.member_readmit, room_id=room.pk, actor=drafting.facilitator, member_id=dee.pk
    )
    dee.refresh_from_db()
    assert dee.removed_at is None
    assert seq_of(room) == seq + 2
    ((group, event),) = broadcasts.sent
    assert group == events.group_room(room.pk)
    assert event["type"] == "member.readmitted"
    assert event["member"]["id"] == dee.pk
    assert event["member"]["display_name"] == "Dee"
    assert event["member"]["removed"] is False
    assert save(drafting, "Dee", "Back again", slot=2).version == 1

    # Re-admitting someone who was never removed changes nothing.
    before = console_state()
    services.member_readmit(room_id=room.pk, actor=drafting.facilitator, member_id=dee.pk)
    assert console_state() == before


def test_removed_members_do_not_count_for_balancing(drafting):
    for name in ("Ana", "Ben"):
        services.member_remove(
            room_id=drafting.room.pk,
            actor=drafting.facilitator,
            member_id=drafting.members[name].pk,
        )
    # Open weights now has nobody present: the late joiner goes there.
    late = join(drafting.room, "Eve")
    assert late.position_id == drafting.pos(OPEN).pk


# --- moderation -----------------------------------------------------------------------------


def test_hide_during_drafting_goes_to_the_team_without_text(drafting, drafts, broadcasts):
    room, ana = drafting.room, drafting.members["Ana"]
    seq = seq_of(room)
    draft = broadcasts(
        services.draft_moderate,
        room_id=room.pk,
        actor=drafting.facilitator,
        draft_id=drafts["Ana"],
        hidden=True,
    )
    assert draft.hidden is True
    assert Draft.objects.get(pk=drafts["Ana"]).hidden is True
    assert seq_of(room) == seq + 2
    team_open = events.group_team(room.pk, drafting.pos(OPEN).pk)
    moderated = broadcasts.to(team_open)[0]
    assert moderated["type"] == "draft.moderated" and moderated["seq"] == seq + 1
    assert "text" not in moderated["draft"]
    assert moderated["draft"]["hidden"] is True
    # The facilitators get the text; the author also gets it back in a draft.updated.
    fac = broadcasts.to(events.group_facilitators(room.pk))
    assert [e["type"] for e in fac] == ["draft.moderated", "draft.updated"]
    assert all(e["draft"]["text"] == "Published weights cannot be recalled." for e in fac)
    (own,) = broadcasts.to(events.group_member(room.pk, ana.pk))
    assert own["type"] == "draft.updated" and own["seq"] == seq + 2
    assert own["draft"]["text"] == "Published weights cannot be recalled."
    assert own["draft"]["hidden"] is True
    # Other teams: ticks only.
    for key in (API, RESTRICTED):
        assert broadcasts.to(events.group_team(room.pk, drafting.pos(key).pk)) == [
            {"type": "tick", "seq": seq + 1},
            {"type": "tick", "seq": seq + 2},
        ]
    assert broadcasts.to(events.group_room(room.pk)) == []
    for group, event in broadcasts.sent:
        if ".team." in group:
            assert "Published weights" not in str(event), group

    # The author may not change a hidden draft.
    refused(Forbidden, save, drafting, "Ana", "Edited anyway", base_version=1, err_code="hidden")

    # Teammates no longer see it; the author and the facilitator do.
    def visible_to(name):
        member = drafting.members[name]
        viewer = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=member.pk)
        return set(selectors.visible_drafts(viewer=viewer).values_list("pk", flat=True))

    assert drafts["Ana"] not in visible_to("Ben")
    assert drafts["Ana"] in visible_to("Ana")

    # Showing it again sends the text to the team.
    broadcasts(
        services.draft_moderate,
        room_id=room.pk,
        actor=drafting.facilitator,
        draft_id=drafts["Ana"],
        hidden=False,
    )
    (shown,) = broadcasts.to(team_open)
    assert shown["draft"]["text"] == "Published weights cannot be recalled."
    assert drafts["Ana"] in visible_to("Ben")
    assert save(drafting, "Ana", "Edited now", base_version=1).version == 2


def test_hide_after_drafting_goes_to_the_whole_room(drafting, drafts, broadcasts):
    advance(drafting.room, drafting.facilitator, "review")
    room = drafting.room
    broadcasts(
        services.draft_moderate,
        room_id=room.pk,
        actor=drafting.facilitator,
        draft_id=drafts["Cy"],
        hidden=True,
    )
    # Every team gets the (textless) moderation; nobody gets a bare tick for it.
    for position in drafting.positions.values():
        received = broadcasts.to(events.group_team(room.pk, position.pk))
        assert received[0]["type"] == "draft.moderated"
        assert "text" not in received[0]["draft"]


def test_needs_source_flag_and_no_op(drafting, drafts):
    room = drafting.room
    seq = seq_of(room)
    services.draft_moderate(
        room_id=room.pk, actor=drafting.facilitator, draft_id=drafts["Cy"], needs_source=True
    )
    draft = Draft.objects.get(pk=drafts["Cy"])
    assert (draft.needs_source, draft.hidden, draft.text) == (
        True,
        False,
        "An API can be switched off overnight.",
    )
    assert seq_of(room) == seq + 1
    before = console_state()
    services.draft_moderate(
        room_id=room.pk, actor=drafting.facilitator, draft_id=drafts["Cy"], needs_source=True
    )
    services.draft_moderate(room_id=room.pk, actor=drafting.facilitator, draft_id=drafts["Cy"])
    assert console_state() == before


# --- feedback -------------------------------------------------------------------------------


def test_feedback_add(drafting, drafts, broadcasts):
    room = drafting.room
    seq = seq_of(room)
    feedback = broadcasts(
        services.feedback_add,
        room_id=room.pk,
        actor=drafting.facilitator,
        draft_id=drafts["Ana"],
        text="  Too general: tie it to this model.  ",
    )
    stored = Feedback.objects.get()
    assert stored.pk == feedback.pk
    assert (stored.draft_id, stored.author, stored.text) == (
        drafts["Ana"],
        drafting.facilitator,
        "Too general: tie it to this model.",
    )
    assert seq_of(room) == seq + 1
    event = broadcasts.to(events.group_team(room.pk, drafting.pos(OPEN).pk))[0]
    assert event["type"] == "draft.feedback"
    assert event["feedback"]["text"] == "Too general: tie it to this model."
    assert broadcasts.to(events.group_facilitators(room.pk)) == [event]
    for key in (API, RESTRICTED):
        assert broadcasts.to(events.group_team(room.pk, drafting.pos(key).pk)) == [
            {"type": "tick", "seq": seq + 1}
        ]
    # A note of exactly the limit is fine.
    services.feedback_add(
        room_id=room.pk, actor=drafting.facilitator, draft_id=drafts["Ana"], text="x" * 500
    )
    assert Feedback.objects.count() == 2


def test_feedback_on_a_hidden_draft_reaches_its_author_only(drafting, drafts, broadcasts):
    room, ana = drafting.room, drafting.members["Ana"]
    services.draft_moderate(
        room_id=room.pk, actor=drafting.facilitator, draft_id=drafts["Ana"], hidden=True
    )
    broadcasts(
        services.feedback_add,
        room_id=room.pk,
        actor=drafting.facilitator,
        draft_id=drafts["Ana"],
        text="Hidden until you remove the name.",
    )
    (event,) = broadcasts.to(events.group_member(room.pk, ana.pk))
    assert event["type"] == "draft.feedback"
    assert broadcasts.to(events.group_team(room.pk, drafting.pos(OPEN).pk)) == [
        {"type": "tick", "seq": event["seq"]}
    ]
    ben = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=drafting.members["Ben"].pk)
    own = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=ana.pk)
    assert not selectors.visible_feedback(viewer=ben).exists()
    assert selectors.visible_feedback(viewer=own).count() == 1


# --- lock and announcements -----------------------------------------------------------------


def test_editing_lock_stops_every_save_until_unlocked(drafting, drafts, broadcasts):
    room = drafting.room
    seq = seq_of(room)
    broadcasts(services.editing_lock, room_id=room.pk, actor=drafting.facilitator, locked=True)
    assert fresh(room).editing_locked is True
    assert seq_of(room) == seq + 1
    ((group, event),) = broadcasts.sent
    assert group == events.group_room(room.pk)
    assert event["type"] == "room.settings"
    assert event["settings"]["editing_locked"] is True

    refused(WrongPhase, save, drafting, "Ben", "While locked", err_code="locked")
    refused(
        WrongPhase,
        services.draft_save,
        err_code="locked",
        room_id=room.pk,
        actor=drafting.facilitator,
        member_id=None,
        client_id="fac-1",
        text="Facilitator edit while locked",
        base_version=1,
        draft_id=drafts["Cy"],
    )
    before = console_state()
    services.editing_lock(room_id=room.pk, actor=drafting.facilitator, locked=True)
    assert console_state() == before

    services.editing_lock(room_id=room.pk, actor=drafting.facilitator, locked=False)
    assert fresh(room).editing_locked is False
    assert save(drafting, "Ben", "Unlocked").version == 1


def test_announcement_set_and_clear(drafting):
    room = drafting.room
    seq = seq_of(room)
    services.announcement_set(
        room_id=room.pk, actor=drafting.facilitator, text="  Five minutes left \r\n"
    )
    assert fresh(room).announcement == "Five minutes left"
    assert seq_of(room) == seq + 1
    before = console_state()
    services.announcement_set(room_id=room.pk, actor=drafting.facilitator, text="Five minutes left")
    assert console_state() == before
    services.announcement_set(room_id=room.pk, actor=drafting.facilitator, text="x" * 280)
    assert len(fresh(room).announcement) == 280
    services.announcement_set(room_id=room.pk, actor=drafting.facilitator, text="")
    assert fresh(room).announcement == ""
    assert seq_of(room) == seq + 3


# --- timers ---------------------------------------------------------------------------------


def timer(room: Room, action: str, **kwargs) -> tuple[Room, Any, Any]:
    """Run a timer action; returns the room as stored, and the clock just before and after."""
    before = timezone.now()
    services.timer_control(room_id=room.pk, actor=room.owner, action=action, **kwargs)
    after = timezone.now()
    return fresh(room), before, after


def move_deadline(room: Room, seconds_from_now: float) -> None:
    """Time passing, without sleeping: the stored deadline moves instead."""
    Room.objects.filter(pk=room.pk).update(
        timer_ends_at=timezone.now() + timedelta(seconds=seconds_from_now)
    )


def test_timer_start_pause_resume_extend_clear(drafting):
    room = drafting.room
    seq = seq_of(room)

    stored, t0, t1 = timer(room, "start", seconds=90, auto_advance=True)
    assert t0 + timedelta(seconds=90) <= stored.timer_ends_at <= t1 + timedelta(seconds=90)
    assert (stored.timer_remaining, stored.timer_auto_advance) == (None, True)
    assert stored.seq == seq + 1
    payload = selectors.timer_payload(stored)
    assert payload["running"] is True
    assert payload["ends_at"] == stored.timer_ends_at.isoformat()

    ends_at = stored.timer_ends_at
    stored, t0, t1 = timer(room, "extend", seconds=30)
    assert stored.timer_ends_at == ends_at + timedelta(seconds=30)  # running: added to the end

    ends_at = stored.timer_ends_at
    stored, t0, t1 = timer(room, "pause")
    assert stored.timer_ends_at is None
    assert ends_at - t1 <= stored.timer_remaining <= ends_at - t0
    assert timedelta(seconds=119) < stored.timer_remaining <= timedelta(seconds=120)
    assert stored.timer_auto_advance is True
    assert selectors.timer_payload(stored)["running"] is False

    remaining = stored.timer_remaining
    stored, t0, t1 = timer(room, "extend", seconds=15)
    assert stored.timer_remaining == remaining + timedelta(seconds=15)  # paused: added to the rest
    assert stored.timer_ends_at is None

    remaining = stored.timer_remaining
    stored, t0, t1 = timer(room, "resume")
    assert t0 + remaining <= stored.timer_ends_at <= t1 + remaining
    assert stored.timer_remaining is None

    stored, t0, t1 = timer(room, "clear")
    assert (stored.timer_ends_at, stored.timer_remaining, stored.timer_auto_advance) == (
        None,
        None,
        False,
    )
    assert stored.seq == seq + 6  # one room.settings per action


def test_timer_extend_after_the_deadline_counts_from_now(drafting):
    room = drafting.room
    timer(room, "start", seconds=60)
    move_deadline(room, -30)
    stored, t0, t1 = timer(room, "extend", seconds=20)
    assert t0 + timedelta(seconds=20) <= stored.timer_ends_at <= t1 + timedelta(seconds=20)


def test_timer_pause_after_the_deadline_keeps_zero(drafting):
    room = drafting.room
    timer(room, "start", seconds=60)
    move_deadline(room, -5)
    stored, _t0, _t1 = timer(room, "pause")
    assert stored.timer_remaining == timedelta(0)


def test_timer_start_replaces_a_paused_timer(drafting):
    room = drafting.room
    timer(room, "start", seconds=60, auto_advance=True)
    timer(room, "pause")
    stored, t0, t1 = timer(room, "start", seconds=10)
    assert t0 + timedelta(seconds=10) <= stored.timer_ends_at <= t1 + timedelta(seconds=10)
    assert stored.timer_remaining is None
    assert stored.timer_auto_advance is False


def test_timer_actions_need_a_timer(drafting):
    room, fac = drafting.room, drafting.facilitator
    for action in ("pause", "resume"):
        refused(Conflict, services.timer_control, err_code="no_timer", room_id=room.pk, actor=fac,
                action=action)  # fmt: skip
    refused(Conflict, services.timer_control, err_code="no_timer", room_id=room.pk, actor=fac,
            action="extend", seconds=30)  # fmt: skip
    timer(room, "start", seconds=60)
    # Resuming a running timer, or pausing a paused one, is refused too.
    refused(Conflict, services.timer_control, err_code="no_timer", room_id=room.pk, actor=fac,
            action="resume")  # fmt: skip
    timer(room, "pause")
    refused(Conflict, services.timer_control, err_code="no_timer", room_id=room.pk, actor=fac,
            action="pause")  # fmt: skip


def test_timer_up_to_four_hours(drafting):
    stored, t0, _t1 = timer(drafting.room, "start", seconds=4 * 3600)
    assert stored.timer_ends_at >= t0 + timedelta(hours=4)


def test_a_phase_change_clears_the_timer(drafting):
    room = drafting.room
    timer(room, "start", seconds=60, auto_advance=True)
    advance(room, drafting.facilitator, "review")
    stored = fresh(room)
    assert (stored.timer_ends_at, stored.timer_remaining, stored.timer_auto_advance) == (
        None,
        None,
        False,
    )
    timer(room, "start", seconds=60)
    timer(room, "pause")
    services.round_switch(room_id=room.pk, actor=drafting.facilitator)
    stored = fresh(room)
    assert (stored.phase, stored.timer_ends_at, stored.timer_remaining) == (
        Phase.DRAFTING,
        None,
        None,
    )
    assert selectors.timer_payload(stored)["running"] is False


def test_timer_expired_before_the_servers_deadline_does_nothing(drafting):
    room = drafting.room
    timer(room, "start", seconds=60, auto_advance=True)
    before = console_state()
    assert services.timer_expired(room_id=room.pk, phase="drafting") is False
    assert console_state() == before


def test_timer_expired_without_a_timer_or_for_another_phase_does_nothing(drafting):
    room = drafting.room
    before = console_state()
    assert services.timer_expired(room_id=room.pk, phase="drafting") is False
    assert console_state() == before
    timer(room, "start", seconds=60, auto_advance=True)
    move_deadline(room, -1)
    before = console_state()
    for phase in ("lobby", "review", "closed", None, 3):
        assert services.timer_expired(room_id=room.pk, phase=phase) is False
    assert console_state() == before
    timer(room, "pause")  # a paused timer does not expire
    before = console_state()
    assert services.timer_expired(room_id=room.pk, phase="drafting") is False
    assert console_state() == before


def test_timer_expired_advances_once_with_auto_advance(drafting):
    room = drafting.room
    timer(room, "start", seconds=60, auto_advance=True)
    move_deadline(room, -0.5)
    seq = seq_of(room)
    results = [services.timer_expired(room_id=room.pk, phase="drafting") for _ in range(6)]
    assert results == [True, False, False, False, False, False]
    stored = fresh(room)
    assert stored.phase == Phase.REVIEW
    assert stored.seq == seq + 1  # one phase.changed, nothing else
    assert (stored.timer_ends_at, stored.timer_remaining, stored.timer_auto_advance) == (
        None,
        None,
        False,
    )


def test_timer_expired_without_auto_advance_stops_at_zero(drafting):
    room = drafting.room
    timer(room, "start", seconds=60)
    move_deadline(room, -0.5)
    seq = seq_of(room)
    assert services.timer_expired(room_id=room.pk, phase="drafting") is False
    stored = fresh(room)
    assert stored.phase == Phase.DRAFTING
    assert (stored.timer_ends_at, stored.timer_remaining) == (None, timedelta(0))
    assert stored.seq == seq + 1  # room.settings: the countdown shows zero everywhere
    before = console_state()
    assert services.timer_expired(room_id=room.pk, phase="drafting") is False
    assert console_state() == before


def test_timer_expired_in_the_lobby_starts_drafting_and_assigns(room, facilitator):
    for name in ("Ana", "Ben", "Cy"):
        join(room, name)
    timer(room, "start", seconds=60, auto_advance=True)
    move_deadline(room, -1)
    assert services.timer_expired(room_id=room.pk, phase="lobby") is True
    assert fresh(room).phase == Phase.DRAFTING
    assert not room.members.filter(position__isnull=True).exists()


def test_timer_expired_never_closes_the_room(drafting):
    room = drafting.room
    advance(room, drafting.facilitator, "review", "recommendation")
    complete_recommendation(room, drafting.facilitator, drafting.pos(API))
    timer(room, "start", seconds=60, auto_advance=True)
    move_deadline(room, -1)
    assert services.timer_expired(room_id=room.pk, phase="recommendation") is False
    stored = fresh(room)
    assert stored.phase == Phase.RECOMMENDATION
    assert stored.closed_at is None
    assert (stored.timer_ends_at, stored.timer_remaining) == (None, timedelta(0))


@pytest.mark.django_db(transaction=True)
def test_timer_expired_reported_at_once_by_many_advances_once(drafting, monkeypatch):
    """Many browsers report the same zero at once: one advance, and no report fails."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks (select_for_update) are PostgreSQL's; SQLite locks the whole file")
    room = drafting.room
    timer(room, "start", seconds=60, auto_advance=True)
    move_deadline(room, -1)
    seq = seq_of(room)
    reporters = 4
    # Hold every report just before it advances, until all have arrived (or 0.5 s has passed):
    # the reports then overlap at the worst moment.
    gate = threading.Barrier(reporters)
    real_advance = services.phase_advance

    def held_advance(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait(timeout=0.5)
        return real_advance(**kwargs)

    monkeypatch.setattr(services, "phase_advance", held_advance)
    results: list[Any] = []

    def report():
        try:
            results.append(services.timer_expired(room_id=room.pk, phase="drafting"))
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(reporters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results, key=repr) == [False] * (reporters - 1) + [True], results
    stored = fresh(room)
    assert stored.phase == Phase.REVIEW
    assert stored.seq == seq + 1


# --- switching sides ------------------------------------------------------------------------


def test_round_switch_rotates_everyone_and_starts_round_two(drafting, drafts):
    room, fac = drafting.room, drafting.facilitator
    advance(room, fac, "review")
    round_one = {
        d.pk: (d.text, d.position_id, d.round, d.version) for d in Draft.objects.filter(room=room)
    }
    seq = seq_of(room)
    switched = services.round_switch(room_id=room.pk, actor=fac)
    assert (switched.round, switched.phase) == (2, Phase.DRAFTING)
    drafting.refresh()
    following = {OPEN: API, API: RESTRICTED, RESTRICTED: OPEN}
    for name, key in {"Ana": OPEN, "Ben": OPEN, "Cy": API, "Dee": RESTRICTED}.items():
        assert drafting.members[name].position_id == drafting.pos(following[key]).pk, name
    stored = fresh(room)
    assert (stored.round, stored.phase) == (2, Phase.DRAFTING)
    assert stored.seq == seq + 4 + 2  # one member.moved each, room.settings, phase.changed
    # The first round's drafts are untouched.
    assert {
        d.pk: (d.text, d.position_id, d.round, d.version) for d in Draft.objects.filter(room=room)
    } == round_one

    # Ana writes slot 1 again: a new draft of round 2, for her new position.
    result = save(drafting, "Ana", "Usage can be watched for abuse.")
    new = Draft.objects.get(pk=result.id)
    assert result.id not in round_one
    assert (new.round, new.position_id, new.version) == (2, drafting.pos(API).pk, 1)
    assert Draft.objects.get(pk=drafts["Ana"]).text == "Published weights cannot be recalled."
    # The record keeps both rounds.
    record = selectors.record_data(room=fresh(room), audience="facilitator")
    rounds = Counter(
        r["round"] for p in record["positions"] for r in p["rounds"] for _ in r["arguments"]
    )
    assert rounds == {1: 2, 2: 1}


def test_round_switch_leaves_removed_and_unassigned_members(drafting):
    room, fac = drafting.room, drafting.facilitator
    dee = drafting.members["Dee"]
    services.member_remove(room_id=room.pk, actor=fac, member_id=dee.pk)
    loner = Member.objects.create(room=room, display_name="Loner", position=None)
    advance(room, fac, "review")
    services.round_switch(room_id=room.pk, actor=fac)
    dee.refresh_from_db()
    loner.refresh_from_db()
    assert dee.position_id == drafting.pos(RESTRICTED).pk
    assert loner.position_id is None


@pytest.mark.parametrize("phases", [(), ("review", "recommendation")])
def test_round_switch_only_after_the_review(drafting, phases):
    advance(drafting.room, drafting.facilitator, *phases)
    err = refused(
        WrongPhase,
        services.round_switch,
        room_id=drafting.room.pk,
        actor=drafting.facilitator,
    )
    assert err.details["phase"] == fresh(drafting.room).phase


def test_round_switch_in_the_lobby_is_refused(teams):
    refused(WrongPhase, services.round_switch, room_id=teams.room.pk, actor=teams.facilitator)


# --- room options and assignment methods ----------------------------------------------------


def test_room_create_options(scenario, facilitator):
    room = services.room_create(
        owner=facilitator,
        scenario=scenario,
        anonymous=True,
        assignment_method="choice",
        choice_cap=2,
    )
    assert (room.anonymous, room.assignment_method, room.choice_cap) == (True, "choice", 2)
    # The cap belongs to the choice method only.
    room = services.room_create(
        owner=facilitator, scenario=scenario, assignment_method="random", choice_cap=2
    )
    assert (room.anonymous, room.assignment_method, room.choice_cap) == (False, "random", None)


@pytest.mark.parametrize(
    "options",
    [
        {"assignment_method": "alphabetical"},
        {"assignment_method": None},
        {"assignment_method": "choice", "choice_cap": 0},
        {"assignment_method": "choice", "choice_cap": -1},
        {"assignment_method": "choice", "choice_cap": "3"},
        {"assignment_method": "choice", "choice_cap": True},
    ],
)
def test_room_create_bad_options(scenario, facilitator, options):
    with pytest.raises(Invalid):
        services.room_create(owner=facilitator, scenario=scenario, **options)
    assert not Room.objects.exists()


def joined(room: Room, *names: str) -> list[Member]:
    return [join(room, name) for name in names]


def positions_of(members: list[Member]) -> list[str | None]:
    out = []
    for member in members:
        member.refresh_from_db()
        out.append(member.position.key if member.position else None)
    return out


def test_balanced_assignment_follows_the_join_order(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, assignment_method="balanced")
    members = joined(room, "M1", "M2", "M3", "M4", "M5")
    assert positions_of(members) == [None] * 5
    advance(room, facilitator, "drafting")
    assert positions_of(members) == [OPEN, API, RESTRICTED, OPEN, API]
    late = join(room, "M6")  # joins the smallest team
    assert late.position.key == RESTRICTED


def test_random_assignment_is_still_balanced(scenario, facilitator):
    layouts = set()
    for seed in range(6):
        room = services.room_create(
            owner=facilitator, scenario=scenario, assignment_method="random"
        )
        members = joined(room, *(f"M{i}" for i in range(7)))
        services.positions_assign(room_id=room.pk, actor=facilitator, seed=seed)
        keys = positions_of(members)
        assert sorted(Counter(keys).values()) == [2, 2, 3], keys
        layouts.add(tuple(keys))
    assert len(layouts) > 1  # not the join order every time


def test_random_assignment_on_entering_drafting(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, assignment_method="random")
    members = joined(room, *(f"M{i}" for i in range(8)))
    advance(room, facilitator, "drafting")
    assert sorted(Counter(positions_of(members)).values()) == [2, 3, 3]


def test_manual_assignment_leaves_members_unassigned(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, assignment_method="manual")
    members = joined(room, "M1", "M2", "M3")
    advance(room, facilitator, "drafting")
    assert positions_of(members) == [None, None, None]
    late = join(room, "M4")
    assert late.position_id is None
    # The facilitator places them.
    api = scenario.positions.get(key=API)
    services.member_move(room_id=room.pk, actor=facilitator, member_id=late.pk, position_id=api.pk)
    assert positions_of([late]) == [API]
    # A member cannot place themselves.
    refused(
        Forbidden,
        services.position_choose,
        err_code="not_choice",
        room_id=room.pk,
        member_id=members[0].pk,
        position_id=api.pk,
    )


@pytest.mark.parametrize("method", ["balanced", "random", "manual"])
def test_position_choose_only_in_choice_rooms(scenario, facilitator, method):
    room = services.room_create(owner=facilitator, scenario=scenario, assignment_method=method)
    (member,) = joined(room, "Ana")
    refused(
        Forbidden,
        services.position_choose,
        err_code="not_choice",
        room_id=room.pk,
        member_id=member.pk,
        position_id=scenario.positions.get(key=OPEN).pk,
    )


@pytest.fixture
def choice_room(scenario, facilitator) -> Room:
    return services.room_create(
        owner=facilitator, scenario=scenario, assignment_method="choice", choice_cap=2
    )


def test_position_choose_up_to_the_cap(choice_room, positions):
    room = choice_room
    ana, ben, cy, dee = joined(room, "Ana", "Ben", "Cy", "Dee")
    open_id, api_id = positions[OPEN].pk, positions[API].pk
    seq = seq_of(room)
    chosen = services.position_choose(room_id=room.pk, member_id=ana.pk, position_id=open_id)
    assert chosen.position_id == open_id
    assert seq_of(room) == seq + 1
    services.position_choose(room_id=room.pk, member_id=ben.pk, position_id=open_id)
    err = refused(
        Conflict,
        services.position_choose,
        err_code="position_full",
        room_id=room.pk,
        member_id=cy.pk,
        position_id=open_id,
    )
    assert "2" in err.message
    # Choosing the same position again changes nothing; another one is fine in the lobby.
    before = console_state()
    services.position_choose(room_id=room.pk, member_id=ana.pk, position_id=open_id)
    assert console_state() == before
    services.position_choose(room_id=room.pk, member_id=ana.pk, position_id=api_id)
    services.position_choose(room_id=room.pk, member_id=cy.pk, position_id=open_id)
    assert positions_of([ana, ben, cy]) == [API, OPEN, OPEN]
    # A removed member's seat is free again.
    services.member_remove(room_id=room.pk, actor=room.owner, member_id=ben.pk)
    services.position_choose(room_id=room.pk, member_id=dee.pk, position_id=open_id)
    assert positions_of([dee]) == [OPEN]
    refused(
        Forbidden,
        services.position_choose,
        room_id=room.pk,
        member_id=ben.pk,
        position_id=api_id,
    )


def test_position_choose_refusals(choice_room, positions, other_scenario_position):
    room = choice_room
    ana, ben = joined(room, "Ana", "Ben")
    open_id = positions[OPEN].pk
    refused(Forbidden, services.position_choose, room_id=room.pk, member_id=None,
            position_id=open_id)  # fmt: skip
    refused(Invalid, services.position_choose, room_id=room.pk, member_id=ana.pk,
            position_id="1")  # fmt: skip
    refused(NotFound, services.position_choose, room_id=room.pk, member_id=ana.pk,
            position_id=other_scenario_position.pk)  # fmt: skip
    services.member_mute(room_id=room.pk, actor=room.owner, member_id=ben.pk, muted=True)
    refused(Forbidden, services.position_choose, err_code="muted", room_id=room.pk,
            member_id=ben.pk, position_id=open_id)  # fmt: skip
    # Drafting: only a member without a position still chooses; in review nobody does.
    services.position_choose(room_id=room.pk, member_id=ana.pk, position_id=open_id)
    advance(room, room.owner, "drafting")
    refused(WrongPhase, services.position_choose, room_id=room.pk, member_id=ana.pk,
            position_id=positions[API].pk)  # fmt: skip
    late = join(room, "Late")
    assert late.position_id is None  # choice rooms do not place late joiners
    services.position_choose(room_id=room.pk, member_id=late.pk, position_id=positions[API].pk)
    advance(room, room.owner, "review")
    refused(WrongPhase, services.position_choose, room_id=room.pk, member_id=late.pk,
            position_id=open_id)  # fmt: skip


@pytest.fixture
def other_scenario_position(db):
    scenario = services.scenario_install(
        data={
            "slug": "school-uniforms",
            "title": "School uniforms",
            "question": "Should the school require uniforms?",
            "briefing": "A test scenario.",
            "positions": [
                {"key": "yes", "name": "Yes", "short_name": "Yes", "summary": "Require them."},
                {"key": "no", "name": "No", "short_name": "No", "summary": "Do not."},
            ],
        }
    )
    return scenario.positions.get(key="yes")


def test_room_configure_in_the_lobby(teams):
    room, fac = teams.room, teams.facilitator
    seq = seq_of(room)
    services.room_configure(room_id=room.pk, actor=fac, assignment_method="choice", choice_cap=3)
    stored = fresh(room)
    assert (stored.assignment_method, stored.choice_cap, stored.seq) == ("choice", 3, seq + 1)
    services.room_configure(room_id=room.pk, actor=fac, assignment_method="manual", choice_cap=3)
    stored = fresh(room)
    assert (stored.assignment_method, stored.choice_cap) == ("manual", None)
    services.room_configure(room_id=room.pk, actor=fac, assignment_method="choice")
    assert fresh(room).choice_cap is None  # no cap: any number per position
    advance(room, fac, "drafting")
    refused(
        WrongPhase,
        services.room_configure,
        room_id=room.pk,
        actor=fac,
        assignment_method="balanced",
    )


# --- co-facilitators ------------------------------------------------------------------------


def test_cofacilitator_add_by_username_gives_the_same_powers(
    drafting, drafts, other_facilitator, broadcasts
):
    room, owner = drafting.room, drafting.facilitator
    seq = seq_of(room)
    broadcasts(services.cofacilitator_add, room_id=room.pk, actor=owner, username=" MR.Okafor ")
    assert list(fresh(room).cofacilitators.all()) == [other_facilitator]
    assert seq_of(room) == seq + 1
    (event,) = broadcasts.to(events.group_facilitators(room.pk))
    assert event == {
        "type": "facilitators.changed",
        "seq": seq + 1,
        "facilitators": ["ms.rivera", "mr.okafor"],
    }
    for position in drafting.positions.values():
        assert broadcasts.to(events.group_team(room.pk, position.pk)) == [
            {"type": "tick", "seq": seq + 1}
        ]
    assert selectors.room_is_facilitator(room=room, user=other_facilitator)
    assert room in selectors.rooms_for_facilitator(user=other_facilitator)

    # Adding again, or adding the owner, changes nothing.
    before = console_state()
    services.cofacilitator_add(room_id=room.pk, actor=owner, username="mr.okafor")
    services.cofacilitator_add(room_id=room.pk, actor=other_facilitator, username="ms.rivera")
    assert console_state() == before

    # Same powers: the co-facilitator moderates, mutes, advances and adds another.
    cofac = other_facilitator
    services.feedback_add(room_id=room.pk, actor=cofac, draft_id=drafts["Cy"], text="Source?")
    services.member_mute(room_id=room.pk, actor=cofac, member_id=drafting.members["Ben"].pk,
                         muted=True)  # fmt: skip
    get_user_model().objects.create_user(username="ms.third", password="x-Pw-4242")
    services.cofacilitator_add(room_id=room.pk, actor=cofac, username="ms.third")
    advance(room, cofac, "review")
    assert selectors.facilitator_names(room=room) == ["ms.rivera", "mr.okafor", "ms.third"]
    assert fresh(room).phase == Phase.REVIEW
    assert Feedback.objects.get().author == cofac


def test_cofacilitator_add_unknown_username(drafting):
    err = refused(
        NotFound,
        services.cofacilitator_add,
        room_id=drafting.room.pk,
        actor=drafting.facilitator,
        username="nobody.here",
    )
    assert err.details["field"] == "username"


# --- code names and anonymous rooms ---------------------------------------------------------


def test_member_join_gives_distinct_code_names(room):
    members = joined(room, *(f"Member {i}" for i in range(45)))  # more than the names list
    code_names = [m.code_name for m in members]
    assert all(code_names)
    assert len(set(code_names)) == 45
    assert {name.split()[0] for name in code_names} <= set(services.CODE_NAMES)


def test_anonymous_room_events_carry_code_names_to_members(scenario, facilitator, broadcasts):
    room = services.room_create(owner=facilitator, scenario=scenario, anonymous=True)
    zelda = broadcasts(services.member_join, code=room.code, display_name="Zelda Realname")
    sent = broadcasts.sent
    facilitators = events.group_facilitators(room.pk)
    for group, event in sent:
        assert event["type"] == "member.joined"
        if group == facilitators:
            assert event["member"]["display_name"] == "Zelda Realname"
            assert event["member"]["code_name"] == zelda.code_name
        else:
            assert group.startswith(f"room.{room.pk}.team."), group  # never the room group
            assert event["member"]["display_name"] == zelda.code_name
            assert "code_name" not in event["member"]
            assert "Realname" not in str(event)
    teams_reached = {g for g, _e in sent if g != facilitators}
    expected = {events.group_team(room.pk, p.pk) for p in scenario.positions.all()}
    assert teams_reached == expected | {events.group_team(room.pk, None)}

    # Re-admission too.
    services.member_remove(room_id=room.pk, actor=facilitator, member_id=zelda.pk)
    broadcasts(services.member_readmit, room_id=room.pk, actor=facilitator, member_id=zelda.pk)
    for group, event in broadcasts.sent:
        if group != facilitators:
            assert "Realname" not in str(event)
    assert "Zelda Realname" in str(broadcasts.to(facilitators))


def test_anonymous_room_snapshot_and_record_for_members(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, anonymous=True)
    zelda = join(room, "Zelda Realname")
    yusuf = join(room, "Yusuf Truename")
    viewer = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=zelda.pk)
    snapshot = selectors.room_snapshot(viewer=viewer)
    names = {m["id"]: m["display_name"] for m in snapshot["members"]}
    assert names == {zelda.pk: "Zelda Realname", yusuf.pk: yusuf.code_name}
    assert "Truename" not in str(snapshot)
    record = selectors.record_data(room=room, audience="member", viewer=viewer)
    assert record["room"]["unassigned"] == ["Zelda Realname", yusuf.code_name]
    assert "Truename" not in str(record)
    fac = selectors.viewer_for(room_id=room.pk, user=facilitator, member_id=None)
    assert "Yusuf Truename" in str(selectors.room_snapshot(viewer=fac))


def test_named_room_shows_names(room):
    ana = join(room, "Ana")
    viewer = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=ana.pk)
    ben = join(room, "Ben")
    snapshot = selectors.room_snapshot(viewer=viewer)
    assert {m["id"]: m["display_name"] for m in snapshot["members"]}[ben.pk] == "Ben"


def test_console_settings_reach_the_snapshot(drafting):
    room, fac = drafting.room, drafting.facilitator
    services.editing_lock(room_id=room.pk, actor=fac, locked=True)
    services.announcement_set(room_id=room.pk, actor=fac, text="Wrap up")
    services.timer_control(room_id=room.pk, actor=fac, action="start", seconds=60)
    viewer = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=drafting.members["Cy"].pk)
    snap = selectors.room_snapshot(viewer=viewer)["room"]
    assert (snap["editing_locked"], snap["announcement"], snap["round"]) == (True, "Wrap up", 1)
    assert snap["timer"]["running"] is True
    assert snap["assignment_method"] == AssignmentMethod.BALANCED

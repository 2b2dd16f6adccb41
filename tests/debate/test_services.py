"""debate.services: every write, its checks, and that a refused write changes nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from classroom.codes import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH
from debate import services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import Draft, Member, Phase, Recommendation, Room
from tests.conftest import join
from tests.debate.conftest import (
    API,
    OPEN,
    RESTRICTED,
    advance,
    build_teams,
    complete_recommendation,
    db_state,
    member_draft,
)

pytestmark = pytest.mark.django_db

ANON = AnonymousUser()
MAX_DRAFT = 4000


@pytest.fixture
def other_scenario(db):
    return services.scenario_install(
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


@pytest.fixture
def other_room(scenario, facilitator):
    """A second room of the same facilitator, with a member and a draft of its own."""
    room = services.room_create(owner=facilitator, scenario=scenario, title="Period 5")
    teams = build_teams(room, facilitator)
    advance(room, facilitator, "drafting")
    member_draft(teams, "Ana", "Other room's argument")
    return teams


def refused(exc_type, fn, /, *, err_code: str | None = None, **kwargs):
    """Call `fn(**kwargs)`, which must refuse: assert the error type (and code) and that nothing
    changed in the database."""
    before = db_state()
    with pytest.raises(exc_type) as info:
        fn(**kwargs)
    if err_code is not None:
        assert info.value.code == err_code, info.value.as_payload()
    assert db_state() == before
    return info.value


# --- room_create ----------------------------------------------------------------------------


def test_join_codes_have_no_look_alike_characters(scenario, facilitator):
    rooms = [services.room_create(owner=facilitator, scenario=scenario) for _ in range(40)]
    for room in rooms:
        assert len(room.code) == JOIN_CODE_LENGTH
        assert set(room.code) <= set(JOIN_CODE_ALPHABET)
        assert not set(room.code) & set("0O1IL")
    assert not set(JOIN_CODE_ALPHABET) & set("0O1IL")
    assert len({r.code for r in rooms}) == len(rooms)


def test_room_create_defaults_title_to_scenario(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, title="   ")
    assert room.title == scenario.title
    assert room.phase == Phase.LOBBY
    assert room.seq == 0
    assert room.owner == facilitator


def test_room_code_is_drawn_again_while_an_open_room_holds_it(scenario, facilitator, monkeypatch):
    codes = iter(["ABCDEF", "ABCDEF", "ABCDEF", "GHJKMN"])
    monkeypatch.setattr(services, "join_code_generate", lambda: next(codes))
    first = services.room_create(owner=facilitator, scenario=scenario)
    second = services.room_create(owner=facilitator, scenario=scenario)
    assert (first.code, second.code) == ("ABCDEF", "GHJKMN")


def test_a_closed_rooms_code_can_be_reused(scenario, facilitator, monkeypatch):
    monkeypatch.setattr(services, "join_code_generate", lambda: "ABCDEF")
    first = services.room_create(owner=facilitator, scenario=scenario)
    Room.objects.filter(pk=first.pk).update(phase=Phase.CLOSED, closed_at=timezone.now())
    second = services.room_create(owner=facilitator, scenario=scenario)
    assert second.code == "ABCDEF"
    assert Room.objects.filter(code="ABCDEF").count() == 2


def test_room_create_gives_up_with_conflict_when_no_code_is_free(
    scenario, facilitator, monkeypatch
):
    monkeypatch.setattr(services, "join_code_generate", lambda: "ABCDEF")
    services.room_create(owner=facilitator, scenario=scenario)
    with pytest.raises(Conflict):
        services.room_create(owner=facilitator, scenario=scenario)
    assert Room.objects.count() == 1


# --- member_join ----------------------------------------------------------------------------


def test_member_join_creates_member_and_announces_it(room):
    member = services.member_join(code=room.code.lower(), display_name="  Ana   Maria ")
    room.refresh_from_db()
    assert member.room == room
    assert member.display_name == "Ana Maria"
    assert member.position is None  # lobby, nobody assigned yet
    assert room.seq == 1  # member.joined


def test_member_join_forgives_spaces_and_dashes_in_the_code(room):
    typed = f" {room.code[:3].lower()}-{room.code[3:]} "
    assert services.member_join(code=typed, display_name="Ana").room_id == room.pk


def test_member_join_unknown_code(room):
    err = refused(NotFound, services.member_join, code="ZZZZ00", display_name="A")
    assert err.details["field"] == "code"
    assert not Member.objects.exists()


@pytest.mark.parametrize("taken", ["ana", "ANA", " Ana ", "aNa"])
def test_member_join_name_taken_case_insensitively(room, taken):
    join(room, "Ana")
    before = db_state()
    with pytest.raises(Conflict) as info:
        services.member_join(code=room.code, display_name=taken)
    assert info.value.code == "name_taken"
    assert info.value.details["field"] == "display_name"
    assert db_state() == before


def test_member_join_name_taken_with_non_ascii_letters(room):
    join(room, "Élodie")
    before = db_state()
    with pytest.raises(Conflict) as info:
        services.member_join(code=room.code, display_name="élodie")
    assert info.value.code == "name_taken"
    assert db_state() == before


def test_same_name_in_another_room_is_fine(room, scenario, facilitator):
    other = services.room_create(owner=facilitator, scenario=scenario)
    join(room, "Ana")
    assert join(other, "Ana").room_id == other.pk


@pytest.mark.parametrize(
    ("name", "code"), [("", "required"), ("   \t ", "required"), ("x" * 41, "too_long")]
)
def test_member_join_bad_display_name(room, name, code):
    before = db_state()
    with pytest.raises(Invalid) as info:
        services.member_join(code=room.code, display_name=name)
    assert info.value.code == code
    assert info.value.details["field"] == "display_name"
    assert db_state() == before


def test_member_join_name_of_exactly_the_limit(room):
    assert services.member_join(code=room.code, display_name="x" * 40).display_name == "x" * 40


def test_member_join_closed_room(room):
    join(room, "Ana")
    Room.objects.filter(pk=room.pk).update(phase=Phase.CLOSED, closed_at=timezone.now())
    before = db_state()
    with pytest.raises((NotFound, WrongPhase)):
        services.member_join(code=room.code, display_name="Ben")
    assert db_state() == before


def test_late_joiner_goes_to_the_smallest_team(drafting):
    # Teams: open 2, api 1, restricted 1 -> the first team in scenario order among the smallest.
    eve = join(drafting.room, "Eve")
    assert eve.position == drafting.pos(API)
    fay = join(drafting.room, "Fay")
    assert fay.position == drafting.pos(RESTRICTED)
    gus = join(drafting.room, "Gus")
    assert gus.position == drafting.pos(OPEN)


def test_joiner_in_lobby_after_assignment_gets_a_team(teams):
    # Assignment happened (the fixture placed everyone), so a lobby joiner is placed too.
    assert join(teams.room, "Eve").position == teams.pos(API)


# --- positions_assign -----------------------------------------------------------------------


@pytest.mark.parametrize("count", range(1, 11))
def test_positions_assign_is_balanced(scenario, facilitator, count):
    for seed in (1, 2, 3):
        room = services.room_create(owner=facilitator, scenario=scenario)
        for i in range(count):
            join(room, f"Member {i}")
        assigned = services.positions_assign(room_id=room.pk, actor=facilitator, seed=seed)
        assert len(assigned) == count
        sizes = Counter(room.members.values_list("position_id", flat=True))
        assert None not in sizes
        all_sizes = [sizes.get(p.pk, 0) for p in scenario.positions.all()]
        assert sum(all_sizes) == count
        assert max(all_sizes) - min(all_sizes) <= 1, all_sizes


def test_positions_assign_keeps_existing_assignments(room, facilitator, positions):
    ana, ben = join(room, "Ana"), join(room, "Ben")
    others = [join(room, name) for name in ("Cy", "Dee", "Eve", "Fay")]
    for member in (ana, ben):
        services.member_move(
            room_id=room.pk,
            actor=facilitator,
            member_id=member.pk,
            position_id=positions[RESTRICTED].pk,
        )
    assigned = services.positions_assign(room_id=room.pk, actor=facilitator, seed=7)
    assert {m.pk for m in assigned} == {m.pk for m in others}
    ana.refresh_from_db()
    ben.refresh_from_db()
    assert ana.position == ben.position == positions[RESTRICTED]
    sizes = Counter(room.members.values_list("position__key", flat=True))
    assert sizes == {OPEN: 2, API: 2, RESTRICTED: 2}


def test_positions_assign_twice_changes_nothing(teams):
    state = db_state()
    assert services.positions_assign(room_id=teams.room.pk, actor=teams.facilitator) == []
    assert db_state() == state


@pytest.mark.parametrize("who", ["anonymous", "other_facilitator"])
def test_positions_assign_facilitator_only(room, who, other_facilitator):
    join(room, "Ana")
    actor = ANON if who == "anonymous" else other_facilitator
    refused(Forbidden, services.positions_assign, room_id=room.pk, actor=actor)


# --- member_move ----------------------------------------------------------------------------


def test_member_move(teams):
    ana = teams.members["Ana"]
    seq = teams.room.seq
    services.member_move(
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=ana.pk,
        position_id=teams.pos(API).pk,
    )
    ana.refresh_from_db()
    teams.room.refresh_from_db()
    assert ana.position == teams.pos(API)
    assert teams.room.seq == seq + 1


def test_member_move_to_the_same_team_is_a_no_op(teams):
    ana = teams.members["Ana"]
    state = db_state()
    services.member_move(
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=ana.pk,
        position_id=teams.pos(OPEN).pk,
    )
    assert db_state() == state


def test_member_move_other_rooms_member(teams, other_room):
    foreign = other_room.members["Ana"]
    err = refused(  # nothing changes in either room (db_state covers every room)
        NotFound,
        services.member_move,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=foreign.pk,
        position_id=teams.pos(API).pk,
    )
    assert err.details["field"] == "member_id"


def test_member_move_position_of_another_scenario(teams, other_scenario):
    foreign_position = other_scenario.positions.first()
    err = refused(
        NotFound,
        services.member_move,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=teams.members["Ana"].pk,
        position_id=foreign_position.pk,
    )
    assert err.details["field"] == "position_id"


@pytest.mark.parametrize("bad", [True, "1", 1.0, None])
def test_member_move_ids_must_be_numbers(teams, bad):
    refused(
        Invalid,
        services.member_move,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=bad,
        position_id=teams.pos(API).pk,
    )
    refused(
        Invalid,
        services.member_move,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=teams.members["Ana"].pk,
        position_id=bad,
    )


@pytest.mark.parametrize("who", ["anonymous", "other_facilitator"])
def test_member_move_facilitator_only(teams, who, other_facilitator):
    actor = ANON if who == "anonymous" else other_facilitator
    refused(
        Forbidden,
        services.member_move,
        room_id=teams.room.pk,
        actor=actor,
        member_id=teams.members["Ana"].pk,
        position_id=teams.pos(API).pk,
    )


def test_member_move_unknown_room(teams):
    with pytest.raises(NotFound):
        services.member_move(
            room_id=teams.room.pk + 1000,
            actor=teams.facilitator,
            member_id=teams.members["Ana"].pk,
            position_id=teams.pos(API).pk,
        )


# --- phase_advance --------------------------------------------------------------------------


def test_phase_advance_walks_every_phase_in_order(teams):
    room, fac = teams.room, teams.facilitator
    seq = room.seq
    for phase in ["drafting", "review", "recommendation"]:
        services.phase_advance(room_id=room.pk, actor=fac, to_phase=phase)
        room.refresh_from_db()
        assert room.phase == phase
        assert room.seq == seq + 1  # phase.changed
        seq = room.seq
    complete_recommendation(room, fac, teams.pos(RESTRICTED))
    services.phase_advance(room_id=room.pk, actor=fac, to_phase="closed")
    room.refresh_from_db()
    assert room.phase == Phase.CLOSED
    assert room.closed_at is not None
    refused(WrongPhase, services.phase_advance, room_id=room.pk, actor=fac, to_phase="closed")
    refused(WrongPhase, services.phase_advance, room_id=room.pk, actor=fac, to_phase="lobby")


@pytest.mark.parametrize(
    "target", ["review", "recommendation", "closed", "lobby", "bogus", None, 2]
)
def test_phase_advance_refuses_anything_but_the_next_phase(teams, target):
    err = refused(
        WrongPhase,
        services.phase_advance,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        to_phase=target,
    )
    assert err.details["phase"] == "lobby"


def test_phase_advance_double_click_does_not_skip(drafting):
    refused(
        WrongPhase,
        services.phase_advance,
        room_id=drafting.room.pk,
        actor=drafting.facilitator,
        to_phase="drafting",
    )


@pytest.mark.parametrize("who", ["anonymous", "other_facilitator"])
def test_phase_advance_facilitator_only(teams, who, other_facilitator):
    actor = ANON if who == "anonymous" else other_facilitator
    refused(
        Forbidden, services.phase_advance, room_id=teams.room.pk, actor=actor, to_phase="drafting"
    )


@pytest.mark.parametrize("partial", ["none", "decision_only", "no_revisit", "blank_rationale"])
def test_closing_needs_a_complete_recommendation(teams, partial):
    room, fac = teams.room, teams.facilitator
    advance(room, fac, "drafting", "review", "recommendation")
    if partial != "none":
        services.recommendation_save(
            room_id=room.pk,
            actor=fac,
            client_id="r1",
            decision_id=teams.pos(API).pk,
            rationale="" if partial in ("decision_only", "blank_rationale") else "Because.",
            revisit_condition="" if partial in ("decision_only", "no_revisit") else "If x.",
            base_version=0,
        )
        if partial == "blank_rationale":
            Recommendation.objects.filter(room=room).update(rationale="   \n ")
    refused(
        Invalid,
        services.phase_advance,
        room_id=room.pk,
        actor=fac,
        to_phase="closed",
        err_code="recommendation_incomplete",
    )
    room.refresh_from_db()
    assert room.closed_at is None


def test_drafting_assigns_unassigned_members(room, facilitator):
    for name in ("Ana", "Ben", "Cy", "Dee", "Eve"):
        join(room, name)
    services.phase_advance(room_id=room.pk, actor=facilitator, to_phase="drafting")
    sizes = Counter(room.members.values_list("position__key", flat=True))
    assert None not in sizes
    assert sorted(sizes.values()) == [1, 2, 2]
    room.refresh_from_db()
    assert room.seq == 5 + 5 + 1  # joins, member.moved x5, phase.changed


# --- draft_save -----------------------------------------------------------------------------


def save(teams, name=None, **kwargs):
    """draft_save as a member (by name) or as the facilitator (name None)."""
    member_id = teams.members[name].pk if name else None
    actor = ANON if name else teams.facilitator
    args = {"room_id": teams.room.pk, "actor": actor, "member_id": member_id}
    args.update(kwargs)
    return services.draft_save(**args)


def test_draft_save_creates_then_updates(drafting):
    seq = Room.objects.get(pk=drafting.room.pk).seq
    first = save(
        drafting,
        "Ana",
        client_id="c1",
        text="Cannot recall weights",
        base_version=0,
        kind="argument",
        slot=1,
    )
    assert (first.version, first.duplicate, first.seq) == (1, False, seq + 1)
    draft = Draft.objects.get(pk=first.id)
    assert draft.text == "Cannot recall weights"
    assert draft.position == drafting.pos(OPEN)
    assert draft.author == drafting.members["Ana"]
    assert draft.last_editor is None

    second = save(
        drafting,
        "Ana",
        client_id="c2",
        text="Weights cannot be recalled",
        base_version=1,
        kind="argument",
        slot=1,
    )
    assert (second.id, second.version, second.duplicate, second.seq) == (
        first.id,
        2,
        False,
        seq + 2,
    )
    draft.refresh_from_db()
    assert (draft.text, draft.version, draft.last_client_id) == (
        "Weights cannot be recalled",
        2,
        "c2",
    )
    assert Room.objects.get(pk=drafting.room.pk).seq == seq + 2


def test_draft_save_risk_slot(drafting):
    result = save(
        drafting,
        "Cy",
        client_id="r",
        text="We cannot see misuse offline",
        base_version=0,
        kind="risk",
        slot=1,
    )
    assert Draft.objects.get(pk=result.id).kind == "risk"


def test_draft_save_stale_base_version_conflict_carries_current_text(drafting):
    save(drafting, "Ana", client_id="c1", text="v1", base_version=0, kind="argument", slot=1)
    save(drafting, "Ana", client_id="c2", text="v2", base_version=1, kind="argument", slot=1)
    err = refused(
        Conflict,
        save,
        room_id=drafting.room.pk,
        teams=drafting,
        name="Ana",
        client_id="c3",
        text="from an old tab",
        base_version=1,
        kind="argument",
        slot=1,
    )
    assert err.code == "conflict"
    current = err.details["current"]
    assert current["text"] == "v2"
    assert current["version"] == 2
    assert current["id"] == Draft.objects.get().pk


def test_draft_save_new_slot_with_nonzero_base_version_conflicts(drafting):
    err = refused(
        Conflict,
        save,
        room_id=drafting.room.pk,
        teams=drafting,
        name="Ana",
        client_id="c1",
        text="x",
        base_version=3,
        kind="argument",
        slot=2,
    )
    assert err.details["current"] == {"id": None, "text": "", "version": 0}


def test_draft_save_resend_is_a_duplicate(drafting):
    first = save(
        drafting, "Ana", client_id="c1", text="v1", base_version=0, kind="argument", slot=1
    )
    state = db_state()
    # The resend carries the same base_version as the original (the draft has moved past it).
    again = save(
        drafting, "Ana", client_id="c1", text="v1", base_version=0, kind="argument", slot=1
    )
    assert (again.id, again.version, again.duplicate, again.seq) == (first.id, 1, True, None)
    assert db_state() == state


def test_draft_save_same_text_again_changes_nothing(drafting):
    save(drafting, "Ana", client_id="c1", text="v1", base_version=0, kind="argument", slot=1)
    state = db_state()
    again = save(
        drafting, "Ana", client_id="c2", text="v1", base_version=1, kind="argument", slot=1
    )
    assert again.version == 1
    assert again.seq is None
    assert db_state() == state


@pytest.mark.parametrize(
    "phases", [(), ("drafting", "review"), ("drafting", "review", "recommendation")]
)
def test_draft_save_outside_drafting(teams, phases):
    advance(teams.room, teams.facilitator, *phases)
    err = refused(
        WrongPhase,
        save,
        room_id=teams.room.pk,
        teams=teams,
        name="Ana",
        client_id="c1",
        text="x",
        base_version=0,
        kind="argument",
        slot=1,
    )
    assert err.details["phase"] == teams.room.phase


def test_draft_save_text_too_long(drafting):
    err = refused(
        Invalid,
        save,
        room_id=drafting.room.pk,
        err_code="too_long",
        teams=drafting,
        name="Ana",
        client_id="c1",
        text="x" * (MAX_DRAFT + 1),
        base_version=0,
        kind="argument",
        slot=1,
    )
    assert err.details["limit"] == MAX_DRAFT
    ok = save(
        drafting,
        "Ana",
        client_id="c2",
        text="x" * MAX_DRAFT,
        base_version=0,
        kind="argument",
        slot=1,
    )
    assert ok.version == 1


@pytest.mark.parametrize(
    ("kind", "slot"),
    [
        ("argument", 0),
        ("argument", 4),
        ("argument", -1),
        ("risk", 2),
        ("risk", 0),
        ("argument", True),
        ("argument", "1"),
        ("argument", None),
        ("bogus", 1),
        (None, 1),
    ],
)
def test_draft_save_slot_out_of_range(drafting, kind, slot):
    refused(
        Invalid,
        save,
        room_id=drafting.room.pk,
        teams=drafting,
        name="Ana",
        client_id="c1",
        text="x",
        base_version=0,
        kind=kind,
        slot=slot,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": ""},
        {"client_id": "c" * 65},
        {"client_id": 5},
        {"base_version": -1},
        {"base_version": True},
        {"base_version": "0"},
        {"text": None},
        {"text": 12},
    ],
)
def test_draft_save_bad_fields(drafting, changes):
    args = {"client_id": "c1", "text": "x", "base_version": 0, "kind": "argument", "slot": 1}
    args.update(changes)
    refused(Invalid, save, room_id=drafting.room.pk, teams=drafting, name="Ana", **args)


def test_draft_save_normalises_line_ends_and_drops_nul(drafting):
    result = save(
        drafting, "Ana", client_id="c1", text="a\r\nb\x00c", base_version=0, kind="argument", slot=1
    )
    assert Draft.objects.get(pk=result.id).text == "a\nbc"


def test_draft_save_member_of_another_room(drafting, other_room):
    foreign = other_room.members["Ben"]
    refused(
        Forbidden,
        services.draft_save,
        room_id=drafting.room.pk,
        actor=ANON,
        member_id=foreign.pk,
        client_id="c1",
        text="x",
        base_version=0,
        kind="argument",
        slot=1,
    )


def test_facilitator_edits_a_draft_by_id(drafting):
    first = member_draft(drafting, "Cy", "Monitoring is possible")
    seq = Room.objects.get(pk=drafting.room.pk).seq
    result = save(
        drafting,
        client_id="f1",
        text="Monitoring is possible via the API",
        base_version=1,
        draft_id=first.id,
    )
    assert (result.id, result.version, result.duplicate, result.seq) == (
        first.id,
        2,
        False,
        seq + 1,
    )
    draft = Draft.objects.get(pk=first.id)
    assert draft.text == "Monitoring is possible via the API"
    assert draft.author == drafting.members["Cy"]
    assert draft.position == drafting.pos(API)
    assert draft.last_editor == drafting.facilitator


def test_facilitator_edit_stale_version(drafting):
    first = member_draft(drafting, "Cy", "v1")
    err = refused(
        Conflict,
        save,
        room_id=drafting.room.pk,
        teams=drafting,
        client_id="f1",
        text="x",
        base_version=0,
        draft_id=first.id,
    )
    assert err.details["current"]["text"] == "v1"


def test_facilitator_edit_needs_a_draft_id(drafting):
    for bad in (None, True, "3"):
        refused(
            Invalid,
            save,
            room_id=drafting.room.pk,
            teams=drafting,
            client_id="f1",
            text="x",
            base_version=1,
            draft_id=bad,
        )


def test_facilitator_edit_of_another_rooms_draft(drafting, other_room):
    # The same facilitator owns both rooms: the draft must still be looked up in *this* room.
    foreign = Draft.objects.get(room=other_room.room)
    err = refused(  # nothing changes in either room (db_state covers every room)
        NotFound,
        save,
        room_id=drafting.room.pk,
        teams=drafting,
        client_id="f1",
        text="overwritten",
        base_version=foreign.version,
        draft_id=foreign.pk,
    )
    assert err.details["field"] == "draft_id"
    assert Draft.objects.get(pk=foreign.pk).text == "Other room's argument"


@pytest.mark.parametrize("who", ["anonymous", "other_facilitator"])
def test_draft_edit_by_id_facilitator_only(drafting, who, other_facilitator):
    draft = member_draft(drafting, "Cy", "v1")
    actor = ANON if who == "anonymous" else other_facilitator
    refused(
        Forbidden,
        services.draft_save,
        room_id=drafting.room.pk,
        actor=actor,
        member_id=None,
        client_id="x1",
        text="hijacked",
        base_version=1,
        draft_id=draft.id,
    )


def test_member_who_is_also_a_logged_in_user_is_not_recorded_as_editor(drafting, other_facilitator):
    # A teacher trying the room as a student: their account is not the facilitator's edit.
    result = services.draft_save(
        room_id=drafting.room.pk,
        actor=other_facilitator,
        member_id=drafting.members["Ana"].pk,
        client_id="c1",
        text="v1",
        base_version=0,
        kind="argument",
        slot=1,
    )
    assert Draft.objects.get(pk=result.id).last_editor is None


def test_drafts_after_a_move_go_to_the_new_team(drafting):
    member_draft(drafting, "Ana", "open argument")
    services.member_move(
        room_id=drafting.room.pk,
        actor=drafting.facilitator,
        member_id=drafting.members["Ana"].pk,
        position_id=drafting.pos(API).pk,
    )
    result = member_draft(drafting, "Ana", "api argument", client_id="new")
    assert result.version == 1  # a new slot for the new position, the old one is untouched
    texts = dict(Draft.objects.values_list("position__key", "text"))
    assert texts == {OPEN: "open argument", API: "api argument"}


# --- recommendation_save --------------------------------------------------------------------


@pytest.fixture
def deciding(teams):
    advance(teams.room, teams.facilitator, "drafting", "review", "recommendation")
    return teams.refresh()


def rec_save(teams, **kwargs):
    args = {
        "room_id": teams.room.pk,
        "actor": teams.facilitator,
        "client_id": "r1",
        "decision_id": teams.pos(RESTRICTED).pk,
        "rationale": "Staged access.",
        "revisit_condition": "Leaked copies appear.",
        "base_version": 0,
    }
    args.update(kwargs)
    return services.recommendation_save(**args)


def test_recommendation_save_versions(deciding):
    seq = Room.objects.get(pk=deciding.room.pk).seq
    first = rec_save(deciding)
    assert (first.version, first.duplicate, first.seq) == (1, False, seq + 1)
    second = rec_save(
        deciding, client_id="r2", rationale="Staged access, reviewed.", base_version=1
    )
    assert (second.id, second.version, second.seq) == (first.id, 2, seq + 2)
    rec = Recommendation.objects.get(room=deciding.room)
    assert rec.rationale == "Staged access, reviewed."
    assert rec.decision == deciding.pos(RESTRICTED)
    assert rec.updated_by == deciding.facilitator


def test_recommendation_partial_save_and_no_decision(deciding):
    result = rec_save(deciding, decision_id=None, rationale="", revisit_condition="")
    rec = Recommendation.objects.get(pk=result.id)
    assert rec.decision is None
    assert not rec.is_complete


def test_recommendation_stale_version(deciding):
    rec_save(deciding)
    err = refused(
        Conflict,
        rec_save,
        room_id=deciding.room.pk,
        teams=deciding,
        client_id="r2",
        rationale="Old tab",
        base_version=0,
    )
    assert err.details["current"]["rationale"] == "Staged access."
    assert err.details["current"]["version"] == 1


def test_recommendation_first_save_with_nonzero_base_version(deciding):
    refused(Conflict, rec_save, room_id=deciding.room.pk, teams=deciding, base_version=1)
    assert not Recommendation.objects.exists()


def test_recommendation_resend_is_a_duplicate(deciding):
    first = rec_save(deciding)
    state = db_state()
    again = rec_save(deciding)
    assert (again.id, again.version, again.duplicate, again.seq) == (first.id, 1, True, None)
    assert db_state() == state


@pytest.mark.parametrize("who", ["anonymous", "other_facilitator"])
def test_recommendation_facilitator_only(deciding, who, other_facilitator):
    actor = ANON if who == "anonymous" else other_facilitator
    refused(Forbidden, rec_save, room_id=deciding.room.pk, teams=deciding, actor=actor)
    assert not Recommendation.objects.exists()


@pytest.mark.parametrize("phases", [(), ("drafting",), ("drafting", "review")])
def test_recommendation_only_in_its_phase(teams, phases):
    advance(teams.room, teams.facilitator, *phases)
    refused(WrongPhase, rec_save, room_id=teams.room.pk, teams=teams)


def test_recommendation_after_closing(deciding):
    complete_recommendation(deciding.room, deciding.facilitator, deciding.pos(API))
    advance(deciding.room, deciding.facilitator, "closed")
    refused(
        WrongPhase,
        rec_save,
        room_id=deciding.room.pk,
        teams=deciding,
        client_id="late",
        base_version=1,
    )


def test_recommendation_decision_from_another_scenario(deciding, other_scenario):
    refused(
        NotFound,
        rec_save,
        room_id=deciding.room.pk,
        teams=deciding,
        decision_id=other_scenario.positions.first().pk,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"rationale": "x" * 6001},
        {"revisit_condition": "x" * 6001},
        {"rationale": None},
        {"client_id": ""},
        {"base_version": -1},
        {"base_version": False},
        {"decision_id": True},
        {"decision_id": "3"},
    ],
)
def test_recommendation_bad_fields(deciding, changes):
    refused(Invalid, rec_save, room_id=deciding.room.pk, teams=deciding, **changes)


def test_every_write_takes_the_next_sequence_number(drafting):
    seqs = [
        member_draft(drafting, "Ana", "a").seq,
        member_draft(drafting, "Cy", "c").seq,
        member_draft(drafting, "Dee", "d", kind="risk").seq,
    ]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert Room.objects.get(pk=drafting.room.pk).seq == seqs[-1]


def test_draft_save_for_a_position_the_member_has_left(drafting):
    ana = drafting.members["Ana"]
    services.member_move(
        room_id=drafting.room.pk,
        actor=drafting.facilitator,
        member_id=ana.pk,
        position_id=drafting.pos(API).pk,
    )
    err = refused(
        Conflict,
        save,
        err_code="position_changed",
        teams=drafting,
        name="Ana",
        room_id=drafting.room.pk,
        client_id="c1",
        text="written for open weights",
        base_version=0,
        kind="argument",
        slot=1,
        position_id=drafting.pos(OPEN).pk,
    )
    assert err.details["position_id"] == drafting.pos(API).pk
    ok = save(
        drafting,
        "Ana",
        client_id="c2",
        text="for the API",
        base_version=0,
        kind="argument",
        slot=1,
        position_id=drafting.pos(API).pk,
    )
    assert Draft.objects.get(pk=ok.id).position == drafting.pos(API)

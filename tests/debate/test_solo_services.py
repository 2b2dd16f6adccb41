"""Solo rooms: starting without an account, one learner holding every position, the resume link
and PIN (hashed, rate-limited), the learner's steps and the recommendation they chair. Every
refusal also checks that nothing changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from debate import services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import Draft, Phase, Recommendation, Room
from tests.debate.conftest import db_state

pytestmark = pytest.mark.django_db

ANON = AnonymousUser()


@pytest.fixture
def solo(scenario) -> services.SoloStart:
    return services.solo_start(scenario_id=scenario.pk, display_name="  Lea  ")


def solo_draft(started, position, text, *, kind="argument", slot=1, base=0, client_id=None):
    return services.draft_save(
        room_id=started.room.pk,
        actor=ANON,
        member_id=started.member.pk,
        client_id=client_id or f"{position.key}-{kind}-{slot}-{base}",
        text=text,
        base_version=base,
        kind=kind,
        slot=slot,
        position_id=position.pk,
    )


def save_rec(started, *, decision=None, rationale="", revisit="", base=0, member_id=None):
    return services.recommendation_save(
        room_id=started.room.pk,
        actor=ANON,
        member_id=started.member.pk if member_id is None else member_id,
        client_id=f"rec-{base}",
        decision_id=decision,
        rationale=rationale,
        revisit_condition=revisit,
        base_version=base,
    )


# --- starting ---------------------------------------------------------------------------------


def test_solo_start_makes_an_ownerless_room_in_drafting_with_one_learner(solo, scenario):
    room = Room.objects.get(pk=solo.room.pk)
    assert room.is_solo and room.owner_id is None
    assert room.phase == Phase.DRAFTING
    assert room.scenario_id == scenario.pk
    (member,) = room.members.all()
    assert member.display_name == "Lea"
    assert member.position == scenario.positions.first()
    # Secrets are stored hashed only.
    assert solo.token not in room.solo_token_hash
    assert room.solo_token_hash == services.solo_token_hash(solo.token)
    assert len(solo.pin) == 6 and solo.pin.isdigit()
    assert solo.pin not in room.solo_pin_hash
    assert room.solo_pin_hash.startswith(("pbkdf2", "md5", "argon2", "bcrypt", "scrypt"))


def test_solo_start_without_a_name_uses_a_default(scenario):
    started = services.solo_start(scenario_id=scenario.pk)
    assert started.member.display_name == "Solo learner"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"scenario_id": "1"}, Invalid),
        ({"scenario_id": None}, Invalid),
        ({"scenario_id": 999999}, NotFound),
        ({"display_name": "x" * 41}, Invalid),
        ({"display_name": ["Lea"]}, Invalid),
    ],
)
def test_solo_start_refusals_create_nothing(scenario, kwargs, error):
    before = db_state()
    with pytest.raises(error):
        services.solo_start(**{"scenario_id": scenario.pk, **kwargs})
    assert db_state() == before


def test_a_group_room_without_an_owner_violates_the_check_constraint(scenario):
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(scenario=scenario, owner=None, title="x", code="ZZZZZZ")


def test_nobody_joins_a_solo_room_with_its_code(solo):
    before = db_state()
    with pytest.raises(NotFound):
        services.member_join(code=solo.room.code, display_name="Intruder")
    assert db_state() == before


# --- drafts: one learner, every position ------------------------------------------------------


def test_the_learner_writes_every_positions_arguments_and_risks(solo, scenario):
    positions = list(scenario.positions.all())
    for position in positions:
        solo_draft(solo, position, f"Argument for {position.key}")
        solo_draft(solo, position, f"Risk of {position.key}", kind="risk")
    drafts = Draft.objects.filter(room=solo.room)
    assert drafts.count() == 2 * len(positions)
    assert {d.position_id for d in drafts} == {p.pk for p in positions}
    assert {d.author_id for d in drafts} == {solo.member.pk}


def test_a_solo_draft_event_reaches_the_whole_room(
    solo, scenario, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        result = solo_draft(solo, scenario.positions.last(), "Text")
    assert result.seq == 1 and len(callbacks) == 1


def test_a_solo_resend_is_acknowledged_without_a_change(solo, scenario):
    position = scenario.positions.last()
    first = solo_draft(solo, position, "Once", client_id="c-1")
    before = db_state()
    again = solo_draft(solo, position, "Once", client_id="c-1")
    assert again.duplicate and again.version == first.version
    assert db_state() == before


@pytest.mark.parametrize("position_id, error", [(None, Invalid), ("2", Invalid), (10**6, NotFound)])
def test_solo_drafts_must_name_a_position_of_the_room(solo, position_id, error):
    before = db_state()
    with pytest.raises(error):
        services.draft_save(
            room_id=solo.room.pk,
            actor=ANON,
            member_id=solo.member.pk,
            client_id="c",
            text="x",
            base_version=0,
            kind="argument",
            slot=1,
            position_id=position_id,
        )
    assert db_state() == before


def test_a_position_of_another_scenario_is_refused(solo, scenario):
    other = services.scenario_install(
        data={
            "slug": "other",
            "title": "Other",
            "question": "?",
            "briefing": "b",
            "positions": [{"key": "a", "name": "A", "short_name": "A", "summary": "s"}],
        }
    )
    before = db_state()
    with pytest.raises(NotFound):
        solo_draft(solo, other.positions.first(), "x")
    assert db_state() == before


def test_group_members_still_write_only_for_their_own_position(teams, facilitator):
    services.phase_advance(room_id=teams.room.pk, actor=facilitator, to_phase="drafting")
    ana = teams.members["Ana"]
    before = db_state()
    with pytest.raises(Conflict) as exc:
        services.draft_save(
            room_id=teams.room.pk,
            actor=ANON,
            member_id=ana.pk,
            client_id="c",
            text="x",
            base_version=0,
            kind="argument",
            slot=1,
            position_id=teams.pos("api-only").pk,
        )
    assert exc.value.code == "position_changed"
    assert db_state() == before


def test_another_learner_cannot_write_in_my_solo_room(solo, scenario):
    other = services.solo_start(scenario_id=scenario.pk, display_name="Max")
    before = db_state()
    with pytest.raises(Forbidden):
        services.draft_save(
            room_id=solo.room.pk,
            actor=ANON,
            member_id=other.member.pk,
            client_id="c",
            text="x",
            base_version=0,
            kind="argument",
            slot=1,
            position_id=scenario.positions.first().pk,
        )
    assert db_state() == before


# --- steps and the recommendation ------------------------------------------------------------


def test_the_learner_moves_between_drafting_and_the_recommendation_and_finishes(solo, scenario):
    room_id, member_id = solo.room.pk, solo.member.pk
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="recommendation")
    save_rec(solo, decision=scenario.positions.last().pk, rationale="Because.")
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="drafting")
    solo_draft(solo, scenario.positions.first(), "Written after a look at the recommendation")
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="recommendation")
    rec = Recommendation.objects.get(room_id=room_id)
    save_rec(
        solo,
        decision=scenario.positions.last().pk,
        rationale="Because.",
        revisit="If leaked copies spread.",
        base=rec.version,
    )
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="closed")
    room = Room.objects.get(pk=room_id)
    assert room.phase == Phase.CLOSED and room.closed_at is not None
    assert Recommendation.objects.get(room_id=room_id).updated_by is None


def test_the_same_step_twice_changes_nothing(solo):
    before = db_state()
    services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase="drafting")
    assert db_state() == before


@pytest.mark.parametrize(
    "setup, to_phase, error",
    [
        ("drafting", "closed", WrongPhase),  # finish from the recommendation only
        ("recommendation", "closed", Invalid),  # incomplete recommendation
        ("drafting", "review", Invalid),
        ("drafting", "lobby", Invalid),
        ("drafting", 3, Invalid),
    ],
)
def test_step_refusals_change_nothing(solo, setup, to_phase, error):
    if setup != "drafting":
        services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase=setup)
    before = db_state()
    with pytest.raises(error):
        services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase=to_phase)
    assert db_state() == before


def test_a_finished_solo_room_stays_closed(solo, scenario):
    services.solo_phase_set(
        room_id=solo.room.pk, member_id=solo.member.pk, to_phase="recommendation"
    )
    save_rec(solo, decision=scenario.positions.first().pk, rationale="r", revisit="c")
    services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase="closed")
    before = db_state()
    with pytest.raises(WrongPhase):
        services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase="drafting")
    assert db_state() == before


def test_steps_are_refused_in_group_rooms_and_to_other_learners(solo, scenario, teams):
    other = services.solo_start(scenario_id=scenario.pk, display_name="Max")
    before = db_state()
    with pytest.raises(Forbidden) as exc:
        services.solo_phase_set(
            room_id=teams.room.pk, member_id=teams.members["Ana"].pk, to_phase="recommendation"
        )
    assert exc.value.code == "not_solo"
    with pytest.raises(Forbidden):
        services.solo_phase_set(
            room_id=solo.room.pk, member_id=other.member.pk, to_phase="recommendation"
        )
    with pytest.raises(Forbidden):
        services.solo_phase_set(room_id=solo.room.pk, member_id=None, to_phase="recommendation")
    assert db_state() == before


def test_recommendation_refusals(solo, scenario, teams, facilitator):
    other = services.solo_start(scenario_id=scenario.pk, display_name="Max")
    before = db_state()
    with pytest.raises(WrongPhase):  # the learner is still drafting
        save_rec(solo, rationale="r")
    services.solo_phase_set(
        room_id=solo.room.pk, member_id=solo.member.pk, to_phase="recommendation"
    )
    before = db_state()
    with pytest.raises(Forbidden):  # another learner
        save_rec(solo, rationale="r", member_id=other.member.pk)
    with pytest.raises(Forbidden):  # a group member is not the chair
        services.recommendation_save(
            room_id=teams.room.pk,
            actor=ANON,
            member_id=teams.members["Ana"].pk,
            client_id="c",
            decision_id=None,
            rationale="r",
            revisit_condition="",
            base_version=0,
        )
    with pytest.raises(NotFound):  # another scenario's position, or no such position
        save_rec(solo, decision=10**6)
    assert db_state() == before


# --- resuming ---------------------------------------------------------------------------------


def test_resume_by_token(solo, scenario):
    other = services.solo_start(scenario_id=scenario.pk, display_name="Max")
    assert services.solo_resume_by_token(token=solo.token) == solo.member
    assert services.solo_resume_by_token(token=other.token) == other.member


@pytest.mark.parametrize("token", ["", "short", "x" * 32, None, 42, "y" * 200])
def test_a_wrong_token_is_not_found(solo, token):
    with pytest.raises(NotFound):
        services.solo_resume_by_token(token=token)


def test_resume_by_code_and_pin(solo):
    member = services.solo_resume_by_pin(code=solo.room.code.lower(), pin=f" {solo.pin} ")
    assert member == solo.member


def wrong_pin(pin: str) -> str:
    return f"{(int(pin) + 1) % 10**6:06d}"


@pytest.mark.parametrize("pin", ["", "12345", "abcdef", None, 123456])
def test_malformed_pins_are_refused(solo, pin):
    with pytest.raises(Forbidden):
        services.solo_resume_by_pin(code=solo.room.code, pin=pin)


def test_wrong_pins_lock_the_room_for_a_while(solo):
    for _attempt in range(services.SOLO_PIN_MAX_FAILURES - 1):
        with pytest.raises(Forbidden) as exc:
            services.solo_resume_by_pin(code=solo.room.code, pin=wrong_pin(solo.pin))
        assert exc.value.code == "wrong_pin"
    assert Room.objects.get(pk=solo.room.pk).solo_pin_failures == 4
    with pytest.raises(Forbidden):
        services.solo_resume_by_pin(code=solo.room.code, pin=wrong_pin(solo.pin))
    # Now even the right PIN is refused, until the lock expires.
    with pytest.raises(Forbidden) as exc:
        services.solo_resume_by_pin(code=solo.room.code, pin=solo.pin)
    assert exc.value.code == "pin_locked"
    Room.objects.filter(pk=solo.room.pk).update(
        solo_pin_locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.solo_resume_by_pin(code=solo.room.code, pin=solo.pin) == solo.member


def test_a_right_pin_clears_the_failure_count(solo):
    with pytest.raises(Forbidden):
        services.solo_resume_by_pin(code=solo.room.code, pin=wrong_pin(solo.pin))
    services.solo_resume_by_pin(code=solo.room.code, pin=solo.pin)
    assert Room.objects.get(pk=solo.room.pk).solo_pin_failures == 0


def test_a_pin_does_not_open_group_rooms_or_closed_solo_rooms(solo, room, scenario):
    with pytest.raises(Forbidden):
        services.solo_resume_by_pin(code=room.code, pin=solo.pin)
    Room.objects.filter(pk=solo.room.pk).update(phase=Phase.CLOSED)
    with pytest.raises(Forbidden):
        services.solo_resume_by_pin(code=solo.room.code, pin=solo.pin)
    # The link still opens a finished room (to read and download the record).
    assert services.solo_resume_by_token(token=solo.token) == solo.member

"""The warm-up check: scored on the server, attempts stored per member, refusals change nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from debate import selectors, services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import Room, WarmupAttempt
from tests.debate.conftest import advance, db_state

pytestmark = pytest.mark.django_db

RIGHT = {"inspect": "study", "retrain": "strip", "clinic": "access", "recall": "irreversible"}


def submit(room, member, answers, client_id="try-1"):
    return services.warmup_submit(
        room_id=room.pk, member_id=member.pk, client_id=client_id, answers=answers
    )


def state():
    return db_state() | {
        "attempts": sorted(WarmupAttempt.objects.values_list("pk", "member_id", "score")),
        "seqs": sorted((r.pk, r.seq) for r in Room.objects.with_seq()),
    }


def test_the_builtin_scenario_has_four_items_and_four_reasons(scenario):
    warmup = scenario.warmup
    assert len(warmup["items"]) == 4 and len(warmup["reasons"]) == 4
    assert {i["answer"] for i in warmup["items"]} == {r["key"] for r in warmup["reasons"]}
    public = selectors.warmup_public(scenario)
    assert all("answer" not in i and "explanation" not in i for i in public["items"])


def test_all_right_scores_four(teams):
    attempt = submit(teams.room, teams.members["Ana"], RIGHT)
    assert (attempt.score, attempt.total) == (4, 4)
    assert all(attempt.results.values())
    payload = selectors.warmup_attempt_payload(attempt)
    assert set(payload["explanations"]) == set(RIGHT)


def test_partly_right_scores_per_item_and_explains_only_the_right_ones(teams):
    swapped = {**RIGHT, "inspect": "access", "clinic": "study"}
    attempt = submit(teams.room, teams.members["Ana"], swapped)
    assert attempt.score == 2
    assert attempt.results == {"inspect": False, "retrain": True, "clinic": False, "recall": True}
    payload = selectors.warmup_attempt_payload(attempt)
    assert set(payload["explanations"]) == {"retrain", "recall"}


def test_every_try_is_stored_and_a_resend_is_not(teams):
    ana = teams.members["Ana"]
    first = submit(teams.room, ana, {**RIGHT, "inspect": "access", "clinic": "study"})
    again = submit(teams.room, ana, RIGHT, client_id="try-1")  # a resend of try-1
    assert again.pk == first.pk and again.score == 2
    submit(teams.room, ana, RIGHT, client_id="try-2")
    assert list(ana.warmup_attempts.values_list("score", flat=True)) == [2, 4]


def test_works_during_drafting_and_in_solo_rooms(drafting, scenario):
    assert submit(drafting.room, drafting.members["Cy"], RIGHT).score == 4
    solo = services.solo_start(scenario_id=scenario.pk)
    assert submit(solo.room, solo.member, RIGHT).score == 4


def test_the_summary_counts_each_members_latest_try(teams):
    submit(teams.room, teams.members["Ana"], {**RIGHT, "inspect": "access", "clinic": "study"})
    submit(teams.room, teams.members["Ana"], RIGHT, client_id="try-2")
    submit(
        teams.room, teams.members["Ben"], {**RIGHT, "recall": "strip", "retrain": "irreversible"}
    )
    summary = selectors.warmup_summary(room=teams.room)
    items = {i["key"]: (i["right"], i["of"]) for i in summary["items"]}
    assert items == {"inspect": (2, 2), "retrain": (1, 2), "clinic": (2, 2), "recall": (1, 2)}
    members = {m["member_id"]: m for m in summary["members"]}
    assert members[teams.members["Ana"].pk] | {} == {
        "member_id": teams.members["Ana"].pk,
        "latest": 4,
        "best": 4,
        "total": 4,
        "tries": 2,
    }


@pytest.mark.parametrize(
    "answers, error",
    [
        ({k: v for k, v in RIGHT.items() if k != "recall"}, Invalid),  # incomplete
        ({**RIGHT, "extra": "study"}, Invalid),  # unknown item
        ({**RIGHT, "recall": "nonsense"}, Invalid),  # unknown reason
        ({**RIGHT, "recall": 3}, Invalid),
        (["study"] * 4, Invalid),
        ("study", Invalid),
    ],
)
def test_malformed_answers_change_nothing(teams, answers, error):
    before = state()
    with pytest.raises(error):
        submit(teams.room, teams.members["Ana"], answers)
    assert state() == before


def test_refused_after_drafting(teams):
    advance(teams.room, teams.facilitator, "drafting", "review")
    before = state()
    with pytest.raises(WrongPhase):
        submit(teams.room, teams.members["Ana"], RIGHT)
    assert state() == before


def test_refused_to_facilitators_removed_members_and_other_rooms_members(teams, scenario):
    other = services.solo_start(scenario_id=scenario.pk)
    services.member_remove(
        room_id=teams.room.pk, actor=teams.facilitator, member_id=teams.members["Dee"].pk
    )
    before = state()
    for member_id in (None, teams.members["Dee"].pk, other.member.pk):
        with pytest.raises(Forbidden):
            services.warmup_submit(
                room_id=teams.room.pk, member_id=member_id, client_id="c", answers=RIGHT
            )
    with pytest.raises(Invalid):
        services.warmup_submit(
            room_id=teams.room.pk, member_id=teams.members["Ana"].pk, client_id="", answers=RIGHT
        )
    assert state() == before


def test_a_scenario_without_a_warmup_refuses(teams):
    teams.room.scenario.warmup = {}
    teams.room.scenario.save()
    before = state()
    with pytest.raises(NotFound):
        submit(teams.room, teams.members["Ana"], RIGHT)
    assert state() == before


def test_tries_are_capped(teams, monkeypatch):
    monkeypatch.setattr(services, "WARMUP_ATTEMPTS_MAX", 2)
    ana = teams.members["Ana"]
    submit(teams.room, ana, RIGHT, client_id="a")
    submit(teams.room, ana, RIGHT, client_id="b")
    before = state()
    with pytest.raises(Conflict):
        submit(teams.room, ana, RIGHT, client_id="c")
    assert state() == before


def test_a_try_is_announced_to_the_member_and_the_facilitators(
    teams, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        submit(teams.room, teams.members["Ana"], RIGHT)
    teams.room.refresh_from_db()
    assert teams.room.seq == 1 and len(callbacks) == 1
    assert AnonymousUser().is_authenticated is False


def test_the_facilitators_record_carries_the_warmup_results(teams, client):
    from django.urls import reverse

    submit(teams.room, teams.members["Ana"], RIGHT)
    client.force_login(teams.facilitator)
    body = client.get(reverse("debate:room_export_md", args=[teams.room.pk])).content.decode()
    assert "## Warm-up check" in body
    assert "| Ana | 4/4 | 4/4 | 1 |" in body

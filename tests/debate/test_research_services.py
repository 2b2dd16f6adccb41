"""Research board, evidence cards and citations: the services, every refusal changing nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from debate import selectors, services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.exports import record_markdown
from debate.models import Draft, EvidenceCard, ResearchNote, TrendJudgement
from tests.conftest import join
from tests.debate.conftest import advance, db_state, member_draft

ANON = AnonymousUser()


def research_state():
    return {
        **db_state(),
        "notes": sorted(ResearchNote.objects.values_list()),
        "judgements": sorted(TrendJudgement.objects.values_list()),
        "citations": sorted(
            Draft.citations.through.objects.values_list("draft_id", "evidencecard_id")
        ),
    }


def refused(exc_type, fn, /, *, err_code: str | None = None, **kwargs):
    before = research_state()
    with pytest.raises(exc_type) as info:
        fn(**kwargs)
    if err_code is not None:
        assert info.value.code == err_code, info.value.as_payload()
    assert research_state() == before
    return info.value


NOTE = {
    "organisation": "Example Lab",
    "year": 2024,
    "month": 7,
    "approach": "open_weights",
    "summary": "Published the weights of its largest model under a community licence.",
    "source_url": "https://example.org/news/release",
}


def note_save(teams, name, *, client_id="n1", note_id=None, base_version=0, **fields):
    member_id = None if name is None else teams.members[name].pk
    actor = teams.facilitator if name is None else ANON
    return services.research_note_save(
        room_id=teams.room.pk,
        actor=actor,
        member_id=member_id,
        client_id=client_id,
        note_id=note_id,
        base_version=base_version,
        **{**NOTE, **fields},
    )


# --- notes ------------------------------------------------------------------------------------


def test_member_adds_a_note_and_a_resend_is_a_duplicate(teams):
    first = note_save(teams, "Ana")
    again = note_save(teams, "Ana")
    assert not first.duplicate and again.duplicate and again.id == first.id
    note = ResearchNote.objects.get()
    assert note.author == teams.members["Ana"] and note.version == 1
    assert note.summary == NOTE["summary"]
    teams.room.refresh_from_db()
    assert teams.room.seq == 1


def test_facilitator_adds_a_note(teams):
    result = note_save(teams, None)
    note = ResearchNote.objects.get(pk=result.id)
    assert note.author is None and note.author_user == teams.facilitator


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<b>x</b>",
        "ftp://example.org/file",
        "//example.org/x",
        "example.org",
        "https://",
        "",
        "https://example.org/" + "a" * 600,
    ],
)
def test_bad_source_urls_are_refused(teams, url):
    err = refused(Invalid, note_save, teams=teams, name="Ana", source_url=url)
    assert err.details["field"] == "source_url"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("organisation", ""),
        ("organisation", "x" * 121),
        ("summary", "   "),
        ("summary", "x" * 301),
        ("year", 1999),
        ("year", 3000),
        ("year", "2024"),
        ("year", True),
        ("month", 0),
        ("month", 13),
        ("approach", "leaked"),
        ("approach", None),
    ],
)
def test_bad_note_fields_are_refused(teams, field, value):
    err = refused(Invalid, note_save, teams=teams, name="Ana", **{field: value})
    assert err.details["field"] == field


def test_note_refusals_by_role_and_state(teams, room, other_facilitator, scenario):
    ana = teams.members["Ana"]
    # another room's member is not a member of this room
    other_room = services.room_create(owner=other_facilitator, scenario=scenario)
    stranger = join(other_room, "Zed")
    refused(
        Forbidden,
        services.research_note_save,
        room_id=room.pk,
        actor=ANON,
        member_id=stranger.pk,
        client_id="x",
        note_id=None,
        base_version=0,
        **NOTE,
    )
    # another facilitator, no member id
    refused(
        Forbidden,
        services.research_note_save,
        room_id=room.pk,
        actor=other_facilitator,
        member_id=None,
        client_id="x",
        note_id=None,
        base_version=0,
        **NOTE,
    )
    ana.muted = True
    ana.save()
    refused(Forbidden, note_save, teams=teams, name="Ana", err_code="muted")
    ana.muted = False
    ana.save()
    services.editing_lock(room_id=room.pk, actor=teams.facilitator, locked=True)
    refused(WrongPhase, note_save, teams=teams, name="Ana", err_code="locked")


def test_closed_room_refuses_notes(teams):
    from tests.debate.conftest import complete_recommendation

    advance(teams.room, teams.facilitator, "drafting", "review", "recommendation")
    complete_recommendation(teams.room, teams.facilitator, teams.pos("restricted"))
    advance(teams.room, teams.facilitator, "closed")
    refused(WrongPhase, note_save, teams=teams, name="Ana")
    refused(WrongPhase, note_save, teams=teams, name=None)


def test_edit_by_author_and_facilitator_not_by_others(teams):
    created = note_save(teams, "Ana")
    refused(
        Forbidden,
        note_save,
        teams=teams,
        name="Ben",
        client_id="b1",
        note_id=created.id,
        base_version=1,
        summary="Hijacked.",
        err_code="not_author",
    )
    edited = note_save(teams, "Ana", client_id="a2", note_id=created.id, base_version=1, month=8)
    assert edited.version == 2
    by_fac = note_save(teams, None, client_id="f1", note_id=created.id, base_version=2, year=2023)
    assert by_fac.version == 3
    note = ResearchNote.objects.get()
    assert (note.year, note.month, note.author_id) == (2023, 7, teams.members["Ana"].pk)


def test_stale_edit_conflicts_with_the_current_note(teams):
    created = note_save(teams, "Ana")
    note_save(teams, "Ana", client_id="a2", note_id=created.id, base_version=1, month=9)
    err = refused(
        Conflict,
        note_save,
        teams=teams,
        name="Ana",
        client_id="a3",
        note_id=created.id,
        base_version=1,
    )
    assert err.details["current"]["month"] == 9 and err.details["current"]["version"] == 2


def test_other_rooms_note_is_not_found(teams, other_facilitator, scenario):
    other_room = services.room_create(owner=other_facilitator, scenario=scenario)
    zed = join(other_room, "Zed")
    other = services.research_note_save(
        room_id=other_room.pk,
        actor=ANON,
        member_id=zed.pk,
        client_id="z1",
        note_id=None,
        base_version=0,
        **NOTE,
    )
    refused(
        NotFound, note_save, teams=teams, name=None, client_id="f", note_id=other.id, base_version=1
    )
    refused(
        NotFound,
        services.research_note_delete,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=None,
        note_id=other.id,
    )


def test_delete_by_author_or_facilitator_only_and_not_twice(teams):
    created = note_save(teams, "Ana")
    refused(
        Forbidden,
        services.research_note_delete,
        room_id=teams.room.pk,
        actor=ANON,
        member_id=teams.members["Cy"].pk,
        note_id=created.id,
    )
    services.research_note_delete(
        room_id=teams.room.pk, actor=ANON, member_id=teams.members["Ana"].pk, note_id=created.id
    )
    assert not ResearchNote.objects.exists()
    refused(
        NotFound,
        services.research_note_delete,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=None,
        note_id=created.id,
    )
    second = note_save(teams, "Ben", client_id="b1")
    services.research_note_delete(
        room_id=teams.room.pk, actor=teams.facilitator, member_id=None, note_id=second.id
    )
    assert not ResearchNote.objects.exists()


# --- judgements and the record ---------------------------------------------------------------


def judge(teams, name, trend, reason="Most new releases kept weights in house.", client_id=None):
    return services.trend_judge(
        room_id=teams.room.pk,
        actor=ANON,
        member_id=teams.members[name].pk,
        client_id=client_id or f"{name}-{trend}",
        trend=trend,
        reason=reason,
    )


def test_judgements_are_one_per_member_and_tallied(teams):
    judge(teams, "Ana", "more_open")
    judge(teams, "Ben", "more_closed")
    judge(teams, "Ana", "mixed", reason="Both happened.")
    assert judge(teams, "Ana", "mixed", reason="Both happened.").duplicate
    tally = selectors.trend_tally(room=teams.room)
    assert tally == {"more_open": 0, "more_closed": 1, "mixed": 1, "total": 2}


def test_judgement_refusals(teams):
    refused(Invalid, judge, teams=teams, name="Ana", trend="sideways")
    refused(Invalid, judge, teams=teams, name="Ana", trend="mixed", reason="")
    refused(Invalid, judge, teams=teams, name="Ana", trend="mixed", reason="x" * 501)
    refused(
        Forbidden,
        services.trend_judge,
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=None,
        client_id="f",
        trend="mixed",
        reason="Chair's view",
        err_code="members_only",
    )


def test_research_record_and_markdown(teams):
    note_save(teams, "Ana", client_id="a", organisation="Lab *Bold*", year=2023, month=2)
    note_save(teams, "Ben", client_id="b", approach="api_only", year=2024, month=11)
    note_save(
        teams, "Cy", client_id="c", approach="staged", year=2023, month=2, organisation="Alpha"
    )
    judge(teams, "Dee", "more_closed", reason="Two of three kept weights <closed>.")
    research = selectors.record_data(room=teams.room, audience="facilitator")["research"]
    assert [row["label"] for row in research["timeline"]] == ["Feb 2023", "Nov 2024"]
    assert [n["organisation"] for n in research["notes"]] == ["Alpha", "Lab *Bold*", "Example Lab"]
    assert research["timeline"][0]["counts"] == [1, 0, 0, 1, 0]  # open weights, staged
    assert {c["trend"]: c["count"] for c in research["tally"]["counts"]}["more_closed"] == 1
    assert research["notes"][0]["author"] == "Cy"
    text = record_markdown(data=selectors.record_data(room=teams.room, audience="facilitator"))
    assert "## Research: release policies of real labs" in text
    assert "**Lab \\*Bold\\***" in text
    assert "<https://example.org/news/release>" in text
    assert "### Feb 2023" in text and "### Nov 2024" in text
    assert "| Feb 2023 | 1 | 0 | 0 | 1 | 0 |" in text
    assert "| Nov 2024 | 0 | 1 | 0 | 0 | 0 |" in text
    assert "- More closed: 1" in text
    assert "Dee: More closed — Two of three kept weights \\<closed\\>." in text


# --- citations --------------------------------------------------------------------------------


def test_builtin_scenario_has_evidence_cards(scenario):
    keys = set(scenario.cards.values_list("key", flat=True))
    assert {
        "access-tiers",
        "no-recall",
        "fine-tuning-strips-safety",
        "marginal-risk",
        "low-cost-access",
        "independent-scrutiny",
        "open-still-anchored",
    } <= keys


def cite(teams, name, ids, *, client_id="c-cite", base_version=1, text="Argued with evidence."):
    return services.draft_save(
        room_id=teams.room.pk,
        actor=ANON,
        member_id=teams.members[name].pk,
        client_id=client_id,
        text=text,
        base_version=base_version,
        kind="argument",
        slot=1,
        citations=ids,
    )


def test_draft_cites_cards_of_its_scenario(drafting, scenario):
    cards = list(scenario.cards.all()[:2])
    member_draft(drafting, "Ana", "Argued with evidence.")
    result = cite(drafting, "Ana", [cards[1].pk, cards[0].pk])
    draft = Draft.objects.get(pk=result.id)
    assert sorted(draft.citations.values_list("pk", flat=True)) == sorted(c.pk for c in cards)
    assert result.version == 2
    payload = selectors.draft_payload(draft)
    assert payload["citations"] == sorted(c.pk for c in cards)
    # The same list again changes nothing; None keeps the citations.
    assert cite(
        drafting, "Ana", [cards[0].pk, cards[1].pk], client_id="c2", base_version=2
    ).duplicate
    services.draft_save(
        room_id=drafting.room.pk,
        actor=ANON,
        member_id=drafting.members["Ana"].pk,
        client_id="c3",
        text="New words.",
        base_version=2,
        kind="argument",
        slot=1,
    )
    assert draft.citations.count() == 2
    data = selectors.record_data(room=drafting.room, audience="facilitator")
    argument = next(
        a
        for p in data["positions"]
        for r in p["rounds"]
        for a in r["arguments"]
        if a["id"] == draft.pk
    )
    assert argument["cited_cards"] == [cards[0].title, cards[1].title]
    text = record_markdown(data=data)
    assert f"cites: {cards[0].title}; {cards[1].title}" in text


def test_citation_refusals(drafting, scenario, other_facilitator):
    member_draft(drafting, "Ana", "Argued with evidence.")
    other = services.scenario_copy(actor=other_facilitator, scenario_id=scenario.pk)
    foreign = other.cards.first()
    refused(NotFound, cite, teams=drafting, name="Ana", ids=[foreign.pk], err_code="card_not_found")
    refused(NotFound, cite, teams=drafting, name="Ana", ids=[999999], err_code="card_not_found")
    refused(Invalid, cite, teams=drafting, name="Ana", ids="1,2")
    refused(Invalid, cite, teams=drafting, name="Ana", ids=[True])
    # Found by the fuzzer: a number beyond 64 bits made SQLite raise instead of "not found".
    refused(Invalid, cite, teams=drafting, name="Ana", ids=[2**70])
    many = list(EvidenceCard.objects.values_list("pk", flat=True)[:9])
    refused(Invalid, cite, teams=drafting, name="Ana", ids=many, err_code="too_many")


def test_anonymous_room_research_record_uses_code_names_for_members(db, scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, anonymous=True)
    ana, ben = join(room, "Ana"), join(room, "Ben")
    services.research_note_save(
        room_id=room.pk,
        actor=ANON,
        member_id=ana.pk,
        client_id="a",
        note_id=None,
        base_version=0,
        **NOTE,
    )
    services.trend_judge(
        room_id=room.pk, actor=ANON, member_id=ana.pk, client_id="j", trend="mixed", reason="Both."
    )
    ben_view = selectors.viewer_for(room_id=room.pk, user=ANON, member_id=ben.pk)
    text = record_markdown(
        data=selectors.record_data(room=room, audience="member", viewer=ben_view)
    )
    assert "Ana" not in text
    assert f"· {ana.code_name}" in text and f"- {ana.code_name}: Mixed — Both." in text
    public = record_markdown(data=selectors.record_data(room=room, audience="public"))
    assert "Ana" not in public and f"- {ana.code_name}: Mixed — Both." in public
    fac_text = record_markdown(data=selectors.record_data(room=room, audience="facilitator"))
    assert "- Ana: Mixed — Both." in fac_text

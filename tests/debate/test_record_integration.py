"""The record after the merge: research notes, cited evidence cards and warm-up results in all
three formats (Markdown, JSON, the printable page), who gets the warm-up (never the share link),
solo rooms (the learner is every team and the chair; finishing freezes the record as finalize
does) and the class archive."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from classroom import exports as class_exports
from debate import selectors, services
from debate.errors import Forbidden, WrongPhase
from debate.exports import record_markdown
from debate.models import Recommendation
from tests.conftest import join
from tests.debate.conftest import OPEN, advance, complete_recommendation, db_state, member_draft
from tests.debate.test_record_views import member_client

pytestmark = pytest.mark.django_db

ANON = AnonymousUser()
RIGHT = {"inspect": "study", "retrain": "strip", "clinic": "access", "recall": "irreversible"}
NOTE = {
    "organisation": "Lab <b>&amp;</b> [x](javascript:alert(1))",
    "year": 2024,
    "month": 3,
    "approach": "staged",
    "summary": "Released <script>alert(1)</script> in stages.",
    "source_url": "https://example.org/staged?a=1&b=2",
}


def note(room, member, client_id="n1", **fields):
    return services.research_note_save(
        room_id=room.pk,
        actor=ANON,
        member_id=member.pk,
        client_id=client_id,
        note_id=None,
        base_version=0,
        **{**NOTE, **fields},
    )


def warmup(room, member, client_id="w1"):
    return services.warmup_submit(
        room_id=room.pk, member_id=member.pk, client_id=client_id, answers=RIGHT
    )


def get(client, name, room):
    response = client.get(reverse(name, args=[room.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_no_research_no_section(teams):
    data = selectors.record_data(room=teams.room, audience="facilitator")
    assert data["research"] is None and data["warmup"] is None
    text = record_markdown(data=data)
    assert "Research" not in text and "Warm-up" not in text


def test_research_in_every_format_escaped(teams, client):
    note(teams.room, teams.members["Ana"])
    note(teams.room, teams.members["Cy"], "n2", organisation="Beta", year=2023, month=11)
    services.trend_judge(
        room_id=teams.room.pk,
        actor=ANON,
        member_id=teams.members["Ben"].pk,
        client_id="j",
        trend="more_closed",
        reason="Closed <i>more</i> often.",
    )
    client.force_login(teams.facilitator)
    md = get(client, "debate:room_export_md", teams.room)
    assert "### Nov 2023" in md and "### Mar 2024" in md
    assert "**Lab \\<b\\>&amp;\\</b\\> \\[x\\](javascript:alert(1))** (Staged)" in md
    assert "Source: <https://example.org/staged?a=1&b=2> · Ana" in md
    assert "| Nov 2023 | 0 | 0 | 0 | 1 | 0 |" in md and "| Mar 2024 | 0 | 0 | 0 | 1 | 0 |" in md
    assert "- More closed: 1" in md and "- Judgements: 1" in md
    assert "- Ben: More closed — Closed \\<i\\>more\\</i\\> often." in md
    data = json.loads(get(client, "debate:room_export_json", teams.room))
    research = data["research"]
    assert [n["organisation"] for n in research["notes"]] == ["Beta", NOTE["organisation"]]
    assert research["notes"][1]["author"] == "Ana" and research["notes"][1]["when"] == "Mar 2024"
    assert research["tally"]["total"] == 1 and research["judgements"][0]["member"] == "Ben"
    page = get(client, "debate:room_record", teams.room)
    assert "<script>alert(1)</script>" not in page and "<b>&amp;</b>" not in page
    assert "Released &lt;script&gt;alert(1)&lt;/script&gt; in stages." in page
    assert 'href="https://example.org/staged?a=1&amp;b=2"' in page
    assert (
        "Timeline by month and approach" in page and "Closed &lt;i&gt;more&lt;/i&gt; often." in page
    )


def test_a_facilitators_note_reads_facilitator(teams):
    services.research_note_save(
        room_id=teams.room.pk,
        actor=teams.facilitator,
        member_id=None,
        client_id="f",
        note_id=None,
        base_version=0,
        **{**NOTE, "source_url": "http://example.org/plain"},
    )
    text = record_markdown(data=selectors.record_data(room=teams.room, audience="public"))
    assert "Source: <http://example.org/plain> · Facilitator" in text


def test_cited_cards_in_every_format(drafting, scenario, client):
    cards = list(scenario.cards.all()[:2])
    member_draft(drafting, "Ana", "Argued with evidence.")
    draft_id = member_draft(drafting, "Ana", "Second.", slot=2).id
    services.draft_save(
        room_id=drafting.room.pk,
        actor=ANON,
        member_id=drafting.members["Ana"].pk,
        client_id="cite",
        text="Second.",
        base_version=1,
        kind="argument",
        slot=2,
        citations=[cards[1].pk, cards[0].pk],
    )
    client.force_login(drafting.facilitator)
    md = get(client, "debate:room_export_md", drafting.room)
    assert f"— Ana · cites: {cards[0].title}; {cards[1].title}" in md
    data = json.loads(get(client, "debate:room_export_json", drafting.room))
    args = [a for p in data["positions"] for r in p["rounds"] for a in r["arguments"]]
    assert {a["id"]: a["cited_cards"] for a in args}[draft_id] == [cards[0].title, cards[1].title]
    assert [a["cited_cards"] for a in args if a["id"] != draft_id] == [[]]
    page = get(client, "debate:room_record", drafting.room)
    assert f"<cite>{cards[0].title}; {cards[1].title}</cite>" in page


def test_warmup_for_facilitators_only_in_a_group_room(teams, client):
    warmup(teams.room, teams.members["Ana"])
    fac = selectors.record_data(room=teams.room, audience="facilitator")
    assert fac["warmup"]["members"] == [
        {"member": "Ana", "latest": 4, "best": 4, "total": 4, "tries": 1}
    ]
    assert fac["warmup"]["items"][0]["right"] == 1
    ana_view = selectors.viewer_for(
        room_id=teams.room.pk, user=ANON, member_id=teams.members["Ana"].pk
    )
    assert (
        selectors.record_data(room=teams.room, audience="member", viewer=ana_view)["warmup"] is None
    )
    assert selectors.record_data(room=teams.room, audience="public")["warmup"] is None
    client.force_login(teams.facilitator)
    assert "Warm-up check" in get(client, "debate:room_record", teams.room)
    # Finalized: the share link's page and the members' record have no warm-up.
    advance(teams.room, teams.facilitator, "drafting", "review", "recommendation")
    complete_recommendation(teams.room, teams.facilitator, teams.pos(OPEN))
    services.recommendation_finalize(room_id=teams.room.pk, actor=teams.facilitator)
    rec = Recommendation.objects.get(room=teams.room)
    assert rec.frozen_record["facilitator"]["warmup"] is not None
    assert rec.frozen_record["public"]["warmup"] is None
    shared = client.get(reverse("debate:record_shared", args=[rec.share_token])).content.decode()
    assert "Warm-up" not in shared and "4/4" not in shared
    ana = member_client(teams.room, teams.members["Ana"])
    assert "Warm-up" not in get(ana, "debate:room_export_md", teams.room)
    assert "## Warm-up check" in get(client, "debate:room_export_md", teams.room)


@pytest.fixture
def solo(scenario):
    return services.solo_start(scenario_id=scenario.pk, display_name="Lea")


def finish_solo(solo, scenario, *, citations=None):
    room_id, member_id = solo.room.pk, solo.member.pk
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="recommendation")
    services.recommendation_build(
        room_id=room_id,
        actor=ANON,
        member_id=member_id,
        client_id="rec-1",
        base_version=0,
        decision_id=scenario.positions.last().pk,
        rationale="Because.",
        revisit_condition="If copies leak.",
        citation_ids=citations or [],
        risk_text="",
    )
    services.solo_phase_set(room_id=room_id, member_id=member_id, to_phase="closed")


def test_solo_learner_is_every_team_and_chairs_the_builder(solo, scenario):
    draft = services.draft_save(
        room_id=solo.room.pk,
        actor=ANON,
        member_id=solo.member.pk,
        client_id="d",
        text="An argument.",
        base_version=0,
        kind="argument",
        slot=1,
        position_id=scenario.positions.last().pk,
    )
    data = selectors.record_data(room=solo.room, audience="facilitator")
    assert [p["team"] for p in data["positions"]] == [["Lea"]] * scenario.positions.count()
    assert data["room"]["unassigned"] == []
    assert data["vote"] is None  # no committee vote for one learner
    text = record_markdown(data=data)
    assert "Members without a position" not in text and "vote" not in text
    finish_solo(solo, scenario, citations=[draft.id])
    rec = Recommendation.objects.get(room=solo.room)
    assert list(rec.citations.values_list("pk", flat=True)) == [draft.id]


def test_another_learner_cannot_build_a_solo_recommendation(solo, scenario):
    other = services.solo_start(scenario_id=scenario.pk, display_name="Max")
    services.solo_phase_set(
        room_id=solo.room.pk, member_id=solo.member.pk, to_phase="recommendation"
    )
    before = db_state()
    with pytest.raises(Forbidden):
        services.recommendation_build(
            room_id=solo.room.pk,
            actor=ANON,
            member_id=other.member.pk,
            client_id="x",
            base_version=0,
            decision_id=None,
            rationale="Mine now.",
            revisit_condition="",
        )
    assert db_state() == before


def test_finishing_a_solo_room_freezes_its_record(solo, scenario, client):
    warmup(solo.room, solo.member)
    note(solo.room, solo.member)
    finish_solo(solo, scenario)
    rec = Recommendation.objects.get(room=solo.room)
    assert rec.finalized_at is not None and rec.share_token
    frozen = rec.frozen_record
    assert set(frozen) == {"facilitator", "public", "members"}
    own = frozen["members"][str(solo.member.pk)]
    assert own["warmup"]["members"][0]["member"] == "Lea" and own["research"]["notes"]
    assert frozen["public"]["warmup"] is None and frozen["public"]["research"]["notes"]
    # What the learner reads is the frozen copy, in every format.
    lea = member_client(solo.room, solo.member)
    md = get(lea, "debate:room_export_md", solo.room)
    assert "(frozen record)" in md and "| Lea | 4/4 | 4/4 | 1 |" in md
    assert json.loads(get(lea, "debate:room_export_json", solo.room))["finalized_at"]
    page = get(lea, "debate:room_record", solo.room)
    assert "Warm-up check" in page and "Timeline by month and approach" in page
    shared = client.get(reverse("debate:record_shared", args=[rec.share_token])).content.decode()
    assert "Warm-up" not in shared and "Timeline by month and approach" in shared
    # Finished is final: nothing changes any more.
    before = db_state()
    with pytest.raises(WrongPhase):
        services.solo_phase_set(room_id=solo.room.pk, member_id=solo.member.pk, to_phase="closed")
    assert db_state() == before


def test_the_class_archive_carries_the_new_sections(scenario, facilitator):
    from classroom import services as class_services

    klass = class_services.classgroup_create(owner=facilitator, name="Ethics")
    room = services.room_create(owner=facilitator, scenario=scenario, classgroup=klass)
    ana = join(room, "Ana")
    warmup(room, ana)
    note(room, ana)
    archive = zipfile.ZipFile(io.BytesIO(class_exports.class_archive_zip(classgroup=klass)))
    (name,) = [n for n in archive.namelist() if n.endswith(".md")]
    text = archive.read(name).decode()
    assert "## Research: release policies of real labs" in text
    assert "| Ana | 4/4 | 4/4 | 1 |" in text

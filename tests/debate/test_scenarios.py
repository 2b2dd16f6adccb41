"""Custom scenarios: the services and the editor's views. A facilitator never sees or uses
another's private scenario; the built-in one is read-only but can be copied."""

from __future__ import annotations

import pytest
from django.test import Client

from debate import selectors, services
from debate.errors import Conflict, Forbidden, Invalid, NotFound
from debate.models import EvidenceCard, Position, Room, Scenario
from tests.conftest import join
from tests.debate.conftest import advance, member_draft


def scenario_state():
    return {
        "scenarios": sorted(Scenario.objects.values_list()),
        "positions": sorted(Position.objects.values_list()),
        "cards": sorted(EvidenceCard.objects.values_list()),
        "rooms": sorted(Room.objects.values_list("pk", "scenario_id")),
    }


def refused(exc_type, fn, /, *, err_code=None, **kwargs):
    before = scenario_state()
    with pytest.raises(exc_type) as info:
        fn(**kwargs)
    if err_code is not None:
        assert info.value.code == err_code, info.value.as_payload()
    assert scenario_state() == before
    return info.value


def data(positions: int = 2, cards: int = 1, **extra):
    return {
        "title": "School phones",
        "question": "Should our school ban phones during lessons?",
        "briefing": "The council asks for a rule.\n\n- Phones distract\n- Phones help research",
        "argument_slots": 2,
        "risk_slots": 1,
        "revisit_months": 12,
        "recommendation_guidance": "",
        "revisit_guidance": "",
        "positions": [
            {"name": f"Option {i}", "short_name": f"Opt {i}", "summary": f"Argue option {i}."}
            for i in range(1, positions + 1)
        ],
        "cards": [
            {"title": f"Fact {i}", "body": f"Something true {i}.", "source_note": ""}
            for i in range(1, cards + 1)
        ],
        **extra,
    }


# --- services ---------------------------------------------------------------------------------


def test_create_a_private_scenario(db, facilitator, other_facilitator, scenario):
    mine = services.scenario_create(owner=facilitator, data=data(positions=4, cards=2))
    assert mine.owner == facilitator and not mine.is_builtin
    assert [p.name for p in mine.positions.all()] == [f"Option {i}" for i in range(1, 5)]
    assert mine.cards.count() == 2
    assert set(selectors.scenarios_for_facilitator(user=facilitator)) == {scenario, mine}
    assert set(selectors.scenarios_for_facilitator(user=other_facilitator)) == {scenario}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"positions": 1}, "positions"),
        ({"positions": 7}, "positions"),
        ({"cards": 21}, "cards"),
    ],
)
def test_scenario_limits(db, facilitator, changes, field):
    err = refused(Invalid, services.scenario_create, owner=facilitator, data=data(**changes))
    assert err.details["field"] == field


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("title", ""),
        ("argument_slots", 0),
        ("argument_slots", 7),
        ("risk_slots", 0),
        ("revisit_months", 0),
        ("revisit_months", "6"),
        ("briefing", "x" * 20001),
    ],
)
def test_scenario_fields_are_checked(db, facilitator, name, value):
    refused(Invalid, services.scenario_create, owner=facilitator, data={**data(), name: value})


def test_duplicate_position_names_are_refused(db, facilitator):
    bad = data()
    bad["positions"][1]["name"] = "option 1"
    refused(Invalid, services.scenario_create, owner=facilitator, data=bad, err_code="duplicate")


def test_another_facilitators_scenario_is_invisible(db, facilitator, other_facilitator):
    theirs = services.scenario_create(owner=other_facilitator, data=data())
    refused(NotFound, services.room_create, owner=facilitator, scenario=theirs)
    refused(
        NotFound, services.scenario_update, actor=facilitator, scenario_id=theirs.pk, data=data(3)
    )
    refused(NotFound, services.scenario_copy, actor=facilitator, scenario_id=theirs.pk)


def test_builtin_is_read_only_but_copyable(db, facilitator, scenario):
    refused(
        Forbidden,
        services.scenario_update,
        actor=facilitator,
        scenario_id=scenario.pk,
        data=data(),
        err_code="read_only",
    )
    copy = services.scenario_copy(actor=facilitator, scenario_id=scenario.pk)
    assert copy.owner == facilitator and copy.copied_from == scenario and not copy.is_builtin
    assert copy.title == f"Copy of {scenario.title}"
    assert copy.positions.count() == 3
    assert copy.cards.count() == scenario.cards.count()
    # The copy is editable; the built-in one is untouched.
    services.scenario_update(actor=facilitator, scenario_id=copy.pk, data=data(positions=5))
    assert copy.positions.count() == 5
    assert scenario.positions.count() == 3


def test_edit_only_while_unused(db, facilitator):
    mine = services.scenario_create(owner=facilitator, data=data())
    services.scenario_update(actor=facilitator, scenario_id=mine.pk, data=data(positions=3))
    services.room_create(owner=facilitator, scenario=mine)
    refused(
        Conflict,
        services.scenario_update,
        actor=facilitator,
        scenario_id=mine.pk,
        data=data(positions=2),
        err_code="scenario_in_use",
    )
    copy = services.scenario_copy(actor=facilitator, scenario_id=mine.pk)
    services.scenario_update(actor=facilitator, scenario_id=copy.pk, data=data(positions=6))
    assert copy.positions.count() == 6


@pytest.mark.parametrize("count", [2, 6])
def test_rooms_work_with_two_to_six_positions(db, facilitator, count):
    """Assignment, drafting, switching sides and the record with 2 or 6 positions."""
    mine = services.scenario_create(owner=facilitator, data=data(positions=count))
    room = services.room_create(owner=facilitator, scenario=mine)
    members = [join(room, f"Learner {i}") for i in range(count + 1)]
    advance(room, facilitator, "drafting")
    teams = {m.refresh_from_db() or m.position_id for m in members}
    assert len(teams) == count
    from tests.debate.conftest import Teams

    t = Teams(room=room, facilitator=facilitator, positions={})
    t.members = {m.display_name: m for m in members}
    member_draft(t, "Learner 0", "First argument")
    advance(room, facilitator, "review")
    services.round_switch(room_id=room.pk, actor=facilitator)
    from debate.exports import record_markdown

    text = record_markdown(data=selectors.record_data(room=room, audience="facilitator"))
    for i in range(1, count + 1):
        assert f"## Option {i}" in text


# --- views ------------------------------------------------------------------------------------


def form_post(positions: list[dict], cards: list[dict] | None = None, **fields):
    cards = cards or []
    post = {
        "title": "Town bridge",
        "question": "Repair or replace the bridge?",
        "briefing": "The bridge is old.",
        "argument_slots": "3",
        "risk_slots": "1",
        "revisit_months": "6",
        "recommendation_guidance": "",
        "revisit_guidance": "",
        "positions-TOTAL_FORMS": str(len(positions)),
        "positions-INITIAL_FORMS": "0",
        "positions-MIN_NUM_FORMS": "2",
        "positions-MAX_NUM_FORMS": "6",
        "cards-TOTAL_FORMS": str(len(cards)),
        "cards-INITIAL_FORMS": "0",
        "cards-MIN_NUM_FORMS": "0",
        "cards-MAX_NUM_FORMS": "20",
        **fields,
    }
    for i, pos in enumerate(positions):
        for key, value in pos.items():
            post[f"positions-{i}-{key}"] = value
    for i, card in enumerate(cards):
        for key, value in card.items():
            post[f"cards-{i}-{key}"] = value
    return post


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


POS = [
    {"name": "Repair", "short_name": "Repair", "summary": "Fix what is there."},
    {"name": "Replace", "short_name": "", "summary": "Build anew."},
    {"name": "", "short_name": "", "summary": ""},  # an empty extra row is ignored
]


def test_editor_creates_a_scenario_and_room_creation_offers_it(db, facilitator, scenario):
    client = logged_in(facilitator)
    assert client.get("/scenarios/new/").status_code == 200
    card = {"title": "Cost", "body": "Repair costs a third.", "source_note": "Council report"}
    response = client.post("/scenarios/new/", form_post(POS, [card]))
    mine = Scenario.objects.get(owner=facilitator)
    assert response.status_code == 302 and response["Location"] == f"/scenarios/{mine.pk}/"
    assert [p.short_name for p in mine.positions.all()] == ["Repair", "Replace"]
    assert mine.cards.get().title == "Cost"
    page = client.get(f"/scenarios/{mine.pk}/")
    assert b"Repair costs a third." in page.content
    dashboard = client.get("/")
    assert f'value="{mine.pk}"'.encode() in dashboard.content
    created = client.post("/rooms/new/", {"scenario": mine.pk, "title": "Bridge"})
    assert created.status_code == 302
    assert Room.objects.get(title="Bridge").scenario == mine


def test_editor_refuses_one_position(db, facilitator):
    client = logged_in(facilitator)
    response = client.post("/scenarios/new/", form_post(POS[:1]))
    assert response.status_code == 400
    assert b"Write at least two positions." in response.content
    assert not Scenario.objects.filter(owner=facilitator).exists()


def test_editor_deletes_a_position_row(db, facilitator):
    client = logged_in(facilitator)
    rows = [
        *POS[:2],
        {"name": "Close it", "short_name": "", "summary": "No bridge.", "DELETE": "on"},
    ]
    assert client.post("/scenarios/new/", form_post(rows)).status_code == 302
    assert Scenario.objects.get(owner=facilitator).positions.count() == 2


def test_private_scenarios_are_hidden_from_other_facilitators(
    db, facilitator, other_facilitator, scenario
):
    theirs = services.scenario_create(owner=other_facilitator, data=data())
    client = logged_in(facilitator)
    assert theirs.title.encode() not in client.get("/scenarios/").content
    assert theirs.title.encode() not in client.get("/").content
    assert client.get(f"/scenarios/{theirs.pk}/").status_code == 404
    assert client.get(f"/scenarios/{theirs.pk}/edit/").status_code == 404
    assert client.post(f"/scenarios/{theirs.pk}/copy/").status_code == 404
    before = scenario_state()
    response = client.post("/rooms/new/", {"scenario": theirs.pk, "title": "Sneaky"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert scenario_state() == before


def test_builtin_edit_redirects_and_copy_opens_the_editor(db, facilitator, scenario):
    client = logged_in(facilitator)
    response = client.get(f"/scenarios/{scenario.pk}/edit/")
    assert response.status_code == 302 and response["Location"] == "/scenarios/"
    copied = client.post(f"/scenarios/{scenario.pk}/copy/")
    copy = Scenario.objects.get(owner=facilitator)
    assert copied["Location"] == f"/scenarios/{copy.pk}/edit/"
    editor = client.get(copied["Location"])
    assert editor.status_code == 200
    assert b"Restricted open-weight release" in editor.content


def test_used_scenario_cannot_be_edited_in_the_editor(db, facilitator):
    mine = services.scenario_create(owner=facilitator, data=data())
    services.room_create(owner=facilitator, scenario=mine)
    client = logged_in(facilitator)
    assert client.get(f"/scenarios/{mine.pk}/edit/")["Location"] == "/scenarios/"
    before = scenario_state()
    response = client.post(f"/scenarios/{mine.pk}/edit/", form_post(POS))
    assert response.status_code == 302
    assert scenario_state() == before


def test_scenario_pages_need_an_account(db, scenario):
    client = Client()
    for url in ("/scenarios/", "/scenarios/new/", f"/scenarios/{scenario.pk}/"):
        assert client.get(url).status_code == 302


def test_room_briefing_for_members_and_not_for_strangers(db, room):
    member = join(room, "Ana")
    from tests.conftest import member_cookie

    client = Client()
    name, value = member_cookie(member).split("=", 1)
    client.cookies[name] = value
    page = client.get(f"/rooms/{room.pk}/briefing/")
    assert page.status_code == 200
    assert b"Published weights cannot be taken back" in page.content
    assert b"data-print" in page.content
    assert Client().get(f"/rooms/{room.pk}/briefing/").status_code == 404


def test_record_lists_research_and_escapes_it(db, room, facilitator):
    ana = join(room, "Ana")
    services.research_note_save(
        room_id=room.pk,
        actor=facilitator,
        member_id=None,
        client_id="f1",
        note_id=None,
        base_version=0,
        organisation="[Click](javascript:alert(1))",
        year=2024,
        month=5,
        approach="staged",
        summary="Released in stages over three months.",
        source_url="https://example.org/stages",
    )
    assert ana
    client = logged_in(facilitator)
    text = client.get(f"/rooms/{room.pk}/record.md").content.decode()
    assert "\\[Click\\](javascript:alert(1))" in text
    assert "(Staged)" in text and "<https://example.org/stages>" in text

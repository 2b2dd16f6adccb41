"""Escaping of the user texts added with issues 5, 6 and 7: rebuttals and questions, vote reasons,
sign-off dissents, the recommendation's rationale, revisit condition and acknowledged risk,
research notes and trend reasons, evidence card titles of a custom scenario, class names and
student names. Each is shown as text on the pages, carried as data on the socket, escaped in the
Markdown record, exact in the JSON record, and inert on the printable record and its share link.
A javascript: (or data:) source URL is refused by the service and changes nothing."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from debate import services
from debate.errors import Invalid
from debate.models import Draft, EvidenceCard, Phase
from tests.conftest import Socket
from tests.security.conftest import World, build_world, full_state, state_diff
from tests.security.test_escaping import (
    BREAKOUT,
    HANDLER,
    MD_LINK,
    RAW_MARKERS,
    SCRIPT,
    assert_no_raw_html,
)

pytestmark = pytest.mark.django_db(transaction=True)

# One payload per field, each tagged so a test can tell which field leaked.
COMMENT = f"{SCRIPT} c1"
VOTE_REASON = f"{HANDLER} v1"
DISSENT = f"{BREAKOUT} s1"
RATIONALE = f"{SCRIPT} {MD_LINK} r1"
REVISIT = f"{HANDLER} r2"
RISK = f"{BREAKOUT} r3"
NOTE_ORG = f"{SCRIPT}"[:60]
NOTE_SUMMARY = f"{HANDLER} {MD_LINK} n1"
TREND_REASON = f"{SCRIPT} t1"
CARD_TITLE = f"{HANDLER}"[:120]
CLASS_NAME = f"{SCRIPT} 10B"
STUDENT_NAME = HANDLER[:36]
ARGUMENT = f"{HANDLER} a1"


def hostile_review_world(scenario, *, finalize: bool = False) -> World:
    """A room taken through drafting, research, review and the recommendation, with a hostile
    text in every field a member or facilitator types."""
    world = build_world(scenario)
    room, owner = world.room, world.owner
    ana, dee = world.members["member"], world.members["target"]
    # Test setup: names as typed elsewhere (the forms keep them as typed).
    world.classgroup.name = CLASS_NAME
    world.classgroup.save(update_fields=["name"])
    world.student.display_name = STUDENT_NAME
    world.student.save(update_fields=["display_name"])
    world.advance_to(Phase.DRAFTING)
    for member, kind, text in ((ana, "argument", ARGUMENT), (dee, "argument", ARGUMENT),
                               (dee, "risk", RISK)):  # fmt: skip
        services.draft_save(
            room_id=room.pk, actor=AnonymousUser(), member_id=member.pk,
            client_id=f"{member.pk}-{kind}", text=text, base_version=0, kind=kind, slot=1,
        )  # fmt: skip
    services.research_note_save(
        room_id=room.pk, actor=AnonymousUser(), member_id=ana.pk, client_id="note-1",
        note_id=None, base_version=0, organisation=NOTE_ORG, year=2025, month=3,
        approach="staged", summary=NOTE_SUMMARY, source_url="https://example.org/<b>policy",
    )  # fmt: skip
    services.trend_judge(
        room_id=room.pk, actor=AnonymousUser(), member_id=ana.pk, client_id="judge-1",
        trend="more_closed", reason=TREND_REASON,
    )  # fmt: skip
    world.advance_to(Phase.REVIEW)
    dee_argument = Draft.objects.get(author=dee, kind="argument")
    dee_risk = Draft.objects.get(author=dee, kind="risk")
    services.comment_add(
        room_id=room.pk, member_id=ana.pk, client_id="comment-1", draft_id=dee_argument.pk,
        kind="rebuttal", text=COMMENT,
    )  # fmt: skip
    services.vote_cast(
        room_id=room.pk, member_id=ana.pk, position_id=world.positions["api-only"].pk,
        reason=VOTE_REASON,
    )  # fmt: skip
    services.vote_close(room_id=room.pk, actor=owner)
    world.advance_to(Phase.RECOMMENDATION)
    services.recommendation_build(
        room_id=room.pk, actor=owner, client_id="rec-1", base_version=0,
        decision_id=world.positions["restricted"].pk, rationale=RATIONALE,
        revisit_condition=REVISIT, citation_ids=[dee_argument.pk], risk_draft_id=dee_risk.pk,
        risk_text=RISK,
    )  # fmt: skip
    services.signoff_record(room_id=room.pk, member_id=ana.pk, stance="dissent", text=DISSENT)
    if finalize:
        services.recommendation_finalize(room_id=room.pk, actor=owner)
    room.refresh_from_db()
    return world


TEXTS = [COMMENT, VOTE_REASON, DISSENT, RATIONALE, REVISIT, RISK, NOTE_SUMMARY, TREND_REASON]


# ---- pages -------------------------------------------------------------------------------------


def _get(world: World, role: str, url: str) -> str:
    response = world.client(role).get(url)
    assert response.status_code == 200, (url, role, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("role", ["facilitator", "member"])
def test_room_page_in_the_recommendation_phase(role, scenario):
    world = hostile_review_world(scenario)
    body = _get(world, role, reverse("debate:room", args=[world.room.pk]))
    assert_no_raw_html(body, f"the room as {role}")


def test_printable_record_and_share_link(scenario):
    world = hostile_review_world(scenario, finalize=True)
    body = _get(world, "facilitator", reverse("debate:room_record", args=[world.room.pk]))
    assert_no_raw_html(body, "the printable record")
    # Shown, escaped (not dropped): the rationale and the dissent.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; [click me]" in body
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt; s1" in body
    token = world.room.recommendation.share_token
    shared = _get(world, "anonymous", reverse("debate:record_shared", args=[token]))
    assert_no_raw_html(shared, "the share link")
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt; s1" in shared


def test_briefing_and_scenario_pages_escape_card_titles(scenario):
    world = hostile_review_world(scenario)
    custom = services.scenario_copy(actor=world.owner, scenario_id=scenario.pk)
    EvidenceCard.objects.filter(scenario=custom).update(title=CARD_TITLE)  # test setup
    custom.title = f"{SCRIPT} copy"
    custom.save(update_fields=["title"])
    for url in (
        reverse("debate:scenario_briefing", args=[custom.pk]),
        reverse("debate:scenario_edit", args=[custom.pk]),
        reverse("debate:scenario_list"),
        reverse("debate:room_briefing", args=[world.room.pk]),
    ):
        assert_no_raw_html(_get(world, "facilitator", url), url)
    body = _get(world, "facilitator", reverse("debate:scenario_briefing", args=[custom.pk]))
    assert "&lt;img src=&quot;x&quot; onerror=&quot;alert(1)&quot;&gt;" in body


def test_class_pages_escape_class_and_student_names(scenario):
    world = hostile_review_world(scenario)
    class_id = world.classgroup.pk
    for name, args in (
        ("classroom:classes", []),
        ("classroom:class_detail", [class_id]),
        ("classroom:class_report", [class_id]),
        ("classroom:class_delete", [class_id]),
        ("classroom:class_student_remove", [class_id, world.student.pk]),
        ("classroom:room_report", [world.room.pk]),
        ("debate:home", []),
    ):
        body = _get(world, "facilitator", reverse(name, args=args))
        assert_no_raw_html(body, name)
    detail = _get(world, "facilitator", reverse("classroom:class_detail", args=[class_id]))
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; 10B" in detail
    assert "&lt;img src=&quot;x&quot;" in detail  # the student's name, escaped
    home = _get(world, "student", reverse("classroom:student_home", args=[class_id]))
    assert_no_raw_html(home, "the student's home")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; 10B" in home


# ---- exports -----------------------------------------------------------------------------------


def test_markdown_record_escapes_the_review_texts(scenario):
    world = hostile_review_world(scenario, finalize=True)
    record = _get(world, "facilitator", reverse("debate:room_export_md", args=[world.room.pk]))
    bare = re.findall(r"(?<!\\)<(?:script|img|/script)", record)
    assert not bare, bare
    assert "](javascript:" not in record.replace("\\](javascript:", "")
    assert "\\</script\\>\\<script\\>alert(2)\\</script\\> s1" in record  # the dissent


def test_json_record_keeps_texts_exact_as_data(scenario):
    world = hostile_review_world(scenario, finalize=True)
    response = world.client("facilitator").get(
        reverse("debate:room_export_json", args=[world.room.pk])
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)  # valid JSON
    strings = set(_strings(data))
    for text in (RATIONALE, REVISIT, DISSENT, COMMENT):
        assert text in strings, text  # exact, as data: the reader escapes where it shows them


def test_csv_reports_keep_names_as_plain_cells(scenario):
    world = hostile_review_world(scenario)
    for name, args in (
        ("classroom:class_report_csv", [world.classgroup.pk]),
        ("classroom:room_report_csv", [world.room.pk]),
    ):
        body = _get(world, "facilitator", reverse(name, args=args))
        # No cell starts with a spreadsheet formula character from user text.
        for line in body.splitlines():
            for cell in line.split(","):
                assert not cell.strip('"').startswith(("=", "+", "@")), (name, cell)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# ---- the socket --------------------------------------------------------------------------------


async def test_snapshot_carries_review_texts_as_data(scenario):
    world = await sync_to_async(hostile_review_world)(scenario)
    sock = Socket(world.room.pk, await sync_to_async(world.cookie)("member"))
    assert await sock.connect()
    try:
        snapshot = await sock.sync()
        strings = set(_strings(snapshot))
        for text in (RATIONALE, REVISIT, RISK, DISSENT):
            assert text in strings, text
        # Live: a new dissent reaches the room exactly as typed, inside a JSON string.
        await sock.send({"type": "signoff.record", "stance": "dissent", "text": SCRIPT})
        event = await sock.recv_until("signoff.updated")
        assert event["signoff"]["text"] == SCRIPT
    finally:
        await sock.close()


# ---- refused source URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,x",
     "vbscript:x", "//evil.example/x", "ftp://example.org/x"],
)  # fmt: skip
def test_research_note_refuses_a_script_source_url(url, scenario):
    world = build_world(scenario)
    world.advance_to(Phase.DRAFTING)
    before = full_state()
    with pytest.raises(Invalid) as refused:
        services.research_note_save(
            room_id=world.room.pk, actor=AnonymousUser(), member_id=world.members["member"].pk,
            client_id="bad-url", note_id=None, base_version=0, organisation="A lab", year=2025,
            month=1, approach="staged", summary="x", source_url=url,
        )  # fmt: skip
    assert refused.value.details.get("field") == "source_url" or "source" in str(refused.value)
    after = full_state()
    assert after == before, state_diff(before, after)


async def test_socket_refuses_a_javascript_source_url(scenario):
    world = await sync_to_async(build_world)(scenario)
    await sync_to_async(world.advance_to)(Phase.DRAFTING)
    sock = Socket(world.room.pk, await sync_to_async(world.cookie)("member"))
    assert await sock.connect()
    try:
        await sock.sync()
        await sock.drain(0.1)
        before = await sync_to_async(full_state)()
        await sock.send(
            {"type": "research.note.save", "client_id": "js", "base_version": 0,
             "organisation": "A lab", "year": 2025, "month": 1, "approach": "staged",
             "summary": "x", "source_url": "javascript:alert(1)"}
        )  # fmt: skip
        reply = await sock.recv_until("error")
        assert reply["code"] == "bad_url"
        assert await sync_to_async(full_state)() == before
    finally:
        await sock.close()


def test_raw_markers_cover_the_payloads():
    for payload in (COMMENT, VOTE_REASON, DISSENT, RATIONALE, REVISIT, RISK, CARD_TITLE):
        assert any(marker in payload for marker in RAW_MARKERS), payload

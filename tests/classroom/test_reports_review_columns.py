"""The participation report's columns for the review and the research board: rebuttals,
questions, votes and research notes, each one aggregate query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from classroom import exports, selectors, services
from classroom.reports import COLUMNS
from debate import services as debate_services
from debate.models import Comment, Draft, ResearchNote, Vote

pytestmark = pytest.mark.django_db

NOTE = {
    "year": 2024,
    "month": 3,
    "approach": "staged",
    "summary": "Released in stages.",
    "source_url": "https://example.org/a",
}


def activity(room, member, *, rebuttals=0, questions=0, vote=False, notes=0):
    """Test setup, written directly (the services that write these have their own tests)."""
    position = room.scenario.positions.first()
    draft = Draft.objects.create(
        room=room, position=position, author=member, kind="argument", slot=1, text="An argument"
    )
    for i in range(rebuttals):
        Comment.objects.create(room=room, draft=draft, author=member, kind="rebuttal", text=f"r{i}")
    for i in range(questions):
        Comment.objects.create(room=room, draft=draft, author=member, kind="question", text=f"q{i}")
    if vote:
        Vote.objects.create(room=room, member=member, position=position, reason="Because.")
    for i in range(notes):
        ResearchNote.objects.create(
            room=room,
            author=member,
            organisation=f"Lab {i}",
            created_client_id=f"{member.pk}-{i}",
            **NOTE,
        )


def test_review_and_research_columns(class_room, klass, scenario, facilitator):
    ana = services.student_join(code=klass.code, display_name="Ana").student
    ana_m = debate_services.member_join(code=class_room.code, display_name="", student=ana)
    ben_m = debate_services.member_join(code=class_room.code, display_name="Ben")
    activity(class_room, ana_m, rebuttals=2, questions=1, vote=True, notes=3)
    activity(class_room, ben_m, questions=2)
    # A facilitator's note counts for nobody; another room's activity stays in that room.
    ResearchNote.objects.create(
        room=class_room, author=None, organisation="Staff", created_client_id="f", **NOTE
    )
    other = debate_services.room_create(owner=facilitator, scenario=scenario, title="Elsewhere")
    activity(other, debate_services.member_join(code=other.code, display_name="Ana"), notes=5)
    report = selectors.room_report(room=class_room)
    by_name = {row.name: row.values for row in report.rows}
    keys = ("rebuttals", "questions", "votes", "research")
    assert {k: by_name["Ana"][k] for k in keys} == {
        "rebuttals": 2,
        "questions": 1,
        "votes": 1,
        "research": 3,
    }
    assert {k: by_name["Ben"][k] for k in keys} == {
        "rebuttals": 0,
        "questions": 2,
        "votes": 0,
        "research": 0,
    }
    header = exports.room_report_csv(report=report).removeprefix("\ufeff").split("\r\n")[0]
    for label in ("Rebuttals", "Questions", "Votes", "Research notes"):
        assert label in header


def test_the_query_count_stays_with_review_and_research_activity(class_room, klass):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert selectors.room_report(room=class_room).table is not None
        return len(ctx.captured_queries)

    first = debate_services.member_join(code=class_room.code, display_name="First")
    activity(class_room, first, rebuttals=1, questions=1, vote=True, notes=1)
    small = count()
    for i in range(10):
        member = debate_services.member_join(code=class_room.code, display_name=f"M{i}")
        activity(class_room, member, rebuttals=2, questions=2, vote=True, notes=2)
    assert count() == small == len(COLUMNS) + 1

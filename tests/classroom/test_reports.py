"""Participation reports: the numbers, the CSV (UTF-8 with BOM, formula injection neutralised),
and a query count that does not grow with the number of members."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from classroom import exports, selectors, services
from classroom.reports import COLUMNS
from debate import services as debate_services
from debate.models import Draft, Feedback, Member

pytestmark = pytest.mark.django_db


def write(member: Member, text: str, *, kind: str = "argument", slot: int = 1) -> Draft:
    """Test setup, written directly (draft_save has its own tests)."""
    position = member.room.scenario.positions.first()
    return Draft.objects.create(
        room=member.room, position=position, author=member, kind=kind, slot=slot, text=text
    )


def rows_of(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def test_room_report_counts(class_room, klass):
    ana = services.student_join(code=klass.code, display_name="Ana").student
    ana_m = debate_services.member_join(code=class_room.code, display_name="", student=ana)
    ben_m = debate_services.member_join(code=class_room.code, display_name="Ben")
    write(ana_m, "Open weights let clinics run offline", slot=1)
    write(ana_m, "Outside labs can check the evaluations", slot=2)
    risk = write(ana_m, "Misuse cannot be recalled", kind="risk")
    write(ben_m, "")  # an empty slot is no contribution
    Feedback.objects.create(draft=risk, text="Name one concrete misuse.")
    report = selectors.room_report(room=class_room)
    by_name = {row.name: row.values for row in report.rows}
    none = {"rebuttals": 0, "questions": 0, "votes": 0, "research": 0}
    assert by_name["Ana"] == {"drafts": 3, "words": 16, "risks": 1, "feedback": 1, **none}
    assert by_name["Ben"] == {"drafts": 0, "words": 0, "risks": 0, "feedback": 0, **none}
    cells = {row.name: report.cells(row) for row in report.rows}
    assert cells["Ana"][0] == {"key": "drafts", "value": 3, "tenths": 10}
    assert cells["Ben"][0]["tenths"] == 0


def test_class_report_adds_up_rooms(scenario, facilitator, klass, class_room):
    week2 = debate_services.room_create(
        owner=facilitator, scenario=scenario, title="Week 2", classgroup=klass
    )
    ana = services.student_join(code=klass.code, display_name="Ana").student
    services.student_join(code=klass.code, display_name="Absent Al")
    write(
        debate_services.member_join(code=class_room.code, display_name="", student=ana), "one two"
    )
    write(debate_services.member_join(code=week2.code, display_name="", student=ana), "three")
    write(debate_services.member_join(code=week2.code, display_name="Visitor"), "four five six")
    report = selectors.class_report(classgroup=klass)
    totals = {row.name: row for row in report.totals.rows}
    assert totals["Ana"].values["drafts"] == 2 and totals["Ana"].values["words"] == 3
    assert totals["Absent Al"].values["drafts"] == 0
    assert totals["Visitor"].guest and totals["Visitor"].values["words"] == 3
    by_room = [(r.name, r.room.title, r.values["words"]) for r in report.by_room.rows]
    assert by_room == [("Ana", "Week 1", 2), ("Ana", "Week 2", 1), ("Visitor", "Week 2", 3)]
    body = exports.class_report_csv(report=report)
    rows = rows_of(body)
    assert rows[0][:4] == ["Name", "Room", "Date", "On the class roster"]
    assert [r[0:2] for r in rows[1:]] == [
        ["Ana", "Week 1"],
        ["Ana", "Week 2"],
        ["Visitor", "Week 2"],
    ]


def test_report_columns_have_one_definition_each():
    keys = [c.key for c in COLUMNS]
    assert len(keys) == len(set(keys))
    assert {"drafts", "words"} <= set(keys)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTabbed", "'\tTabbed"),
        ("\rReturn", "'\rReturn"),
        ("Élodie", "Élodie"),
        ("Ana = good", "Ana = good"),
        (-3, -3),
        (7, 7),
    ],
)
def test_csv_safe(cell, safe):
    assert exports.csv_safe(cell) == safe


def test_csv_file_is_excel_friendly_and_injection_safe(class_room):
    for name in ["=cmd|' /C calc'!A0", "+SUM(1)", "Zoë 😀", "-1"]:
        debate_services.member_join(code=class_room.code, display_name=name)
    body = exports.room_report_csv(report=selectors.room_report(room=class_room))
    assert body.startswith("\ufeff")
    assert "\r\n" in body
    names = [row[0] for row in rows_of(body)[1:]]
    assert set(names) == {"'=cmd|' /C calc'!A0", "'+SUM(1)", "Zoë 😀", "'-1"}
    assert all(not n.startswith(("=", "+", "-", "@")) for n in names)


def test_report_query_count_does_not_grow_with_members(scenario, facilitator, klass):
    def build(room_title: str, n: int) -> int:
        room = debate_services.room_create(
            owner=facilitator, scenario=scenario, title=room_title, classgroup=klass
        )
        for i in range(n):
            student = services.student_join(
                code=klass.code, display_name=f"{room_title}-{i}"
            ).student
            member = debate_services.member_join(code=room.code, display_name="", student=student)
            write(member, f"argument number {i}")
        return room

    small = build("small", 2)
    big = build("big", 12)

    def count(fn) -> int:
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    small_q = count(lambda: selectors.room_report(room=small).table)
    big_q = count(lambda: selectors.room_report(room=big).table)
    assert small_q == big_q == len(COLUMNS) + 1
    class_q = count(lambda: selectors.class_report(classgroup=klass).totals.table)
    services.student_join(code=klass.code, display_name="late")
    build("bigger", 20)
    assert count(lambda: selectors.class_report(classgroup=klass).totals.table) == class_q
    assert class_q == len(COLUMNS) + 3

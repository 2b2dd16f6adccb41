"""Reads of the classroom app: a facilitator's classes (others' are never returned), rosters,
the student a browser session is, and the participation reports."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from debate.models import Member, Phase, Room

from .codes import join_code_normalize
from .identity import student_id_for, student_ids
from .models import ClassGroup, Student
from .reports import COLUMNS, Column

User = AbstractBaseUser | AnonymousUser


def _as_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- classes --------------------------------------------------------------------------------


def classes_for_facilitator(*, user: User) -> QuerySet[ClassGroup]:
    if not (user and user.is_authenticated):
        return ClassGroup.objects.none()
    ids = ClassGroup.objects.filter(Q(owner=user) | Q(coowners=user)).values("pk")
    return (
        ClassGroup.objects.filter(pk__in=ids)
        .select_related("owner")
        .annotate(
            room_count=Count("rooms", distinct=True),
            student_count=Count("students", distinct=True),
        )
        .order_by("name", "pk")
    )


def classgroup_for_facilitator(*, classgroup_id: Any, user: User) -> ClassGroup | None:
    """The class if `user` owns or co-owns it, else None (as if it did not exist)."""
    pk = _as_id(classgroup_id)
    if pk is None or not (user and user.is_authenticated):
        return None
    return (
        ClassGroup.objects.filter(pk=pk)
        .filter(Q(owner=user) | Q(coowners=user))
        .select_related("owner")
        .distinct()
        .first()
    )


def is_class_facilitator(*, classgroup_id: int, user: User) -> bool:
    return classgroup_for_facilitator(classgroup_id=classgroup_id, user=user) is not None


def class_rooms(*, classgroup: ClassGroup) -> list[Room]:
    """Every room of the class, newest first, with its member count."""
    return list(
        Room.objects.filter(classgroup=classgroup)
        .select_related("scenario")
        .annotate(member_count=Count("members", distinct=True))
        .order_by("-created_at", "-pk")
    )


def roster(*, classgroup: ClassGroup) -> list[Student]:
    return list(
        classgroup.students.annotate(rooms_attended=Count("members", distinct=True)).order_by(
            "display_name", "pk"
        )
    )


def coowner_names(*, classgroup: ClassGroup) -> list[str]:
    return [u.get_username() for u in classgroup.coowners.order_by("username")]


# --- the student a session is ---------------------------------------------------------------


def student_for_session(
    *, session: MutableMapping[str, Any] | None, classgroup_id: int
) -> Student | None:
    student_id = student_id_for(session=session, classgroup_id=classgroup_id)
    if student_id is None:
        return None
    return (
        Student.objects.select_related("classgroup")
        .filter(pk=student_id, classgroup_id=classgroup_id)
        .first()
    )


def students_for_session(*, session: MutableMapping[str, Any] | None) -> list[Student]:
    known = student_ids(session=session)
    if not known:
        return []
    q = Q()
    for classgroup_id, student_id in known.items():
        q |= Q(pk=student_id, classgroup_id=classgroup_id)
    return list(Student.objects.select_related("classgroup").filter(q).order_by("pk"))


def student_for_room_code(*, session: MutableMapping[str, Any] | None, code: Any) -> Student | None:
    """The student this session is in the class of the open room with this code, if any."""
    known = student_ids(session=session)
    if not known or not isinstance(code, str):
        return None
    room = (
        Room.objects.exclude(phase=Phase.CLOSED)
        .filter(code=join_code_normalize(code), classgroup__isnull=False)
        .only("pk", "classgroup_id")
        .first()
    )
    if room is None or room.classgroup_id not in known:
        return None
    return student_for_session(session=session, classgroup_id=room.classgroup_id)


def open_rooms_for_student(*, student: Student) -> list[Room]:
    return list(
        Room.objects.filter(classgroup_id=student.classgroup_id)
        .exclude(phase=Phase.CLOSED)
        .select_related("scenario")
        .order_by("-created_at", "-pk")
    )


def member_ids_for_student(*, student: Student) -> dict[int, int]:
    """room id -> member id of this student in the class's rooms."""
    return dict(Member.objects.filter(student=student).values_list("room_id", "pk"))


# --- participation reports ------------------------------------------------------------------


@dataclass
class ReportRow:
    name: str
    values: dict[str, int]
    room: Room | None = None
    student_id: int | None = None
    guest: bool = False


@dataclass
class Report:
    """Rows of numbers per column; `maxima` scales the bars."""

    columns: list[Column]
    rows: list[ReportRow]
    maxima: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.maxima = {
            c.key: max((row.values.get(c.key, 0) for row in self.rows), default=0)
            for c in self.columns
        }

    def cells(self, row: ReportRow) -> list[dict[str, Any]]:
        """Each column's value and its bar length in tenths of the column's largest value."""
        cells = []
        for column in self.columns:
            value = row.values.get(column.key, 0)
            top = self.maxima.get(column.key, 0)
            cells.append(
                {"key": column.key, "value": value, "tenths": round(10 * value / top) if top else 0}
            )
        return cells

    @property
    def table(self) -> list[tuple[ReportRow, list[dict[str, Any]]]]:
        return [(row, self.cells(row)) for row in self.rows]


def _values_by_member(members: QuerySet[Member]) -> dict[int, dict[str, int]]:
    """One query per column, whatever the number of members."""
    by_member: dict[int, dict[str, int]] = {}
    for column in COLUMNS:
        for member_id, value in column.compute(members).items():
            by_member.setdefault(member_id, {})[column.key] = value
    return by_member


def _zero() -> dict[str, int]:
    return {c.key: 0 for c in COLUMNS}


def room_report(*, room: Room) -> Report:
    """One row per member of the room (removed members included: what they wrote counts)."""
    members_qs = Member.objects.filter(room=room)
    values = _values_by_member(members_qs)
    rows = [
        ReportRow(
            name=m.display_name,
            values={**_zero(), **values.get(m.pk, {})},
            room=room,
            student_id=m.student_id,
        )
        for m in members_qs.order_by("display_name", "pk")
    ]
    return Report(columns=list(COLUMNS), rows=rows)


@dataclass
class ClassReport:
    """Totals per student across the class's rooms, and the same numbers per room."""

    totals: Report
    by_room: Report
    rooms: list[Room]


def class_report(*, classgroup: ClassGroup) -> ClassReport:
    rooms = list(Room.objects.filter(classgroup=classgroup).order_by("created_at", "pk"))
    members_qs = Member.objects.filter(room__classgroup=classgroup)
    values = _values_by_member(members_qs)
    rooms_by_id = {r.pk: r for r in rooms}
    students = list(classgroup.students.order_by("display_name", "pk"))
    totals: dict[int, ReportRow] = {
        s.pk: ReportRow(name=s.display_name, values=_zero(), student_id=s.pk) for s in students
    }
    guests: list[ReportRow] = []
    by_room: list[ReportRow] = []
    members = members_qs.only("pk", "room_id", "student_id", "display_name")
    for m in sorted(members, key=lambda m: (m.room_id, m.display_name.lower(), m.pk)):
        member_values = {**_zero(), **values.get(m.pk, {})}
        student = totals.get(m.student_id) if m.student_id else None
        name = student.name if student else m.display_name
        room = rooms_by_id.get(m.room_id)
        by_room.append(
            ReportRow(
                name=name,
                values=member_values,
                room=room,
                student_id=m.student_id,
                guest=student is None,
            )
        )
        if student is not None:
            for key, value in member_values.items():
                student.values[key] += value
        else:
            guests.append(
                ReportRow(name=m.display_name, values=member_values, room=room, guest=True)
            )
    rooms_order = {r.pk: i for i, r in enumerate(rooms)}
    by_room.sort(key=lambda r: (rooms_order.get(r.room.pk if r.room else 0, 0), r.name.lower()))
    return ClassReport(
        totals=Report(columns=list(COLUMNS), rows=[*totals.values(), *guests]),
        by_room=Report(columns=list(COLUMNS), rows=by_room),
        rooms=rooms,
    )

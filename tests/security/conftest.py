"""A world with every role the authorisation matrix knows, and a snapshot of everything a refused
request must leave untouched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from classroom import services as class_services
from classroom.identity import member_remember, student_remember
from debate import services
from debate.models import Member, Phase, Position, Room
from tests.conftest import member_cookie, user_cookie
from tests.debate.conftest import _fast_password_hasher  # noqa: F401 (fixture)

# Every role, in the order of the matrix columns.
ROLES = (
    "anonymous",
    "other_member",  # a member of another room
    "member",
    "muted",  # a member the facilitator muted
    "removed",  # a member the facilitator removed
    "other_facilitator",  # the facilitator of another room
    "facilitator",  # the room's owner
    "cofacilitator",
    # Added with issues 5, 6 and 7. A row that lists only the first eight outcomes gets these
    # from DERIVED_ROLES (the role each one behaves like there) unless it names them.
    "chair",  # a member of the room the facilitator made a chair of the recommendation
    "solo",  # the learner of a solo room (the matrix's solo room)
    "other_solo",  # the learner of another solo room
    "class_coowner",  # a co-owner of the class the room belongs to
    "student",  # a student of that class who has not entered the room
)
BASE_ROLES = ROLES[:8]
DERIVED_ROLES = {
    "chair": "member",
    "solo": "other_member",
    "other_solo": "other_member",
    "class_coowner": "cofacilitator",
    "student": "other_member",
}
FACILITATOR_ROLES = ("facilitator", "cofacilitator", "other_facilitator")
PASSWORD = "x-Unguessable-42"

# Fields that change when anyone merely connects or reads (presence), not by a write.
VOLATILE_FIELDS = {"last_seen", "open_sockets"}


@dataclass
class World:
    room: Room
    other_room: Room
    owner: Any
    cofacilitator: Any
    other_facilitator: Any
    positions: dict[str, Position]
    members: dict[str, Member]  # role -> member of `room` (member, muted, removed), other_member
    classgroup: Any = None
    class_coowner: Any = None
    student: Any = None
    student_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # what a row's `prepare` staged
    solo_room: Room | None = None
    solo_token: str = ""
    other_solo_room: Room | None = None

    def user_for(self, role: str):
        return {
            "facilitator": self.owner,
            "cofacilitator": self.cofacilitator,
            "other_facilitator": self.other_facilitator,
            "class_coowner": self.class_coowner,
        }.get(role)

    def _session(self, role: str, session) -> None:
        member = self.member_for(role)
        if member is not None:
            member_remember(session=session, room_id=member.room_id, member_id=member.pk)
        if role == "student":
            student_remember(
                session=session, classgroup_id=self.classgroup.pk, student_id=self.student.pk
            )

    def member_for(self, role: str) -> Member | None:
        return self.members.get(role)

    def cookie(self, role: str) -> str | None:
        user = self.user_for(role)
        if user is not None:
            return user_cookie(user)
        if role == "student":
            session = SessionStore()
            self._session(role, session)
            session.create()
            return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
        member = self.member_for(role)
        return member_cookie(member) if member is not None else None

    def client(self, role: str, **kwargs) -> Client:
        client = Client(**kwargs)
        user = self.user_for(role)
        if user is not None:
            client.force_login(user)
        if self.member_for(role) is not None or role == "student":
            session = client.session
            self._session(role, session)
            session.save()
        return client

    def advance_to(self, phase: str) -> None:
        order = [p.value for p in Phase]
        current = order.index(self.room.phase)
        for target in order[current + 1 : order.index(phase) + 1]:
            if target == Phase.CLOSED:
                _complete_recommendation(self)
            services.phase_advance(room_id=self.room.pk, actor=self.owner, to_phase=target)
        self.room.refresh_from_db()


def _complete_recommendation(world: World) -> None:
    from debate.models import Recommendation

    rec = Recommendation.objects.filter(room=world.room).first()
    services.recommendation_save(
        room_id=world.room.pk,
        actor=world.owner,
        client_id="world-rec",
        decision_id=world.positions["restricted"].pk,
        rationale="Staged access keeps audits possible.",
        revisit_condition="Unsafe fine-tunes appear within six months.",
        base_version=rec.version if rec else 0,
    )


def build_world(scenario, *, assignment_method: str = "balanced") -> World:
    users = get_user_model().objects
    owner = users.create_user(username="owner", password=PASSWORD)
    cofac = users.create_user(username="cofac", password=PASSWORD)
    other_fac = users.create_user(username="otherfac", password=PASSWORD)
    class_coowner = users.create_user(username="coowner", password=PASSWORD)
    classgroup = class_services.classgroup_create(owner=owner, name="Civics 10B")
    class_services.classgroup_coowner_add(
        classgroup_id=classgroup.pk, actor=owner, username="coowner"
    )
    credentials = class_services.student_join(code=classgroup.code, display_name="Eve")
    student = credentials.student
    room = services.room_create(
        owner=owner, scenario=scenario, title="Period 3", classgroup=classgroup
    )
    other_room = services.room_create(owner=other_fac, scenario=scenario, title="Period 5")
    services.cofacilitator_add(room_id=room.pk, actor=owner, username="cofac")
    positions = {p.key: p for p in scenario.positions.all()}
    members = {
        "member": Member.objects.create(
            room=room, display_name="Ana", position=positions["open-weights"]
        ),
        "muted": Member.objects.create(
            room=room, display_name="Ben", position=positions["open-weights"]
        ),
        "removed": Member.objects.create(
            room=room, display_name="Cy", position=positions["api-only"]
        ),
        "other_member": Member.objects.create(
            room=other_room, display_name="Zed", position=positions["api-only"]
        ),
    }
    # A teammate who stays untouched (a target for moves, mutes and removals).
    members["target"] = Member.objects.create(
        room=room, display_name="Dee", position=positions["restricted"]
    )
    # A member made a chair of the recommendation (on another team than Ana's).
    members["chair"] = Member.objects.create(
        room=room, display_name="Fay", position=positions["api-only"]
    )
    services.chair_set(room_id=room.pk, actor=owner, member_id=members["chair"].pk, chair=True)
    solo = services.solo_start(scenario_id=scenario.pk, display_name="Gus")
    other_solo = services.solo_start(scenario_id=scenario.pk, display_name="Hal")
    members["solo"], members["other_solo"] = solo.member, other_solo.member
    services.member_mute(room_id=room.pk, actor=owner, member_id=members["muted"].pk, muted=True)
    services.member_remove(room_id=room.pk, actor=owner, member_id=members["removed"].pk)
    if assignment_method != "balanced":
        services.room_configure(
            room_id=room.pk, actor=owner, assignment_method=assignment_method, choice_cap=None
        )
    for member in members.values():
        member.refresh_from_db()
    room.refresh_from_db()
    return World(
        room=room,
        other_room=other_room,
        owner=owner,
        cofacilitator=cofac,
        other_facilitator=other_fac,
        positions=positions,
        members=members,
        classgroup=classgroup,
        class_coowner=class_coowner,
        student=student,
        student_token=credentials.token,
        solo_room=solo.room,
        solo_token=solo.token,
        other_solo_room=other_solo.room,
    )


def world_with_drafts(scenario, phase: str, *, assignment_method: str = "balanced") -> World:
    """The world, in drafting with one argument by the member, then moved on to `phase`."""
    world = build_world(scenario, assignment_method=assignment_method)
    if phase == Phase.LOBBY:
        return world
    world.advance_to(Phase.DRAFTING)
    services.draft_save(
        room_id=world.room.pk,
        actor=AnonymousUser(),
        member_id=world.members["member"].pk,
        client_id="ana-1",
        text="Hospitals could run it offline.",
        base_version=0,
        kind="argument",
        slot=1,
    )
    # Dee's argument, on another team: what review messages aim at.
    services.draft_save(
        room_id=world.room.pk,
        actor=AnonymousUser(),
        member_id=world.members["target"].pk,
        client_id="dee-1",
        text="Vetted access keeps audits possible.",
        base_version=0,
        kind="argument",
        slot=1,
    )
    world.advance_to(phase)
    return world


@pytest.fixture
def world(scenario) -> World:
    return build_world(scenario)


def full_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the debate and classroom apps, the accounts and sessions'
    owners aside: what a refused request must not change (presence counters excepted)."""
    state: dict[str, list[dict[str, Any]]] = {}
    models = [
        *apps.get_app_config("debate").get_models(),
        *apps.get_app_config("classroom").get_models(),
        get_user_model(),
    ]
    for model in models:
        rows = []
        for row in model.objects.order_by("pk").values():
            rows.append({k: v for k, v in row.items() if k not in VOLATILE_FIELDS})
        state[model._meta.label] = rows
    state["cofacilitators"] = sorted(
        Room.cofacilitators.through.objects.values_list("room_id", "user_id")
    )
    from classroom.models import ClassGroup

    state["class_coowners"] = sorted(
        ClassGroup.coowners.through.objects.values_list("classgroup_id", "user_id")
    )
    return state


def state_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Readable differences between two full_state() snapshots."""
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if old != new:
            lines.append(f"{table}: {len(old)} rows -> {len(new)} rows")
            for a, b in zip(old, new, strict=False):
                if a != b:
                    changed = {
                        k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)
                    }
                    lines.append(f"  row {a.get('id')}: {changed}")
    return lines

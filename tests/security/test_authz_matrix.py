"""The authorisation matrix: every page, download and socket message type x every role, allowed or
refused as the tables below say, and nothing changed on refusal.

Adding a page or a message type means adding one row here: `test_every_url_is_in_the_table` and
`test_every_message_type_is_in_the_table` fail until it is.

Roles (tests/security/conftest.py): anonymous, a member of another room, a member, a muted member,
a removed member, the facilitator of another room, the room's facilitator, a co-facilitator; then
a chair member, a solo learner, another solo learner, a co-owner of the room's class and a student
of that class (a row of eight outcomes gives these the outcome of the role they behave like there,
DERIVED_ROLES, unless `more` names them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse

from debate import protocol, services
from debate.models import Draft, Phase
from tests.conftest import Socket
from tests.security.conftest import (
    DERIVED_ROLES,
    ROLES,
    World,
    _complete_recommendation,
    full_state,
    state_diff,
    world_with_drafts,
)

pytestmark = pytest.mark.django_db(transaction=True)

# ---- pages and downloads ---------------------------------------------------------------------
#
# Outcomes: a status code, or "302>name" for a redirect to that page.
# Columns:   anonymous    other_member  member  muted   removed other_fac   facilitator cofac


@dataclass(frozen=True)
class Page:
    method: str
    url: Callable[[World], str]
    phase: str
    outcomes: tuple[str, ...]
    data: Callable[[World], dict[str, Any]] | None = None
    writes_when_allowed: bool = False  # an allowed request creates something
    more: dict[str, str] | None = None  # outcomes of the later roles, where not derived
    prepare: Callable[[World], None] | None = None  # staged before the request

    def expected(self, role: str) -> str:
        return _expected(self.outcomes, self.more, role)


def _expected(outcomes: tuple[str, ...], more: dict[str, str] | None, role: str) -> str:
    if more and role in more:
        return more[role]
    if ROLES.index(role) < len(outcomes):
        return outcomes[ROLES.index(role)]
    return outcomes[ROLES.index(DERIVED_ROLES[role])]


def _room_url(name: str) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.room.pk])


LOBBY, CLOSED = Phase.LOBBY.value, Phase.CLOSED.value
LOGIN, JOIN, HOME = "302>login", "302>debate:join", "302>debate:home"
ANYONE = ("200",) * 8
SIGNED_OUT_ONLY = ("200", "200", "200", "200", "200", HOME, HOME, HOME)

PAGES: dict[str, Page] = {
    "healthz": Page("GET", lambda w: reverse("healthz"), LOBBY, ANYONE),
    "javascript-catalog": Page("GET", lambda w: reverse("javascript-catalog"), LOBBY, ANYONE),
    "signup": Page("GET", lambda w: reverse("signup"), LOBBY, SIGNED_OUT_ONLY),
    "login": Page("GET", lambda w: reverse("login"), LOBBY, SIGNED_OUT_ONLY),
    "logout": Page("POST", lambda w: reverse("logout"), LOBBY, (HOME,) * 8),
    # Django's admin: only staff accounts, and nobody in the matrix is staff.
    "admin:*": Page("GET", lambda w: reverse("admin:index"), LOBBY, ("302>admin:login",) * 8),
    "debate:home": Page("GET", lambda w: reverse("debate:home"), LOBBY, ANYONE),
    "debate:join": Page("GET", lambda w: reverse("debate:join"), LOBBY, ANYONE),
    "debate:join_code": Page(
        "GET", lambda w: reverse("debate:join_code", args=[w.room.code]), LOBBY, ANYONE
    ),
    "debate:room_create": Page(
        "POST",
        lambda w: reverse("debate:room_create"),
        LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "302>debate:room_present", "302>debate:room_present",
         "302>debate:room_present"),
        data=lambda w: {"scenario": w.room.scenario_id, "title": "Another room",
                        "assignment_method": "balanced"},
        writes_when_allowed=True,
    ),
    "debate:room": Page(
        "GET", _room_url("debate:room"), LOBBY,
        (JOIN, JOIN, "200", "200", "403", JOIN, "200", "200"),
    ),
    "debate:room@closed": Page(
        "GET", _room_url("debate:room"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
    "debate:room_present": Page(
        "GET", _room_url("debate:room_present"), LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "200"),
    ),
    "debate:room_export_md": Page(
        "GET", _room_url("debate:room_export_md"), LOBBY,
        ("404", "404", "404", "404", "403", "404", "200", "200"),
    ),
    "debate:room_export_md@closed": Page(
        "GET", _room_url("debate:room_export_md"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
}  # fmt: skip

STUDENT_JOIN = "302>classroom:student_join"
ALLOWED = ("200", "302>debate:room_present")
# Redirects that refuse (to sign in, join, or start elsewhere); any other redirect is a success.
REFUSED_REDIRECTS = {LOGIN, JOIN, HOME, "302>admin:login", STUDENT_JOIN, "302>debate:solo_resume"}


def _class_url(name: str, *more: Callable[[World], Any]) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.classgroup.pk, *(f(w) for f in more)])


def _student(w: World) -> int:
    return w.student.pk


def _custom_scenario(w: World) -> None:
    w.extra["scenario"] = services.scenario_copy(actor=w.owner, scenario_id=w.room.scenario_id)


def _finalize(w: World) -> None:
    _complete_recommendation(w)
    rec = services.recommendation_finalize(room_id=w.room.pk, actor=w.owner)
    w.extra["share_token"] = rec.share_token


def _solo_url(name: str) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.solo_room.pk])


RECOMMENDATION_PHASE = Phase.RECOMMENDATION.value
USERS_ONLY = (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "200", "200", "200")
CLASS_OWNERS = (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "404")
ROOM_RUNNERS = (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "200")
NOBODY_ELSE = {"solo": "404", "other_solo": "404", "student": "404"}

# Issues 5 (record, share link), 6 (solo, briefing, scenarios) and 7 (classes, students, reports).
#        anonymous other_member member muted removed other_fac facilitator cofac (+ `more`)
PAGES.update({
    "debate:room_export_json": Page(
        "GET", _room_url("debate:room_export_json"), LOBBY,
        ("404", "404", "404", "404", "403", "404", "200", "200"),
    ),
    "debate:room_export_json@closed": Page(
        "GET", _room_url("debate:room_export_json"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
    "debate:room_record": Page(
        "GET", _room_url("debate:room_record"), LOBBY,
        ("404", "404", "404", "404", "403", "404", "200", "200"),
    ),
    "debate:room_record@closed": Page(
        "GET", _room_url("debate:room_record"), CLOSED,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
    # The solo learner reads their own record at any step; nobody else does.
    "debate:room_record@solo": Page(
        "GET", _solo_url("debate:room_record"), LOBBY,
        ("404",) * 8, more={"solo": "200", "class_coowner": "404"},
    ),
    "debate:room_export_md@solo": Page(
        "GET", _solo_url("debate:room_export_md"), LOBBY,
        ("404",) * 8, more={"solo": "200", "class_coowner": "404"},
    ),
    "debate:room@solo": Page(
        "GET", _solo_url("debate:room"), LOBBY,
        ("302>debate:solo_resume",) * 8,
        more={"solo": "200", "other_solo": "302>debate:solo_resume",
              "class_coowner": "302>debate:solo_resume"},
    ),
    # The share link: anyone with the token, no login; a wrong token opens nothing.
    "debate:record_shared": Page(
        "GET", lambda w: reverse("debate:record_shared", args=[w.extra["share_token"]]),
        RECOMMENDATION_PHASE, ANYONE, prepare=_finalize,
    ),
    "debate:record_shared@wrong-token": Page(
        "GET", lambda w: reverse("debate:record_shared", args=["x" * 32]),
        RECOMMENDATION_PHASE, ("404",) * 8, prepare=_finalize,
    ),
    "debate:solo_start": Page(
        "POST", lambda w: reverse("debate:solo_start"), LOBBY,
        ("302>debate:room",) * 8,
        data=lambda w: {"solo-scenario": w.room.scenario_id, "solo-display_name": "Ivy"},
        writes_when_allowed=True,
    ),
    "debate:solo_resume": Page("GET", lambda w: reverse("debate:solo_resume"), LOBBY, ANYONE),
    # The resume link is a bearer secret: whoever holds it enters (and nothing is written).
    "debate:solo_resume_link": Page(
        "GET", lambda w: reverse("debate:solo_resume_link", args=[w.solo_token]), LOBBY,
        ("302>debate:room",) * 8,
    ),
    "debate:solo_resume_link@wrong-token": Page(
        "GET", lambda w: reverse("debate:solo_resume_link", args=["x" * 32]), LOBBY,
        ("404",) * 8,
    ),
    "debate:room_briefing": Page(
        "GET", _room_url("debate:room_briefing"), LOBBY,
        ("404", "404", "200", "200", "403", "404", "200", "200"),
    ),
    "debate:scenario_list": Page("GET", lambda w: reverse("debate:scenario_list"), LOBBY,
                                 USERS_ONLY),
    "debate:scenario_new": Page("GET", lambda w: reverse("debate:scenario_new"), LOBBY,
                                USERS_ONLY),
    "debate:scenario_briefing": Page(
        "GET", lambda w: reverse("debate:scenario_briefing", args=[w.room.scenario_id]), LOBBY,
        USERS_ONLY,
    ),
    # A facilitator's own scenario is private: others are told it does not exist.
    "debate:scenario_briefing@custom": Page(
        "GET", lambda w: reverse("debate:scenario_briefing", args=[w.extra["scenario"].pk]),
        LOBBY, (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "404"),
        prepare=_custom_scenario,
    ),
    "debate:scenario_edit": Page(
        "GET", lambda w: reverse("debate:scenario_edit", args=[w.extra["scenario"].pk]),
        LOBBY, (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "200", "404"),
        prepare=_custom_scenario,
    ),
    "debate:scenario_edit@post": Page(
        "POST", lambda w: reverse("debate:scenario_edit", args=[w.extra["scenario"].pk]),
        LOBBY, (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "400", "404"),
        data=lambda w: {"title": "Taken over"}, prepare=_custom_scenario,
    ),
    "debate:scenario_copy": Page(
        "POST", lambda w: reverse("debate:scenario_copy", args=[w.extra["scenario"].pk]),
        LOBBY, (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "302>debate:scenario_edit", "404"),
        prepare=_custom_scenario, writes_when_allowed=True,
    ),
    "classroom:classes": Page("GET", lambda w: reverse("classroom:classes"), LOBBY, USERS_ONLY),
    "classroom:class_detail": Page(
        "GET", _class_url("classroom:class_detail"), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:class_coowner_add": Page(
        "POST", _class_url("classroom:class_coowner_add"), LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "302>classroom:class_detail", "404"),
        data=lambda w: {"username": "otherfac"}, writes_when_allowed=True,
        more={"class_coowner": "302>classroom:class_detail"},
    ),
    "classroom:class_student_reset": Page(
        "POST", _class_url("classroom:class_student_reset", _student), LOBBY,
        CLASS_OWNERS, writes_when_allowed=True, more={"class_coowner": "200"},
    ),
    "classroom:class_student_remove": Page(
        "GET", _class_url("classroom:class_student_remove", _student), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:class_student_remove@post": Page(
        "POST", _class_url("classroom:class_student_remove", _student), LOBBY,
        (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, "404", "302>classroom:class_detail", "404"),
        writes_when_allowed=True, more={"class_coowner": "302>classroom:class_detail"},
    ),
    "classroom:class_report": Page(
        "GET", _class_url("classroom:class_report"), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:class_report_csv": Page(
        "GET", _class_url("classroom:class_report_csv"), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:class_export": Page(
        "GET", _class_url("classroom:class_export"), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:class_delete": Page(
        "GET", _class_url("classroom:class_delete"), LOBBY, CLASS_OWNERS,
        more={"class_coowner": "200"},
    ),
    "classroom:room_report": Page("GET", _room_url("classroom:room_report"), LOBBY,
                                  ROOM_RUNNERS),
    "classroom:room_report_csv": Page("GET", _room_url("classroom:room_report_csv"), LOBBY,
                                      ROOM_RUNNERS),
    "classroom:room_delete": Page("GET", _room_url("classroom:room_delete"), LOBBY,
                                  ROOM_RUNNERS),
    "classroom:student_join": Page("GET", lambda w: reverse("classroom:student_join"), LOBBY,
                                   ANYONE),
    "classroom:student_join_code": Page(
        "GET", lambda w: reverse("classroom:student_join_code", args=[w.classgroup.code]),
        LOBBY, ANYONE,
    ),
    "classroom:student_home": Page(
        "GET", _class_url("classroom:student_home"), LOBBY, (STUDENT_JOIN,) * 8,
        more={"student": "200"},
    ),
    "classroom:student_room_enter": Page(
        "POST", _class_url("classroom:student_room_enter", lambda w: w.room.pk), LOBBY,
        ("404",) * 8, more={"student": "302>debate:room"}, writes_when_allowed=True,
    ),
    "classroom:student_account": Page(
        "POST", _class_url("classroom:student_account"), LOBBY, ("404",) * 8,
        data=lambda w: {"username": "eve.k", "password": "x-Unguessable-44"},
        more={"student": "302>classroom:student_home"}, writes_when_allowed=True,
    ),
    "classroom:rejoin_pin": Page("GET", lambda w: reverse("classroom:rejoin_pin"), LOBBY,
                                 ANYONE),
    # GET only asks (a link preview must not sign anyone in).
    "classroom:rejoin_link": Page(
        "GET", lambda w: reverse("classroom:rejoin_link", args=[w.student_token]), LOBBY,
        ANYONE,
    ),
    "classroom:rejoin_link@wrong-token": Page(
        "GET", lambda w: reverse("classroom:rejoin_link", args=["x" * 32]), LOBBY, ("404",) * 8,
    ),
    "classroom:student_signin": Page("GET", lambda w: reverse("classroom:student_signin"),
                                     LOBBY, ANYONE),
})  # fmt: skip


def _url_names(patterns, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                names.add("admin:*")
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.add(f"{namespace}{pattern.name}" if pattern.name else f"<unnamed {pattern}>")
    return names


def test_every_url_is_in_the_table():
    listed = {name.split("@")[0] for name in PAGES}
    missing = _url_names(get_resolver().url_patterns) - listed
    assert not missing, f"add these URL patterns to PAGES in {__file__}: {sorted(missing)}"


def _outcome(response) -> str:
    if response.status_code in (301, 302):
        location = response["Location"].split("?")[0]
        for name in ("login", "debate:join", "debate:home", "admin:login"):
            if location == reverse(name):
                return f"302>{name}"
        if location.endswith("/present/"):
            return "302>debate:room_present"
        try:
            return f"302>{resolve(location).view_name}"
        except Resolver404:
            return f"302>{location}"
    return str(response.status_code)


def _page_params():
    for name in PAGES:
        for role in ROLES:
            yield pytest.param(name, role, id=f"{name}-{role}")


@pytest.mark.parametrize(("name", "role"), list(_page_params()))
def test_page(name, role, scenario):
    page = PAGES[name]
    world = world_with_drafts(scenario, page.phase)
    if page.prepare:
        page.prepare(world)
    client = world.client(role)
    before = full_state()
    if page.method == "GET":
        response = client.get(page.url(world))
    else:
        response = client.post(page.url(world), page.data(world) if page.data else {})
    assert _outcome(response) == page.expected(role), (name, role, response.status_code)
    after = full_state()
    outcome = page.expected(role)
    allowed = outcome in ALLOWED or (
        outcome.startswith("302>") and outcome not in REFUSED_REDIRECTS
    )
    if allowed and page.writes_when_allowed:
        assert after != before, f"{name} as {role} was allowed but changed nothing"
    else:
        assert after == before, state_diff(before, after)
    if response.status_code in (403, 404):
        # Refusal pages never show another room's data or a stack trace.
        body = response.content.decode()
        assert "Traceback" not in body
        assert "Hospitals could run it offline" not in body


# ---- the socket ------------------------------------------------------------------------------
#
# Outcomes: "ok" (answered without an error), an error code from {"type": "error"}, or a close
# code ("close:4401") for a role that is refused when it connects.

C401, C403 = "close:4401", "close:4403"


@dataclass(frozen=True)
class Message:
    phase: str
    build: Callable[[World], dict[str, Any]]
    outcomes: tuple[str, ...]
    writes: bool  # an allowed message changes the database
    assignment: str = "balanced"
    more: dict[str, str] | None = None  # outcomes of the later roles, where not derived
    prepare: Callable[[World], None] | None = None  # staged before connecting
    solo: bool = False  # sent on the world's solo room's socket (not the group room's)

    def expected(self, role: str) -> str:
        return _expected(self.outcomes, self.more, role)


def _ana_draft(w: World) -> Draft:
    return Draft.objects.get(room=w.room, author=w.members["member"])


def _target(w: World) -> int:
    return w.members["target"].pk


DRAFTING, REVIEW, RECOMMENDATION = (
    Phase.DRAFTING.value,
    Phase.REVIEW.value,
    Phase.RECOMMENDATION.value,
)
F, M = "forbidden", "muted"
READ_ONLY = (C401, C401, "ok", "ok", C403, C401, "ok", "ok")
FACILITATORS_ONLY = (C401, C401, F, F, C403, C401, "ok", "ok")

#          anonymous other_member member muted removed other_fac facilitator cofac
SOCKET: dict[str, Message] = {
    "ping": Message(LOBBY, lambda w: {"type": "ping"}, READ_ONLY, writes=False),
    "sync": Message(LOBBY, lambda w: {"type": "sync"}, READ_ONLY, writes=False),
    "typing": Message(DRAFTING, lambda w: {"type": "typing"}, READ_ONLY, writes=False),
    "timer.expired": Message(
        DRAFTING, lambda w: {"type": "timer.expired", "phase": "drafting"}, READ_ONLY,
        writes=False,
    ),
    "draft.save": Message(
        DRAFTING,
        lambda w: {
            "type": "draft.save", "client_id": "matrix-1", "text": "A second argument.",
            # A member writes their own new slot; a facilitator edits the member's draft by id.
            # (test_socket_message sets base_version 1 for facilitators: the draft's version.)
            "kind": "argument", "slot": 2, "base_version": 0, "draft_id": _ana_draft(w).pk,
        },
        (C401, C401, "ok", M, C403, C401, "ok", "ok"),
        writes=True,
    ),
    "position.choose": Message(
        LOBBY,
        lambda w: {"type": "position.choose", "position_id": w.positions["restricted"].pk},
        (C401, C401, "ok", M, C403, C401, F, F),
        writes=True,
        assignment="choice",
    ),
    "phase.advance": Message(
        LOBBY, lambda w: {"type": "phase.advance", "to": "drafting"}, FACILITATORS_ONLY,
        writes=True,
    ),
    "positions.assign": Message(
        LOBBY, lambda w: {"type": "positions.assign"}, FACILITATORS_ONLY, writes=False,
    ),
    "member.move": Message(
        LOBBY,
        lambda w: {"type": "member.move", "member_id": _target(w),
                   "position_id": w.positions["open-weights"].pk},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.mute": Message(
        LOBBY, lambda w: {"type": "member.mute", "member_id": _target(w), "muted": True},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.remove": Message(
        LOBBY, lambda w: {"type": "member.remove", "member_id": _target(w)},
        FACILITATORS_ONLY, writes=True,
    ),
    "member.readmit": Message(
        LOBBY, lambda w: {"type": "member.readmit", "member_id": w.members["removed"].pk},
        FACILITATORS_ONLY, writes=True,
    ),
    "draft.moderate": Message(
        DRAFTING, lambda w: {"type": "draft.moderate", "draft_id": _ana_draft(w).pk,
                             "hidden": True},
        FACILITATORS_ONLY, writes=True,
    ),
    "draft.feedback": Message(
        DRAFTING, lambda w: {"type": "draft.feedback", "draft_id": _ana_draft(w).pk,
                             "text": "Name a source."},
        FACILITATORS_ONLY, writes=True,
    ),
    "room.lock": Message(
        DRAFTING, lambda w: {"type": "room.lock", "locked": True}, FACILITATORS_ONLY, writes=True,
    ),
    "room.announce": Message(
        LOBBY, lambda w: {"type": "room.announce", "text": "Two minutes left."},
        FACILITATORS_ONLY, writes=True,
    ),
    "room.configure": Message(
        LOBBY, lambda w: {"type": "room.configure", "assignment_method": "random"},
        FACILITATORS_ONLY, writes=True,
    ),
    "timer.control": Message(
        DRAFTING, lambda w: {"type": "timer.control", "action": "start", "seconds": 60},
        FACILITATORS_ONLY, writes=True,
    ),
    "round.switch": Message(
        REVIEW, lambda w: {"type": "round.switch"}, FACILITATORS_ONLY, writes=True,
    ),
    "facilitator.add": Message(
        LOBBY, lambda w: {"type": "facilitator.add", "username": "otherfac"},
        FACILITATORS_ONLY, writes=True,
    ),
}  # fmt: skip


def _dee_draft(w: World) -> Draft:
    return Draft.objects.get(room=w.room, author=w.members["target"])


def _warmup_answers(w: World) -> dict[str, str]:
    return {item["key"]: item["answer"] for item in w.room.scenario.warmup["items"]}


def _ana_note(w: World) -> None:
    result = services.research_note_save(
        room_id=w.room.pk,
        actor=AnonymousUser(),
        member_id=w.members["member"].pk,
        client_id="ana-note",
        note_id=None,
        base_version=0,
        organisation="A lab",
        year=2024,
        month=5,
        approach="staged",
        summary="Weights after a review.",
        source_url="https://example.org/policy",
    )
    w.extra["note_id"] = result.id


MO = "members_only"
# The members' own review actions: facilitators are refused (they run the room, not vote in it).
MEMBERS_WRITE = (C401, C401, "ok", M, C403, C401, MO, MO)
# The world's solo room: only its learner gets in; everyone else is closed at connect.
SOLO_ONLY = (C401,) * 8
SOLO_MORE = {"solo": "ok", "other_solo": C401, "class_coowner": C401, "student": C401}

# Issues 5 (review, vote, recommendation builder, sign-offs, finalize), 6 (warm-up, solo steps,
# research board). The chair member is on another team than Ana (api-only), Dee (the target) on
# "restricted" with one argument.
#          anonymous other_member member muted removed other_fac facilitator cofac (+ `more`)
SOCKET.update({
    "recommendation.save": Message(
        RECOMMENDATION,
        lambda w: {"type": "recommendation.save", "client_id": "rec-matrix",
                   "decision_id": w.positions["api-only"].pk, "rationale": "Keep control.",
                   "revisit_condition": "A leak.", "base_version": 0},
        # Chair-only: a member who is not a chair is refused, a muted one as muted.
        (C401, C401, F, M, C403, C401, "ok", "ok"), writes=True, more={"chair": "ok"},
    ),
    "recommendation.save@solo": Message(
        RECOMMENDATION,
        lambda w: {"type": "recommendation.save", "client_id": "rec-solo",
                   "decision_id": w.solo_room.scenario.positions.first().pk,
                   "rationale": "Keep control.", "revisit_condition": "A leak.",
                   "base_version": 0},
        SOLO_ONLY, writes=True, more=SOLO_MORE, solo=True,
        prepare=lambda w: services.solo_phase_set(
            room_id=w.solo_room.pk, member_id=w.members["solo"].pk, to_phase="recommendation"
        ),
    ),
    "comment.add": Message(
        REVIEW,
        lambda w: {"type": "comment.add", "client_id": "c-matrix", "draft_id": _dee_draft(w).pk,
                   "kind": "rebuttal", "text": "Audits can be faked."},
        MEMBERS_WRITE, writes=True,
    ),
    "strongest.mark": Message(
        REVIEW, lambda w: {"type": "strongest.mark", "draft_id": _dee_draft(w).pk},
        MEMBERS_WRITE, writes=True,
    ),
    # A team chooses its own case: Ana's draft, so the chair (another team) is refused.
    "case.vote": Message(
        REVIEW, lambda w: {"type": "case.vote", "draft_id": _ana_draft(w).pk, "chosen": True},
        MEMBERS_WRITE, writes=True, more={"chair": "other_team"},
    ),
    "case.pick": Message(
        REVIEW,
        lambda w: {"type": "case.pick", "position_id": w.positions["open-weights"].pk,
                   "draft_ids": [_ana_draft(w).pk]},
        FACILITATORS_ONLY, writes=True, more={"chair": F},
    ),
    "vote.cast": Message(
        REVIEW,
        lambda w: {"type": "vote.cast", "position_id": w.positions["api-only"].pk,
                   "reason": "Least harm."},
        MEMBERS_WRITE, writes=True,
    ),
    "vote.close": Message(REVIEW, lambda w: {"type": "vote.close"}, FACILITATORS_ONLY,
                          writes=True, more={"chair": F}),
    "chair.set": Message(
        LOBBY, lambda w: {"type": "chair.set", "member_id": _target(w), "chair": True},
        FACILITATORS_ONLY, writes=True, more={"chair": F},
    ),
    "signoff.record": Message(
        RECOMMENDATION,
        lambda w: {"type": "signoff.record", "stance": "dissent", "text": "Too slow."},
        MEMBERS_WRITE, writes=True, prepare=_complete_recommendation,
    ),
    "recommendation.finalize": Message(
        RECOMMENDATION, lambda w: {"type": "recommendation.finalize"}, FACILITATORS_ONLY,
        writes=True, prepare=_complete_recommendation, more={"chair": F},
    ),
    # The warm-up is a private self-check: a muted member may still take it.
    "warmup.submit": Message(
        LOBBY,
        lambda w: {"type": "warmup.submit", "client_id": "w-matrix",
                   "answers": _warmup_answers(w)},
        (C401, C401, "ok", "ok", C403, C401, F, F), writes=True,
    ),
    "warmup.submit@solo": Message(
        DRAFTING,
        lambda w: {"type": "warmup.submit", "client_id": "w-solo", "answers": _warmup_answers(w)},
        SOLO_ONLY, writes=True, more=SOLO_MORE, solo=True,
    ),
    "solo.step": Message(
        DRAFTING, lambda w: {"type": "solo.step", "to": "recommendation"},
        SOLO_ONLY, writes=True, more=SOLO_MORE, solo=True,
    ),
    # In a group room the step is refused to everyone (the facilitator moves the phases).
    "solo.step@group": Message(
        DRAFTING, lambda w: {"type": "solo.step", "to": "recommendation"},
        (C401, C401, "not_solo", "not_solo", C403, C401, "not_solo", "not_solo"), writes=False,
    ),
    "research.note.save": Message(
        DRAFTING,
        lambda w: {"type": "research.note.save", "client_id": "n-matrix", "base_version": 0,
                   "organisation": "A lab", "year": 2025, "month": 1,
                   "approach": "api_only", "summary": "Closed weights.",
                   "source_url": "https://example.org/a"},
        (C401, C401, "ok", M, C403, C401, "ok", "ok"), writes=True,
    ),
    # Only the note's author (Ana) or a facilitator deletes it.
    "research.note.delete": Message(
        DRAFTING, lambda w: {"type": "research.note.delete", "note_id": w.extra["note_id"]},
        (C401, C401, "ok", M, C403, C401, "ok", "ok"), writes=True, prepare=_ana_note,
        more={"chair": "not_author"},
    ),
    "research.judge": Message(
        DRAFTING,
        lambda w: {"type": "research.judge", "client_id": "j-matrix", "trend": "more_closed",
                   "reason": "Two labs closed."},
        MEMBERS_WRITE, writes=True,
    ),
})  # fmt: skip


def test_every_message_type_is_in_the_table():
    listed = {name.split("@")[0] for name in SOCKET}
    missing = set(protocol.SCHEMAS) - listed
    assert not missing, f"add these message types to SOCKET in {__file__}: {sorted(missing)}"
    assert not listed - set(protocol.SCHEMAS), "SOCKET lists a type the protocol lacks"


a_full_state = sync_to_async(full_state)


async def _answer(sock: Socket, message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Send `message`, then a marker (an unknown type, which the server names in its error):
    the consumer handles messages in order, so everything before the marker's error is the
    answer. Returns ("ok" or the error code, every message received)."""
    marker = "end-of-answer"
    await sock.send(message)
    await sock.send({"type": marker})
    received = []
    while True:
        reply = await sock.recv(timeout=5)
        if reply.get("received_type") == marker:
            break
        received.append(reply)
    errors = [m for m in received if m["type"] == "error"]
    return (errors[0]["code"] if errors else "ok"), received


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(SOCKET))
async def test_socket_message(kind, role, scenario):
    spec = SOCKET[kind]
    world = await sync_to_async(world_with_drafts)(
        scenario, spec.phase, assignment_method=spec.assignment
    )
    if spec.prepare:
        await sync_to_async(spec.prepare)(world)
    message = await sync_to_async(spec.build)(world)
    if kind == "draft.save" and role in ("facilitator", "cofacilitator", "class_coowner"):
        message["base_version"] = 1  # a facilitator edits the member's draft at its version
    expected = spec.expected(role)
    room = world.solo_room if spec.solo else world.room
    sock = Socket(room.pk, await sync_to_async(world.cookie)(role))
    connected = await sock.connect()
    try:
        if expected.startswith("close:"):
            assert connected  # accepted, then closed with the documented code
            before = await a_full_state()
            # A refused client that sends before the close arrives changes nothing either.
            await sock.send(message)
            assert await sock.closed_with() == int(expected.split(":")[1])
            await asyncio.sleep(0.05)
            assert await a_full_state() == before
            return
        assert connected
        await sock.sync()
        await sock.drain(0.1)
        before = await a_full_state()
        outcome, received = await _answer(sock, message)
        after = await a_full_state()
        assert outcome == expected, (kind, role, received)
        if outcome == "ok" and spec.writes:
            assert after != before, f"{kind} as {role} was accepted but changed nothing"
        else:
            assert after == before, state_diff(before, after)
        for reply in received:
            assert "Traceback" not in str(reply)
    finally:
        await sock.close()

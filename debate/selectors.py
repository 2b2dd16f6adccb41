"""Every read that shapes data for a page, a socket or an export.

The room snapshot is filtered by audience here, on the server: during drafting a member receives
their own team's drafts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from classroom.models import ClassGroup

from .models import (
    Draft,
    EvidenceCard,
    Feedback,
    Member,
    Phase,
    Position,
    Recommendation,
    ReleaseApproach,
    ResearchNote,
    Room,
    Scenario,
    Trend,
    TrendJudgement,
    WarmupAttempt,
)

User = AbstractBaseUser | AnonymousUser

# Phases in which every position's drafts are visible to every member.
PHASES_ALL_DRAFTS_VISIBLE = {Phase.REVIEW, Phase.RECOMMENDATION, Phase.CLOSED}


def room_is_facilitator(*, room: Room, user: User) -> bool:
    """The owner and the co-facilitators have the same powers."""
    if not (user and user.is_authenticated):
        return False
    if room.owner_id == user.pk or room.cofacilitators.filter(pk=user.pk).exists():
        return True
    # The owner and co-owners of the room's class run its rooms too.
    return room.classgroup_id is not None and (
        ClassGroup.objects.filter(pk=room.classgroup_id)
        .filter(Q(owner=user) | Q(coowners=user))
        .exists()
    )


def rooms_for_facilitator(*, user: AbstractBaseUser) -> QuerySet[Room]:
    return (
        Room.objects.filter(
            Q(owner=user)
            | Q(cofacilitators=user)
            | Q(classgroup__owner=user)
            | Q(classgroup__coowners=user)
        )
        .distinct()
        .select_related("scenario")
        .order_by("-created_at")
    )


def facilitator_names(*, room: Room) -> list[str]:
    names = [room.owner.get_username()] if room.owner_id else []
    names += [u.get_username() for u in room.cofacilitators.order_by("username")]
    return names


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a room: its facilitator, or one of its members."""

    room: Room
    member: Member | None
    is_facilitator: bool

    @property
    def role(self) -> str:
        return "facilitator" if self.is_facilitator else "member"

    @property
    def is_removed(self) -> bool:
        return self.member is not None and self.member.removed_at is not None

    def sees_real_name(self, member: Member) -> bool:
        """Facilitators see real names; members do, except for others in anonymous rooms."""
        if self.is_facilitator or not self.room.anonymous:
            return True
        return self.member is not None and self.member.pk == member.pk


def viewer_for(*, room_id: int, user: User, member_id: int | None) -> Viewer | None:
    """The viewer of room `room_id` for this user and session member id, or None if neither.
    A removed member is still returned (viewer.is_removed): callers refuse them explicitly."""
    room = Room.objects.select_related("scenario").filter(pk=room_id).first()
    if room is None:
        return None
    if room_is_facilitator(room=room, user=user):
        return Viewer(room=room, member=None, is_facilitator=True)
    if member_id is not None:
        member = Member.objects.filter(pk=member_id, room=room).first()
        if member is not None:
            return Viewer(room=room, member=member, is_facilitator=False)
    return None


def presence_window() -> timedelta:
    """How long a member counts as online after the last sign of life: live sockets refresh it
    every PRESENCE_TOUCH_SECONDS / 2, so this allows several missed refreshes."""
    return timedelta(seconds=2 * settings.QUORUM["PRESENCE_TOUCH_SECONDS"])


def member_is_online(member: Member, *, now=None) -> bool:
    if member.open_sockets <= 0 or member.last_seen is None:
        return False
    now = now or timezone.now()
    return member.last_seen >= now - presence_window()


def member_payload(
    member: Member, *, now=None, real_name: bool = True, private: bool = True
) -> dict[str, Any]:
    """A member as others see them. `real_name=False` (members of an anonymous room) replaces
    the display name with the code name; facilitators' payloads carry both. `private=False`
    leaves out what only the member and the facilitators learn (being muted)."""
    payload = {
        "id": member.pk,
        "display_name": member.display_name if real_name else member.code_name,
        "position_id": member.position_id,
        "online": member_is_online(member, now=now),
        "muted": member.muted if private else False,
        "removed": member.removed_at is not None,
    }
    if real_name:
        payload["code_name"] = member.code_name
    return payload


def member_event_payloads(member: Member) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(what members receive, what facilitators receive instead or None) for a member event."""
    full = {"member": member_payload(member)}
    if not member.room.anonymous:
        return full, None
    return {"member": member_payload(member, real_name=False)}, full


def timer_payload(room: Room) -> dict[str, Any]:
    remaining = room.timer_remaining.total_seconds() if room.timer_remaining is not None else None
    return {
        "ends_at": room.timer_ends_at.isoformat() if room.timer_ends_at else None,
        "remaining_seconds": remaining,
        "running": room.timer_ends_at is not None,
        "auto_advance": room.timer_auto_advance,
    }


def room_settings_payload(room: Room) -> dict[str, Any]:
    return {
        "editing_locked": room.editing_locked,
        "announcement": room.announcement,
        "round": room.round,
        "assignment_method": room.assignment_method,
        "choice_cap": room.choice_cap,
        "anonymous": room.anonymous,
        "timer": timer_payload(room),
    }


def feedback_payload(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": feedback.pk,
        "draft_id": feedback.draft_id,
        "text": feedback.text,
        "created_at": feedback.created_at.isoformat() if feedback.created_at else None,
    }


def position_payload(position: Position) -> dict[str, Any]:
    return {
        "id": position.pk,
        "key": position.key,
        "name": position.name,
        "short_name": position.short_name,
        "summary": position.summary,
    }


def draft_payload(draft: Draft) -> dict[str, Any]:
    return {
        "id": draft.pk,
        "position_id": draft.position_id,
        "author_id": draft.author_id,
        "kind": draft.kind,
        "slot": draft.slot,
        "text": draft.text,
        "version": draft.version,
        "last_client_id": draft.last_client_id,
        "updated_at": draft.updated_at.isoformat() if draft.updated_at else None,
        "round": draft.round,
        "hidden": draft.hidden,
        "needs_source": draft.needs_source,
        "citations": sorted(c.pk for c in draft.citations.all()),
    }


def hidden_draft_payload(draft: Draft) -> dict[str, Any]:
    """What a hidden draft looks like to those who may not read it: no text."""
    return {
        "id": draft.pk,
        "position_id": draft.position_id,
        "author_id": draft.author_id,
        "kind": draft.kind,
        "slot": draft.slot,
        "round": draft.round,
        "hidden": True,
    }


def recommendation_payload(rec: Recommendation | None) -> dict[str, Any]:
    if rec is None:
        return {
            "decision_id": None,
            "rationale": "",
            "revisit_condition": "",
            "version": 0,
            "last_client_id": "",
        }
    return {
        "decision_id": rec.decision_id,
        "rationale": rec.rationale,
        "revisit_condition": rec.revisit_condition,
        "version": rec.version,
        "last_client_id": rec.last_client_id,
    }


def visible_drafts(*, viewer: Viewer) -> QuerySet[Draft]:
    """Facilitators: everything. Members: their team's drafts during lobby and drafting, every
    position's afterwards; hidden drafts only when they wrote them."""
    drafts = Draft.objects.filter(room=viewer.room)
    if viewer.is_facilitator:
        return drafts
    assert viewer.member is not None
    drafts = drafts.filter(Q(hidden=False) | Q(author_id=viewer.member.pk))
    if viewer.room.phase in PHASES_ALL_DRAFTS_VISIBLE:
        return drafts
    if viewer.member.position_id is None:
        return drafts.filter(author_id=viewer.member.pk)
    return drafts.filter(Q(position_id=viewer.member.position_id) | Q(author_id=viewer.member.pk))


def visible_feedback(*, viewer: Viewer) -> QuerySet[Feedback]:
    """Feedback reaches the draft's team (and the facilitators), in every phase."""
    feedback = Feedback.objects.filter(draft__room=viewer.room)
    if viewer.is_facilitator:
        return feedback
    assert viewer.member is not None
    team = Q(draft__position_id=viewer.member.position_id, draft__hidden=False)
    return feedback.filter(team | Q(draft__author_id=viewer.member.pk))


def room_snapshot(*, viewer: Viewer) -> dict[str, Any]:
    """Everything a client needs to draw the room, as this viewer may see it.

    A fixed number of queries whatever the number of members or drafts: the room (with its
    scenario and owner), positions, members, drafts, feedback, recommendation, and for
    facilitators the co-facilitators. `seq` is read first, so any event
    after it (seq greater) is newer than or equal to what the snapshot holds; events carry
    versions, so applying one twice is harmless.
    """
    room = Room.objects.select_related("scenario", "owner").get(pk=viewer.room.pk)
    scenario = room.scenario
    now = timezone.now()
    positions = list(scenario.positions.all())
    members = list(room.members.all())
    me = None
    if viewer.member is not None:
        me = next((m for m in members if m.pk == viewer.member.pk), None)
    current = Viewer(room, me, viewer.is_facilitator)
    drafts = list(visible_drafts(viewer=current).prefetch_related("citations"))
    feedback = list(visible_feedback(viewer=current))
    rec = Recommendation.objects.filter(room=room).first()
    return {
        "seq": room.seq,
        "server_time": now.isoformat(),
        "room": {
            "id": room.pk,
            "code": room.code,
            "title": room.title,
            "phase": room.phase,
            "is_solo": room.is_solo,
            **room_settings_payload(room),
        },
        "scenario": {
            "title": scenario.title,
            "question": scenario.question,
            "argument_slots": scenario.argument_slots,
            "risk_slots": scenario.risk_slots,
            "revisit_months": scenario.revisit_months,
            "recommendation_guidance": scenario.recommendation_guidance,
            "revisit_guidance": scenario.revisit_guidance,
            "positions": [position_payload(p) for p in positions],
        },
        "me": {
            "role": viewer.role,
            "member_id": me.pk if me else None,
            "display_name": me.display_name if me else None,
            "position_id": me.position_id if me else None,
            "muted": me.muted if me else False,
        },
        "members": [
            member_payload(
                m,
                now=now,
                real_name=current.sees_real_name(m),
                private=viewer.is_facilitator or (me is not None and me.pk == m.pk),
            )
            for m in members
        ],
        "drafts": [draft_payload(d) for d in drafts],
        "feedback": [feedback_payload(f) for f in feedback],
        "facilitators": facilitator_names(room=room) if viewer.is_facilitator else [],
        "recommendation": recommendation_payload(rec),
        **warmup_snapshot(viewer=current),
        "cards": [card_payload(c) for c in scenario.cards.all()],
        "research": research_snapshot(room=room),
    }


@dataclass(frozen=True)
class RoomRecord:
    """The room's record for exports: scenario, teams, every draft with its author, decision."""

    room: Room
    positions: list[Position]
    members_by_position: dict[int | None, list[Member]]
    drafts_by_position: dict[int, list[Draft]]
    recommendation: Recommendation | None
    # The name each member has for this viewer (code names for members of anonymous rooms).
    names: dict[int, str]
    for_facilitator: bool = True

    def name(self, member_id: int) -> str:
        return self.names.get(member_id, "—")


def room_record(*, room: Room, viewer: Viewer | None = None) -> RoomRecord:
    """The record as `viewer` may see it (None: as the facilitators see it). Members get no
    hidden drafts but their own, and code names in anonymous rooms."""
    for_facilitator = viewer is None or viewer.is_facilitator
    positions = list(room.scenario.positions.all())
    members = list(room.members.all())
    by_pos: dict[int | None, list[Member]] = {}
    for m in members:
        by_pos.setdefault(m.position_id, []).append(m)
    if viewer is None:
        names = {m.pk: m.display_name for m in members}
    else:
        names = {m.pk: m.display_name if viewer.sees_real_name(m) else m.code_name for m in members}
    drafts = (
        Draft.objects.filter(room=room)
        .select_related("author")
        .prefetch_related("citations")
        .order_by("round", "position__order", "kind", "slot", "author__joined_at")
    )
    if not for_facilitator:
        assert viewer is not None and viewer.member is not None
        drafts = drafts.filter(Q(hidden=False) | Q(author_id=viewer.member.pk))
    drafts_by_position: dict[int, list[Draft]] = {p.pk: [] for p in positions}
    for d in drafts:
        if d.text.strip():
            drafts_by_position.setdefault(d.position_id, []).append(d)
    rec = Recommendation.objects.filter(room=room).select_related("decision").first()
    return RoomRecord(
        room=room,
        positions=positions,
        members_by_position=by_pos,
        drafts_by_position=drafts_by_position,
        recommendation=rec,
        names=names,
        for_facilitator=for_facilitator,
    )


# --- warm-up check --------------------------------------------------------------------------


def warmup_public(scenario: Any) -> dict[str, Any] | None:
    """The exercise as learners see it: the arguments and the reasons, not the answers."""
    warmup = scenario.warmup or {}
    if not warmup.get("items"):
        return None
    return {
        "intro": warmup.get("intro", ""),
        "items": [{"key": i["key"], "text": i["text"]} for i in warmup["items"]],
        "reasons": [{"key": r["key"], "text": r["text"]} for r in warmup.get("reasons", [])],
    }


def warmup_attempt_payload(attempt: WarmupAttempt) -> dict[str, Any]:
    """One scored try: per item whether it was right, and for right ones why (the feedback)."""
    explanations = {
        i["key"]: i.get("explanation", "")
        for i in (attempt.room.scenario.warmup or {}).get("items", [])
    }
    return {
        "id": attempt.pk,
        "member_id": attempt.member_id,
        "answers": attempt.answers,
        "results": attempt.results,
        "explanations": {k: explanations.get(k, "") for k, ok in attempt.results.items() if ok},
        "score": attempt.score,
        "total": attempt.total,
        "client_id": attempt.client_id,
        "created_at": attempt.created_at.isoformat() if attempt.created_at else None,
    }


def warmup_snapshot(*, viewer: Viewer) -> dict[str, Any]:
    """The exercise, and the attempts this viewer may see: their own, or (facilitators) all."""
    room = viewer.room
    public = warmup_public(room.scenario)
    if public is None:
        return {"warmup": None, "warmup_attempts": []}
    attempts = WarmupAttempt.objects.filter(room=room).select_related("room__scenario")
    if not viewer.is_facilitator:
        member_id = viewer.member.pk if viewer.member else None
        attempts = attempts.filter(member_id=member_id)
    return {
        "warmup": public,
        "warmup_attempts": [warmup_attempt_payload(a) for a in attempts],
    }


def warmup_summary(*, room: Room) -> dict[str, Any]:
    """The class's results for the record: per item the share right at each member's latest try,
    and per member their latest and best scores."""
    public = warmup_public(room.scenario)
    if public is None:
        return {"items": [], "members": []}
    latest: dict[int, WarmupAttempt] = {}
    best: dict[int, int] = {}
    tries: dict[int, int] = {}
    for a in WarmupAttempt.objects.filter(room=room).order_by("created_at", "id"):
        latest[a.member_id] = a
        best[a.member_id] = max(best.get(a.member_id, 0), a.score)
        tries[a.member_id] = tries.get(a.member_id, 0) + 1
    items = [
        {
            "key": item["key"],
            "text": item["text"],
            "right": sum(1 for a in latest.values() if a.results.get(item["key"])),
            "of": len(latest),
        }
        for item in public["items"]
    ]
    members = [
        {
            "member_id": member_id,
            "latest": a.score,
            "best": best[member_id],
            "total": a.total,
            "tries": tries[member_id],
        }
        for member_id, a in latest.items()
    ]
    return {"items": items, "members": members}


# --- scenarios, evidence cards ------------------------------------------------------------------


def scenario_usable_by(*, scenario: Scenario, user: User) -> bool:
    """The built-in scenarios are everyone's; a custom one is its owner's alone."""
    if scenario.is_builtin:
        return True
    return bool(user and user.is_authenticated and scenario.owner_id == user.pk)


def scenarios_for_facilitator(*, user: User) -> QuerySet[Scenario]:
    """What a facilitator may see, copy and run rooms with: built-in ones and their own."""
    if not (user and user.is_authenticated):
        return Scenario.objects.filter(is_builtin=True)
    return Scenario.objects.filter(Q(is_builtin=True) | Q(owner=user)).order_by(
        "-is_builtin", "title", "pk"
    )


def scenario_in_use(*, scenario: Scenario) -> bool:
    return scenario.rooms.exists()


def scenario_data(*, scenario: Scenario) -> dict[str, Any]:
    """A scenario as the plain data services.scenario_create takes (copies, the editor)."""
    return {
        "title": scenario.title,
        "question": scenario.question,
        "briefing": scenario.briefing,
        "argument_slots": scenario.argument_slots,
        "risk_slots": scenario.risk_slots,
        "revisit_months": scenario.revisit_months,
        "recommendation_guidance": scenario.recommendation_guidance,
        "revisit_guidance": scenario.revisit_guidance,
        "positions": [
            {"name": p.name, "short_name": p.short_name, "summary": p.summary}
            for p in scenario.positions.all()
        ],
        "cards": [
            {"title": c.title, "body": c.body, "source_note": c.source_note}
            for c in scenario.cards.all()
        ],
    }


def card_payload(card: EvidenceCard) -> dict[str, Any]:
    return {
        "id": card.pk,
        "key": card.key,
        "title": card.title,
        "body": card.body,
        "source_note": card.source_note,
    }


# --- research board -----------------------------------------------------------------------------

MONTH_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def research_note_payload(note: ResearchNote) -> dict[str, Any]:
    return {
        "id": note.pk,
        "author_id": note.author_id,  # a member id; None when a facilitator wrote it
        "by_facilitator": note.author_id is None,
        "organisation": note.organisation,
        "year": note.year,
        "month": note.month,
        "approach": note.approach,
        "summary": note.summary,
        "source_url": note.source_url,
        "version": note.version,
        "last_client_id": note.last_client_id,
        "created_client_id": note.created_client_id,
    }


def judgement_payload(judgement: TrendJudgement) -> dict[str, Any]:
    return {
        "id": judgement.pk,
        "member_id": judgement.member_id,
        "trend": judgement.trend,
        "reason": judgement.reason,
        "last_client_id": judgement.last_client_id,
    }


def trend_tally(*, room: Room) -> dict[str, int]:
    """How many members judged the trend each way (removed members are not counted)."""
    tally = dict.fromkeys(Trend.values, 0)
    judgements = TrendJudgement.objects.filter(room=room, member__removed_at__isnull=True)
    for trend in judgements.values_list("trend", flat=True):
        tally[trend] += 1
    tally["total"] = sum(tally[t] for t in Trend.values)
    return tally


def research_timeline(notes: list[ResearchNote]) -> list[dict[str, Any]]:
    """The notes by month, oldest first; each month lists its notes and counts per approach."""
    months: dict[tuple[int, int], list[ResearchNote]] = {}
    for note in sorted(notes, key=lambda n: (n.year, n.month, n.organisation.lower(), n.pk)):
        months.setdefault((note.year, note.month), []).append(note)
    return [
        {
            "year": year,
            "month": month,
            "label": f"{MONTH_ABBR[month - 1]} {year}",
            "notes": items,
            "approaches": {
                a: sum(1 for n in items if n.approach == a) for a in ReleaseApproach.values
            },
        }
        for (year, month), items in months.items()
    ]


def research_snapshot(*, room: Room) -> dict[str, Any]:
    """The research board for the socket snapshot: notes, judgements and the tally."""
    notes = list(ResearchNote.objects.filter(room=room))
    judgements = list(TrendJudgement.objects.filter(room=room, member__removed_at__isnull=True))
    tally = dict.fromkeys(Trend.values, 0)
    for judgement in judgements:
        tally[judgement.trend] += 1
    tally["total"] = len(judgements)
    return {
        "notes": [research_note_payload(n) for n in notes],
        "judgements": [judgement_payload(j) for j in judgements],
        "tally": tally,
    }


@dataclass(frozen=True)
class ResearchRecord:
    """The room's research for the record: notes, a timeline by month and approach, and the
    members' judgements of the trend with their tally."""

    notes: list[ResearchNote]
    timeline: list[dict[str, Any]]
    judgements: list[TrendJudgement]
    tally: dict[str, int]
    names: dict[int, str]

    def author(self, note: ResearchNote) -> str:
        if note.author_id is None:
            return "Facilitator"
        return self.names.get(note.author_id, "—")

    def name(self, member_id: int) -> str:
        return self.names.get(member_id, "—")


def research_record(*, room: Room, viewer: Viewer | None = None) -> ResearchRecord:
    """The research board as `viewer` may see it (None: as the facilitators see it): members of
    anonymous rooms see code names."""
    members = list(room.members.all())
    if viewer is None:
        names = {m.pk: m.display_name for m in members}
    else:
        names = {m.pk: m.display_name if viewer.sees_real_name(m) else m.code_name for m in members}
    notes = list(ResearchNote.objects.filter(room=room))
    judgements = list(
        TrendJudgement.objects.filter(room=room, member__removed_at__isnull=True).order_by(
            "member__joined_at", "pk"
        )
    )
    return ResearchRecord(
        notes=notes,
        timeline=research_timeline(notes),
        judgements=judgements,
        tally=trend_tally(room=room),
        names=names,
    )

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

from .models import Draft, Feedback, Member, Phase, Position, Recommendation, Room

User = AbstractBaseUser | AnonymousUser

# Phases in which every position's drafts are visible to every member.
PHASES_ALL_DRAFTS_VISIBLE = {Phase.REVIEW, Phase.RECOMMENDATION, Phase.CLOSED}


def room_is_facilitator(*, room: Room, user: User) -> bool:
    """The owner and the co-facilitators have the same powers."""
    if not (user and user.is_authenticated):
        return False
    return room.owner_id == user.pk or room.cofacilitators.filter(pk=user.pk).exists()


def rooms_for_facilitator(*, user: AbstractBaseUser) -> QuerySet[Room]:
    return (
        Room.objects.filter(Q(owner=user) | Q(cofacilitators=user))
        .distinct()
        .select_related("scenario")
        .order_by("-created_at")
    )


def facilitator_names(*, room: Room) -> list[str]:
    names = [room.owner.get_username()]
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
    room = Room.objects.with_seq().select_related("scenario", "owner").get(pk=viewer.room.pk)
    scenario = room.scenario
    now = timezone.now()
    positions = list(scenario.positions.all())
    members = list(room.members.all())
    me = None
    if viewer.member is not None:
        me = next((m for m in members if m.pk == viewer.member.pk), None)
    current = Viewer(room, me, viewer.is_facilitator)
    drafts = list(visible_drafts(viewer=current))
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

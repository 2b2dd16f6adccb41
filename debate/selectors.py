"""Every read that shapes data for a page, a socket or an export.

The room snapshot is filtered by audience here, on the server: during drafting a member receives
their own team's drafts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from classroom.models import ClassGroup

from .models import (
    CaseVote,
    Comment,
    Draft,
    DraftKind,
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
    Signoff,
    StrongestMark,
    Trend,
    TrendJudgement,
    Vote,
    VoteState,
    WarmupAttempt,
)

User = AbstractBaseUser | AnonymousUser

# Phases in which every position's drafts are visible to every member.
PHASES_ALL_DRAFTS_VISIBLE = {Phase.REVIEW, Phase.RECOMMENDATION, Phase.CLOSED}
# Phases in which a member of a group room sees the warm-up check and their tries at it (the
# phases services.WARMUP_PHASES accepts tries in); facilitators and solo learners see the tries
# in every phase.
PHASES_WARMUP_SHOWN = {Phase.LOBBY, Phase.DRAFTING}


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
    username = room.cofacilitators.model.USERNAME_FIELD
    names += room.cofacilitators.order_by("username").values_list(username, flat=True)
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
    A removed member is still returned (viewer.is_removed): callers refuse them explicitly.
    Without an account (every member's page and socket) it is one statement: the member with
    their room and its scenario."""
    if not (user and user.is_authenticated):
        if member_id is None:
            return None  # a stranger: nothing to read
        member = (
            Member.objects.select_related("room__scenario")
            .filter(pk=member_id, room_id=room_id)
            .first()
        )
        return Viewer(room=member.room, member=member, is_facilitator=False) if member else None
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


def room_seq(*, room_id: int) -> int | None:
    """The room's sequence number in one statement; None for a room that does not exist."""
    room = Room.objects.with_seq().filter(pk=room_id).first()
    return room.seq if room is not None else None


@dataclass(frozen=True)
class SyncState:
    """What a reconnecting member's `sync` needs: still here, in which team, at which number."""

    removed: bool
    position_id: int | None
    seq: int


_SYNC_STATE_SQL: list[str] = []


def member_sync_state(*, room_id: int, member_id: int) -> SyncState | None:
    """A member's removal, team and room number, in one statement, or None if they are not a
    member of this room. A thousand pages reconnecting after a restart each ask this once: as
    plain SQL (the same on SQLite and PostgreSQL) it costs the server 0.1 ms of CPU, where the
    ORM's query (the member, their room and the drafts' subquery) took 1.6 ms to build
    (bench/RESULTS.md, eleventh round). The room's number is Room.seq's: the greater of
    `event_seq` and the highest number among its drafts (latest_draft_seq)."""
    if not _SYNC_STATE_SQL:
        # Table names from the models; every value is a parameter.
        member, room, draft = (m._meta.db_table for m in (Member, Room, Draft))
        _SYNC_STATE_SQL.append(f"""SELECT m.removed_at, m.position_id, r.event_seq,
    (SELECT d.seq FROM {draft} AS d WHERE d.room_id = r.id ORDER BY d.seq DESC LIMIT 1)
FROM {member} AS m INNER JOIN {room} AS r ON r.id = m.room_id
WHERE m.id = %s AND m.room_id = %s""")  # noqa: S608 (table names from the models)
    with connection.cursor() as cursor:
        cursor.execute(_SYNC_STATE_SQL[0], [member_id, room_id])
        row = cursor.fetchone()
    if row is None:
        return None
    removed_at, position_id, event_seq, draft_seq = row
    return SyncState(
        removed=removed_at is not None,
        position_id=position_id,
        seq=max(event_seq, draft_seq or 0),
    )


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
        "is_chair": member.is_chair,
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


def draft_payload(draft: Draft, *, citations: list[int] | None = None) -> dict[str, Any]:
    """`citations`: the cited card ids when the caller has them (no query); else they are read."""
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
        "citations": sorted(citations)
        if citations is not None
        else sorted(c.pk for c in draft.citations.all()),
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


def recommendation_payload(
    rec: Recommendation | None, *, with_citations: bool = True
) -> dict[str, Any]:
    if rec is None:
        return {
            "decision_id": None,
            "rationale": "",
            "revisit_condition": "",
            "version": 0,
            "last_client_id": "",
            "citation_ids": [],
            "risk_draft_id": None,
            "risk_text": "",
            "finalized_at": None,
        }
    return {
        "decision_id": rec.decision_id,
        "rationale": rec.rationale,
        "revisit_condition": rec.revisit_condition,
        "version": rec.version,
        "last_client_id": rec.last_client_id,
        "citation_ids": sorted(rec.citations.values_list("pk", flat=True))
        if rec.pk and with_citations
        else [],
        "risk_draft_id": rec.risk_draft_id,
        "risk_text": rec.risk_text,
        "finalized_at": rec.finalized_at.isoformat() if rec.finalized_at else None,
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


# The columns of a draft that draft_payload reads, in its order ("citations" comes last).
SNAPSHOT_DRAFT_FIELDS = (
    "id",
    "position_id",
    "author_id",
    "kind",
    "slot",
    "text",
    "version",
    "last_client_id",
    "updated_at",
    "round",
    "hidden",
    "needs_source",
)
SNAPSHOT_FEEDBACK_FIELDS = ("id", "draft_id", "text", "created_at")
SNAPSHOT_CARD_FIELDS = ("id", "key", "title", "body", "source_note")


def _related_or_none(instance: Any, name: str) -> Any:
    """A reverse one-to-one loaded with select_related: the object, or None when there is none."""
    try:
        return getattr(instance, name)
    except AttributeError:  # RelatedObjectDoesNotExist
        return None


def draft_citations(*, room: Room) -> dict[int, list[int]]:
    """Draft id -> the ids of the evidence cards it cites (sorted), for every draft of the room:
    one query on the link table (callers keep only the drafts they show)."""
    cited: dict[int, list[int]] = {}
    rows = Draft.citations.through.objects.filter(draft__room_id=room.pk).values_list(
        "draft_id", "evidencecard_id"
    )
    for draft_id, card_id in rows:
        cited.setdefault(draft_id, []).append(card_id)
    for ids in cited.values():
        ids.sort()
    return cited


def room_snapshot(*, viewer: Viewer) -> dict[str, Any]:
    """Everything a client needs to draw the room, as this viewer may see it.

    A fixed number of queries whatever the number of members or drafts (tests/debate/
    test_selectors.py counts them): the room (with its scenario, recommendation, vote state and,
    for facilitators, owner), positions, members, drafts, their citations, feedback, warm-up
    attempts, evidence cards, research notes and judgements; facilitators also get the
    co-facilitators. From the review on, the review section adds its own (review_snapshot).
    `seq` is read first, so any event after it (seq greater) is newer than or equal to what the
    snapshot holds; events carry versions, so applying one twice is harmless.

    Cost: the drafts, feedback, cards, research and review rows are read as plain rows
    (`values()`) in the payloads' shapes, not as model instances, and the citations from the
    link table in one query. What cannot have content in a phase, or is not shown in it, is not
    read in it: the review section before the review, sign-offs during it, a group-room member's
    warm-up tries after drafting.
    """
    related = ["scenario", "recommendation", "vote_state"]
    if viewer.is_facilitator:
        related.append("owner")  # facilitator_names
    room = (
        Room.objects.with_seq()
        .select_related(*related)
        .defer("recommendation__frozen_record")
        .get(pk=viewer.room.pk)
    )
    scenario = room.scenario
    now = timezone.now()
    positions = list(scenario.positions.all())
    members = list(room.members.all())
    me = None
    if viewer.member is not None:
        me = next((m for m in members if m.pk == viewer.member.pk), None)
    current = Viewer(room, me, viewer.is_facilitator)
    reviewing = room.phase in PHASES_ALL_DRAFTS_VISIBLE
    # A facilitator sees every draft: the review's case selection reads the current round's
    # from the same rows (two more columns) instead of a query of its own.
    case_rows = reviewing and viewer.is_facilitator
    fields = SNAPSHOT_DRAFT_FIELDS + (("created_at", "picked") if case_rows else ())
    drafts = list(visible_drafts(viewer=current).values(*fields))
    cited = draft_citations(room=room)  # after the drafts, as a prefetch would be
    round_drafts: list[CaseDraft] | None = [] if case_rows else None
    for d in drafts:  # draft_payload's shape, from the row
        if round_drafts is not None:
            created_at, picked = d.pop("created_at"), d.pop("picked")
            if d["round"] == room.round:
                round_drafts.append(CaseDraft.of(d, created_at=created_at, picked=picked))
        updated_at = d["updated_at"]
        d["updated_at"] = updated_at.isoformat() if updated_at else None
        d["citations"] = cited.get(d["id"], [])
    feedback = list(visible_feedback(viewer=current).values(*SNAPSHOT_FEEDBACK_FIELDS))
    for f in feedback:  # feedback_payload's shape
        created_at = f["created_at"]
        f["created_at"] = created_at.isoformat() if created_at else None
    rec = _related_or_none(room, "recommendation")
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
        "drafts": drafts,
        "feedback": feedback,
        "facilitators": facilitator_names(room=room) if viewer.is_facilitator else [],
        # Before the review there are no citations, comments, votes or sign-offs to read.
        "recommendation": recommendation_payload(rec, with_citations=reviewing),
        "review": review_snapshot(
            viewer=current,
            rec=rec,
            positions=positions,
            members=members,
            round_drafts=round_drafts,
            vote_closed=_related_or_none(room, "vote_state") is not None,
        )
        if reviewing
        else _empty_review(),
        **warmup_snapshot(viewer=current),
        "cards": list(scenario.cards.values(*SNAPSHOT_CARD_FIELDS)),  # card_payload's shape
        "research": research_snapshot(room=room),
    }


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


def warmup_explanations(scenario: Any) -> dict[str, str]:
    """Item key -> why its right reason is right."""
    return {i["key"]: i.get("explanation", "") for i in (scenario.warmup or {}).get("items", [])}


def warmup_attempt_payload(
    attempt: WarmupAttempt, *, explanations: dict[str, str] | None = None
) -> dict[str, Any]:
    """One scored try: per item whether it was right, and for right ones why (the feedback).
    `explanations`: warmup_explanations(scenario) when the caller has it (the snapshot: once,
    not per attempt); else read from the attempt's room."""
    if explanations is None:
        explanations = warmup_explanations(attempt.room.scenario)
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
    """The exercise, and the attempts this viewer may see: their own, or (facilitators) all.
    A member of a group room sees their tries in PHASES_WARMUP_SHOWN only (no try is made after
    them, and the page shows none): later their list is empty, without a query."""
    room = viewer.room
    public = warmup_public(room.scenario)
    if public is None:
        return {"warmup": None, "warmup_attempts": []}
    if not (viewer.is_facilitator or room.is_solo or room.phase in PHASES_WARMUP_SHOWN):
        return {"warmup": public, "warmup_attempts": []}
    attempts = WarmupAttempt.objects.filter(room=room)
    if not viewer.is_facilitator:
        member_id = viewer.member.pk if viewer.member else None
        attempts = attempts.filter(member_id=member_id)
    explanations = warmup_explanations(room.scenario)
    return {
        "warmup": public,
        "warmup_attempts": [warmup_attempt_payload(a, explanations=explanations) for a in attempts],
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


RESEARCH_NOTE_FIELDS = (
    "id",
    "author_id",
    "organisation",
    "year",
    "month",
    "approach",
    "summary",
    "source_url",
    "version",
    "last_client_id",
    "created_client_id",
)


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
    """The research board for the socket snapshot: notes, judgements and the tally. Rows in
    research_note_payload's and judgement_payload's shapes, not model instances."""
    notes = list(ResearchNote.objects.filter(room=room).values(*RESEARCH_NOTE_FIELDS))
    for note in notes:
        note["by_facilitator"] = note["author_id"] is None
    judgements = list(
        TrendJudgement.objects.filter(room=room, member__removed_at__isnull=True).values(
            "id", "member_id", "trend", "reason", "last_client_id"
        )
    )
    tally = dict.fromkeys(Trend.values, 0)
    for judgement in judgements:
        tally[judgement["trend"]] += 1
    tally["total"] = len(judgements)
    return {"notes": notes, "judgements": judgements, "tally": tally}


# --- review, curation, vote, sign-off and the record (issue 5) --------------------------------

RECORD_SCHEMA = "quorum.record"
EMPTY_REVIEW: dict[str, Any] = {
    "comments": [],
    "marks": [],
    "cases": [],
    "my_case_votes": [],
    "vote": {"closed": False, "mine": None, "turnout": None, "results": None},
    "signoffs": [],
    "share_path": None,
}
RECORD_VERSION = 1


def _empty_review() -> dict[str, Any]:
    """EMPTY_REVIEW, as a new dict (a snapshot is the caller's to change)."""
    return {**EMPTY_REVIEW, "vote": dict(EMPTY_REVIEW["vote"])}


def comment_payload(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "draft_id": comment.draft_id,
        "author_id": comment.author_id,
        "kind": comment.kind,
        "text": comment.text,
        "client_id": comment.client_id,
        "created_at": comment.created_at.isoformat() if comment.created_at else None,
    }


def mark_payload(mark: StrongestMark) -> dict[str, Any]:
    return {"member_id": mark.member_id, "position_id": mark.position_id, "draft_id": mark.draft_id}


def vote_payload(vote: Vote | None) -> dict[str, Any] | None:
    if vote is None:
        return None
    return {"position_id": vote.position_id, "reason": vote.reason}


def signoff_payload(signoff: Signoff) -> dict[str, Any]:
    return {
        "member_id": signoff.member_id,
        "stance": signoff.stance,
        "text": signoff.text,
        "rec_version": signoff.rec_version,
    }


def share_path(rec: Recommendation) -> str | None:
    from django.urls import reverse

    return reverse("debate:record_shared", args=[rec.share_token]) if rec.share_token else None


def vote_is_closed(*, room: Room) -> bool:
    return VoteState.objects.filter(room=room).exists()


def vote_turnout(*, room: Room) -> dict[str, int]:
    """How many have voted, out of the members who may: what facilitators see while it is open."""
    eligible = room.members.filter(removed_at__isnull=True).count()
    return {"voted": Vote.objects.filter(room=room).count(), "eligible": eligible}


def vote_results(
    *, room: Room, positions: list[Position] | None = None, votes: list[Vote] | None = None
) -> dict[str, Any]:
    """Counts per position (every position, zeros included); the leaders, and whether they tie.
    Only meaningful, and only ever sent, once the vote is closed. `positions` and `votes` (the
    room's, in (updated_at, id) order) when the caller has read them."""
    if positions is None:
        positions = list(room.scenario.positions.all())
    if votes is None:
        votes = list(Vote.objects.filter(room=room).order_by("updated_at", "id"))
    counts = {p.pk: 0 for p in positions}
    for v in votes:
        counts[v.position_id] = counts.get(v.position_id, 0) + 1
    top = max(counts.values(), default=0)
    leaders = [p.pk for p in positions if top and counts[p.pk] == top]
    return {
        "closed": True,
        "total": len(votes),
        "counts": [{"position_id": p.pk, "count": counts[p.pk]} for p in positions],
        "leaders": leaders,
        "tie": len(leaders) > 1,
        "reasons": [
            {"member_id": v.member_id, "position_id": v.position_id, "reason": v.reason}
            for v in votes
            if v.reason
        ],
    }


def _readable(draft: Draft) -> bool:
    return not draft.hidden and bool(draft.text.strip())


def case_selection(
    *, room: Room, drafts: list[Draft], votes: dict[int, int]
) -> tuple[set[int], str]:
    """Which of one position's drafts (one round) make its case, and who decided.

    Per kind (arguments: scenario.argument_slots, risks: risk_slots): when the team wrote no more
    than the slots, all are in ("all"). Otherwise the facilitator's pick decides if they made one
    for this position ("facilitator"), else the team's votes: most votes first, ties by slot and
    time of writing ("team"). Hidden and empty drafts are never in the case."""
    readable = [d for d in drafts if _readable(d)]
    facilitator = any(d.picked is not None for d in drafts)
    selected: set[int] = set()
    decided = "all"
    limits = {
        DraftKind.ARGUMENT: room.scenario.argument_slots,
        DraftKind.RISK: room.scenario.risk_slots,
    }
    for kind, limit in limits.items():
        of_kind = [d for d in readable if d.kind == kind]
        if len(of_kind) <= limit and not facilitator:
            selected.update(d.pk for d in of_kind)
        elif facilitator:
            decided = "facilitator"
            selected.update(d.pk for d in of_kind if d.picked)
        else:
            decided = "team"
            ranked = sorted(
                of_kind, key=lambda d: (-votes.get(d.pk, 0), d.slot, d.created_at, d.pk)
            )
            selected.update(d.pk for d in ranked[:limit])
    return selected, decided


def _case_votes(room: Room) -> dict[int, int]:
    counts: dict[int, int] = {}
    for draft_id in CaseVote.objects.filter(room=room).values_list("draft_id", flat=True):
        counts[draft_id] = counts.get(draft_id, 0) + 1
    return counts


def case_payload(
    *,
    room: Room,
    position_id: int,
    votes: dict[int, int] | None = None,
    drafts: list[Draft] | None = None,
) -> dict[str, Any]:
    """One position's case for the current round, as every member may see it."""
    if votes is None:
        votes = _case_votes(room)
    if drafts is None:
        drafts = list(Draft.objects.filter(room=room, position_id=position_id, round=room.round))
    selected, decided = case_selection(room=room, drafts=drafts, votes=votes)
    return {
        "position_id": position_id,
        "round": room.round,
        "selected": sorted(selected),
        "decided_by": decided,
        "votes": {str(d.pk): votes[d.pk] for d in drafts if votes.get(d.pk) and _readable(d)},
    }


class CaseDraft(NamedTuple):
    """What case_selection reads of a draft, as one row (the review snapshot's drafts)."""

    pk: int
    position_id: int
    kind: str
    slot: int
    created_at: Any
    picked: bool | None
    hidden: bool
    text: str

    @classmethod
    def of(cls, row: dict[str, Any], *, created_at: Any, picked: bool | None) -> CaseDraft:
        """From a snapshot draft row (room_snapshot)."""
        return cls(
            row["id"], row["position_id"], row["kind"], row["slot"], created_at, picked,
            row["hidden"], row["text"],
        )  # fmt: skip


SNAPSHOT_COMMENT_FIELDS = ("id", "draft_id", "author_id", "kind", "text", "client_id", "created_at")


def review_snapshot(
    *,
    viewer: Viewer,
    rec: Recommendation | None,
    positions: list[Position] | None = None,
    members: list[Member] | None = None,
    round_drafts: list[CaseDraft] | None = None,
    vote_closed: bool | None = None,
) -> dict[str, Any]:
    """The review, vote and sign-off state for this viewer: vote counts only once closed, the
    turnout for facilitators only, the viewer's own vote and case votes. `positions`, `members`
    (the room's), `round_drafts` (all of the current round's, hidden ones included, in the
    drafts' order) and `vote_closed` when the caller has read them (room_snapshot).

    Rows, not model instances. Sign-offs are written in the recommendation phase only, and a
    room never returns to the review from it: in the review they are not read."""
    room = viewer.room
    member = viewer.member
    if positions is None:
        positions = list(room.scenario.positions.all())
    closed = vote_is_closed(room=room) if vote_closed is None else vote_closed
    comments = Comment.objects.filter(room=room)
    if not viewer.is_facilitator:
        comments = comments.filter(draft__hidden=False)
    comment_rows = list(comments.values(*SNAPSHOT_COMMENT_FIELDS))
    for c in comment_rows:  # comment_payload's shape
        created_at = c["created_at"]
        c["created_at"] = created_at.isoformat() if created_at else None
    if round_drafts is None:
        round_drafts = [
            CaseDraft(*row)
            for row in Draft.objects.filter(room=room, round=room.round).values_list(
                "id", "position_id", "kind", "slot", "created_at", "picked", "hidden", "text"
            )
        ]
    votes: dict[int, int] = {}
    my_case_votes = []
    for draft_id, member_id in CaseVote.objects.filter(room=room).values_list(
        "draft_id", "member_id"
    ):
        votes[draft_id] = votes.get(draft_id, 0) + 1
        if member is not None and member_id == member.pk:
            my_case_votes.append(draft_id)
    cases = []
    if room.phase in PHASES_ALL_DRAFTS_VISIBLE:
        for position in positions:
            own = [d for d in round_drafts if d.position_id == position.pk]
            cases.append(case_payload(room=room, position_id=position.pk, votes=votes, drafts=own))
    room_votes = list(Vote.objects.filter(room=room).order_by("updated_at", "id"))
    mine = next((v for v in room_votes if v.member_id == member.pk), None) if member else None
    turnout = None
    if viewer.is_facilitator:
        if members is None:
            eligible = room.members.filter(removed_at__isnull=True).count()
        else:
            eligible = sum(1 for m in members if m.removed_at is None)
        turnout = {"voted": len(room_votes), "eligible": eligible}
    signoffs = (
        list(Signoff.objects.filter(room=room).values("member_id", "stance", "text", "rec_version"))
        if room.phase != Phase.REVIEW
        else []
    )  # signoff_payload's shape
    data: dict[str, Any] = {
        "comments": comment_rows,
        "marks": list(
            StrongestMark.objects.filter(room=room).values("member_id", "position_id", "draft_id")
        ),  # mark_payload's shape
        "cases": cases,
        "my_case_votes": sorted(my_case_votes),
        "vote": {
            "closed": closed,
            "mine": vote_payload(mine),
            "turnout": turnout,
            "results": vote_results(room=room, positions=positions, votes=room_votes)
            if closed
            else None,
        },
        "signoffs": signoffs,
        "share_path": share_path(rec) if rec is not None and viewer.is_facilitator else None,
    }
    return data


# --- the record: one builder, one section each ----------------------------------------------


@dataclass
class RecordContext:
    """What every section of the record reads: the room and its people as one audience sees
    them. `audience`: "facilitator" (real names, hidden drafts marked), "public" (the share link:
    code names in anonymous rooms, no hidden drafts) or "member" (with `viewer`)."""

    room: Room
    audience: str
    positions: list[Position]
    members: list[Member]
    drafts: list[Draft]
    names: dict[int, str]
    rec: Recommendation | None

    def name(self, member_id: int | None) -> str:
        return self.names.get(member_id, "—") if member_id is not None else "—"

    def position_name(self, position_id: int | None) -> str:
        return next((p.name for p in self.positions if p.pk == position_id), "—")

    def draft_ref(self, draft: Draft) -> dict[str, Any]:
        return {
            "id": draft.pk,
            "kind": draft.kind,
            "position": self.position_name(draft.position_id),
            "author": self.name(draft.author_id),
            "text": draft.text,
        }


def _section_room(ctx: RecordContext) -> dict[str, Any]:
    room = ctx.room
    return {
        "title": room.title,
        "code": room.code,
        "phase": room.phase,
        "anonymous": room.anonymous,
        "rounds": room.round,
        "closed_at": room.closed_at.isoformat() if room.closed_at else None,
        "unassigned": []
        if room.is_solo
        else [ctx.name(m.pk) for m in ctx.members if m.position_id is None],
    }


def _section_scenario(ctx: RecordContext) -> dict[str, Any]:
    scenario = ctx.room.scenario
    return {
        "title": scenario.title,
        "question": scenario.question,
        "revisit_months": scenario.revisit_months,
    }


def _section_positions(ctx: RecordContext) -> list[dict[str, Any]]:
    comments: dict[int, list[dict[str, Any]]] = {}
    for c in Comment.objects.filter(room=ctx.room).order_by("created_at", "id"):
        comments.setdefault(c.draft_id, []).append(
            {"kind": c.kind, "text": c.text, "author": ctx.name(c.author_id)}
        )
    marks: dict[int, int] = {}
    for draft_id in StrongestMark.objects.filter(room=ctx.room).values_list("draft_id", flat=True):
        marks[draft_id] = marks.get(draft_id, 0) + 1
    votes = _case_votes(ctx.room)
    result = []
    for position in ctx.positions:
        rounds = []
        for round_number in range(1, ctx.room.round + 1):
            drafts = [
                d for d in ctx.drafts if d.position_id == position.pk and d.round == round_number
            ]
            selected, decided = case_selection(room=ctx.room, drafts=drafts, votes=votes)

            def entry(d: Draft, selected: set[int] = selected) -> dict[str, Any]:
                return {
                    "id": d.pk,
                    "slot": d.slot,
                    "text": d.text,
                    "author": ctx.name(d.author_id),
                    "selected": d.pk in selected,
                    "strongest_marks": marks.get(d.pk, 0),
                    "needs_source": d.needs_source,
                    "hidden": d.hidden,
                    "comments": comments.get(d.pk, []),
                    # The evidence cards the draft cites, by title (card order).
                    "cited_cards": [card.title for card in d.citations.all()],
                }

            shown = [d for d in drafts if d.text.strip()]
            rounds.append(
                {
                    "round": round_number,
                    "decided_by": decided,
                    "arguments": [entry(d) for d in shown if d.kind == DraftKind.ARGUMENT],
                    "risks": [entry(d) for d in shown if d.kind == DraftKind.RISK],
                }
            )
        result.append(
            {
                "id": position.pk,
                "key": position.key,
                "name": position.name,
                # A solo room's learner argued every position.
                "team": [
                    ctx.name(m.pk)
                    for m in ctx.members
                    if ctx.room.is_solo or m.position_id == position.pk
                ],
                "rounds": rounds,
            }
        )
    return result


def _section_vote(ctx: RecordContext) -> dict[str, Any] | None:
    if ctx.room.is_solo:  # a solo learner holds no committee vote
        return None
    if not vote_is_closed(room=ctx.room):
        return {"closed": False}
    results = vote_results(room=ctx.room)
    return {
        "closed": True,
        "total": results["total"],
        "counts": [
            {"position": ctx.position_name(c["position_id"]), "count": c["count"]}
            for c in results["counts"]
        ],
        "leaders": [ctx.position_name(p) for p in results["leaders"]],
        "tie": results["tie"],
        "reasons": [
            {
                "voter": ctx.name(r["member_id"]),
                "position": ctx.position_name(r["position_id"]),
                "reason": r["reason"],
            }
            for r in results["reasons"]
        ],
    }


def _section_recommendation(ctx: RecordContext) -> dict[str, Any] | None:
    rec = ctx.rec
    if rec is None:
        return None
    visible = {d.pk: d for d in ctx.drafts}
    cited = set(rec.citations.values_list("pk", flat=True))
    # In the record's order (position, kind, slot), whatever order they were picked in.
    citations = [ctx.draft_ref(d) for d in ctx.drafts if d.pk in cited]
    risk_draft = visible.get(rec.risk_draft_id) if rec.risk_draft_id else None
    chairs = [ctx.name(m.pk) for m in ctx.members if m.is_chair]
    return {
        "decision": {"id": rec.decision_id, "name": ctx.position_name(rec.decision_id)}
        if rec.decision_id
        else None,
        "rationale": rec.rationale,
        "citations": citations,
        "risk": {
            "draft": ctx.draft_ref(risk_draft) if risk_draft else None,
            "text": rec.risk_text,
        },
        "revisit_condition": rec.revisit_condition,
        "version": rec.version,
        "chairs": chairs,
    }


def _section_signoffs(ctx: RecordContext) -> list[dict[str, Any]]:
    return [
        {
            "member": ctx.name(s.member_id),
            "stance": s.stance,
            "text": s.text,
            "rec_version": s.rec_version,
        }
        for s in Signoff.objects.filter(room=ctx.room)
    ]


def _section_research(ctx: RecordContext) -> dict[str, Any] | None:
    """The research board: the notes (oldest release first), the timeline by month and
    approach, the members' judgements of the trend and their tally. None when the room wrote
    no note and no judgement."""
    notes = list(ResearchNote.objects.filter(room=ctx.room))
    judgements = list(
        TrendJudgement.objects.filter(room=ctx.room, member__removed_at__isnull=True).order_by(
            "member__joined_at", "pk"
        )
    )
    if not notes and not judgements:
        return None
    approaches = {key: str(label) for key, label in ReleaseApproach.choices}
    trends = {key: str(label) for key, label in Trend.choices}
    return {
        "approaches": [{"key": key, "label": label} for key, label in approaches.items()],
        "notes": [
            {
                "organisation": n.organisation,
                "year": n.year,
                "month": n.month,
                "when": f"{MONTH_ABBR[n.month - 1]} {n.year}",
                "approach": n.approach,
                "approach_label": approaches.get(n.approach, n.approach),
                "summary": n.summary,
                "source_url": n.source_url,
                "author": "Facilitator" if n.author_id is None else ctx.name(n.author_id),
            }
            for n in sorted(notes, key=lambda n: (n.year, n.month, n.organisation.lower(), n.pk))
        ],
        "timeline": [
            {
                "year": row["year"],
                "month": row["month"],
                "label": row["label"],
                "counts": [row["approaches"][key] for key in approaches],
            }
            for row in research_timeline(notes)
        ],
        "tally": {
            "counts": [
                {
                    "trend": key,
                    "label": label,
                    "count": sum(1 for j in judgements if j.trend == key),
                }
                for key, label in trends.items()
            ],
            "total": len(judgements),
        },
        "judgements": [
            {
                "member": ctx.name(j.member_id),
                "trend": j.trend,
                "trend_label": trends.get(j.trend, j.trend),
                "reason": j.reason,
            }
            for j in judgements
        ],
    }


def _section_warmup(ctx: RecordContext) -> dict[str, Any] | None:
    """The warm-up check's results: for the facilitators, and for a solo room's learner; never
    in the public record (the share link). None when nobody tried it."""
    if not (ctx.audience == "facilitator" or (ctx.room.is_solo and ctx.audience == "member")):
        return None
    summary = warmup_summary(room=ctx.room)
    if not summary["members"]:
        return None
    return {
        "items": [
            {"text": item["text"], "right": item["right"], "of": item["of"]}
            for item in summary["items"]
        ],
        "members": [
            {
                "member": ctx.name(row["member_id"]),
                "latest": row["latest"],
                "best": row["best"],
                "total": row["total"],
                "tries": row["tries"],
            }
            for row in summary["members"]
        ],
    }


# The record's sections, in order. A new section (e.g. research notes) is one entry here, one
# renderer in debate/exports.py (MARKDOWN_SECTIONS) and one partial in templates/debate/record/.
RECORD_SECTIONS: list[tuple[str, Any]] = [
    ("room", _section_room),
    ("scenario", _section_scenario),
    ("positions", _section_positions),
    ("vote", _section_vote),
    ("recommendation", _section_recommendation),
    ("signoffs", _section_signoffs),
    ("research", _section_research),
    ("warmup", _section_warmup),
]


def record_data(*, room: Room, audience: str, viewer: Viewer | None = None) -> dict[str, Any]:
    """The room's record as plain JSON data (docs/record-json.md), for one audience. Finalizing
    stores it (Recommendation.frozen_record); the exports render it."""
    assert audience in ("facilitator", "public", "member")
    members = list(room.members.all())
    if audience == "facilitator":
        names = {m.pk: m.display_name for m in members}
    elif audience == "public":
        names = {m.pk: m.code_name if room.anonymous else m.display_name for m in members}
    else:
        assert viewer is not None
        names = {m.pk: m.display_name if viewer.sees_real_name(m) else m.code_name for m in members}
    drafts = (
        Draft.objects.filter(room=room)
        .prefetch_related("citations")
        .order_by("round", "position__order", "kind", "slot", "author__joined_at", "id")
    )
    if audience != "facilitator":
        own = viewer.member.pk if viewer is not None and viewer.member is not None else None
        drafts = drafts.filter(Q(hidden=False) | Q(author_id=own))
    ctx = RecordContext(
        room=room,
        audience=audience,
        positions=list(room.scenario.positions.all()),
        members=members,
        drafts=list(drafts),
        names=names,
        rec=Recommendation.objects.filter(room=room).first(),
    )
    data: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "version": RECORD_VERSION,
        "audience": audience,
        "generated_at": timezone.now().isoformat(),
        "finalized_at": ctx.rec.finalized_at.isoformat()
        if ctx.rec and ctx.rec.finalized_at
        else None,
    }
    for key, build in RECORD_SECTIONS:
        data[key] = build(ctx)
    return data


def record_for(*, viewer: Viewer | None, room: Room) -> dict[str, Any]:
    """The record a viewer (None: the share link) gets: the frozen one once finalized, else
    built now."""
    rec = Recommendation.objects.filter(room=room).first()
    if viewer is None:
        audience = "public"
    elif viewer.is_facilitator:
        audience = "facilitator"
    else:
        audience = "member"
    if rec is not None and rec.frozen_record:
        frozen = rec.frozen_record
        if audience == "member":
            assert viewer is not None and viewer.member is not None
            own = frozen.get("members", {}).get(str(viewer.member.pk))
            if own is not None:
                return own
            if room.anonymous:
                return with_own_name(frozen["public"], viewer.member)
            return frozen["public"]
        return frozen[audience]
    return record_data(room=room, audience=audience, viewer=viewer)


# The fields of the record that hold a member's name (and never anything they typed).
RECORD_NAME_KEYS = {"author", "member", "voter"}
RECORD_NAME_LISTS = {"team", "chairs", "unassigned"}


def with_own_name(data: Any, member: Member) -> Any:
    """The public record of an anonymous room as `member` may read it: their own code name
    replaced by their real name in the name fields only (code names are unique in a room)."""
    code, real = member.code_name, member.display_name

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in RECORD_NAME_KEYS and item == code:
                    out[key] = real
                elif key in RECORD_NAME_LISTS and isinstance(item, list):
                    out[key] = [real if name == code else name for name in item]
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(data) if code else data

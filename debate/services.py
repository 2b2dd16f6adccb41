"""Every write in the debate app. Plain functions, keyword-only arguments, one transaction each.

Each service checks first (existence inside the room, role, phase, version), then changes data,
then emits its event (delivered after commit by debate.events). Errors are debate.errors types.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, OuterRef, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from classroom import selectors as classroom_selectors
from classroom.codes import join_code_generate, join_code_normalize
from classroom.models import ClassGroup, Student

from . import events, hotpath, selectors
from .errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from .events import Audience
from .models import (
    PHASE_ORDER,
    AssignmentMethod,
    CaseVote,
    Comment,
    CommentKind,
    Draft,
    DraftKind,
    EvidenceCard,
    Feedback,
    Member,
    Phase,
    Position,
    Recommendation,
    Room,
    Scenario,
    Signoff,
    SignoffStance,
    StrongestMark,
    Vote,
    VoteState,
    WarmupAttempt,
    draft_cited_ids,
    latest_draft_seq,
    split_ids,
)

User = AbstractBaseUser | AnonymousUser

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
BUILTIN_SCENARIO_FILE = SCENARIO_DIR / "model-release-committee.json"
DISPLAY_NAME_MAX = 40
CLIENT_ID_MAX = 64


# --- helpers --------------------------------------------------------------------------------


def room_lock(*, room_id: int) -> Room:
    """The room row, locked until the end of the transaction (serialises a room's writes, so
    sequence numbers follow commit order). Only the room's row: `of=("self",)` keeps the joined
    scenario row unlocked, since every room of a scenario (all rooms on the built-in one) would
    otherwise queue on that one row, and saves of different rooms could not overlap."""
    try:
        return (
            Room.objects.select_for_update(of=("self",)).select_related("scenario").get(pk=room_id)
        )
    except Room.DoesNotExist:
        raise NotFound(_("This room does not exist.")) from None


def _require_facilitator(room: Room, user: User) -> None:
    if not selectors.room_is_facilitator(room=room, user=user):
        raise Forbidden(_("Only the room's facilitator can do that."))


def _clean_text(value: Any, *, field: str, max_chars: int, required: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(_("%(field)s must be text.") % {"field": field}, field=field)
    text = value.replace("\r\n", "\n").replace("\x00", "")
    if len(text) > max_chars:
        raise Invalid(
            _("%(field)s is too long: %(count)d characters, the limit is %(limit)d.")
            % {"field": field, "count": len(text), "limit": max_chars},
            code="too_long",
            field=field,
            limit=max_chars,
        )
    if required and not text.strip():
        raise Invalid(_("%(field)s is required.") % {"field": field}, code="required", field=field)
    return text


CAP_MAX = 100


def _check_cap(choice_cap: Any) -> None:
    if choice_cap is not None and not (_is_int(choice_cap) and 1 <= choice_cap <= CAP_MAX):
        raise Invalid(
            _("The cap per position must be a number from 1 to %(max)d.") % {"max": CAP_MAX},
            field="choice_cap",
        )


# The databases' integer columns are 64-bit: a larger number cannot be any row's id (and SQLite
# refuses to bind it at all, an OverflowError instead of "not found").
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _is_int(value: Any) -> bool:
    """A JSON number that is a whole number in the databases' range (JSON true/false are not
    numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and _INT_MIN <= value <= _INT_MAX


def _clean_client_id(client_id: Any) -> str:
    if not isinstance(client_id, str) or not (1 <= len(client_id) <= CLIENT_ID_MAX):
        raise Invalid(_("Every change needs a client id of 1 to 64 characters."), field="client_id")
    return client_id


# --- scenarios ------------------------------------------------------------------------------


def scenario_install(*, data: dict[str, Any], builtin: bool = False) -> Scenario:
    """Create or update a scenario and its positions from a dict (see debate/scenarios/*.json)."""
    with transaction.atomic():
        return scenario_install_with(
            Scenario, Position, data=data, builtin=builtin, card_model=EvidenceCard
        )


def scenario_install_with(
    scenario_model: Any,
    position_model: Any,
    *,
    data: dict[str, Any],
    builtin: bool,
    card_model: Any = None,
) -> Any:
    """The installer proper, taking the model classes so that the data migration can pass its
    historical models. Evidence cards are installed when `card_model` is given (migrations
    older than 0006 have no cards)."""
    defaults = {
        "title": data["title"],
        "question": data["question"],
        "briefing": data["briefing"],
        "argument_slots": data.get("argument_slots", 3),
        "risk_slots": data.get("risk_slots", 1),
        "revisit_months": data.get("revisit_months", 6),
        "recommendation_guidance": data.get("recommendation_guidance", ""),
        "revisit_guidance": data.get("revisit_guidance", ""),
        "is_builtin": builtin,
    }
    # Historical models of migrations before 0005 have no warm-up field.
    if any(f.name == "warmup" for f in scenario_model._meta.get_fields()):
        defaults["warmup"] = data.get("warmup", {})
    scenario, _created = scenario_model.objects.update_or_create(
        slug=data["slug"], defaults=defaults
    )
    for order, pos in enumerate(data["positions"]):
        position_model.objects.update_or_create(
            scenario=scenario,
            key=pos["key"],
            defaults={
                "name": pos["name"],
                "short_name": pos["short_name"],
                "summary": pos["summary"],
                "order": order,
            },
        )
    if card_model is not None:
        for order, card in enumerate(data.get("cards", [])):
            card_model.objects.update_or_create(
                scenario=scenario,
                key=card["key"],
                defaults={
                    "title": card["title"],
                    "body": card["body"],
                    "source_note": card.get("source_note", ""),
                    "order": order,
                },
            )
    return scenario


def builtin_scenario_data() -> dict[str, Any]:
    return json.loads(BUILTIN_SCENARIO_FILE.read_text(encoding="utf-8"))


def scenario_install_builtin() -> Scenario:
    return scenario_install(data=builtin_scenario_data(), builtin=True)


# --- rooms and members ----------------------------------------------------------------------


def room_create(
    *,
    owner: AbstractBaseUser,
    scenario: Scenario,
    title: str = "",
    anonymous: bool = False,
    assignment_method: str = AssignmentMethod.BALANCED,
    choice_cap: int | None = None,
    classgroup: ClassGroup | None = None,
) -> Room:
    title = (title or "").strip()[:120] or scenario.title
    if not selectors.scenario_usable_by(scenario=scenario, user=owner):
        raise NotFound(_("No such scenario."), field="scenario")
    if assignment_method not in AssignmentMethod.values:
        raise Invalid(_("Unknown assignment method."), field="assignment_method")
    _check_cap(choice_cap)
    if classgroup is not None and not classroom_selectors.is_class_facilitator(
        classgroup_id=classgroup.pk, user=owner
    ):
        raise NotFound(_("This class does not exist."), field="classgroup")
    for _attempt in range(20):
        try:
            with transaction.atomic():
                return Room.objects.create(
                    scenario=scenario,
                    owner=owner,
                    title=title,
                    code=join_code_generate(),
                    anonymous=anonymous,
                    assignment_method=assignment_method,
                    choice_cap=choice_cap if assignment_method == AssignmentMethod.CHOICE else None,
                    classgroup=classgroup,
                )
        except IntegrityError:
            continue  # the code is taken by another open room; draw again
    raise Conflict(_("Could not find a free join code; please try again."))


def member_join(*, code: str, display_name: str, student: Student | None = None) -> Member:
    """Join the open room with this code. Late joiners (after assignment) join the smallest team.
    A student of the room's class joins under their roster name, and only once: joining again
    returns the member they already are (on any device)."""
    if student is not None:
        display_name = student.display_name
    name = " ".join((display_name or "").split())
    if not name:
        raise Invalid(_("Please enter a display name."), code="required", field="display_name")
    if len(name) > DISPLAY_NAME_MAX:
        raise Invalid(
            _("Display names can be at most %(limit)d characters.") % {"limit": DISPLAY_NAME_MAX},
            code="too_long",
            field="display_name",
        )
    normalized = join_code_normalize(code or "")
    room_id = (
        Room.objects.exclude(phase=Phase.CLOSED)
        .filter(code=normalized, is_solo=False)
        .values_list("pk", flat=True)
        .first()
    )
    if room_id is None:
        raise NotFound(
            _("No open room has the code %(code)s. Check it with your facilitator.")
            % {"code": normalized or "…"},
            field="code",
        )
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if room.phase == Phase.CLOSED:
            raise WrongPhase(_("This room is closed."))
        if student is not None:
            if student.classgroup_id != room.classgroup_id:
                raise Forbidden(_("This room belongs to another class."), code="other_class")
            existing = room.members.filter(student=student).first()
            if existing is not None:
                return existing
        # Compared in Python: SQLite's LIKE/lower() fold ASCII letters only ("Élodie"/"élodie").
        taken = {n.lower() for n in room.members.values_list("display_name", flat=True)}
        if name.lower() in taken:
            raise Conflict(
                _("Someone in this room is already called “%(name)s”. Please choose another name.")
                % {"name": name},
                code="name_taken",
                field="display_name",
            )
        position = None
        automatic = room.assignment_method in (AssignmentMethod.BALANCED, AssignmentMethod.RANDOM)
        already_assigned = room.members.filter(position__isnull=False).exists()
        if automatic and (room.phase != Phase.LOBBY or already_assigned):
            position = _smallest_team(room)
        member = Member.objects.create(
            room=room,
            display_name=name,
            position=position,
            code_name=_code_name_for(room),
            student=student,
        )
        payload, facilitator_payload = selectors.member_event_payloads(member)
        events.emit(
            room,
            events.MEMBER_JOINED,
            payload,
            audience=Audience.room(),
            facilitator_payload=facilitator_payload,
        )
    return member


CODE_NAMES = [
    "Otter", "Heron", "Lynx", "Falcon", "Badger", "Marten", "Ibis", "Puffin", "Gecko", "Orca",
    "Bison", "Crane", "Koala", "Raven", "Tapir", "Wombat", "Yak", "Egret", "Fennec", "Jackal",
    "Kestrel", "Lemur", "Manatee", "Narwhal", "Ocelot", "Pelican", "Quokka", "Robin", "Stoat",
    "Toucan", "Urchin", "Vole", "Walrus", "Zebu", "Alpaca", "Beaver", "Cobra", "Dingo", "Eland",
    "Ferret",
]  # fmt: skip


def _code_name_for(room: Room) -> str:
    """A code name not yet used in the room, in a random order."""
    used = set(room.members.values_list("code_name", flat=True))
    names = CODE_NAMES[:]
    random.shuffle(names)
    for round_number in range(1, 100):
        for name in names:
            candidate = name if round_number == 1 else f"{name} {round_number}"
            if candidate not in used:
                return candidate
    return f"Member {len(used) + 1}"


def _team_sizes(room: Room) -> dict[int, int]:
    sizes = {p.pk: 0 for p in room.scenario.positions.all()}
    counted = (
        room.members.filter(position__isnull=False, removed_at__isnull=True)
        .values("position")
        .annotate(n=Count("id"))
    )
    for row in counted:
        sizes[row["position"]] = row["n"]
    return sizes


def _smallest_team(room: Room) -> Position:
    sizes = _team_sizes(room)
    positions = list(room.scenario.positions.all())
    return min(positions, key=lambda p: (sizes[p.pk], p.order, p.pk))


def positions_assign(*, room_id: int, actor: User, seed: int | None = None) -> list[Member]:
    """Balanced assignment of every unassigned member.

    Rule (docs/architecture.md): unassigned members are taken in order of joining (the "random"
    method shuffles them first), then each in turn joins the team with the fewest members (ties:
    the scenario's position order). Starting from balanced teams, sizes never differ by more than
    one. Members already on a team stay where they are; removed members are left out.
    """
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_facilitator(room, actor)
        if room.phase == Phase.CLOSED:
            raise WrongPhase(_("This room is closed."))
        return _assign_unassigned(room, seed=seed)


def _assign_unassigned(room: Room, *, seed: int | None = None) -> list[Member]:
    unassigned = list(room.members.filter(position__isnull=True, removed_at__isnull=True))
    if room.assignment_method == AssignmentMethod.RANDOM:
        random.Random(seed).shuffle(unassigned)
    sizes = _team_sizes(room)
    positions = list(room.scenario.positions.all())
    for member in unassigned:
        team = min(positions, key=lambda p: (sizes[p.pk], p.order, p.pk))
        sizes[team.pk] += 1
        _place(room, member, team)
    return unassigned


def _place(room: Room, member: Member, position: Position) -> None:
    """Put `member` on `position`'s team and tell the room (their socket follows the team)."""
    member.position = position
    member.save(update_fields=["position"])
    events.emit(
        room,
        events.MEMBER_MOVED,
        {"member_id": member.pk, "position_id": position.pk},
        audience=Audience.room(),
    )


def member_move(*, room_id: int, actor: User, member_id: Any, position_id: Any) -> Member:
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_facilitator(room, actor)
        if room.phase == Phase.CLOSED:
            raise WrongPhase(_("This room is closed."))
        member = _member_in_room(room, member_id)
        position = _position_in_room(room, position_id)
        if member.position_id != position.pk:
            _place(room, member, position)
    return member


def _member_in_room(room: Room, member_id: Any) -> Member:
    if not _is_int(member_id):
        raise Invalid(_("member_id must be a number."), field="member_id")
    try:
        return room.members.get(pk=member_id)
    except Member.DoesNotExist:
        raise NotFound(_("No such member in this room."), field="member_id") from None


def _position_in_room(room: Room, position_id: Any) -> Position:
    if not _is_int(position_id):
        raise Invalid(_("position_id must be a number."), field="position_id")
    try:
        return room.scenario.positions.get(pk=position_id)
    except Position.DoesNotExist:
        raise NotFound(_("No such position in this room."), field="position_id") from None


# --- presence -------------------------------------------------------------------------------


def member_connected(*, room_id: int, member_id: int) -> None:
    """Count an open socket. Live sockets refresh last_seen every PRESENCE_TOUCH_SECONDS / 2, so
    a count whose last_seen is older than the presence window belongs to sockets of a server that
    died without closing them: it restarts at one instead of growing for ever."""
    if member_counted_if_online(room_id=room_id, member_id=member_id):
        return
    now = timezone.now()
    stale = now - _presence_window()
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        updated = Member.objects.filter(pk=member_id, room=room).update(
            open_sockets=Case(
                When(Q(last_seen__isnull=True) | Q(last_seen__lt=stale), then=Value(1)),
                default=F("open_sockets") + 1,
            ),
            last_seen=now,
        )
        if updated:
            _emit_presence(room, member_id, online=True)


_COUNTED_SQL: list[str] = []


def member_counted_if_online(*, room_id: int, member_id: int) -> bool:
    """Count a socket of a member who is online already (another tab, or a reconnect after a
    server restart, whose old sockets were never recorded as closed): without the room lock and
    without an event, in one statement. The condition is checked on the locked member row, so a
    concurrent last disconnect makes it fail; False then, and member_connected's locked path
    announces the member again.
    A thousand pages reconnecting after a restart each make this call: it is plain SQL (the same
    on SQLite and PostgreSQL), without the ORM's cost of building the UPDATE each time
    (bench/RESULTS.md, eleventh round); the datetimes are adapted as the ORM adapts them."""
    if not _COUNTED_SQL:
        table = Member._meta.db_table  # every value below is a parameter
        _COUNTED_SQL.append(
            f"UPDATE {table} SET open_sockets = open_sockets + 1, last_seen = %s "  # noqa: S608
            "WHERE id = %s AND room_id = %s AND open_sockets > 0 AND last_seen >= %s"
        )
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNTED_SQL[0], [adapt(now), member_id, room_id, adapt(now - _presence_window())]
        )
        return cursor.rowcount > 0


def member_disconnected(*, room_id: int, member_id: int) -> None:
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        Member.objects.filter(pk=member_id, room=room, open_sockets__gt=0).update(
            open_sockets=F("open_sockets") - 1
        )
        still_open = (
            Member.objects.filter(pk=member_id, room=room)
            .values_list("open_sockets", flat=True)
            .first()
        )
        if still_open == 0:
            _emit_presence(room, member_id, online=False)


def members_touch(*, member_ids: list[int]) -> None:
    """Heartbeats from live sockets, gathered per process (debate/heartbeat.py): one write per
    500 members, no event."""
    now = timezone.now()
    for start in range(0, len(member_ids), 500):
        Member.objects.filter(pk__in=member_ids[start : start + 500]).update(last_seen=now)


def _presence_window() -> timedelta:
    return selectors.presence_window()


def _emit_presence(room: Room, member_id: int, *, online: bool) -> None:
    events.emit(
        room,
        events.MEMBER_PRESENCE,
        {"member_id": member_id, "online": online},
        audience=Audience.room(),
    )


# --- phases ---------------------------------------------------------------------------------


def phase_advance(*, room_id: int, actor: User, to_phase: Any) -> Room:
    """Move the room to the next phase. `to_phase` must be the phase right after the current one,
    so a double click or two facilitators acting at once cannot skip a phase."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_facilitator(room, actor)
        current = PHASE_ORDER.index(room.phase)
        if current == len(PHASE_ORDER) - 1:
            raise WrongPhase(_("This room is closed."))
        expected = PHASE_ORDER[current + 1]
        if to_phase != expected:
            raise WrongPhase(
                _("The room is in %(phase)s; the next phase is %(next)s.")
                % {"phase": Phase(room.phase).label, "next": expected.label},
                phase=room.phase,
            )
        if expected == Phase.DRAFTING and room.assignment_method != AssignmentMethod.MANUAL:
            _assign_unassigned(room)
        rec = None
        if expected == Phase.CLOSED:
            rec = Recommendation.objects.filter(room=room).first()
            _require_complete(rec)
            room.closed_at = timezone.now()
        if expected == Phase.RECOMMENDATION and not _vote_closed(room):
            # The vote ends with the review; clients see the results in the snapshot that
            # phase.changed makes them fetch.
            VoteState.objects.create(room=room, closed_at=timezone.now())
        room.phase = expected
        # A phase's timer ends with the phase.
        room.timer_ends_at = None
        room.timer_remaining = None
        room.timer_auto_advance = False
        room.save(
            update_fields=[
                "phase",
                "closed_at",
                "timer_ends_at",
                "timer_remaining",
                "timer_auto_advance",
            ]
        )
        if rec is not None:
            _freeze(room, rec)  # closing finalizes the record (recommendation_finalize)
        events.emit(room, events.PHASE_CHANGED, {"phase": room.phase}, audience=Audience.room())
    return room


# --- drafts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveResult:
    """What an acknowledgement carries: the object's id, its version, and whether this was a
    resend of a change already applied (nothing changed)."""

    id: int
    version: int
    duplicate: bool
    seq: int | None


def draft_save(
    *,
    room_id: int,
    actor: User,
    member_id: int | None,
    client_id: Any,
    text: Any,
    base_version: Any,
    kind: Any = None,
    slot: Any = None,
    draft_id: Any = None,
    position_id: Any = None,
    citations: Any = None,
) -> SaveResult:
    """Save one draft slot.

    A member writes their own slot for their current position, addressed by (kind, slot). A
    facilitator edits an existing draft by its id. `base_version` is the version the client edited
    (0 for a new slot): if the draft has moved on, the write is refused with the current text.
    A resend of the change that produced the current version is acknowledged without a change.
    A member may name the `position_id` they wrote for: if they have moved team since, the write is
    refused (code position_changed) instead of landing in the new team's slot.
    `citations`, when given, is the complete list of evidence card ids the draft cites (cards of
    the room's scenario only); None leaves the citations as they are.
    """
    client_id = _clean_client_id(client_id)
    citation_ids = _clean_card_ids(citations)
    text = _clean_text(text, field="text", max_chars=settings.QUORUM["MAX_DRAFT_CHARS"])
    if not (_is_int(base_version) and base_version >= 0):
        raise Invalid(_("base_version must be a whole number."), field="base_version")
    if member_id is not None:
        # Typing (an edit, or a slot's first words without citations), with PostgreSQL: one
        # round trip when every check below would pass; otherwise (None) this path decides.
        saved = hotpath.typing_save(
            room_id=room_id,
            member_id=member_id,
            client_id=client_id,
            text=text,
            base_version=base_version,
            kind=kind,
            slot=slot,
            position_id=position_id,
            citations=citation_ids,
        )
        if saved is not None:
            return saved
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if room.phase != Phase.DRAFTING:
            raise WrongPhase(
                _("Drafts can only be written during the drafting phase."), phase=room.phase
            )
        if room.editing_locked:
            raise WrongPhase(
                _("The facilitator has paused all editing for the moment."), code="locked"
            )
        if member_id is not None:
            draft = _own_draft(room, member_id, kind, slot, position_id)
            member = draft.author
            if draft.hidden:
                raise Forbidden(
                    _("The facilitator has hidden this draft; it cannot be changed now."),
                    code="hidden",
                )
        else:
            _require_facilitator(room, actor)
            draft = _draft_in_room(room, draft_id)
            member = None
        if draft.pk and draft.last_client_id == client_id:
            return SaveResult(id=draft.pk, version=draft.version, duplicate=True, seq=None)
        current_cited = _cited_ids(draft)
        # Cards are looked up (inside the room's scenario) only when the list changes: a client
        # sends its citations with every save, and most saves are typing.
        changed = citation_ids is not None and citation_ids != current_cited
        cards = _cards_in_room(room, citation_ids) if changed else None
        current_version = draft.version if draft.pk else 0
        if base_version != current_version:
            raise Conflict(
                _("This text was changed elsewhere since you started editing it."),
                current={
                    "id": draft.pk,
                    "text": draft.text if draft.pk else "",
                    "version": current_version,
                },
            )
        same_citations = cards is None
        if draft.pk and draft.text == text and same_citations:
            # Nothing to change: acknowledge at the current version without a write.
            return SaveResult(id=draft.pk, version=draft.version, duplicate=True, seq=None)
        draft.text = text
        draft.last_client_id = client_id
        draft.last_editor = actor if member is None and actor.is_authenticated else None
        # The event's sequence number is written with the text: one row write per save.
        draft.seq = events.take_seq(room)
        if draft.pk:
            draft.version += 1
            draft.save(
                update_fields=[
                    "text",
                    "version",
                    "last_client_id",
                    "last_editor",
                    "seq",
                    "updated_at",
                ]
            )
        else:
            draft.version = 1
            draft.save()
        if cards is not None and not same_citations:
            draft.citations.set(cards)
        # A hidden draft (edited by a facilitator) reaches its author and the facilitators only.
        # A solo room has one learner, who holds every position (on all their devices).
        audience = (
            Audience.member(draft.author_id) if draft.hidden else Audience.team(draft.position_id)
        )
        if room.is_solo:
            audience = Audience.room()
        seq = events.emit(
            room,
            events.DRAFT_UPDATED,
            {
                "draft": selectors.draft_payload(
                    draft, citations=current_cited if cards is None else [c.pk for c in cards]
                )
            },
            audience=audience,
            seq=draft.seq,
        )
    return SaveResult(id=draft.pk, version=draft.version, duplicate=False, seq=seq)


def _own_draft(room: Room, member_id: int, kind: Any, slot: Any, position_id: Any) -> Draft:
    draft = _own_draft_edit(room, member_id, kind, slot)
    if draft is not None:
        _check_acting(draft.author)
        _check_writing_for(draft.author, position_id)
        return draft
    member = _active_member(room, member_id)
    if room.is_solo:
        # The solo learner holds every position: the message names the one written for.
        writing_for = _position_in_room(room, position_id).pk
    elif member.position_id is None:
        raise WrongPhase(_("You have no position yet; wait for the facilitator to assign one."))
    else:
        writing_for = member.position_id
    if not room.is_solo:
        _check_writing_for(member, position_id)
    if kind not in DraftKind.values:
        raise Invalid(_("kind must be “argument” or “risk”."), field="kind")
    limit = room.scenario.argument_slots if kind == DraftKind.ARGUMENT else room.scenario.risk_slots
    if not (_is_int(slot) and 1 <= slot <= limit):
        raise Invalid(
            _("slot must be a number from 1 to %(limit)d.") % {"limit": limit}, field="slot"
        )
    draft = Draft.objects.filter(
        author=member, position_id=writing_for, round=room.round, kind=kind, slot=slot
    ).first()
    if draft is not None:
        draft.author = member  # already read: no second query for it
    else:
        draft = Draft(
            room=room,
            author=member,
            position_id=writing_for,
            round=room.round,
            kind=kind,
            slot=slot,
            version=0,
        )
    return draft


def _check_writing_for(member: Member, position_id: Any) -> None:
    if position_id is not None and position_id != member.position_id:
        raise Conflict(
            _("You have moved to another position; this text was not saved there."),
            code="position_changed",
            position_id=member.position_id,
        )


def _own_draft_edit(room: Room, member_id: Any, kind: Any, slot: Any) -> Draft | None:
    """The hot path's common case, typing in a slot already written: the member's draft for its
    current position, with its author, the cards it cites (`cited_joined`, read by _cited_ids)
    and the room's latest draft number, in one statement.
    None when that does not apply (a solo room, a new slot, a message to be refused): the caller
    then takes the general path, which reads the member and the draft separately and says what
    is wrong."""
    limit = room.scenario.argument_slots if kind == DraftKind.ARGUMENT else room.scenario.risk_slots
    if (
        room.is_solo
        or not _is_int(member_id)
        or kind not in DraftKind.values
        or not (_is_int(slot) and 1 <= slot <= limit)
    ):
        return None
    found = list(
        Draft.objects.select_related("author")
        .filter(
            author_id=member_id,
            author__room_id=room.pk,
            position_id=F("author__position_id"),
            round=room.round,
            kind=kind,
            slot=slot,
        )
        .annotate(
            room_latest_seq=latest_draft_seq(room.pk), cited_joined=draft_cited_ids(OuterRef("pk"))
        )
        .order_by()[:1]
    )
    if not found:
        return None
    # Read after the room's lock, so no other save of this room can write a number before this
    # transaction ends: Room.seq (and so events.take_seq) uses it without a statement of its own,
    # as it does the value annotated by RoomQuerySet.with_seq().
    room.__dict__["draft_seq"] = found[0].room_latest_seq or 0
    return found[0]


def _draft_in_room(room: Room, draft_id: Any) -> Draft:
    if not _is_int(draft_id):
        raise Invalid(_("draft_id must be a number."), field="draft_id")
    draft = Draft.objects.filter(pk=draft_id, room=room).select_related("author").first()
    if draft is None:
        raise NotFound(_("No such draft in this room."), field="draft_id")
    return draft


# --- recommendation -------------------------------------------------------------------------


def recommendation_save(
    *,
    room_id: int,
    actor: User,
    client_id: Any,
    decision_id: Any,
    rationale: Any,
    revisit_condition: Any,
    base_version: Any,
    member_id: int | None = None,
) -> SaveResult:
    """The chair records the committee's recommendation. Partial saves are allowed while
    writing; closing the room requires all three parts (phase_advance). The chair is a
    facilitator, or in a solo room its learner (`member_id`)."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_chair(room, actor, member_id)
        if room.phase != Phase.RECOMMENDATION:
            raise WrongPhase(
                _("The recommendation is written in the recommendation phase."), phase=room.phase
            )
        client_id = _clean_client_id(client_id)
        limit = settings.QUORUM["MAX_RECOMMENDATION_CHARS"]
        rationale = _clean_text(rationale, field="rationale", max_chars=limit)
        revisit_condition = _clean_text(
            revisit_condition, field="revisit_condition", max_chars=limit
        )
        if not (_is_int(base_version) and base_version >= 0):
            raise Invalid(_("base_version must be a whole number."), field="base_version")
        decision = None if decision_id is None else _position_in_room(room, decision_id)
        rec, _created = Recommendation.objects.get_or_create(room=room)
        if rec.version and rec.last_client_id == client_id:
            return SaveResult(id=rec.pk, version=rec.version, duplicate=True, seq=None)
        if base_version != rec.version:
            raise Conflict(
                _("The recommendation was changed elsewhere since you started editing it."),
                current=selectors.recommendation_payload(rec),
            )
        rec.decision = decision
        rec.rationale = rationale
        rec.revisit_condition = revisit_condition
        rec.version += 1
        rec.last_client_id = client_id
        rec.updated_by = actor if actor.is_authenticated else None
        rec.save()
        seq = events.emit(
            room,
            events.RECOMMENDATION_UPDATED,
            {"recommendation": selectors.recommendation_payload(rec)},
            audience=Audience.room(),
        )
    return SaveResult(id=rec.pk, version=rec.version, duplicate=False, seq=seq)


# --- facilitator console: moderation, settings, timers, rounds -------------------------------


def _open_room_for_facilitator(room_id: int, actor: User) -> Room:
    room = room_lock(room_id=room_id)
    _require_facilitator(room, actor)
    if room.phase == Phase.CLOSED:
        raise WrongPhase(_("This room is closed."))
    return room


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(_("%(field)s must be true or false.") % {"field": field}, field=field)
    return value


def member_mute(*, room_id: int, actor: User, member_id: Any, muted: Any) -> Member:
    """A muted member reads but cannot write. The member and the facilitators are told."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        muted = _bool(muted, "muted")
        member = _member_in_room(room, member_id)
        if member.muted != muted:
            member.muted = muted
            member.save(update_fields=["muted"])
            events.emit(
                room,
                events.MEMBER_MUTED,
                {"member_id": member.pk, "muted": muted},
                audience=Audience.member(member.pk),
            )
    return member


def member_remove(*, room_id: int, actor: User, member_id: Any) -> Member:
    """Remove a member: their sockets are closed and their identity is refused until re-admitted.
    Their drafts stay in the record."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        member = _member_in_room(room, member_id)
        if member.removed_at is None:
            member.removed_at = timezone.now()
            member.open_sockets = 0
            member.save(update_fields=["removed_at", "open_sockets"])
            events.emit(
                room, events.MEMBER_REMOVED, {"member_id": member.pk}, audience=Audience.room()
            )
    return member


def member_readmit(*, room_id: int, actor: User, member_id: Any) -> Member:
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        member = _member_in_room(room, member_id)
        if member.removed_at is not None:
            member.removed_at = None
            member.save(update_fields=["removed_at"])
            payload, facilitator_payload = selectors.member_event_payloads(member)
            events.emit(
                room,
                events.MEMBER_READMITTED,
                payload,
                audience=Audience.room(),
                facilitator_payload=facilitator_payload,
            )
    return member


def draft_moderate(
    *, room_id: int, actor: User, draft_id: Any, hidden: Any = None, needs_source: Any = None
) -> Draft:
    """Hide or show a draft, or mark it as needing a source.

    The event goes to those who may read the draft at this phase (its team during drafting, the
    room afterwards). A hidden draft travels without its text; showing it again sends the text.
    """
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        draft = _draft_in_room(room, draft_id)
        fields = []
        if hidden is not None and _bool(hidden, "hidden") != draft.hidden:
            draft.hidden = hidden
            fields.append("hidden")
        if needs_source is not None and _bool(needs_source, "needs_source") != draft.needs_source:
            draft.needs_source = needs_source
            fields.append("needs_source")
        if not fields:
            return draft
        draft.save(update_fields=fields)
        audience = (
            Audience.room()
            if room.phase in selectors.PHASES_ALL_DRAFTS_VISIBLE
            else Audience.team(draft.position_id)
        )
        if draft.hidden:
            payload = {"draft": selectors.hidden_draft_payload(draft)}
            facilitator_payload = {"draft": selectors.draft_payload(draft)}
        else:
            payload = {"draft": selectors.draft_payload(draft)}
            facilitator_payload = None
        events.emit(
            room,
            events.DRAFT_MODERATED,
            payload,
            audience=audience,
            facilitator_payload=facilitator_payload,
        )
        if draft.hidden:
            # Its author keeps seeing it, marked hidden.
            events.emit(
                room,
                events.DRAFT_UPDATED,
                {"draft": selectors.draft_payload(draft)},
                audience=Audience.member(draft.author_id),
            )
    return draft


FEEDBACK_MAX = 500


def feedback_add(*, room_id: int, actor: User, draft_id: Any, text: Any) -> Feedback:
    """A facilitator's note on a draft, e.g. "too general: tie it to this model". Seen by the
    draft's author and team (and the facilitators)."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        draft = _draft_in_room(room, draft_id)
        text = _clean_text(text, field="text", max_chars=FEEDBACK_MAX, required=True).strip()
        feedback = Feedback.objects.create(
            draft=draft, author=actor if actor.is_authenticated else None, text=text
        )
        audience = (
            Audience.member(draft.author_id) if draft.hidden else Audience.team(draft.position_id)
        )
        events.emit(
            room,
            events.DRAFT_FEEDBACK,
            {"feedback": selectors.feedback_payload(feedback)},
            audience=audience,
        )
    return feedback


def _emit_settings(room: Room) -> None:
    events.emit(
        room,
        events.ROOM_SETTINGS,
        {"settings": selectors.room_settings_payload(room)},
        audience=Audience.room(),
    )


def editing_lock(*, room_id: int, actor: User, locked: Any) -> Room:
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        locked = _bool(locked, "locked")
        if room.editing_locked != locked:
            room.editing_locked = locked
            room.save(update_fields=["editing_locked"])
            _emit_settings(room)
    return room


ANNOUNCEMENT_MAX = 280


def announcement_set(*, room_id: int, actor: User, text: Any) -> Room:
    """A banner for the whole room; an empty text removes it."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        text = _clean_text(text, field="text", max_chars=ANNOUNCEMENT_MAX).strip()
        if room.announcement != text:
            room.announcement = text
            room.save(update_fields=["announcement"])
            _emit_settings(room)
    return room


TIMER_MAX_SECONDS = 4 * 60 * 60
TIMER_ACTIONS = {"start", "pause", "resume", "extend", "clear"}


def timer_control(
    *,
    room_id: int,
    actor: User,
    action: Any,
    seconds: Any = None,
    auto_advance: Any = None,
) -> Room:
    """Phase countdown kept by the server: clients show `ends_at` against the server time they
    were given, so a late joiner or a wrong laptop clock sees the right time left.

    start (seconds, auto_advance), pause, resume, extend (seconds), clear.
    """
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        if action not in TIMER_ACTIONS:
            raise Invalid(_("Unknown timer action."), field="action")
        now = timezone.now()
        if action in ("start", "extend") and not (
            _is_int(seconds) and 1 <= seconds <= TIMER_MAX_SECONDS
        ):
            raise Invalid(_("The time must be between 1 second and 4 hours."), field="seconds")
        if action == "start":
            room.timer_ends_at = now + timedelta(seconds=seconds)
            room.timer_remaining = None
            room.timer_auto_advance = (
                False if auto_advance is None else _bool(auto_advance, "auto_advance")
            )
        elif action == "pause":
            if room.timer_ends_at is None:
                raise Conflict(_("No timer is running."), code="no_timer")
            room.timer_remaining = max(room.timer_ends_at - now, timedelta(0))
            room.timer_ends_at = None
        elif action == "resume":
            if room.timer_remaining is None:
                raise Conflict(_("No timer is paused."), code="no_timer")
            room.timer_ends_at = now + room.timer_remaining
            room.timer_remaining = None
        elif action == "extend":
            if room.timer_ends_at is not None:
                room.timer_ends_at = max(room.timer_ends_at, now) + timedelta(seconds=seconds)
            elif room.timer_remaining is not None:
                room.timer_remaining += timedelta(seconds=seconds)
            else:
                raise Conflict(_("No timer to extend."), code="no_timer")
        else:
            room.timer_ends_at = None
            room.timer_remaining = None
            room.timer_auto_advance = False
        room.save(update_fields=["timer_ends_at", "timer_remaining", "timer_auto_advance"])
        _emit_settings(room)
    return room


def timer_expired(*, room_id: int, phase: Any) -> bool:
    """Any participant's page reports that the countdown reached zero. The server checks the
    clock itself; with auto-advance on, the room moves to the next phase once (the phase named
    must still be current, so many reports advance it once). Returns whether it advanced."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if (
            room.phase != phase
            or room.phase == Phase.CLOSED
            or room.timer_ends_at is None
            or room.timer_ends_at > timezone.now()
        ):
            return False
        if not room.timer_auto_advance or room.phase == Phase.RECOMMENDATION:
            # The recommendation phase never closes by itself: closing needs the chair.
            room.timer_ends_at = None
            room.timer_remaining = timedelta(0)
            room.save(update_fields=["timer_ends_at", "timer_remaining"])
            _emit_settings(room)
            return False
        # Still inside the transaction that holds the room lock: reports racing this one wait,
        # then find the phase already changed and do nothing.
        phase_advance(
            room_id=room_id,
            actor=room.owner,
            to_phase=PHASE_ORDER[PHASE_ORDER.index(room.phase) + 1],
        )
    return True


def round_switch(*, room_id: int, actor: User) -> Room:
    """Switch sides (structured academic controversy): every member moves to the next position
    in the scenario's order, a new round of drafting starts, and the earlier round's drafts stay
    in the record."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        if room.phase != Phase.REVIEW:
            raise WrongPhase(
                _("Sides are switched after the review, before the recommendation."),
                phase=room.phase,
            )
        positions = list(room.scenario.positions.all())
        following = {p.pk: positions[(i + 1) % len(positions)] for i, p in enumerate(positions)}
        for member in room.members.filter(position__isnull=False, removed_at__isnull=True):
            _place(room, member, following[member.position_id])
        room.round += 1
        room.phase = Phase.DRAFTING
        room.timer_ends_at = None
        room.timer_remaining = None
        room.timer_auto_advance = False
        room.save(
            update_fields=[
                "round",
                "phase",
                "timer_ends_at",
                "timer_remaining",
                "timer_auto_advance",
            ]
        )
        _emit_settings(room)
        events.emit(room, events.PHASE_CHANGED, {"phase": room.phase}, audience=Audience.room())
    return room


def position_choose(*, room_id: int, member_id: int | None, position_id: Any) -> Member:
    """In rooms where members choose, a member picks a position, up to the cap per position."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if member_id is None:
            raise Forbidden(_("Only members choose a position."))
        if room.assignment_method != AssignmentMethod.CHOICE:
            raise Forbidden(_("In this room the facilitator assigns positions."), code="not_choice")
        if room.phase not in (Phase.LOBBY, Phase.DRAFTING):
            raise WrongPhase(_("Positions are chosen before the review."), phase=room.phase)
        member = Member.objects.filter(pk=member_id, room=room, removed_at__isnull=True).first()
        if member is None:
            raise Forbidden(_("You are not a member of this room."))
        if member.muted:
            raise Forbidden(_("The facilitator has muted you for now."), code="muted")
        position = _position_in_room(room, position_id)
        if member.position_id == position.pk:
            return member
        if room.phase == Phase.DRAFTING and member.position_id is not None:
            raise WrongPhase(
                _("Drafting has started: ask the facilitator to move you."), phase=room.phase
            )
        cap = room.choice_cap
        if cap is not None and _team_sizes(room)[position.pk] >= cap:
            raise Conflict(
                _("%(name)s is full (%(cap)d members). Choose another position.")
                % {"name": position.name, "cap": cap},
                code="position_full",
            )
        _place(room, member, position)
    return member


def room_configure(
    *, room_id: int, actor: User, assignment_method: Any, choice_cap: Any = None
) -> Room:
    """Change how positions are assigned (before drafting starts)."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        if room.phase != Phase.LOBBY:
            raise WrongPhase(_("The assignment method is chosen in the lobby."), phase=room.phase)
        if assignment_method not in AssignmentMethod.values:
            raise Invalid(_("Unknown assignment method."), field="assignment_method")
        _check_cap(choice_cap)
        room.assignment_method = assignment_method
        room.choice_cap = choice_cap if assignment_method == AssignmentMethod.CHOICE else None
        room.save(update_fields=["assignment_method", "choice_cap"])
        _emit_settings(room)
    return room


def cofacilitator_add(*, room_id: int, actor: User, username: Any) -> Room:
    """Give another facilitator account the same powers over this room."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        if not isinstance(username, str) or not username.strip():
            raise Invalid(_("Give the facilitator's username."), field="username")
        users = get_user_model().objects
        user = users.filter(username=username.strip()).first()
        if user is None:
            matches = list(users.filter(username__iexact=username.strip())[:2])
            user = matches[0] if len(matches) == 1 else None
        if user is None:
            raise NotFound(_("No facilitator account has that username."), field="username")
        if user.pk != room.owner_id and not room.cofacilitators.filter(pk=user.pk).exists():
            room.cofacilitators.add(user)
            events.emit(
                room,
                events.FACILITATORS_CHANGED,
                {"facilitators": selectors.facilitator_names(room=room)},
                audience=Audience.facilitators(),
            )
    return room


# --- retention ------------------------------------------------------------------------------


def room_delete(*, room_id: Any, actor: User) -> None:
    """Delete a closed room with everything in it (members, drafts, feedback, recommendation).
    An open room must be closed first, so nobody is writing into what disappears."""
    if not _is_int(room_id):
        raise NotFound(_("This room does not exist."))
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if not selectors.room_is_facilitator(room=room, user=actor):
            raise NotFound(_("This room does not exist."))
        if room.phase != Phase.CLOSED:
            raise WrongPhase(_("Close the room before deleting it."), code="room_open")
        room.delete()


def room_archive(*, room_id: int, now: Any = None) -> bool:
    """Close an inactive room and mark it archived (the retention job). Members still connected
    see the room close. Returns False when there was nothing to do."""
    now = now or timezone.now()
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if room.archived_at is not None:
            return False
        was_open = room.phase != Phase.CLOSED
        room.archived_at = now
        fields = ["archived_at"]
        if was_open:
            room.phase = Phase.CLOSED
            room.closed_at = now
            room.timer_ends_at = None
            room.timer_remaining = None
            room.timer_auto_advance = False
            fields += ["phase", "closed_at", "timer_ends_at", "timer_remaining"]
            fields += ["timer_auto_advance"]
        room.save(update_fields=fields)
        if was_open:
            events.emit(room, events.PHASE_CHANGED, {"phase": room.phase}, audience=Audience.room())
    return True


def rooms_archive_stale(*, days: int | None = None, now: Any = None) -> list[int]:
    """Archive every room with no activity for `days` days (settings QUORUM_ARCHIVE_AFTER_DAYS
    by default; 0 turns archiving off). Activity: created, closed, or a draft saved. Returns the
    ids of the rooms archived."""
    days = settings.QUORUM["ARCHIVE_AFTER_DAYS"] if days is None else days
    if not _is_int(days) or days < 0:
        raise Invalid(_("The number of days must be 0 or more."), field="days")
    if days == 0:
        return []
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    stale = (
        Room.objects.filter(archived_at__isnull=True, created_at__lt=cutoff)
        .exclude(closed_at__gte=cutoff)
        .exclude(drafts__updated_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    return [room_id for room_id in list(stale) if room_archive(room_id=room_id, now=now)]


# --- solo rooms -----------------------------------------------------------------------------

SOLO_PIN_DIGITS = 6
SOLO_PIN_MAX_FAILURES = 5
SOLO_PIN_LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class SoloStart:
    """A new solo room and the secrets that bring its learner back: shown once, stored hashed."""

    room: Room
    member: Member
    token: str
    pin: str


def solo_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def solo_start(*, scenario_id: Any, display_name: Any = "") -> SoloStart:
    """Start a solo room: no account, one learner who holds every position. The room starts in
    drafting (there is nobody to wait for in a lobby)."""
    if not _is_int(scenario_id):
        raise Invalid(_("Please choose a scenario."), field="scenario")
    # Custom scenarios are private to their facilitator: a solo learner uses a built-in one.
    scenario = Scenario.objects.filter(pk=scenario_id, is_builtin=True).first()
    if scenario is None or not scenario.positions.exists():
        raise NotFound(_("No such scenario."), field="scenario")
    if not isinstance(display_name, str):
        raise Invalid(_("The name must be text."), field="display_name")
    name = " ".join(display_name.split()) or _("Solo learner")
    if len(name) > DISPLAY_NAME_MAX:
        raise Invalid(
            _("Display names can be at most %(limit)d characters.") % {"limit": DISPLAY_NAME_MAX},
            code="too_long",
            field="display_name",
        )
    token = secrets.token_urlsafe(24)
    pin = "".join(secrets.choice("0123456789") for _digit in range(SOLO_PIN_DIGITS))
    pin_hash = make_password(pin)  # slow on purpose: outside the transaction
    for _attempt in range(20):
        try:
            with transaction.atomic():
                room = Room.objects.create(
                    scenario=scenario,
                    owner=None,
                    is_solo=True,
                    title=scenario.title,
                    code=join_code_generate(),
                    phase=Phase.DRAFTING,
                    assignment_method=AssignmentMethod.MANUAL,
                    solo_token_hash=solo_token_hash(token),
                    solo_pin_hash=pin_hash,
                )
                member = Member.objects.create(
                    room=room,
                    display_name=name,
                    position=scenario.positions.first(),
                    code_name=_code_name_for(room),
                )
                return SoloStart(room=room, member=member, token=token, pin=pin)
        except IntegrityError:
            continue  # the code is taken by another open room; draw again
    raise Conflict(_("Could not start a solo room just now; please try again."))


def _solo_member(room: Room, member_id: Any) -> Member:
    if not room.is_solo:
        raise Forbidden(_("Only a solo room's learner can do that."), code="not_solo")
    member = Member.objects.filter(pk=member_id, room=room, removed_at__isnull=True).first()
    if member is None:
        raise Forbidden(_("You are not the learner of this room."))
    return member


def solo_resume_by_token(*, token: Any) -> Member:
    """The member behind a resume link. Closed rooms resume too (to read and download)."""
    if not isinstance(token, str) or not (16 <= len(token) <= 64):
        raise NotFound(_("This resume link is not valid."))
    room = Room.objects.filter(is_solo=True, solo_token_hash=solo_token_hash(token)).first()
    member = room.members.order_by("joined_at").first() if room else None
    if member is None:
        raise NotFound(_("This resume link is not valid."))
    return member


def solo_resume_by_pin(*, code: Any, pin: Any) -> Member:
    """Resume an open solo room by its code and PIN. After SOLO_PIN_MAX_FAILURES wrong PINs the
    room's PIN is locked for SOLO_PIN_LOCK (the resume link still works); a right PIN clears the
    count. Wrong code and wrong PIN get the same answer."""
    wrong = Forbidden(_("That code and PIN do not match an open solo room."), code="wrong_pin")
    if not isinstance(code, str) or not isinstance(pin, str):
        raise wrong
    normalized = join_code_normalize(code)
    pin = pin.strip()
    room_id = (
        Room.objects.filter(is_solo=True, code=normalized)
        .exclude(phase=Phase.CLOSED)
        .values_list("pk", flat=True)
        .first()
    )
    if room_id is None:
        raise wrong
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        now = timezone.now()
        if room.solo_pin_locked_until and room.solo_pin_locked_until > now:
            raise Forbidden(
                _("Too many wrong PINs: this room's PIN is locked for a while. Use your link."),
                code="pin_locked",
            )
        # Count the try before checking it: the check is slow (the password hasher) and runs
        # outside the lock, and parallel guesses must not get past the limit meanwhile.
        room.solo_pin_failures += 1
        if room.solo_pin_failures >= SOLO_PIN_MAX_FAILURES:
            room.solo_pin_failures = 0
            room.solo_pin_locked_until = now + SOLO_PIN_LOCK
        room.save(update_fields=["solo_pin_failures", "solo_pin_locked_until"])
        pin_hash = room.solo_pin_hash
    if not (pin.isdigit() and len(pin) == SOLO_PIN_DIGITS and check_password(pin, pin_hash)):
        raise wrong
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        room.solo_pin_failures = 0
        room.solo_pin_locked_until = None
        room.save(update_fields=["solo_pin_failures", "solo_pin_locked_until"])
        member = room.members.order_by("joined_at").first()
    if member is None:
        raise wrong
    return member


SOLO_STEP_PHASES = (Phase.DRAFTING, Phase.RECOMMENDATION, Phase.CLOSED)


def solo_phase_set(*, room_id: int, member_id: int | None, to_phase: Any) -> Room:
    """The solo learner moves between writing their cases (drafting) and the recommendation, in
    either direction, and finishes (closed) once the recommendation is complete. A closed room
    stays closed."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _solo_member(room, member_id)
        if to_phase not in SOLO_STEP_PHASES:
            raise Invalid(_("Unknown step."), field="to")
        if room.phase == Phase.CLOSED:
            raise WrongPhase(_("This room is finished."), phase=room.phase)
        if room.phase == to_phase:
            return room
        if to_phase == Phase.CLOSED:
            if room.phase != Phase.RECOMMENDATION:
                raise WrongPhase(_("Finish from the recommendation step."), phase=room.phase)
            rec = Recommendation.objects.filter(room=room).first()
            if rec is None or not rec.is_complete:
                raise Invalid(
                    _(
                        "The recommendation needs a decision, a rationale and a revisit condition "
                        "before you finish."
                    ),
                    code="recommendation_incomplete",
                )
            room.closed_at = timezone.now()
        room.phase = to_phase
        room.save(update_fields=["phase", "closed_at"])
        if to_phase == Phase.CLOSED:
            _freeze(room, rec)  # finishing finalizes the record, as recommendation_finalize does
        events.emit(room, events.PHASE_CHANGED, {"phase": room.phase}, audience=Audience.room())
    return room


# --- warm-up check --------------------------------------------------------------------------

WARMUP_PHASES = (Phase.LOBBY, Phase.DRAFTING)
WARMUP_ATTEMPTS_MAX = 50


def warmup_submit(
    *, room_id: int, member_id: int | None, client_id: Any, answers: Any
) -> WarmupAttempt:
    """Score one try at the scenario's matching exercise. Every item needs a reason; a resend
    (same client id) returns the attempt already stored. The member receives their feedback and
    the facilitators the result."""
    client_id = _clean_client_id(client_id)
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if member_id is None:
            raise Forbidden(_("Only members take the warm-up check."))
        member = Member.objects.filter(pk=member_id, room=room, removed_at__isnull=True).first()
        if member is None:
            raise Forbidden(_("You are not a member of this room."))
        warmup = room.scenario.warmup or {}
        items = warmup.get("items") or []
        if not items:
            raise NotFound(_("This scenario has no warm-up check."), code="no_warmup")
        previous = WarmupAttempt.objects.filter(member=member, client_id=client_id).first()
        if previous is not None:
            return previous
        if room.phase not in WARMUP_PHASES:
            raise WrongPhase(
                _("The warm-up check is done before and during drafting."), phase=room.phase
            )
        if not isinstance(answers, dict):
            raise Invalid(_("answers must be an object."), field="answers")
        item_keys = [item["key"] for item in items]
        reason_keys = {reason["key"] for reason in warmup.get("reasons") or []}
        if set(answers) != set(item_keys):
            raise Invalid(
                _("Choose a reason for every argument."), code="incomplete", field="answers"
            )
        if any(value not in reason_keys for value in answers.values()):
            raise Invalid(_("Unknown reason."), field="answers")
        if member.warmup_attempts.count() >= WARMUP_ATTEMPTS_MAX:
            raise Conflict(_("That is enough tries for this check."), code="too_many_attempts")
        results = {item["key"]: answers[item["key"]] == item["answer"] for item in items}
        attempt = WarmupAttempt.objects.create(
            room=room,
            member=member,
            answers={key: answers[key] for key in item_keys},
            results=results,
            score=sum(results.values()),
            total=len(items),
            client_id=client_id,
        )
        events.emit(
            room,
            events.WARMUP_ATTEMPTED,
            {"attempt": selectors.warmup_attempt_payload(attempt)},
            audience=Audience.member(member.pk),
        )
    return attempt


# --- evidence cards and citations --------------------------------------------------------------

MAX_CITATIONS = 8


def _clean_card_ids(citations: Any) -> list[int] | None:
    if citations is None:
        return None
    if not isinstance(citations, list) or not all(_is_int(c) for c in citations):
        raise Invalid(_("citations must be a list of card ids."), field="citations")
    if len(citations) > MAX_CITATIONS:
        raise Invalid(
            _("An argument can cite at most %(limit)d cards.") % {"limit": MAX_CITATIONS},
            code="too_many",
            field="citations",
        )
    return sorted(set(citations))


def _cards_in_room(room: Room, card_ids: list[int]) -> list[EvidenceCard]:
    """The cards, looked up inside the room's scenario: another scenario's card is not found."""
    cards = list(EvidenceCard.objects.filter(scenario_id=room.scenario_id, pk__in=card_ids))
    if len(cards) != len(card_ids):
        raise NotFound(
            _("No such evidence card in this room's scenario."),
            code="card_not_found",
            field="citations",
        )
    return sorted(cards, key=lambda c: c.pk)


def _cited_ids(draft: Draft) -> list[int]:
    if not draft.pk:
        return []
    if hasattr(draft, "cited_joined"):  # read with the draft (_own_draft_edit)
        return split_ids(draft.cited_joined)
    through = Draft.citations.through  # the link table alone: no join, no ordering
    return sorted(
        through.objects.filter(draft_id=draft.pk).values_list("evidencecard_id", flat=True)
    )


# --- research board ---------------------------------------------------------------------------

RESEARCH_ORG_MAX = 120
RESEARCH_SUMMARY_MAX = 300
RESEARCH_URL_MAX = 500
RESEARCH_REASON_MAX = 500
RESEARCH_YEAR_MIN = 2000


def _research_writer(room: Room, actor: User, member_id: int | None) -> Member | None:
    """Who writes on the room's research board: a member of this room who may write, or (no
    member id) one of its facilitators. Returns the member, or None for a facilitator."""
    if room.phase == Phase.CLOSED:
        raise WrongPhase(_("This room is closed."), phase=room.phase)
    if member_id is None:
        _require_facilitator(room, actor)
        return None
    member = _active_member(room, member_id)
    if room.editing_locked:
        raise WrongPhase(_("The facilitator has paused all editing for the moment."), code="locked")
    return member


def clean_source_url(value: Any) -> str:
    """An absolute http or https address, checked here on the server (javascript:, data: and
    the like are refused whatever the browser sent)."""
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    url = _clean_text(value, field="source_url", max_chars=RESEARCH_URL_MAX, required=True)
    url = url.strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise Invalid(
            _("The source must be a web address starting with http:// or https://."),
            code="bad_url",
            field="source_url",
        ) from None
    return url


def _clean_note_fields(
    *, organisation: Any, year: Any, month: Any, approach: Any, summary: Any, source_url: Any
) -> dict[str, Any]:
    from .models import ReleaseApproach

    organisation = " ".join(
        _clean_text(
            organisation, field="organisation", max_chars=RESEARCH_ORG_MAX, required=True
        ).split()
    )
    summary = " ".join(
        _clean_text(summary, field="summary", max_chars=RESEARCH_SUMMARY_MAX, required=True).split()
    )
    latest_year = timezone.now().year + 1
    if not (_is_int(year) and RESEARCH_YEAR_MIN <= year <= latest_year):
        raise Invalid(
            _("The year must be between %(first)d and %(last)d.")
            % {"first": RESEARCH_YEAR_MIN, "last": latest_year},
            field="year",
        )
    if not (_is_int(month) and 1 <= month <= 12):
        raise Invalid(_("The month must be a number from 1 to 12."), field="month")
    if approach not in ReleaseApproach.values:
        raise Invalid(_("Choose one of the release approaches."), field="approach")
    return {
        "organisation": organisation,
        "year": year,
        "month": month,
        "approach": approach,
        "summary": summary,
        "source_url": clean_source_url(source_url),
    }


def research_note_save(
    *,
    room_id: int,
    actor: User,
    member_id: int | None,
    client_id: Any,
    note_id: Any,
    base_version: Any,
    organisation: Any,
    year: Any,
    month: Any,
    approach: Any,
    summary: Any,
    source_url: Any,
) -> SaveResult:
    """Add a note to the room's research board (note_id None) or edit one. Only its author or a
    facilitator edits a note; `base_version` guards against overwriting someone else's edit, and
    a resend of the same change (client id) is acknowledged without a second note."""
    from .models import ResearchNote

    client_id = _clean_client_id(client_id)
    fields = _clean_note_fields(
        organisation=organisation,
        year=year,
        month=month,
        approach=approach,
        summary=summary,
        source_url=source_url,
    )
    if not (_is_int(base_version) and base_version >= 0):
        raise Invalid(_("base_version must be a whole number."), field="base_version")
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        member = _research_writer(room, actor, member_id)
        if note_id is None:
            existing = ResearchNote.objects.filter(room=room, created_client_id=client_id).first()
            if existing is not None:
                return SaveResult(
                    id=existing.pk, version=existing.version, duplicate=True, seq=None
                )
            note = ResearchNote(
                room=room,
                author=member,
                author_user=actor if member is None and actor.is_authenticated else None,
                created_client_id=client_id,
                last_client_id=client_id,
                version=1,
                **fields,
            )
            note.save()
        else:
            note = _note_in_room(room, note_id)
            _require_note_editor(room, actor, member, note)
            if note.last_client_id == client_id:
                return SaveResult(id=note.pk, version=note.version, duplicate=True, seq=None)
            if base_version != note.version:
                raise Conflict(
                    _("This note was changed elsewhere since you started editing it."),
                    current=selectors.research_note_payload(note),
                )
            for name, value in fields.items():
                setattr(note, name, value)
            note.version += 1
            note.last_client_id = client_id
            note.save()
        seq = events.emit(
            room,
            events.RESEARCH_NOTE_UPDATED,
            {"note": selectors.research_note_payload(note)},
            audience=Audience.room(),
        )
    return SaveResult(id=note.pk, version=note.version, duplicate=False, seq=seq)


def research_note_delete(*, room_id: int, actor: User, member_id: int | None, note_id: Any) -> None:
    """Delete a note: its author or a facilitator. Deleting a note already gone is refused."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        member = _research_writer(room, actor, member_id)
        note = _note_in_room(room, note_id)
        _require_note_editor(room, actor, member, note)
        note_pk = note.pk
        note.delete()
        events.emit(
            room,
            events.RESEARCH_NOTE_DELETED,
            {"note_id": note_pk},
            audience=Audience.room(),
        )


def _note_in_room(room: Room, note_id: Any):
    from .models import ResearchNote

    if not _is_int(note_id):
        raise Invalid(_("note_id must be a number."), field="note_id")
    note = ResearchNote.objects.filter(pk=note_id, room=room).first()
    if note is None:
        raise NotFound(_("No such research note in this room."), field="note_id")
    return note


def _require_note_editor(room: Room, actor: User, member: Member | None, note) -> None:
    if member is None:
        return  # a facilitator (checked by _research_writer)
    if note.author_id != member.pk:
        raise Forbidden(
            _("Only the note's author or a facilitator can change it."), code="not_author"
        )


def trend_judge(
    *, room_id: int, actor: User, member_id: int | None, client_id: Any, trend: Any, reason: Any
) -> SaveResult:
    """A member records (or changes) their judgement of the trend, with a reason."""
    from .models import Trend, TrendJudgement

    client_id = _clean_client_id(client_id)
    if trend not in Trend.values:
        raise Invalid(_("Choose more open, more closed or mixed."), field="trend")
    reason = " ".join(
        _clean_text(reason, field="reason", max_chars=RESEARCH_REASON_MAX, required=True).split()
    )
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if member_id is None:
            if selectors.room_is_facilitator(room=room, user=actor):
                raise Forbidden(
                    _("Judgements of the trend are the members' own."), code="members_only"
                )
            raise Forbidden(_("You are not a member of this room."))
        member = _research_writer(room, actor, member_id)
        assert member is not None
        judgement = TrendJudgement.objects.filter(room=room, member=member).first()
        if judgement is not None and judgement.last_client_id == client_id:
            return SaveResult(id=judgement.pk, version=1, duplicate=True, seq=None)
        if judgement is None:
            judgement = TrendJudgement(room=room, member=member)
        judgement.trend = trend
        judgement.reason = reason
        judgement.last_client_id = client_id
        judgement.save()
        seq = events.emit(
            room,
            events.RESEARCH_JUDGEMENT_UPDATED,
            {
                "judgement": selectors.judgement_payload(judgement),
                "tally": selectors.trend_tally(room=room),
            },
            audience=Audience.room(),
        )
    return SaveResult(id=judgement.pk, version=1, duplicate=False, seq=seq)


# --- custom scenarios -------------------------------------------------------------------------

SCENARIO_POSITIONS_MIN = 2
SCENARIO_POSITIONS_MAX = 6
SCENARIO_CARDS_MAX = 20
SCENARIO_ARGUMENT_SLOTS_MAX = 6
SCENARIO_RISK_SLOTS_MAX = 3
SCENARIO_REVISIT_MONTHS_MAX = 60


def _clean_scenario_data(data: dict[str, Any]) -> dict[str, Any]:
    """Check a scenario written by a facilitator: the same limits whatever form sent it."""

    def number(name: str, low: int, high: int) -> int:
        value = data.get(name)
        if not (_is_int(value) and low <= value <= high):
            raise Invalid(
                _("%(field)s must be a number from %(low)d to %(high)d.")
                % {"field": name, "low": low, "high": high},
                field=name,
            )
        return value

    clean = {
        "title": _clean_text(data.get("title"), field="title", max_chars=200, required=True),
        "question": _clean_text(
            data.get("question"), field="question", max_chars=2000, required=True
        ),
        "briefing": _clean_text(
            data.get("briefing"), field="briefing", max_chars=20000, required=True
        ),
        "argument_slots": number("argument_slots", 1, SCENARIO_ARGUMENT_SLOTS_MAX),
        "risk_slots": number("risk_slots", 1, SCENARIO_RISK_SLOTS_MAX),
        "revisit_months": number("revisit_months", 1, SCENARIO_REVISIT_MONTHS_MAX),
        "recommendation_guidance": _clean_text(
            data.get("recommendation_guidance", ""), field="recommendation_guidance", max_chars=2000
        ),
        "revisit_guidance": _clean_text(
            data.get("revisit_guidance", ""), field="revisit_guidance", max_chars=2000
        ),
    }
    clean["title"] = clean["title"].strip()
    positions = data.get("positions") or []
    if not (SCENARIO_POSITIONS_MIN <= len(positions) <= SCENARIO_POSITIONS_MAX):
        raise Invalid(
            _("A scenario has from %(low)d to %(high)d positions.")
            % {"low": SCENARIO_POSITIONS_MIN, "high": SCENARIO_POSITIONS_MAX},
            code="positions_count",
            field="positions",
        )
    clean["positions"] = []
    for pos in positions:
        name = _clean_text(pos.get("name"), field="name", max_chars=120, required=True).strip()
        short = _clean_text(pos.get("short_name") or name[:40], field="short_name", max_chars=40)
        clean["positions"].append(
            {
                "name": name,
                "short_name": short.strip() or name[:40],
                "summary": _clean_text(
                    pos.get("summary"), field="summary", max_chars=2000, required=True
                ),
            }
        )
    names = [p["name"].lower() for p in clean["positions"]]
    if len(set(names)) != len(names):
        raise Invalid(_("Two positions have the same name."), code="duplicate", field="positions")
    cards = data.get("cards") or []
    if len(cards) > SCENARIO_CARDS_MAX:
        raise Invalid(
            _("A scenario has at most %(limit)d evidence cards.") % {"limit": SCENARIO_CARDS_MAX},
            code="too_many",
            field="cards",
        )
    clean["cards"] = [
        {
            "title": _clean_text(card.get("title"), field="title", max_chars=120, required=True),
            "body": _clean_text(card.get("body"), field="body", max_chars=2000, required=True),
            "source_note": _clean_text(
                card.get("source_note", ""), field="source_note", max_chars=300
            ),
        }
        for card in cards
    ]
    return clean


def _write_scenario_parts(scenario: Scenario, clean: dict[str, Any]) -> None:
    """Positions and cards of an unused scenario, replaced as a whole."""
    from django.utils.text import slugify

    scenario.positions.all().delete()
    scenario.cards.all().delete()
    for order, pos in enumerate(clean["positions"]):
        key = f"{slugify(pos['short_name'])[:30] or 'position'}-{order + 1}"
        Position.objects.create(scenario=scenario, key=key, order=order, **pos)
    for order, card in enumerate(clean["cards"]):
        key = f"{slugify(card['title'])[:50] or 'card'}-{order + 1}"
        EvidenceCard.objects.create(scenario=scenario, key=key, order=order, **card)


def _new_scenario_slug() -> str:
    import uuid

    return f"custom-{uuid.uuid4().hex[:12]}"


def scenario_create(*, owner: AbstractBaseUser, data: dict[str, Any]) -> Scenario:
    """A facilitator's own scenario, private to them."""
    clean = _clean_scenario_data(data)
    if not owner.is_authenticated:
        raise Forbidden(_("Sign in to write scenarios."))
    with transaction.atomic():
        scenario = Scenario.objects.create(
            slug=_new_scenario_slug(),
            owner=owner,
            is_builtin=False,
            **{k: v for k, v in clean.items() if k not in ("positions", "cards")},
        )
        _write_scenario_parts(scenario, clean)
    return scenario


def _own_scenario_for_update(actor: User, scenario_id: Any) -> Scenario:
    if not _is_int(scenario_id):
        raise Invalid(_("scenario_id must be a number."), field="scenario_id")
    scenario = Scenario.objects.select_for_update().filter(pk=scenario_id).first()
    if scenario is None or not selectors.scenario_usable_by(scenario=scenario, user=actor):
        raise NotFound(_("No such scenario."))
    if scenario.is_builtin or scenario.owner_id != actor.pk:
        raise Forbidden(
            _("The built-in scenario is read-only: make a copy to change it."), code="read_only"
        )
    return scenario


def scenario_update(*, actor: User, scenario_id: Any, data: dict[str, Any]) -> Scenario:
    """Edit one's own scenario, only while no room uses it (rooms keep the scenario they were
    run with; to change a used one, copy it)."""
    clean = _clean_scenario_data(data)
    with transaction.atomic():
        scenario = _own_scenario_for_update(actor, scenario_id)
        if scenario.rooms.exists():
            raise Conflict(
                _("A room already uses this scenario; make a copy to change it."),
                code="scenario_in_use",
            )
        for name, value in clean.items():
            if name not in ("positions", "cards"):
                setattr(scenario, name, value)
        scenario.save()
        _write_scenario_parts(scenario, clean)
    return scenario


def scenario_copy(*, actor: User, scenario_id: Any) -> Scenario:
    """A private, editable copy of the built-in scenario or of one's own."""
    if not _is_int(scenario_id):
        raise Invalid(_("scenario_id must be a number."), field="scenario_id")
    source = Scenario.objects.filter(pk=scenario_id).first()
    if source is None or not selectors.scenario_usable_by(scenario=source, user=actor):
        raise NotFound(_("No such scenario."))
    data = selectors.scenario_data(scenario=source)
    data["title"] = (_("Copy of %(title)s") % {"title": source.title})[:200]
    with transaction.atomic():
        copy = scenario_create(owner=actor, data=data)
        copy.copied_from = source
        copy.save(update_fields=["copied_from"])
    return copy


# --- review, curation, vote, recommendation builder, finalize (issue 5) ----------------------
#
# Review (phase review): members post rebuttals and questions on other positions' drafts and
# mark the strongest argument of each position; teams curate their case (team vote, or the
# facilitator's pick overriding it); members vote for a decision. The vote is open during the
# review until the facilitator closes it (advancing to the recommendation closes it too); a
# member may change their vote until then. Results are computed only once the vote is closed.
# The recommendation is edited by chairs (facilitators and members made chair); members sign
# off or dissent; recommendation_finalize freezes the record and closes the room.

COMMENT_MAX = 1000
VOTE_REASON_MAX = 300
SIGNOFF_MAX = 300
CITATIONS_MAX = 12


def _active_member(room: Room, member_id: int | None) -> Member:
    """The acting member of `room`: present, not removed, not muted."""
    if member_id is None:
        raise Forbidden(_("Only members of the room can do that."), code="members_only")
    member = Member.objects.filter(pk=member_id, room=room).first()
    if member is None:
        raise Forbidden(_("You are not a member of this room."))
    _check_acting(member)
    return member


def _check_acting(member: Member) -> None:
    """A member of the room may write: not removed, not muted."""
    if member.removed_at is not None:
        raise Forbidden(_("You are not a member of this room."))
    if member.muted:
        raise Forbidden(
            _("The facilitator has muted you: you can read, but not write, for now."),
            code="muted",
        )


def _require_phase(room: Room, phase: str, message: str) -> None:
    if room.phase != phase:
        raise WrongPhase(message, phase=room.phase)


def _review_draft(room: Room, draft_id: Any) -> Draft:
    """A draft of this room that everyone may read: not hidden, not empty."""
    draft = _draft_in_room(room, draft_id)
    if draft.hidden or not draft.text.strip():
        raise NotFound(_("No such draft in this room."), field="draft_id")
    return draft


def _vote_closed(room: Room) -> bool:
    return VoteState.objects.filter(room=room).exists()


def comment_add(
    *, room_id: int, member_id: int | None, client_id: Any, draft_id: Any, kind: Any, text: Any
) -> SaveResult:
    """A rebuttal of, or a question on, another position's draft (review phase only)."""
    client_id = _clean_client_id(client_id)
    if kind not in CommentKind.values:
        raise Invalid(_("kind must be “rebuttal” or “question”."), field="kind")
    text = _clean_text(text, field="text", max_chars=COMMENT_MAX, required=True).strip()
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        # A resend of a stored comment is answered as stored whatever happened since (the review
        # may have ended, or its author been muted, while the first ack was lost on a dropped
        # connection).
        if member_id is not None:
            existing = Comment.objects.filter(
                room=room, author_id=member_id, client_id=client_id
            ).first()
            if existing is not None:
                return SaveResult(id=existing.pk, version=1, duplicate=True, seq=None)
        member = _active_member(room, member_id)
        _require_phase(room, Phase.REVIEW, _("Rebuttals and questions belong to the review."))
        draft = _review_draft(room, draft_id)
        if draft.position_id == member.position_id:
            raise Forbidden(
                _("Rebut and question the other positions' arguments, not your own team's."),
                code="own_position",
            )
        comment = Comment.objects.create(
            room=room, draft=draft, author=member, kind=kind, text=text, client_id=client_id
        )
        seq = events.emit(
            room,
            events.COMMENT_ADDED,
            {"comment": selectors.comment_payload(comment)},
            audience=Audience.room(),
        )
    return SaveResult(id=comment.pk, version=1, duplicate=False, seq=seq)


def strongest_mark(*, room_id: int, member_id: int | None, draft_id: Any) -> StrongestMark:
    """Mark the strongest argument of a position: one mark per member and position; marking
    another argument of the same position moves the mark."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_phase(room, Phase.REVIEW, _("Arguments are marked during the review."))
        member = _active_member(room, member_id)
        draft = _review_draft(room, draft_id)
        if draft.kind != DraftKind.ARGUMENT:
            raise Invalid(_("Only arguments can be marked as the strongest."), field="draft_id")
        mark, created = StrongestMark.objects.get_or_create(
            member=member, position_id=draft.position_id, defaults={"room": room, "draft": draft}
        )
        if not created and mark.draft_id == draft.pk:
            return mark
        if not created:
            mark.draft = draft
            mark.save(update_fields=["draft"])
        events.emit(
            room,
            events.STRONGEST_MARKED,
            {"mark": selectors.mark_payload(mark)},
            audience=Audience.room(),
        )
    return mark


def case_vote(*, room_id: int, member_id: int | None, draft_id: Any, chosen: Any) -> Draft:
    """A team member votes to put one of their team's drafts (this round) into the case, or takes
    the vote back. The drafts with most votes fill the slots unless the facilitator picked."""
    chosen = _bool(chosen, "chosen")
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_phase(room, Phase.REVIEW, _("Teams choose their case during the review."))
        member = _active_member(room, member_id)
        draft = _review_draft(room, draft_id)
        if draft.position_id != member.position_id or draft.round != room.round:
            raise Forbidden(
                _("Only the team that wrote these drafts chooses its case."), code="other_team"
            )
        vote = CaseVote.objects.filter(member=member, draft=draft).first()
        if chosen and vote is None:
            limit = (
                room.scenario.argument_slots
                if draft.kind == DraftKind.ARGUMENT
                else room.scenario.risk_slots
            )
            used = CaseVote.objects.filter(
                member=member,
                draft__kind=draft.kind,
                draft__position_id=draft.position_id,
                draft__round=room.round,
            ).count()
            if used >= limit:
                raise Conflict(
                    _("You have already chosen %(limit)d; take one back first.") % {"limit": limit},
                    code="too_many_choices",
                )
            CaseVote.objects.create(room=room, member=member, draft=draft)
        elif not chosen and vote is not None:
            vote.delete()
        else:
            return draft
        _emit_case(room, draft.position_id)
    return draft


def case_pick(*, room_id: int, actor: User, position_id: Any, draft_ids: Any) -> list[int]:
    """The facilitator's choice of a team's case (this round), overriding the team vote: the
    listed drafts are selected, the position's other drafts not. An empty list hands the choice
    back to the team vote."""
    if not isinstance(draft_ids, list) or not all(_is_int(i) for i in draft_ids):
        raise Invalid(_("draft_ids must be a list of numbers."), field="draft_ids")
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        _require_phase(room, Phase.REVIEW, _("Cases are chosen during the review."))
        position = _position_in_room(room, position_id)
        drafts = list(Draft.objects.filter(room=room, position=position, round=room.round))
        by_id = {d.pk: d for d in drafts}
        if any(i not in by_id for i in draft_ids):
            raise NotFound(_("No such draft of this position in this room."), field="draft_ids")
        wanted = set(draft_ids)
        scenario = room.scenario
        limits = (
            (DraftKind.ARGUMENT, scenario.argument_slots),
            (DraftKind.RISK, scenario.risk_slots),
        )
        for kind, limit in limits:
            if sum(1 for i in wanted if by_id[i].kind == kind) > limit:
                raise Invalid(
                    _("A case holds at most %(args)d arguments and %(risks)d risk(s).")
                    % {"args": scenario.argument_slots, "risks": scenario.risk_slots},
                    code="too_many_choices",
                    field="draft_ids",
                )
        for draft in drafts:
            picked = (draft.pk in wanted) if wanted else None
            if draft.picked != picked:
                draft.picked = picked
                draft.save(update_fields=["picked"])
        _emit_case(room, position.pk)
    return sorted(wanted)


def _emit_case(room: Room, position_id: int) -> None:
    events.emit(
        room,
        events.CASE_UPDATED,
        {"case": selectors.case_payload(room=room, position_id=position_id)},
        audience=Audience.room(),
    )


def vote_cast(*, room_id: int, member_id: int | None, position_id: Any, reason: Any = "") -> Vote:
    """A member's vote for a decision, with an optional reason. Changing it before the vote is
    closed replaces it; after that it is refused. The member is told their own vote; the
    facilitators learn the turnout only; nobody sees counts before the close."""
    reason = _clean_text(reason or "", field="reason", max_chars=VOTE_REASON_MAX).strip()
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        if _vote_closed(room) or room.phase in (Phase.RECOMMENDATION, Phase.CLOSED):
            raise WrongPhase(_("The vote is closed."), code="vote_closed", phase=room.phase)
        _require_phase(room, Phase.REVIEW, _("The vote opens with the review."))
        member = _active_member(room, member_id)
        position = _position_in_room(room, position_id)
        vote = Vote.objects.filter(room=room, member=member).first()
        if vote is not None and vote.position_id == position.pk and vote.reason == reason:
            return vote
        if vote is None:
            vote = Vote.objects.create(room=room, member=member, position=position, reason=reason)
        else:
            vote.position = position
            vote.reason = reason
            vote.save(update_fields=["position", "reason", "updated_at"])
        events.emit(
            room,
            events.VOTE_CAST,
            {"mine": selectors.vote_payload(vote)},
            audience=Audience.member(member.pk),
            facilitator_payload={"turnout": selectors.vote_turnout(room=room)},
        )
    return vote


def vote_close(*, room_id: int, actor: User) -> dict[str, Any]:
    """The facilitator closes the vote: from now on the results are shown to everyone."""
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        _require_phase(room, Phase.REVIEW, _("The vote is closed during the review."))
        if _vote_closed(room):
            raise Conflict(_("The vote is already closed."), code="vote_closed")
        return _vote_close(room)


def _vote_close(room: Room) -> dict[str, Any]:
    VoteState.objects.create(room=room, closed_at=timezone.now())
    results = selectors.vote_results(room=room)
    events.emit(room, events.VOTE_CLOSED, {"results": results}, audience=Audience.room())
    return results


def chair_set(*, room_id: int, actor: User, member_id: Any, chair: Any) -> Member:
    """The facilitator makes a member a chair of the recommendation (or not)."""
    chair = _bool(chair, "chair")
    with transaction.atomic():
        room = _open_room_for_facilitator(room_id, actor)
        member = _member_in_room(room, member_id)
        if member.is_chair != chair:
            member.is_chair = chair
            member.save(update_fields=["is_chair"])
            events.emit(
                room,
                events.MEMBER_CHAIR,
                {"member_id": member.pk, "is_chair": chair},
                audience=Audience.room(),
            )
    return member


def _require_chair(room: Room, actor: User, member_id: int | None) -> None:
    """The facilitators chair a group room, with the members they name; the learner chairs
    their own solo room."""
    if room.is_solo and member_id is not None:
        _solo_member(room, member_id)
        return
    if selectors.room_is_facilitator(room=room, user=actor):
        return
    if member_id is not None:
        member = _active_member(room, member_id)
        if member.is_chair:
            return
    raise Forbidden(
        _("Only the chairs (the facilitators and members they name) edit the recommendation.")
    )


def _citations_in_room(room: Room, citation_ids: Any) -> list[Draft]:
    if not isinstance(citation_ids, list) or not all(_is_int(i) for i in citation_ids):
        raise Invalid(_("citation_ids must be a list of numbers."), field="citation_ids")
    if len(citation_ids) > CITATIONS_MAX:
        raise Invalid(
            _("Cite at most %(max)d arguments.") % {"max": CITATIONS_MAX}, field="citation_ids"
        )
    wanted = list(dict.fromkeys(citation_ids))
    drafts = {
        d.pk: d
        for d in Draft.objects.filter(room=room, pk__in=wanted, hidden=False).exclude(text="")
    }
    if len(drafts) != len(wanted):
        raise NotFound(
            _("A cited argument is not part of this room's record."),
            code="citation_not_found",
            field="citation_ids",
        )
    return [drafts[i] for i in wanted]


def recommendation_build(
    *,
    room_id: int,
    actor: User,
    member_id: int | None = None,
    client_id: Any,
    base_version: Any,
    decision_id: Any,
    rationale: Any,
    revisit_condition: Any,
    citation_ids: Any = None,
    risk_draft_id: Any = None,
    risk_text: Any = None,
) -> SaveResult:
    """The recommendation builder's save: everything recommendation_save stores, plus the cited
    arguments, the acknowledged risk, and chairs who are members. Versioned: a stale edit is
    refused with the current recommendation (code conflict), never silently overwritten.
    `citation_ids` None and `risk_text` None keep what is stored (a client that predates them)."""
    client_id = _clean_client_id(client_id)
    limit = settings.QUORUM["MAX_RECOMMENDATION_CHARS"]
    rationale = _clean_text(rationale, field="rationale", max_chars=limit)
    revisit_condition = _clean_text(revisit_condition, field="revisit_condition", max_chars=limit)
    if risk_text is not None:
        risk_text = _clean_text(risk_text, field="risk_text", max_chars=limit)
    if not (_is_int(base_version) and base_version >= 0):
        raise Invalid(_("base_version must be a whole number."), field="base_version")
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_chair(room, actor, member_id)
        _require_phase(
            room,
            Phase.RECOMMENDATION,
            _("The recommendation is written in the recommendation phase."),
        )
        rec, _created = Recommendation.objects.get_or_create(room=room)
        if rec.version and rec.last_client_id == client_id:
            return SaveResult(id=rec.pk, version=rec.version, duplicate=True, seq=None)
        if base_version != rec.version:
            raise Conflict(
                _("The recommendation was changed elsewhere since you started editing it."),
                current=selectors.recommendation_payload(rec),
            )
        decision = None if decision_id is None else _position_in_room(room, decision_id)
        citations = None if citation_ids is None else _citations_in_room(room, citation_ids)
        risk_draft = None
        if risk_draft_id is not None:
            risk_draft = _review_draft(room, risk_draft_id)
            if risk_draft.kind != DraftKind.RISK:
                raise Invalid(
                    _("The acknowledged risk must be a risk draft."), field="risk_draft_id"
                )
        rec.decision = decision
        rec.rationale = rationale
        rec.revisit_condition = revisit_condition
        if risk_text is not None:
            rec.risk_draft = risk_draft
            rec.risk_text = risk_text
        rec.version += 1
        rec.last_client_id = client_id
        rec.updated_by = actor if actor.is_authenticated else None
        rec.save()
        if citations is not None:
            rec.citations.set(citations)
        seq = events.emit(
            room,
            events.RECOMMENDATION_UPDATED,
            {"recommendation": selectors.recommendation_payload(rec)},
            audience=Audience.room(),
        )
    return SaveResult(id=rec.pk, version=rec.version, duplicate=False, seq=seq)


def signoff_record(*, room_id: int, member_id: int | None, stance: Any, text: Any = "") -> Signoff:
    """A member signs the recommendation off or records a dissent (one sentence, required).
    Changeable until the record is finalized."""
    if stance not in SignoffStance.values:
        raise Invalid(_("stance must be “sign” or “dissent”."), field="stance")
    text = _clean_text(text or "", field="text", max_chars=SIGNOFF_MAX).strip()
    if stance == SignoffStance.DISSENT and not text:
        raise Invalid(_("A dissent needs one sentence saying why."), code="required", field="text")
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_phase(
            room, Phase.RECOMMENDATION, _("Members sign off in the recommendation phase.")
        )
        member = _active_member(room, member_id)
        rec = Recommendation.objects.filter(room=room).first()
        if rec is None or rec.version == 0:
            raise WrongPhase(_("There is no recommendation to sign yet."), code="no_recommendation")
        signoff, created = Signoff.objects.get_or_create(
            room=room,
            member=member,
            defaults={"stance": stance, "text": text, "rec_version": rec.version},
        )
        if not created:
            if (signoff.stance, signoff.text, signoff.rec_version) == (stance, text, rec.version):
                return signoff
            signoff.stance = stance
            signoff.text = text
            signoff.rec_version = rec.version
            signoff.save(update_fields=["stance", "text", "rec_version", "updated_at"])
        events.emit(
            room,
            events.SIGNOFF_UPDATED,
            {"signoff": selectors.signoff_payload(signoff)},
            audience=Audience.room(),
        )
    return signoff


def recommendation_finalize(*, room_id: int, actor: User) -> Recommendation:
    """Freeze the record and close the room: the frozen JSON keeps every text as it is now,
    every write is refused from now on (the room is closed), and an unguessable share token opens
    the read-only printable page without a login."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_facilitator(room, actor)
        rec = Recommendation.objects.filter(room=room).first()
        if rec is not None and rec.finalized_at is not None:
            raise Conflict(_("The record is already finalized."), code="finalized")
        _require_phase(
            room, Phase.RECOMMENDATION, _("The record is finalized from the recommendation phase.")
        )
        _require_complete(rec)
        room.phase = Phase.CLOSED
        room.closed_at = timezone.now()
        room.timer_ends_at = None
        room.timer_remaining = None
        room.timer_auto_advance = False
        room.save(
            update_fields=[
                "phase",
                "closed_at",
                "timer_ends_at",
                "timer_remaining",
                "timer_auto_advance",
            ]
        )
        assert rec is not None
        _freeze(room, rec)
        events.emit(room, events.PHASE_CHANGED, {"phase": room.phase}, audience=Audience.room())
    return rec


def _require_complete(rec: Recommendation | None) -> None:
    if rec is None or not rec.is_complete:
        raise Invalid(
            _(
                "The recommendation needs a decision, a rationale and a revisit condition "
                "before the room can close."
            ),
            code="recommendation_incomplete",
        )


def _freeze(room: Room, rec: Recommendation) -> None:
    """Store the record as it is now (inside the closing transaction, room locked)."""
    rec.finalized_at = room.closed_at or timezone.now()
    rec.share_token = secrets.token_urlsafe(32)
    rec.save(update_fields=["finalized_at", "share_token"])
    # Members read the public record (with their own real name put back in anonymous rooms, see
    # selectors.record_for); those who wrote drafts the facilitator hid, which they still see,
    # get a record of their own.
    differing = set(
        Draft.objects.filter(room=room, hidden=True).values_list("author_id", flat=True)
    )
    if room.is_solo:  # the learner's own record carries their warm-up results
        differing |= set(room.members.values_list("pk", flat=True))
    members = {}
    for member in room.members.filter(pk__in=differing):
        viewer = selectors.Viewer(room=room, member=member, is_facilitator=False)
        members[str(member.pk)] = selectors.record_data(room=room, audience="member", viewer=viewer)
    rec.frozen_record = {
        "facilitator": selectors.record_data(room=room, audience="facilitator"),
        "public": selectors.record_data(room=room, audience="public"),
        "members": members,
    }
    rec.save(update_fields=["frozen_record"])
    # No event of its own: the phase.changed that follows makes every client fetch a snapshot,
    # which carries the finalized recommendation (and, for facilitators, the share link).

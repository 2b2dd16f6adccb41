"""Every write in the debate app. Plain functions, keyword-only arguments, one transaction each.

Each service checks first (existence inside the room, role, phase, version), then changes data,
then emits its event (delivered after commit by debate.events). Errors are debate.errors types.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from classroom.codes import join_code_generate, join_code_normalize

from . import events, selectors
from .errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from .events import Audience
from .models import (
    PHASE_ORDER,
    AssignmentMethod,
    Draft,
    DraftKind,
    Feedback,
    Member,
    Phase,
    Position,
    Recommendation,
    Room,
    Scenario,
)

User = AbstractBaseUser | AnonymousUser

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
BUILTIN_SCENARIO_FILE = SCENARIO_DIR / "model-release-committee.json"
DISPLAY_NAME_MAX = 40
CLIENT_ID_MAX = 64


# --- helpers --------------------------------------------------------------------------------


def room_lock(*, room_id: int) -> Room:
    """The room row, locked until the end of the transaction (serialises a room's writes, so
    sequence numbers follow commit order)."""
    try:
        return Room.objects.select_for_update().select_related("scenario").get(pk=room_id)
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


def _is_int(value: Any) -> bool:
    """A JSON number that is a whole number (JSON true/false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_client_id(client_id: Any) -> str:
    if not isinstance(client_id, str) or not (1 <= len(client_id) <= CLIENT_ID_MAX):
        raise Invalid(_("Every change needs a client id of 1 to 64 characters."), field="client_id")
    return client_id


# --- scenarios ------------------------------------------------------------------------------


def scenario_install(*, data: dict[str, Any], builtin: bool = False) -> Scenario:
    """Create or update a scenario and its positions from a dict (see debate/scenarios/*.json)."""
    with transaction.atomic():
        return scenario_install_with(Scenario, Position, data=data, builtin=builtin)


def scenario_install_with(
    scenario_model: Any, position_model: Any, *, data: dict[str, Any], builtin: bool
) -> Any:
    """The installer proper, taking the model classes so that the data migration can pass its
    historical models."""
    scenario, _created = scenario_model.objects.update_or_create(
        slug=data["slug"],
        defaults={
            "title": data["title"],
            "question": data["question"],
            "briefing": data["briefing"],
            "argument_slots": data.get("argument_slots", 3),
            "risk_slots": data.get("risk_slots", 1),
            "revisit_months": data.get("revisit_months", 6),
            "recommendation_guidance": data.get("recommendation_guidance", ""),
            "revisit_guidance": data.get("revisit_guidance", ""),
            "is_builtin": builtin,
        },
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
) -> Room:
    title = (title or "").strip()[:120] or scenario.title
    if assignment_method not in AssignmentMethod.values:
        raise Invalid(_("Unknown assignment method."), field="assignment_method")
    _check_cap(choice_cap)
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
                )
        except IntegrityError:
            continue  # the code is taken by another open room; draw again
    raise Conflict(_("Could not find a free join code; please try again."))


def member_join(*, code: str, display_name: str) -> Member:
    """Join the open room with this code. Late joiners (after assignment) join the smallest team."""
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
        .filter(code=normalized)
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
            room=room, display_name=name, position=position, code_name=_code_name_for(room)
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
    now = timezone.now()
    stale = now - _presence_window()
    # Already online (another tab, or a reconnect before the old socket's disconnect was
    # recorded): count the socket without the room lock and without an event. One statement; the
    # condition is checked on the locked member row, so a concurrent last disconnect makes it fail
    # and the locked path below announces the member again.
    if Member.objects.filter(
        pk=member_id, room_id=room_id, open_sockets__gt=0, last_seen__gte=stale
    ).update(open_sockets=F("open_sockets") + 1, last_seen=now):
        return
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


def member_touch(*, member_id: int) -> None:
    """Heartbeat from a live socket (the consumer calls it at most every
    PRESENCE_TOUCH_SECONDS / 2): one small write, no event."""
    Member.objects.filter(pk=member_id).update(last_seen=timezone.now())


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
        if expected == Phase.CLOSED:
            rec = Recommendation.objects.filter(room=room).first()
            if rec is None or not rec.is_complete:
                raise Invalid(
                    _(
                        "The recommendation needs a decision, a rationale and a revisit condition "
                        "before the room can close."
                    ),
                    code="recommendation_incomplete",
                )
            room.closed_at = timezone.now()
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
) -> SaveResult:
    """Save one draft slot.

    A member writes their own slot for their current position, addressed by (kind, slot). A
    facilitator edits an existing draft by its id. `base_version` is the version the client edited
    (0 for a new slot): if the draft has moved on, the write is refused with the current text.
    A resend of the change that produced the current version is acknowledged without a change.
    A member may name the `position_id` they wrote for: if they have moved team since, the write is
    refused (code position_changed) instead of landing in the new team's slot.
    """
    client_id = _clean_client_id(client_id)
    text = _clean_text(text, field="text", max_chars=settings.QUORUM["MAX_DRAFT_CHARS"])
    if not (_is_int(base_version) and base_version >= 0):
        raise Invalid(_("base_version must be a whole number."), field="base_version")
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
        if draft.pk and draft.text == text:
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
        # A hidden draft (edited by a facilitator) reaches its author and the facilitators only.
        audience = (
            Audience.member(draft.author_id) if draft.hidden else Audience.team(draft.position_id)
        )
        seq = events.emit(
            room,
            events.DRAFT_UPDATED,
            {"draft": selectors.draft_payload(draft)},
            audience=audience,
            seq=draft.seq,
        )
    return SaveResult(id=draft.pk, version=draft.version, duplicate=False, seq=seq)


def _own_draft(room: Room, member_id: int, kind: Any, slot: Any, position_id: Any) -> Draft:
    member = Member.objects.filter(pk=member_id, room=room).first()
    if member is None or member.removed_at is not None:
        raise Forbidden(_("You are not a member of this room."))
    if member.muted:
        raise Forbidden(
            _("The facilitator has muted you: you can read, but not write, for now."),
            code="muted",
        )
    if member.position_id is None:
        raise WrongPhase(_("You have no position yet; wait for the facilitator to assign one."))
    if position_id is not None and position_id != member.position_id:
        raise Conflict(
            _("You have moved to another position; this text was not saved there."),
            code="position_changed",
            position_id=member.position_id,
        )
    if kind not in DraftKind.values:
        raise Invalid(_("kind must be “argument” or “risk”."), field="kind")
    limit = room.scenario.argument_slots if kind == DraftKind.ARGUMENT else room.scenario.risk_slots
    if not (_is_int(slot) and 1 <= slot <= limit):
        raise Invalid(
            _("slot must be a number from 1 to %(limit)d.") % {"limit": limit}, field="slot"
        )
    draft = Draft.objects.filter(
        author=member, position_id=member.position_id, round=room.round, kind=kind, slot=slot
    ).first()
    if draft is not None:
        draft.author = member  # already read: no second query for it
    else:
        draft = Draft(
            room=room,
            author=member,
            position_id=member.position_id,
            round=room.round,
            kind=kind,
            slot=slot,
            version=0,
        )
    return draft


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
) -> SaveResult:
    """The chair records the committee's recommendation. Partial saves are allowed while
    writing; closing the room requires all three parts (phase_advance)."""
    with transaction.atomic():
        room = room_lock(room_id=room_id)
        _require_facilitator(room, actor)
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

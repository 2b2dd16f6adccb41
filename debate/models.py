"""Debate data and its invariants. Every write goes through debate.services."""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext_lazy as _


class Scenario(models.Model):
    """A decision scenario: data, not code. The built-in one is installed by a migration."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    question = models.TextField(help_text=_("The decision the committee must take."))
    briefing = models.TextField()
    argument_slots = models.PositiveSmallIntegerField(default=3)
    risk_slots = models.PositiveSmallIntegerField(default=1)
    revisit_months = models.PositiveSmallIntegerField(default=6)
    recommendation_guidance = models.TextField(blank=True)
    revisit_guidance = models.TextField(blank=True)
    is_builtin = models.BooleanField(default=False)
    # The warm-up check (a matching exercise) as data: {"intro", "items": [{"key", "text",
    # "answer", "explanation"}], "reasons": [{"key", "text"}]}. Empty: no warm-up.
    warmup = models.JSONField(default=dict, blank=True)
    # A facilitator's own scenario: private to them (None for the built-in ones).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="scenarios",
    )
    copied_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Position(models.Model):
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="positions")
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)
    short_name = models.CharField(max_length=40)
    summary = models.TextField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["scenario", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["scenario", "key"], name="position_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Phase(models.TextChoices):
    LOBBY = "lobby", _("Lobby")
    DRAFTING = "drafting", _("Drafting")
    REVIEW = "review", _("Review")
    RECOMMENDATION = "recommendation", _("Recommendation")
    CLOSED = "closed", _("Closed")


PHASE_ORDER = [Phase.LOBBY, Phase.DRAFTING, Phase.REVIEW, Phase.RECOMMENDATION, Phase.CLOSED]


class AssignmentMethod(models.TextChoices):
    BALANCED = "balanced", _("Balanced, in order of joining")
    RANDOM = "random", _("Random, balanced")
    MANUAL = "manual", _("Manual: the facilitator places everyone")
    CHOICE = "choice", _("Members choose, up to a cap per position")


def latest_draft_seq(room: Any) -> models.Subquery:
    """The highest sequence number among a room's drafts, as an expression (`room`: an id or an
    OuterRef). Room.seq is the greater of this and Room.event_seq."""
    return models.Subquery(Draft.objects.filter(room_id=room).order_by("-seq").values("seq")[:1])


class JoinedIds(models.Aggregate):
    """Integer ids joined with commas ("3,7"; NULL for none): one string aggregate on both
    databases (GROUP_CONCAT on SQLite, STRING_AGG on PostgreSQL). Order not guaranteed."""

    function = "GROUP_CONCAT"
    output_field = models.TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            function="STRING_AGG",
            template="%(function)s((%(expressions)s)::text, ',')",
            **extra_context,
        )


def draft_cited_ids(draft: Any) -> models.Subquery:
    """The evidence card ids a draft cites, joined (JoinedIds), as an expression (`draft`: an
    id or an OuterRef): read with the draft in the statement that reads it."""
    through = Draft.citations.through
    return models.Subquery(
        through.objects.filter(draft_id=draft)
        .order_by()
        .values("draft_id")
        .annotate(ids=JoinedIds("evidencecard_id"))
        .values("ids")[:1]
    )


def split_ids(joined: str | None) -> list[int]:
    """JoinedIds' text back to sorted ids."""
    return sorted(int(i) for i in joined.split(",")) if joined else []


class RoomQuerySet(models.QuerySet):
    def with_seq(self) -> "RoomQuerySet":
        """Annotate the drafts' highest sequence number, so that Room.seq needs no query of its
        own (same statement, same snapshot as the room row)."""
        return self.annotate(draft_seq=Coalesce(latest_draft_seq(models.OuterRef("pk")), 0))


class Room(models.Model):
    scenario = models.ForeignKey(Scenario, on_delete=models.PROTECT, related_name="rooms")
    # A solo room (one learner, no account) has no owner; every other room has one.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="rooms",
        null=True,
        blank=True,
    )
    is_solo = models.BooleanField(default=False)
    # Solo rooms: the resume link's token and the PIN, stored as hashes only; failed PIN
    # attempts lock the PIN for a while (debate.services.solo_resume_by_pin).
    solo_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    solo_pin_hash = models.CharField(max_length=128, blank=True)
    solo_pin_failures = models.PositiveSmallIntegerField(default=0)
    solo_pin_locked_until = models.DateTimeField(null=True, blank=True)
    title = models.CharField(max_length=120)
    code = models.CharField(max_length=8, db_index=True)
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.LOBBY)
    # The sequence number of the room's last event that is not a draft save. A draft save stores
    # its number on the draft row (Draft.seq), so a save is one row write; the room's sequence
    # number is the greater of the two: Room.seq (debate.events, docs/architecture.md).
    event_seq = models.BigIntegerField(default=0)
    # Co-facilitators: the same powers as the owner.
    cofacilitators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="cofacilitated_rooms"
    )
    anonymous = models.BooleanField(
        default=False, help_text=_("Members see code names; only facilitators see real names.")
    )
    assignment_method = models.CharField(
        max_length=10, choices=AssignmentMethod.choices, default=AssignmentMethod.BALANCED
    )
    choice_cap = models.PositiveSmallIntegerField(null=True, blank=True)
    editing_locked = models.BooleanField(default=False)
    announcement = models.CharField(max_length=280, blank=True)
    # Switch-sides rounds (structured academic controversy): drafts keep their round.
    round = models.PositiveSmallIntegerField(default=1)
    # Phase timer, synchronised by server time. Running: timer_ends_at is set. Paused:
    # timer_remaining holds what was left. Neither: no timer.
    timer_ends_at = models.DateTimeField(null=True, blank=True)
    timer_remaining = models.DurationField(null=True, blank=True)
    timer_auto_advance = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The class this room belongs to, if any. RESTRICT: a class is deleted with its rooms
    # (classroom.services.classgroup_delete), never leaving them behind.
    classgroup = models.ForeignKey(
        "classroom.ClassGroup",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="rooms",
    )
    # Set when the room was closed by the retention job (debate.services.rooms_archive_stale).
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=~Q(phase="closed"),
                name="room_code_unique_while_open",
            ),
            models.CheckConstraint(
                condition=Q(is_solo=True) | Q(owner__isnull=False),
                name="room_owner_unless_solo",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"

    @property
    def is_open(self) -> bool:
        return self.phase != Phase.CLOSED

    @property
    def seq(self) -> int:
        """The room's sequence number: the last one any of its events carried. Uses the value
        annotated by RoomQuerySet.with_seq() when there is one, else one query (an index lookup).
        Read it after the data it must cover is locked or before the data it stamps is read."""
        draft_seq = self.__dict__.get("draft_seq")
        if draft_seq is None:
            draft_seq = (
                Draft.objects.filter(room_id=self.pk)
                .order_by("-seq")
                .values_list("seq", flat=True)
                .first()
            )
        return max(self.event_seq, draft_seq or 0)


class Member(models.Model):
    """A participant of one room: a display name, no account. The session remembers them."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="members")
    display_name = models.CharField(max_length=40)
    position = models.ForeignKey(
        Position, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    # Presence: open sockets across all server processes, and the last sign of life. A member
    # counts as online while open_sockets > 0 and last_seen is recent (a killed process cannot
    # decrement its count; the heartbeat age covers that).
    open_sockets = models.IntegerField(default=0)
    last_seen = models.DateTimeField(null=True, blank=True)
    # What others see in an anonymous room.
    code_name = models.CharField(max_length=40, blank=True)
    muted = models.BooleanField(default=False)
    # A chair edits the committee recommendation with the facilitators (services.chair_set).
    is_chair = models.BooleanField(default=False)
    # A removed member's identity is refused on every page and socket until re-admitted.
    removed_at = models.DateTimeField(null=True, blank=True)
    # The class roster entry this member is (rooms of a class recognise its students).
    student = models.ForeignKey(
        "classroom.Student",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
    )

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                "room", Lower("display_name"), name="member_name_unique_in_room"
            ),
            models.UniqueConstraint(
                fields=["room", "student"],
                condition=Q(student__isnull=False),
                name="member_student_once_per_room",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name


class DraftKind(models.TextChoices):
    ARGUMENT = "argument", _("Argument")
    RISK = "risk", _("Risk of our own position")


class Draft(models.Model):
    """One slot of a member's case: argument 1..N or the risk. Versioned for conflict checks."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="drafts")
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="drafts")
    author = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="drafts")
    kind = models.CharField(max_length=10, choices=DraftKind.choices)
    slot = models.PositiveSmallIntegerField()
    round = models.PositiveSmallIntegerField(default=1)
    text = models.TextField(blank=True)
    # Moderation: a hidden draft is seen by its author and the facilitators only.
    hidden = models.BooleanField(default=False)
    needs_source = models.BooleanField(default=False)
    # Evidence cards of the room's scenario that this argument cites (services.draft_save checks).
    citations = models.ManyToManyField("EvidenceCard", blank=True, related_name="citing_drafts")
    # The facilitator's curation of the team's case: True selected, False not selected, None
    # not decided by the facilitator (the team's vote decides; see selectors.case_selection).
    picked = models.BooleanField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    # The client change id that produced this version: a resend of it is acknowledged, not applied.
    last_client_id = models.CharField(max_length=64, blank=True)
    last_editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The sequence number of the room event (draft.updated) that carried this version: written
    # in the same statement as the text, so a save is one row write (Room.seq).
    seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position__order", "kind", "slot", "created_at"]
        # No index may include a column a typing save changes (seq, text, version...): the
        # save must stay a heap-only update (migration 0010).
        constraints = [
            models.UniqueConstraint(
                fields=["author", "position", "round", "kind", "slot"], name="draft_slot_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author} {self.kind} {self.slot}"


class Feedback(models.Model):
    """A facilitator's note on a draft, seen by the draft's author and team."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="feedback")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.text[:40]


class Recommendation(models.Model):
    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="recommendation")
    decision = models.ForeignKey(
        Position, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rationale = models.TextField(blank=True)
    revisit_condition = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    last_client_id = models.CharField(max_length=64, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    # Arguments from the record that the rationale cites (drafts of this room only).
    citations = models.ManyToManyField("Draft", blank=True, related_name="cited_by")
    # The acknowledged risk of the chosen option: a risk draft from the record and/or own words.
    risk_draft = models.ForeignKey(
        "Draft", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    risk_text = models.TextField(blank=True)
    # Finalize freezes the record: the snapshot holds every text as it was at that moment
    # ({"facilitator": record, "public": record}, see selectors.record_data) and the share
    # token opens the read-only printable page without a login.
    finalized_at = models.DateTimeField(null=True, blank=True)
    frozen_record = models.JSONField(null=True, blank=True)
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        return f"Recommendation for {self.room}"

    @property
    def is_complete(self) -> bool:
        return bool(self.decision_id and self.rationale.strip() and self.revisit_condition.strip())


class CommentKind(models.TextChoices):
    REBUTTAL = "rebuttal", _("Rebuttal")
    QUESTION = "question", _("Question")


class Comment(models.Model):
    """A member's rebuttal of, or question on, another position's argument (review)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="comments")
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="comments")
    kind = models.CharField(max_length=10, choices=CommentKind.choices)
    text = models.TextField()
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=~Q(client_id=""),
                name="comment_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:40]}"


class StrongestMark(models.Model):
    """A member's pick of the strongest argument of one position (one per member and position)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="strongest_marks")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="strongest_marks")
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="+")
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="strongest_marks")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "position"], name="strongest_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} marks {self.draft_id}"


class CaseVote(models.Model):
    """A team member's vote to put one of the team's drafts into its case (team curation)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="case_votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="case_votes")
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="case_votes")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "draft"], name="case_vote_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} chooses {self.draft_id}"


class Vote(models.Model):
    """A member's vote for the committee's decision. Changeable until the vote is closed."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="votes")
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["updated_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "member"], name="vote_once_per_member"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} votes {self.position_id}"


class VoteState(models.Model):
    """When the facilitator closed the room's vote (no row: still open)."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="vote_state")
    closed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"vote of room {self.room_id} closed"


class SignoffStance(models.TextChoices):
    SIGN = "sign", _("Signed off")
    DISSENT = "dissent", _("Dissent")


class Signoff(models.Model):
    """A member signs the recommendation off, or records a dissent in one sentence."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="signoffs")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="signoffs")
    stance = models.CharField(max_length=10, choices=SignoffStance.choices)
    text = models.CharField(max_length=300, blank=True)
    # The recommendation version the member signed (a later edit is visible against it).
    rec_version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["updated_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "member"], name="signoff_once_per_member"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.stance}"


class EvidenceCard(models.Model):
    """A short piece of evidence learners can cite: data of a scenario, in our own words."""

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="cards")
    key = models.SlugField(max_length=60)
    title = models.CharField(max_length=120)
    body = models.TextField()
    source_note = models.CharField(max_length=300, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["scenario", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["scenario", "key"], name="card_key_unique"),
        ]

    def __str__(self) -> str:
        return self.title


class ReleaseApproach(models.TextChoices):
    OPEN_WEIGHTS = "open_weights", _("Open weights")
    API_ONLY = "api_only", _("API only")
    RESTRICTED = "restricted", _("Restricted")
    STAGED = "staged", _("Staged")
    OTHER = "other", _("Other")


class Trend(models.TextChoices):
    MORE_OPEN = "more_open", _("More open")
    MORE_CLOSED = "more_closed", _("More closed")
    MIXED = "mixed", _("Mixed")


class ResearchNote(models.Model):
    """One real release the room found: who, when, how, and where it says so. Shared by the
    whole room; written by a member or a facilitator."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="research_notes")
    author = models.ForeignKey(
        Member, on_delete=models.CASCADE, null=True, blank=True, related_name="research_notes"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    organisation = models.CharField(max_length=120)
    year = models.PositiveSmallIntegerField()
    month = models.PositiveSmallIntegerField()
    approach = models.CharField(max_length=20, choices=ReleaseApproach.choices)
    summary = models.CharField(max_length=300)
    source_url = models.URLField(max_length=500)
    version = models.PositiveIntegerField(default=1)
    # The client change that created the note (a resend is acknowledged, not a second note) and
    # the one that produced the current version.
    created_client_id = models.CharField(max_length=64)
    last_client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["year", "month", "organisation", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "created_client_id"], name="research_note_client_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} {self.year}-{self.month:02d}"


class TrendJudgement(models.Model):
    """A member's reading of the trend in the room's research: one per member, changeable."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="trend_judgements")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    trend = models.CharField(max_length=20, choices=Trend.choices)
    reason = models.CharField(max_length=500)
    last_client_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["updated_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "member"], name="trend_judgement_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.trend}"


class WarmupAttempt(models.Model):
    """One try at the warm-up check by one member: what they chose and how it scored."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="warmup_attempts")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="warmup_attempts")
    # item key -> chosen reason key
    answers = models.JSONField(default=dict)
    # item key -> whether the choice was right
    results = models.JSONField(default=dict)
    score = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    client_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "client_id"], name="warmup_attempt_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} {self.score}/{self.total}"

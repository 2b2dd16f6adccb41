"""The operator's view. Live data (rooms, members, drafts, recommendations) is read-only here:
changing it outside the services would skip their checks, sequence numbers and events."""

from django.contrib import admin

from .models import (
    Comment,
    Draft,
    EvidenceCard,
    Member,
    Position,
    Recommendation,
    ResearchNote,
    Room,
    Scenario,
    Signoff,
    TrendJudgement,
    Vote,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0
    fields = ["order", "key", "name", "short_name", "summary"]


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "is_builtin", "argument_slots", "risk_slots", "revisit_months"]
    list_filter = ["is_builtin"]
    search_fields = ["title", "slug"]
    inlines = [PositionInline]

    def get_inlines(self, request, obj):
        return [PositionInline, EvidenceCardInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_builtin:
            return [f.name for f in Scenario._meta.fields]
        return ["is_builtin"]

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.is_builtin


class EvidenceCardInline(admin.StackedInline):
    model = EvidenceCard
    extra = 0
    fields = ["order", "key", "title", "body", "source_note"]


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    fields = ["display_name", "position", "joined_at", "open_sockets", "last_seen"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "code",
        "phase",
        "owner",
        "classgroup",
        "scenario",
        "created_at",
        "closed_at",
        "archived_at",
    ]
    list_filter = ["phase", "scenario", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "code", "owner__username", "classgroup__name", "classgroup__code"]
    list_select_related = ["owner", "classgroup", "scenario"]
    date_hierarchy = "created_at"
    inlines = [MemberInline]


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = [
        "display_name",
        "room",
        "position",
        "student",
        "joined_at",
        "open_sockets",
        "last_seen",
    ]
    list_filter = ["position", ("student", admin.EmptyFieldListFilter)]
    search_fields = ["display_name", "room__code", "room__title", "student__display_name"]
    list_select_related = ["room", "position", "student"]


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdmin):
    list_display = ["room", "position", "author", "kind", "slot", "version", "updated_at"]
    list_filter = ["kind", "position"]
    search_fields = ["text", "author__display_name", "room__code"]
    list_select_related = ["room", "position", "author"]


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyAdmin):
    list_display = ["room", "decision", "version", "updated_at"]
    search_fields = ["room__code", "room__title", "rationale"]
    list_select_related = ["room", "decision"]


@admin.register(ResearchNote)
class ResearchNoteAdmin(ReadOnlyAdmin):
    list_display = ["room", "organisation", "year", "month", "approach", "author", "updated_at"]
    list_filter = ["approach", "year"]
    search_fields = ["organisation", "summary", "room__code"]
    list_select_related = ["room", "author"]


@admin.register(TrendJudgement)
class TrendJudgementAdmin(ReadOnlyAdmin):
    list_display = ["room", "member", "trend", "updated_at"]
    list_filter = ["trend"]


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["room", "kind", "author", "draft", "created_at"]
    list_filter = ["kind"]
    search_fields = ["text", "room__code"]
    list_select_related = ["room", "author", "draft"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["room", "member", "position", "updated_at"]
    list_select_related = ["room", "member", "position"]


@admin.register(Signoff)
class SignoffAdmin(ReadOnlyAdmin):
    list_display = ["room", "member", "stance", "rec_version", "updated_at"]
    list_filter = ["stance"]
    list_select_related = ["room", "member"]

"""The operator's view of classes and rosters. Codes, owners and students' secrets are read-only
(secrets are hashes and never shown); classes are deleted with their rooms through the app
(classroom.services.classgroup_delete), not here."""

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from .models import ClassGroup, Student


class StudentInline(admin.TabularInline):
    model = Student
    extra = 0
    fields = ["display_name", "username", "joined_at", "failed_attempts", "locked_until"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ClassGroup)
class ClassGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "owner", "student_count", "room_count", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "code", "owner__username", "coowners__username"]
    readonly_fields = ["code", "owner", "created_at"]
    fields = ["name", "code", "owner", "coowners", "created_at"]
    filter_horizontal = ["coowners"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    inlines = [StudentInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _students=Count("students", distinct=True), _rooms=Count("rooms", distinct=True)
            )
        )

    @admin.display(description=_("students"), ordering="_students")
    def student_count(self, obj):
        return obj._students

    @admin.display(description=_("rooms"), ordering="_rooms")
    def room_count(self, obj):
        return obj._rooms

    def has_add_permission(self, request):
        return False  # classes get a unique code from classroom.services.classgroup_create

    def has_delete_permission(self, request, obj=None):
        return False  # with its rooms: classroom.services.classgroup_delete


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "classgroup",
        "has_account",
        "joined_at",
        "failed_attempts",
        "locked_until",
    ]
    list_filter = ["classgroup", "joined_at"]
    search_fields = ["display_name", "username", "classgroup__name", "classgroup__code"]
    fields = [
        "display_name",
        "classgroup",
        "username",
        "joined_at",
        "failed_attempts",
        "locked_until",
    ]
    readonly_fields = fields
    list_select_related = ["classgroup"]

    @admin.display(boolean=True, description=_("account"))
    def has_account(self, obj):
        return obj.has_account

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

"""Pages of classes: the facilitator's (classes, rosters, reports, exports, deletion) and the
student's (join a class once, enter its rooms, come back on another device).

Another facilitator's class or room is a 404, never a 403: its existence is not revealed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from debate import selectors as debate_selectors
from debate import services as debate_services
from debate.errors import DomainError
from debate.models import Room

from . import exports, selectors, services
from .forms import (
    ClassCreateForm,
    CoownerForm,
    PinRejoinForm,
    StudentAccountForm,
    StudentJoinForm,
    StudentSigninForm,
)
from .identity import member_remember, student_remember
from .models import ClassGroup, Student

PENDING_CREDENTIALS_KEY = "quorum.credentials"


def _class_or_404(request: HttpRequest, classgroup_id: int) -> ClassGroup:
    classgroup = selectors.classgroup_for_facilitator(
        classgroup_id=classgroup_id, user=request.user
    )
    if classgroup is None:
        raise Http404(_("This class does not exist."))
    return classgroup


def _room_or_404(request: HttpRequest, room_id: int) -> Room:
    viewer = debate_selectors.viewer_for(room_id=room_id, user=request.user, member_id=None)
    if viewer is None or not viewer.is_facilitator:
        raise Http404(_("This room does not exist."))
    return viewer.room


def _csv_response(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _error(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, exc.message)


def _rejoin_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("classroom:rejoin_link", args=[token]))


# --- facilitators: classes ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def classes(request: HttpRequest) -> HttpResponse:
    form = ClassCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            classgroup = services.classgroup_create(
                owner=request.user, name=form.cleaned_data["name"]
            )
        except DomainError as exc:
            form.add_error(exc.details.get("field") or None, exc.message)
        else:
            return redirect("classroom:class_detail", classgroup_id=classgroup.pk)
    status = 400 if request.method == "POST" else 200
    context = {"classes": selectors.classes_for_facilitator(user=request.user), "form": form}
    return render(request, "classroom/classes.html", context, status=status)


@login_required
@require_GET
def class_detail(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    rooms = selectors.class_rooms(classgroup=classgroup)
    context = {
        "classgroup": classgroup,
        "open_rooms": [r for r in rooms if r.is_open],
        "past_rooms": [r for r in rooms if not r.is_open],
        "students": selectors.roster(classgroup=classgroup),
        "coowners": selectors.coowner_names(classgroup=classgroup),
        "coowner_form": CoownerForm(),
        "join_url": request.build_absolute_uri(
            reverse("classroom:student_join_code", args=[classgroup.code])
        ),
    }
    return render(request, "classroom/class_detail.html", context)


@login_required
@require_POST
def class_coowner_add(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    form = CoownerForm(request.POST)
    if form.is_valid():
        try:
            services.classgroup_coowner_add(
                classgroup_id=classgroup.pk,
                actor=request.user,
                username=form.cleaned_data["username"],
            )
        except DomainError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("Co-owner added."))
    else:
        messages.error(request, _("Give the facilitator's username."))
    return redirect("classroom:class_detail", classgroup_id=classgroup.pk)


@login_required
@require_POST
def class_student_reset(request: HttpRequest, classgroup_id: int, student_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    try:
        credentials = services.student_credentials_reset(
            classgroup_id=classgroup.pk, actor=request.user, student_id=student_id
        )
    except DomainError as exc:
        raise Http404(exc.message) from None
    context = {
        "classgroup": classgroup,
        "student": credentials.student,
        "rejoin_url": _rejoin_url(request, credentials.token),
        "pin": credentials.pin,
    }
    response = render(request, "classroom/credentials_reset.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def class_student_remove(request: HttpRequest, classgroup_id: int, student_id: int) -> HttpResponse:
    """GET asks for confirmation; POST takes the student off the roster."""
    classgroup = _class_or_404(request, classgroup_id)
    if request.method == "GET":
        student = classgroup.students.filter(pk=student_id).first()
        if student is None:
            raise Http404(_("This student is not on the class's roster."))
        return render(
            request,
            "classroom/confirm_remove_student.html",
            {"classgroup": classgroup, "student": student},
        )
    try:
        services.student_remove(
            classgroup_id=classgroup.pk, actor=request.user, student_id=student_id
        )
    except DomainError as exc:
        raise Http404(exc.message) from None
    messages.success(request, _("The student was taken off the roster."))
    return redirect("classroom:class_detail", classgroup_id=classgroup.pk)


# --- facilitators: reports and retention ----------------------------------------------------


@login_required
@require_GET
def class_report(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    report = selectors.class_report(classgroup=classgroup)
    return render(
        request, "classroom/class_report.html", {"classgroup": classgroup, "report": report}
    )


@login_required
@require_GET
def class_report_csv(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    body = exports.class_report_csv(report=selectors.class_report(classgroup=classgroup))
    stem = slugify(classgroup.name) or "class"
    return _csv_response(body, f"quorum-{stem}-participation.csv")


@login_required
@require_GET
def class_export(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    response = HttpResponse(
        exports.class_archive_zip(classgroup=classgroup), content_type="application/zip"
    )
    stem = slugify(classgroup.name) or "class"
    response["Content-Disposition"] = f'attachment; filename="quorum-{stem}.zip"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def class_delete(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    classgroup = _class_or_404(request, classgroup_id)
    rooms = selectors.class_rooms(classgroup=classgroup)
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            messages.error(request, _("Tick the box to confirm the deletion."))
            return redirect("classroom:class_delete", classgroup_id=classgroup.pk)
        try:
            count = services.classgroup_delete(classgroup_id=classgroup.pk, actor=request.user)
        except DomainError as exc:
            _error(request, exc)
            return redirect("classroom:class_delete", classgroup_id=classgroup.pk)
        messages.success(
            request,
            _("The class and its %(count)d rooms were deleted.") % {"count": count},
        )
        return redirect("classroom:classes")
    context = {
        "kind": "class",
        "classgroup": classgroup,
        "title": classgroup.name,
        "rooms": rooms,
        "open_rooms": [r for r in rooms if r.is_open],
        "student_count": classgroup.students.count(),
        "export_url": reverse("classroom:class_export", args=[classgroup.pk]),
        "cancel_url": reverse("classroom:class_detail", args=[classgroup.pk]),
    }
    return render(request, "classroom/confirm_delete.html", context)


@login_required
@require_GET
def room_report(request: HttpRequest, room_id: int) -> HttpResponse:
    room = _room_or_404(request, room_id)
    report = selectors.room_report(room=room)
    return render(request, "classroom/room_report.html", {"room": room, "report": report})


@login_required
@require_GET
def room_report_csv(request: HttpRequest, room_id: int) -> HttpResponse:
    room = _room_or_404(request, room_id)
    body = exports.room_report_csv(report=selectors.room_report(room=room))
    return _csv_response(body, f"quorum-{room.code.lower()}-participation.csv")


@login_required
@require_http_methods(["GET", "POST"])
def room_delete(request: HttpRequest, room_id: int) -> HttpResponse:
    room = _room_or_404(request, room_id)
    back = (
        reverse("classroom:class_detail", args=[room.classgroup_id])
        if room.classgroup_id
        else reverse("debate:home")
    )
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            messages.error(request, _("Tick the box to confirm the deletion."))
            return redirect("classroom:room_delete", room_id=room.pk)
        try:
            debate_services.room_delete(room_id=room.pk, actor=request.user)
        except DomainError as exc:
            _error(request, exc)
            return redirect("classroom:room_delete", room_id=room.pk)
        messages.success(request, _("The room and everything in it were deleted."))
        return redirect(back)
    context = {
        "kind": "room",
        "room": room,
        "title": room.title,
        "open_rooms": [room] if room.is_open else [],
        "member_count": room.members.count(),
        "export_url": reverse("debate:room_export_md", args=[room.pk]),
        "report_csv_url": reverse("classroom:room_report_csv", args=[room.pk]),
        "cancel_url": back,
    }
    return render(request, "classroom/confirm_delete.html", context)


# --- students -------------------------------------------------------------------------------


def _welcome(request: HttpRequest, credentials: services.Credentials) -> HttpResponse:
    """Remember the student in this session, keep the new secrets for one showing."""
    student = credentials.student
    student_remember(
        session=request.session, classgroup_id=student.classgroup_id, student_id=student.pk
    )
    request.session[PENDING_CREDENTIALS_KEY] = {
        "student_id": student.pk,
        "token": credentials.token,
        "pin": credentials.pin,
    }
    return redirect("classroom:student_home", classgroup_id=student.classgroup_id)


def _signed_in(request: HttpRequest, student: Student) -> HttpResponse:
    student_remember(
        session=request.session, classgroup_id=student.classgroup_id, student_id=student.pk
    )
    messages.success(request, _("Welcome back, %(name)s.") % {"name": student.display_name})
    return redirect("classroom:student_home", classgroup_id=student.classgroup_id)


@require_http_methods(["GET", "POST"])
def student_join(request: HttpRequest, code: str = "") -> HttpResponse:
    form = StudentJoinForm(request.POST or None, initial={"code": code.upper()})
    if request.method == "POST" and form.is_valid():
        try:
            credentials = services.student_join(
                code=form.cleaned_data["code"], display_name=form.cleaned_data["display_name"]
            )
        except DomainError as exc:
            form.add_error(exc.details.get("field") or None, exc.message)
        else:
            return _welcome(request, credentials)
    status = 400 if request.method == "POST" else 200
    known = selectors.students_for_session(session=request.session)
    return render(
        request, "classroom/student_join.html", {"form": form, "known": known}, status=status
    )


@require_GET
def student_home(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    student = selectors.student_for_session(session=request.session, classgroup_id=classgroup_id)
    if student is None:
        messages.info(request, _("Join the class with its code and your name first."))
        return redirect("classroom:student_join")
    pending = request.session.get(PENDING_CREDENTIALS_KEY)
    credentials = None
    if isinstance(pending, dict) and pending.get("student_id") == student.pk:
        # Shown once: the session forgets the secrets as soon as they are on screen.
        del request.session[PENDING_CREDENTIALS_KEY]
        credentials = {"rejoin_url": _rejoin_url(request, pending["token"]), "pin": pending["pin"]}
    rooms = selectors.open_rooms_for_student(student=student)
    joined = selectors.member_ids_for_student(student=student)
    context = {
        "student": student,
        "classgroup": student.classgroup,
        "rooms": [(room, room.pk in joined) for room in rooms],
        "credentials": credentials,
        "account_form": StudentAccountForm(),
    }
    response = render(request, "classroom/student_home.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def student_room_enter(request: HttpRequest, classgroup_id: int, room_id: int) -> HttpResponse:
    """One click into a room of the class: the member is created (or found) for the student."""
    student = selectors.student_for_session(session=request.session, classgroup_id=classgroup_id)
    room = Room.objects.filter(pk=room_id, classgroup_id=classgroup_id).first()
    if student is None or room is None:
        raise Http404(_("This room does not exist."))
    try:
        member = debate_services.member_join(code=room.code, display_name="", student=student)
    except DomainError as exc:
        _error(request, exc)
        return redirect("classroom:student_home", classgroup_id=classgroup_id)
    if member.room_id != room.pk:  # another open room took the code after this one closed
        raise Http404(_("This room does not exist."))
    member_remember(session=request.session, room_id=room.pk, member_id=member.pk)
    return redirect("debate:room", room_id=room.pk)


@require_POST
def student_account(request: HttpRequest, classgroup_id: int) -> HttpResponse:
    student = selectors.student_for_session(session=request.session, classgroup_id=classgroup_id)
    if student is None:
        raise Http404(_("This class does not exist."))
    form = StudentAccountForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a username and a password."))
    else:
        try:
            services.student_account_set(
                student_id=student.pk,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
            )
        except DomainError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("Your account is ready: sign in with it on any device."))
    return redirect("classroom:student_home", classgroup_id=classgroup_id)


@require_http_methods(["GET", "POST"])
def rejoin_link(request: HttpRequest, token: str) -> HttpResponse:
    """The personal link: GET asks (link previews must not sign anyone in), POST signs in."""
    try:
        student = services.student_rejoin_by_token(token=token)
    except DomainError as exc:
        return render(request, "classroom/rejoin_link.html", {"error": exc.message}, status=404)
    if request.method == "POST":
        return _signed_in(request, student)
    response = render(request, "classroom/rejoin_link.html", {"student": student})
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "POST"])
def rejoin_pin(request: HttpRequest) -> HttpResponse:
    form = PinRejoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            student = services.student_rejoin_by_pin(
                code=form.cleaned_data["code"],
                display_name=form.cleaned_data["display_name"],
                pin=form.cleaned_data["pin"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return _signed_in(request, student)
    status = 400 if request.method == "POST" else 200
    return render(request, "classroom/rejoin_pin.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def student_signin(request: HttpRequest) -> HttpResponse:
    form = StudentSigninForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            student = services.student_login(
                username=form.cleaned_data["username"], password=form.cleaned_data["password"]
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return _signed_in(request, student)
    status = 400 if request.method == "POST" else 200
    return render(request, "classroom/student_signin.html", {"form": form}, status=status)

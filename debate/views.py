from __future__ import annotations

import asyncio
import contextlib
import uuid

import segno
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classroom import selectors as classroom_selectors
from classroom.identity import member_id_for, member_remember

from . import exports, selectors, services
from .errors import DomainError
from .forms import (
    CardFormSet,
    JoinForm,
    PositionFormSet,
    RoomCreateForm,
    ScenarioForm,
    SoloResumeForm,
    SoloStartForm,
    scenario_form_data,
)
from .models import AssignmentMethod, Phase, Recommendation, Room, Scenario


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        rooms = list(selectors.rooms_for_facilitator(user=request.user))
        room_groups = [
            {
                "key": "open",
                "title": _("Open rooms"),
                "rooms": [r for r in rooms if r.is_open],
                "empty": _("No open rooms."),
            },
            {
                "key": "closed",
                "title": _("Closed rooms"),
                "rooms": [r for r in rooms if not r.is_open],
                "empty": _("No closed rooms yet."),
            },
        ]
        return render(
            request,
            "debate/dashboard.html",
            {
                "rooms": rooms,
                "room_groups": room_groups,
                "form": RoomCreateForm(
                    user=request.user, initial={"classgroup": request.GET.get("class")}
                ),
                "classes": classroom_selectors.classes_for_facilitator(user=request.user),
            },
        )
    return render(
        request, "debate/home.html", {"form": JoinForm(), "solo_form": SoloStartForm(prefix="solo")}
    )


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomCreateForm(request.POST, user=request.user)
    if not form.is_valid():
        if "classgroup" in form.errors:
            messages.error(request, _("Please choose one of your classes."))
        else:
            messages.error(request, _("Please choose a scenario."))
        return redirect("debate:home")
    try:
        room = services.room_create(
            owner=request.user,
            scenario=form.cleaned_data["scenario"],
            title=form.cleaned_data["title"],
            anonymous=form.cleaned_data["anonymous"],
            assignment_method=form.cleaned_data["assignment_method"] or AssignmentMethod.BALANCED,
            choice_cap=form.cleaned_data["choice_cap"],
            classgroup=form.cleaned_data.get("classgroup"),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("debate:home")
    return redirect("debate:room_present", room_id=room.pk)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, code: str = "") -> HttpResponse:
    # A student of the room's class is recognised: their roster name is used, not retyped.
    data = request.POST.copy() if request.method == "POST" else None
    student = classroom_selectors.student_for_room_code(
        session=request.session, code=data.get("code", "") if data is not None else code
    )
    initial = {"code": code.upper()}
    if student is not None:
        initial["display_name"] = student.display_name
        if data is not None:
            data["display_name"] = student.display_name
    form = JoinForm(data, initial=initial)
    if student is not None:
        form.fields["display_name"].widget.attrs["readonly"] = True
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_join(
                code=form.cleaned_data["code"],
                display_name=form.cleaned_data["display_name"],
                student=student,
            )
        except DomainError as exc:
            form.add_error(exc.details.get("field") or None, exc.message)
        else:
            member_remember(session=request.session, room_id=member.room_id, member_id=member.pk)
            return redirect("debate:room", room_id=member.room_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "debate/join.html", {"form": form, "student": student}, status=status)


def _viewer_or_404(request: HttpRequest, room_id: int) -> selectors.Viewer:
    viewer = selectors.viewer_for(
        room_id=room_id,
        user=request.user,
        member_id=member_id_for(session=request.session, room_id=room_id),
    )
    if viewer is None:
        raise Http404(_("You are not part of this room."))
    if viewer.is_removed:
        raise PermissionDenied(_("The facilitator removed you from this room."))
    return viewer


def room(request: HttpRequest, room_id: int) -> HttpResponse:
    viewer = selectors.viewer_for(
        room_id=room_id,
        user=request.user,
        member_id=member_id_for(session=request.session, room_id=room_id),
    )
    if viewer is None:
        if Room.objects.filter(pk=room_id, is_solo=True).exists():
            messages.info(request, _("Resume your solo room with its link, or its code and PIN."))
            return redirect("debate:solo_resume")
        if Room.objects.filter(pk=room_id).exclude(phase=Phase.CLOSED).exists():
            messages.info(request, _("Join the room with its code and your name."))
            return redirect("debate:join")
        raise Http404(_("You are not part of this room."))
    if viewer.is_removed:
        raise PermissionDenied(_("The facilitator removed you from this room."))
    config = {
        "roomId": viewer.room.pk,
        "socketPath": f"/ws/rooms/{viewer.room.pk}/",
        "role": viewer.role,
        "memberId": viewer.member.pk if viewer.member else None,
        "userId": request.user.pk if viewer.is_facilitator else None,
        "exportUrl": reverse("debate:room_export_md", args=[viewer.room.pk]),
        "exportJsonUrl": reverse("debate:room_export_json", args=[viewer.room.pk]),
        "recordUrl": reverse("debate:room_record", args=[viewer.room.pk]),
        "presentUrl": reverse("debate:room_present", args=[viewer.room.pk]),
        "maxDraftChars": settings.QUORUM["MAX_DRAFT_CHARS"],
        "maxRecommendationChars": settings.QUORUM["MAX_RECOMMENDATION_CHARS"],
        "solo": viewer.room.is_solo,
        "briefingUrl": reverse("debate:room_briefing", args=[viewer.room.pk]),
    }
    context = {"room": viewer.room, "viewer": viewer, "config": config}
    if viewer.room.is_solo:
        context.update(_solo_context(request, viewer.room))
    return render(request, "debate/room.html", context)


def _join_url(request: HttpRequest, room: Room) -> str:
    return request.build_absolute_uri(reverse("debate:join_code", args=[room.code]))


@login_required
def room_present(request: HttpRequest, room_id: int) -> HttpResponse:
    viewer = _viewer_or_404(request, room_id)
    if not viewer.is_facilitator:
        raise Http404
    join_url = _join_url(request, viewer.room)
    qr_svg = segno.make(join_url, error="m").svg_inline(
        scale=8, border=2, dark="#111", light="#fff"
    )
    config = {
        "roomId": viewer.room.pk,
        "socketPath": f"/ws/rooms/{viewer.room.pk}/",
        "role": "facilitator",
        "memberId": None,
        "userId": request.user.pk,
        "presenting": True,
        "roomUrl": reverse("debate:room", args=[viewer.room.pk]),
    }
    return render(
        request,
        "debate/present.html",
        {"room": viewer.room, "join_url": join_url, "qr_svg": qr_svg, "config": config},
    )


def _record_viewer(request: HttpRequest, room_id: int) -> selectors.Viewer:
    """Facilitators read the record at any time, members once the room is closed."""
    viewer = _viewer_or_404(request, room_id)
    solo = viewer.room.is_solo
    if not viewer.is_facilitator and not solo and viewer.room.phase != Phase.CLOSED:
        raise Http404(_("The record can be downloaded once the room is closed."))
    return viewer


def _download(body: str, content_type: str, room: Room, extension: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    filename = f"quorum-{room.code.lower()}-record.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def room_export_md(request: HttpRequest, room_id: int) -> HttpResponse:
    viewer = _record_viewer(request, room_id)
    data = selectors.record_for(viewer=viewer, room=viewer.room)
    return _download(exports.record_markdown(data=data), "text/markdown", viewer.room, "md")


@require_GET
def room_export_json(request: HttpRequest, room_id: int) -> HttpResponse:
    viewer = _record_viewer(request, room_id)
    data = selectors.record_for(viewer=viewer, room=viewer.room)
    return _download(exports.record_json(data=data), "application/json", viewer.room, "json")


def _record_page(
    request: HttpRequest, data: dict, *, room: Room, share: bool, viewer=None
) -> HttpResponse:
    links = None
    if not share:
        links = {
            "md": reverse("debate:room_export_md", args=[room.pk]),
            "json": reverse("debate:room_export_json", args=[room.pk]),
            "room": reverse("debate:room", args=[room.pk]),
        }
    vote = data.get("vote") or {}
    for count in vote.get("counts", []):
        count["percent"] = exports.bar_percent(count["count"], vote.get("total") or 0)
    return render(
        request,
        "debate/record.html",
        {
            "data": data,
            "links": links,
            "share": share,
            "phase_label": Phase(data["room"]["phase"]).label,
        },
    )


@require_GET
def room_record_page(request: HttpRequest, room_id: int) -> HttpResponse:
    """The printable record (an A4 memo through the print stylesheet)."""
    viewer = _record_viewer(request, room_id)
    data = selectors.record_for(viewer=viewer, room=viewer.room)
    return _record_page(request, data, room=viewer.room, share=False)


@require_GET
def record_shared(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only share link of a finalized record: no login, the public (frozen) record."""
    rec = (
        Recommendation.objects.select_related("room")
        .filter(share_token=token, frozen_record__isnull=False)
        .first()
        if token
        else None
    )
    if rec is None:
        raise Http404(_("This link does not open any record."))
    response = _record_page(request, rec.frozen_record["public"], room=rec.room, share=True)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: the database answers, and a message makes a round trip through
    the channel layer. 200 when both pass, 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        await sync_to_async(_database_ping)()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {exc.__class__.__name__}"
    try:
        await asyncio.wait_for(_channel_layer_round_trip(), timeout=3)
        checks["channel_layer"] = "ok"
    except Exception as exc:
        checks["channel_layer"] = f"failed: {exc.__class__.__name__}"
    failed = [name for name, result in checks.items() if result != "ok"]
    status = 503 if failed else 200
    return JsonResponse(
        {"status": "ok" if not failed else "unavailable", "failed": failed, "checks": checks},
        status=status,
    )


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")
    # A receive that is cancelled makes the pub/sub layer unsubscribe the channel; without this
    # every health check would leave a subscription behind (channels_redis has no delete_channel).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.01)


# --- solo rooms -----------------------------------------------------------------------------

SOLO_TOKENS_KEY = "quorum.solo_tokens"
SOLO_PIN_ONCE_KEY = "quorum.solo_pin_once"
# Wrong PINs per client address, across rooms (each room also locks itself after a few).
SOLO_PIN_IP_LIMIT = 20
SOLO_PIN_IP_WINDOW_SECONDS = 15 * 60


def _solo_context(request: HttpRequest, room: Room) -> dict:
    """The resume link (if this session holds it) and the PIN (only right after starting)."""
    token = request.session.get(SOLO_TOKENS_KEY, {}).get(str(room.pk))
    pin_once = request.session.get(SOLO_PIN_ONCE_KEY, {})
    pin = pin_once.pop(str(room.pk), None)
    if pin is not None:
        request.session[SOLO_PIN_ONCE_KEY] = pin_once
    link = (
        request.build_absolute_uri(reverse("debate:solo_resume_link", args=[token]))
        if token
        else None
    )
    return {"solo_link": link, "solo_pin": pin}


def _solo_enter(request: HttpRequest, member, token: str | None = None) -> HttpResponse:
    member_remember(session=request.session, room_id=member.room_id, member_id=member.pk)
    if token:
        tokens = dict(request.session.get(SOLO_TOKENS_KEY, {}))
        tokens[str(member.room_id)] = token
        request.session[SOLO_TOKENS_KEY] = tokens
    return redirect("debate:room", room_id=member.room_id)


@require_POST
def solo_start(request: HttpRequest) -> HttpResponse:
    form = SoloStartForm(request.POST, prefix="solo")
    if not form.is_valid():
        messages.error(request, _("Please choose a scenario."))
        return redirect("debate:home")
    try:
        started = services.solo_start(
            scenario_id=form.cleaned_data["scenario"].pk,
            display_name=form.cleaned_data["display_name"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("debate:home")
    pins = dict(request.session.get(SOLO_PIN_ONCE_KEY, {}))
    pins[str(started.room.pk)] = started.pin
    request.session[SOLO_PIN_ONCE_KEY] = pins
    return _solo_enter(request, started.member, started.token)


@require_GET
def solo_resume_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        member = services.solo_resume_by_token(token=token)
    except DomainError as exc:
        raise Http404(exc.message) from None
    return _solo_enter(request, member, token)


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


@require_http_methods(["GET", "POST"])
def solo_resume(request: HttpRequest) -> HttpResponse:
    form = SoloResumeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        key = f"quorum:solo-pin-failures:{_client_address(request)}"
        if cache.get(key, 0) >= SOLO_PIN_IP_LIMIT:
            form.add_error(None, _("Too many wrong PINs from this device. Try again later."))
            status = 429
        else:
            try:
                member = services.solo_resume_by_pin(
                    code=form.cleaned_data["code"], pin=form.cleaned_data["pin"]
                )
            except DomainError as exc:
                if exc.code == "wrong_pin":
                    cache.add(key, 0, SOLO_PIN_IP_WINDOW_SECONDS)
                    try:
                        cache.incr(key)
                    except ValueError:
                        cache.set(key, 1, SOLO_PIN_IP_WINDOW_SECONDS)
                form.add_error(None, exc.message)
                status = 429 if exc.code == "pin_locked" else 403
            else:
                return _solo_enter(request, member)
    elif request.method == "POST":
        status = 400
    return render(request, "debate/solo_resume.html", {"form": form}, status=status)


# --- briefing, evidence cards and custom scenarios (issue 6) ------------------------------------


def _briefing(request: HttpRequest, scenario: Scenario, room: Room | None) -> HttpResponse:
    return render(
        request,
        "debate/briefing.html",
        {
            "scenario": scenario,
            "room": room,
            "positions": list(scenario.positions.all()),
            "cards": list(scenario.cards.all()),
        },
    )


@require_GET
def room_briefing(request: HttpRequest, room_id: int) -> HttpResponse:
    """The room's scenario briefing and evidence cards, for its members and facilitators."""
    viewer = _viewer_or_404(request, room_id)
    return _briefing(request, viewer.room.scenario, viewer.room)


def _usable_scenario_or_404(request: HttpRequest, scenario_id: int) -> Scenario:
    scenario = Scenario.objects.filter(pk=scenario_id).first()
    if scenario is None or not selectors.scenario_usable_by(scenario=scenario, user=request.user):
        raise Http404(_("No such scenario."))
    return scenario


@login_required
@require_GET
def scenario_briefing(request: HttpRequest, scenario_id: int) -> HttpResponse:
    return _briefing(request, _usable_scenario_or_404(request, scenario_id), None)


@login_required
@require_GET
def scenario_list(request: HttpRequest) -> HttpResponse:
    scenarios = list(
        # Rooms of this facilitator only: other facilitators' use of the built-in one is theirs.
        selectors.scenarios_for_facilitator(user=request.user).annotate(
            room_count=Count("rooms", filter=Q(rooms__owner=request.user))
        )
    )
    return render(request, "debate/scenario_list.html", {"scenarios": scenarios})


def _scenario_forms(request: HttpRequest, initial: dict | None = None):
    data = request.POST if request.method == "POST" else None
    initial = initial or {}
    form = ScenarioForm(
        data, initial={k: v for k, v in initial.items() if k not in ("positions", "cards")}
    )
    positions = PositionFormSet(data, prefix="positions", initial=initial.get("positions"))
    cards = CardFormSet(data, prefix="cards", initial=initial.get("cards"))
    return form, positions, cards


def _scenario_editor(
    request: HttpRequest, *, scenario: Scenario | None, initial: dict | None
) -> HttpResponse:
    form, positions, cards = _scenario_forms(request, initial)
    if request.method == "POST" and form.is_valid() and positions.is_valid() and cards.is_valid():
        data = scenario_form_data(form, positions, cards)
        try:
            if scenario is None:
                saved = services.scenario_create(owner=request.user, data=data)
            else:
                saved = services.scenario_update(
                    actor=request.user, scenario_id=scenario.pk, data=data
                )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Scenario saved."))
            return redirect("debate:scenario_briefing", scenario_id=saved.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "debate/scenario_form.html",
        {"form": form, "positions": positions, "cards": cards, "scenario": scenario},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def scenario_new(request: HttpRequest) -> HttpResponse:
    initial = {
        "argument_slots": 3,
        "risk_slots": 1,
        "revisit_months": 6,
    }
    return _scenario_editor(request, scenario=None, initial=initial)


@login_required
@require_http_methods(["GET", "POST"])
def scenario_edit(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = _usable_scenario_or_404(request, scenario_id)
    if scenario.is_builtin or scenario.owner_id != request.user.pk:
        messages.info(request, _("The built-in scenario is read-only: copy it to change it."))
        return redirect("debate:scenario_list")
    if selectors.scenario_in_use(scenario=scenario):
        messages.info(request, _("A room already uses this scenario: copy it to change it."))
        return redirect("debate:scenario_list")
    return _scenario_editor(
        request, scenario=scenario, initial=selectors.scenario_data(scenario=scenario)
    )


@login_required
@require_POST
def scenario_copy(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = _usable_scenario_or_404(request, scenario_id)
    copy = services.scenario_copy(actor=request.user, scenario_id=scenario.pk)
    messages.success(request, _("Copied. Change what you like, then save."))
    return redirect("debate:scenario_edit", scenario_id=copy.pk)

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
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classroom.identity import member_id_for, member_remember

from . import exports, selectors, services
from .errors import DomainError
from .forms import (
    CardFormSet,
    JoinForm,
    PositionFormSet,
    RoomCreateForm,
    ScenarioForm,
    scenario_form_data,
)
from .models import AssignmentMethod, Phase, Room, Scenario


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
                "form": RoomCreateForm(user=request.user),
            },
        )
    return render(request, "debate/home.html", {"form": JoinForm()})


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomCreateForm(request.POST, user=request.user)
    if not form.is_valid():
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
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("debate:home")
    return redirect("debate:room_present", room_id=room.pk)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, code: str = "") -> HttpResponse:
    form = JoinForm(request.POST or None, initial={"code": code.upper()})
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_join(
                code=form.cleaned_data["code"], display_name=form.cleaned_data["display_name"]
            )
        except DomainError as exc:
            form.add_error(exc.details.get("field") or None, exc.message)
        else:
            member_remember(session=request.session, room_id=member.room_id, member_id=member.pk)
            return redirect("debate:room", room_id=member.room_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "debate/join.html", {"form": form}, status=status)


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
        "presentUrl": reverse("debate:room_present", args=[viewer.room.pk]),
        "maxDraftChars": settings.QUORUM["MAX_DRAFT_CHARS"],
        "maxRecommendationChars": settings.QUORUM["MAX_RECOMMENDATION_CHARS"],
        "briefingUrl": reverse("debate:room_briefing", args=[viewer.room.pk]),
    }
    return render(
        request, "debate/room.html", {"room": viewer.room, "viewer": viewer, "config": config}
    )


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


@require_GET
def room_export_md(request: HttpRequest, room_id: int) -> HttpResponse:
    viewer = _viewer_or_404(request, room_id)
    if not viewer.is_facilitator and viewer.room.phase != Phase.CLOSED:
        raise Http404(_("The record can be downloaded once the room is closed."))
    record = selectors.room_record(room=viewer.room, viewer=viewer)
    research = selectors.research_record(room=viewer.room, viewer=viewer)
    body = exports.record_markdown(record=record, research=research)
    response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    filename = f"quorum-{viewer.room.code.lower()}-record.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
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

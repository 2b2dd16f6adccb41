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
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from classroom.identity import member_id_for, member_remember

from . import exports, selectors, services
from .errors import DomainError
from .forms import JoinForm, RoomCreateForm
from .models import AssignmentMethod, Phase, Recommendation, Room


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
            {"rooms": rooms, "room_groups": room_groups, "form": RoomCreateForm()},
        )
    return render(request, "debate/home.html", {"form": JoinForm()})


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomCreateForm(request.POST)
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
        "exportJsonUrl": reverse("debate:room_export_json", args=[viewer.room.pk]),
        "recordUrl": reverse("debate:room_record", args=[viewer.room.pk]),
        "presentUrl": reverse("debate:room_present", args=[viewer.room.pk]),
        "maxDraftChars": settings.QUORUM["MAX_DRAFT_CHARS"],
        "maxRecommendationChars": settings.QUORUM["MAX_RECOMMENDATION_CHARS"],
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


def _record_viewer(request: HttpRequest, room_id: int) -> selectors.Viewer:
    """Facilitators read the record at any time, members once the room is closed."""
    viewer = _viewer_or_404(request, room_id)
    if not viewer.is_facilitator and viewer.room.phase != Phase.CLOSED:
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

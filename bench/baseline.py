"""The baseline Quorum is compared with: a bare Channels consumer over the same channel layer.

No database, no auth, no sessions, no validation beyond json.loads. It speaks just enough of
docs/protocol.md for bench/load.py to drive it with the same pattern as Quorum:

- the socket joins the same groups as Quorum's (room, team, member; or room, facilitators), with
  the team and member taken from the query string (`?team=2&member=17&role=member`);
- `sync` answers a `snapshot` with the room's current sequence number and the socket's team;
- `draft.save` relays a `draft.updated` to the team group and the facilitators, a `tick` to every
  other team group (3 positions + "none", as events.Audience.team does), then an `ack`, all with a
  sequence number from a per-room counter held in this process (so: one process only);
- `ping` answers `pong`.

Run: daphne -b 127.0.0.1 -p PORT bench.baseline:application  (from the project directory, with
REDIS_URL and CHANNEL_LAYER_PREFIX set; without REDIS_URL it uses the in-memory layer).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from urllib.parse import parse_qs

import django
from django.conf import settings

if not settings.configured:
    redis_url = os.environ.get("REDIS_URL", "")
    layer = (
        {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [redis_url],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "bench-baseline"),
            },
        }
        if redis_url
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-baseline-not-secret",  # noqa: S106 (nothing is signed)
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": layer},
        USE_TZ=True,
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

POSITIONS = (1, 2, 3)  # the built-in scenario has three positions
SEQ: dict[int, int] = defaultdict(int)
DRAFT_VERSIONS: dict[tuple[int, int, str, int], int] = defaultdict(int)


def _dumps(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.role = query.get("role", ["member"])[0]
        self.member_id = int(query.get("member", ["0"])[0])
        self.team = int(query.get("team", ["1"])[0])
        room = f"room.{self.room_id}"
        if self.role == "facilitator":
            self.groups_joined = [room, f"{room}.facilitators"]
        else:
            self.groups_joined = [
                room,
                f"{room}.team.{self.team}",
                f"{room}.member.{self.member_id}",
            ]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data if text_data is not None else bytes_data.decode())
        kind = message.get("type")
        if kind == "sync":
            await self.send(
                text_data=_dumps(
                    {
                        "type": "snapshot",
                        "seq": SEQ[self.room_id],
                        "me": {
                            "role": self.role,
                            "member_id": self.member_id if self.role == "member" else None,
                            "position_id": self.team if self.role == "member" else None,
                        },
                        "drafts": [],
                    }
                )
            )
        elif kind == "draft.save":
            await self._draft_save(message)
        elif kind == "ping":
            await self.send(text_data=_dumps({"type": "pong", "server_time": time.time()}))

    async def _draft_save(self, message: dict) -> None:
        room = f"room.{self.room_id}"
        key = (self.room_id, self.member_id, message.get("kind"), message.get("slot"))
        DRAFT_VERSIONS[key] += 1
        SEQ[self.room_id] += 1
        seq = SEQ[self.room_id]
        draft = {
            "id": hash(key) & 0xFFFFFFF,
            "position_id": self.team,
            "author_id": self.member_id,
            "kind": message.get("kind"),
            "slot": message.get("slot"),
            "text": message.get("text", ""),
            "version": DRAFT_VERSIONS[key],
            "last_client_id": message.get("client_id"),
        }
        full = {
            "type": "room.event",
            "event": {"type": "draft.updated", "seq": seq, "draft": draft},
        }
        tick = {"type": "room.event", "event": {"type": "tick", "seq": seq}}
        await self.channel_layer.group_send(f"{room}.team.{self.team}", full)
        await self.channel_layer.group_send(f"{room}.facilitators", full)
        for team in (*POSITIONS, "none"):
            if team != self.team:
                await self.channel_layer.group_send(f"{room}.team.{team}", tick)
        await self.send(
            text_data=_dumps(
                {
                    "type": "ack",
                    "request_type": "draft.save",
                    "client_id": message.get("client_id"),
                    "id": draft["id"],
                    "version": draft["version"],
                    "duplicate": False,
                    "seq": seq,
                }
            )
        )

    async def room_event(self, message: dict) -> None:
        await self.send(text_data=_dumps(message["event"]))


async def http_app(scope, receive, send) -> None:
    """Answers any HTTP request with 200 (readiness checks)."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": URLRouter([path("ws/rooms/<int:room_id>/", RelayConsumer.as_asgi())]),
    }
)

"""Shared fixtures: the built-in scenario, a facilitator, rooms, members, and socket clients that
drive the real ASGI application (config.asgi) with real session cookies."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections import deque
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from classroom.identity import member_remember
from debate import services
from debate.models import Member, Room, Scenario

ORIGIN = "http://localhost"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def service_reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def skip_or_fail(reason: str) -> None:
    """A test that needs a service it cannot reach skips, unless REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def scenario(db) -> Scenario:
    # The migration installs it; transactional tests flush tables, so install again (idempotent).
    return services.scenario_install_builtin()


@pytest.fixture
def facilitator(db):
    return get_user_model().objects.create_user(username="ms.rivera", password="x-Unguessable-42")


@pytest.fixture
def other_facilitator(db):
    return get_user_model().objects.create_user(username="mr.okafor", password="x-Unguessable-43")


@pytest.fixture
def room(scenario, facilitator) -> Room:
    return services.room_create(owner=facilitator, scenario=scenario, title="Period 3")


def join(room: Room, name: str) -> Member:
    return services.member_join(code=room.code, display_name=name)


def member_cookie(member: Member) -> str:
    """A session cookie that identifies `member`, as the join view would have set it."""
    session = SessionStore()
    member_remember(session=session, room_id=member.room_id, member_id=member.pk)
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def user_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Socket:
    """A WebsocketCommunicator on the real ASGI app, with helpers to read JSON events.

    `recv` reads a run of ticks sent as one frame (`{"type": "tick", "seq": 9, "from": 7}`, or
    `"ticks_from": 7` on the event numbered 10; docs/protocol.md "tick") as the ticks it stands
    for, one per call, then the event, as the browser does
    (room.js, handleTickRun): tests check which numbers a socket received, however the server
    grouped them. `recv_frame` reads the frame itself."""

    def __init__(self, room_id: int, cookie: str | None, origin: str = ORIGIN) -> None:
        from config.asgi import application

        headers = [(b"origin", origin.encode())]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.comm = WebsocketCommunicator(application, f"/ws/rooms/{room_id}/", headers=headers)
        self.unread: deque[dict[str, Any]] = deque()  # the rest of a run of ticks

    async def connect(self) -> bool:
        connected, _ = await self.comm.connect()
        return connected

    async def send(self, message: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv_frame(self, timeout: float = 3) -> dict[str, Any]:
        assert not self.unread, "a run of ticks is half read"
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        if self.unread:
            return self.unread.popleft()
        message = json.loads(await self.comm.receive_from(timeout=timeout))
        if message.get("type") == "tick" and "from" in message:
            first, last = message["from"], message["seq"]
            assert first < last, message
            self.unread.extend({"type": "tick", "seq": seq} for seq in range(first + 1, last + 1))
            return {"type": "tick", "seq": first}
        if "ticks_from" in message:  # the run just before this event, in its frame
            first = message.pop("ticks_from")
            assert first < message["seq"], message
            ticks = range(first + 1, message["seq"])
            self.unread.extend({"type": "tick", "seq": seq} for seq in ticks)
            self.unread.append(message)
            return {"type": "tick", "seq": first}
        return message

    async def nothing_more(self, timeout: float = 0.3) -> bool:
        """Whether nothing (not even the rest of a run of ticks) arrives within `timeout`."""
        return not self.unread and await self.comm.receive_nothing(timeout=timeout)

    async def recv_until(self, type_: str, timeout: float = 3) -> dict[str, Any]:
        """Read messages until one of `type_` arrives; returns it."""
        while True:
            message = await self.recv(timeout)
            if message["type"] == type_:
                return message

    async def drain(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives within `timeout` of quiet."""
        received = []
        while not await self.nothing_more(timeout):
            received.append(await self.recv())
        return received

    async def sync(self) -> dict[str, Any]:
        await self.send({"type": "sync"})
        return await self.recv_until("snapshot")

    async def closed_with(self, timeout: float = 3) -> int | None:
        self.unread.clear()
        output = await self.comm.receive_output(timeout=timeout)
        while output["type"] == "websocket.send":
            output = await self.comm.receive_output(timeout=timeout)
        assert output["type"] == "websocket.close", output
        return output.get("code")

    async def close(self) -> None:
        await self.comm.disconnect()


@asynccontextmanager
async def sockets(*specs: tuple[int, str | None]):
    """Open several sockets, sync each (so they have joined their groups), close them after."""
    opened: list[Socket] = []
    try:
        for room_id, cookie in specs:
            sock = Socket(room_id, cookie)
            assert await sock.connect()
            await sock.sync()
            opened.append(sock)
        # Presence events from the later connections reach the earlier ones; start clean (the
        # waits overlap, which keeps the suite fast).
        await asyncio.gather(*(sock.drain(0.2) for sock in opened))
        yield opened
    finally:
        for sock in opened:
            await sock.close()


a_cookie_for = sync_to_async(member_cookie)
a_user_cookie = sync_to_async(user_cookie)


@pytest.fixture(autouse=True, scope="session")
def _short_tick_runs():
    """Sockets hold a tick up to TICK_RUN_MS (600 ms) for the ticks after it. Tests read "what
    arrives before 0.2-0.3 s of quiet" (Socket.drain), which a longer run would race; with 20 ms,
    ticks that arrive together still leave as one run. tests/debate/test_socket_savings.py
    checks runs at 200 and 600 ms."""
    limits = settings.QUORUM
    default = limits["TICK_RUN_MS"]
    limits["TICK_RUN_MS"] = 20
    yield
    limits["TICK_RUN_MS"] = default


@pytest.fixture(autouse=True, scope="session")
def _private_channel_layer_prefix():
    """With Redis, this test run's groups get a prefix of their own, so runs (or servers) sharing
    the Redis never hear each other's rooms."""
    from channels.layers import channel_layers

    config = settings.CHANNEL_LAYERS["default"].get("CONFIG")
    if config is not None and "prefix" in config:
        config["prefix"] = f"quorum-test-{os.getpid()}"
        channel_layers.backends.clear()
    yield


@pytest.fixture(autouse=True)
def _close_socket_thread_connections():
    """Consumers reach the database from asgiref's single sync thread; close its connection after
    each test so PostgreSQL can drop the test database at the end."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()

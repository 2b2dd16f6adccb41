"""Helpers for the fault tests: real Daphne processes, a private redis-server, a TCP proxy that can
cut PostgreSQL off, plain HTTP (join, signup, room creation) and websocket clients that type.

Everything listens on and talks to 127.0.0.1 only. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

from debate import services
from debate.models import Member, Room
from tests.conftest import member_cookie, service_reachable, skip_or_fail

BASE_DIR = Path(settings.BASE_DIR)
# Daphne as production starts it (config/serve.py: Daphne's command line on uvloop's loop).
DAPHNE = [sys.executable, "-m", "config.serve"]
REDIS_SERVER = "/usr/bin/redis-server"
HOST = "127.0.0.1"

# Lost connections: anything a client may see when the server or its socket goes away.
DISCONNECTED = (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError)


# --- services ------------------------------------------------------------------------------


def require_live_services() -> None:
    """PostgreSQL and Redis, as the environment names them, must answer; otherwise skip (or fail
    under REQUIRE_SERVICES=1)."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url:
        skip_or_fail("DATABASE_URL is not set: the fault tests need PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        skip_or_fail(f"DATABASE_URL is not PostgreSQL ({database_url.split(':', 1)[0]})")
    if not service_reachable(database_url, 5432):
        skip_or_fail(f"PostgreSQL at {_where(database_url)} is not reachable")
    if not redis_url:
        skip_or_fail("REDIS_URL is not set: the fault tests need Redis")
    if not service_reachable(redis_url, 6379):
        skip_or_fail(f"Redis at {_where(redis_url)} is not reachable")


def _where(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def database_url_for_test(*, host: str | None = None, port: int | None = None) -> str:
    """The URL of the database this test uses (pytest-django's test_<name>), optionally through
    another host/port (the proxy)."""
    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "config.postgresql", db["ENGINE"]
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = host or db.get("HOST") or "127.0.0.1"
    port = port or int(db.get("PORT") or 5432)
    return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"


def database_address() -> tuple[str, int]:
    db = settings.DATABASES["default"]
    return db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)


# --- Daphne --------------------------------------------------------------------------------


class Daphne:
    """One real server process: `python -m config.serve -b 127.0.0.1 -p PORT
    config.asgi:application` (Daphne)."""

    def __init__(self, *, port: int, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = port
        self.env = env
        self.name = name
        self.log_path = log_dir / f"daphne-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} on port {self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
                [*DAPHNE, "-b", HOST, "-p", str(self.port), "config.asgi:application"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until the server answers HTTP at all (GET /healthz, whatever its verdict)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daphne {self.name} exited early:\n{self.log_tail()}")
            try:
                status, _headers, _body = http_request(self.port, "GET", "/healthz", timeout=2)
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"daphne {self.name} did not answer in {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def daphne_env(*, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "DJANGO_", "PYTEST", "REQUIRE_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # Groups of this run only: other runs or servers on the same Redis stay apart.
            "CHANNEL_LAYER_PREFIX": f"quorum-faults-{os.getpid()}",
            # The test process signs sessions (member cookies) with its key; the servers must agree.
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # SIGABRT makes a stuck server print every thread's stack (Cluster.dump_stacks).
            "PYTHONFAULTHANDLER": "1",
        }
    )
    env.update(extra)
    return env


# --- a private redis-server ----------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server on its own port (never the machine's shared one)."""

    def __init__(self, *, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_path = log_dir / f"redis-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return Path(REDIS_SERVER).exists()

    def start(self, timeout: float = 5) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_path.read_text()[-2000:]}")
            if self.ping():
                return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on {self.port} did not answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                sock.settimeout(0.5)
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)


# --- a TCP proxy that can cut the database off ---------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target, on its own thread and event loop (so that the test's
    loop blocking for a moment cannot stall the traffic).

    - `cut()`: every open connection is closed, and each new one is reset as soon as it is
      accepted (the client's connection attempt fails at once); `restore()` forwards again.
    - `blackhole()`: open connections are closed, new ones are accepted and never answered (a
      database host that hangs); `restore()` resets them and forwards again, `heal()` forwards
      new connections but leaves those hanging (a network that recovered: packets that were
      lost stay lost).
    - `arm_commit_trap()`: the next COMMIT a client sends (or one-query save, which commits as
      it ends) goes through, and from then on nothing
      the server answers on that connection does: the transaction is committed but the client
      never learns it (until it is killed, say).

    The listening socket stays open throughout: closing an asyncio server while it is accepting
    can leak the accepted socket (Server._attach asserts in _accept_connection2 and the error is
    swallowed), and a client connected to that leaked socket waits for ever."""

    # What commits a change, as psycopg sends it: PostgreSQL's simple-query message for COMMIT
    # (the general path's transactions), or the one-query typing save (debate/hotpath.py: the
    # room's lock and the write in one simple query, which PostgreSQL commits as it ends).
    COMMIT_MESSAGES = (
        b"Q\x00\x00\x00\x0bCOMMIT\x00",
        b"FOR UPDATE;\nUPDATE ",
        b"FOR UPDATE;\nINSERT INTO ",
    )

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tcp-proxy")
        self.server: asyncio.Server | None = None
        self.mode = "forward"  # or "refuse" or "blackhole"
        self.generation = 0  # bumped by every cut: a connection from before it is not forwarded
        self.writers: set[asyncio.StreamWriter] = set()
        self.hanging: set[asyncio.StreamWriter] = set()  # accepted by the black hole
        self.accepted = 0
        self.trap: threading.Event | None = None
        self.events: list[str] = []  # what happened, with times, for failure reports

    def _commits(self, data: bytes) -> bool:
        return any(message in data for message in self.COMMIT_MESSAGES)

    def _note(self, what: str) -> None:
        now = time.time()
        self.events.append(
            f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d} {what}"
        )

    def _call(self, coro: Any, timeout: float = 5) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self._call(self._listen())

    def restore(self) -> None:
        self._call(self._set_mode("forward"))

    def cut(self) -> None:
        self._call(self._set_mode("refuse"))

    def blackhole(self) -> None:
        self._call(self._set_mode("blackhole"))

    def heal(self) -> None:
        self._call(self._set_mode("forward", keep_hanging=True))

    def arm_commit_trap(self) -> threading.Event:
        self.trap = threading.Event()
        return self.trap

    def close(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        with contextlib.suppress(Exception):
            self.loop.close()

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, HOST, self.port, reuse_address=True, backlog=100
        )
        self._note("listening")

    async def _set_mode(self, mode: str, *, keep_hanging: bool = False) -> None:
        self._note(f"{mode}: closing {len(self.writers)} sockets")
        self.mode = mode
        self.generation += 1
        for writer in [*self.writers, *([] if keep_hanging else self.hanging)]:
            writer.transport.abort()
        self.writers.clear()
        if not keep_hanging:
            self.hanging.clear()

    async def _close(self) -> None:
        await self._set_mode("refuse")
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        number = self.accepted
        generation = self.generation
        self._note(f"#{number} accepted from {writer.get_extra_info('peername')} ({self.mode})")
        if self.mode == "refuse":
            writer.transport.abort()
            return
        if self.mode == "blackhole":
            self.hanging.add(writer)  # held open and never answered
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, TimeoutError) as exc:
            self._note(f"#{number} upstream failed: {exc!r}")
            writer.transport.abort()
            return
        if generation != self.generation:  # cut while connecting upstream
            self._note(f"#{number} dropped: cut while connecting")
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.writers.update({writer, up_writer})
        held = False

        async def client_to_server() -> None:
            nonlocal held
            try:
                while data := await reader.read(65536):
                    trap = self.trap
                    if trap is not None and not trap.is_set() and self._commits(data):
                        held = True  # before the COMMIT leaves: its reply must not get through
                        self.trap = None
                        trap.set()
                        self._note(f"#{number} commit trapped")
                    up_writer.write(data)
                    await up_writer.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                up_writer.transport.abort()

        async def server_to_client() -> None:
            try:
                while data := await up_reader.read(65536):
                    if held:
                        continue
                    writer.write(data)
                    await writer.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                writer.transport.abort()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        finally:
            self.writers.discard(writer)
            self.writers.discard(up_writer)


# --- plain HTTP ----------------------------------------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    cookies: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    timeout: float = 5,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Host": f"{HOST}:{port}"}
        body = None
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://{HOST}:{port}"
            headers["Referer"] = f"http://{HOST}:{port}{path}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class Browser:
    """A cookie jar and a few form posts against one server, like a browser would do them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _take_cookies(self, headers: http.client.HTTPMessage) -> None:
        for header in headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        status, headers, body = http_request(self.port, "GET", path, cookies=self.cookies)
        self._take_cookies(headers)
        return status, headers, body

    def post(self, path: str, data: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
        if "csrftoken" not in self.cookies:
            self.get(path)
        form = {"csrfmiddlewaretoken": self.cookies["csrftoken"], **data}
        status, headers, body = http_request(
            self.port, "POST", path, cookies=self.cookies, form=form
        )
        self._take_cookies(headers)
        return status, headers, body

    @property
    def session_cookie(self) -> str:
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={self.cookies[name]}"

    def signup(self, username: str, password: str) -> None:
        status, _headers, body = self.post(
            "/accounts/signup/",
            {"username": username, "password1": password, "password2": password},
        )
        assert status == 302, (status, body[:500])

    def create_room(self, *, scenario_id: int, title: str) -> int:
        status, headers, body = self.post(
            "/rooms/new/", {"scenario": str(scenario_id), "title": title}
        )
        assert status == 302, (status, body[:500])
        match = re.search(r"/rooms/(\d+)/", headers["Location"])
        assert match, headers["Location"]
        return int(match.group(1))

    def join(self, *, code: str, display_name: str) -> int:
        status, headers, body = self.post("/join/", {"code": code, "display_name": display_name})
        assert status == 302, (status, body[:500])
        match = re.search(r"/rooms/(\d+)/", headers["Location"])
        assert match, headers["Location"]
        return int(match.group(1))


# --- websocket clients ---------------------------------------------------------------------


class RoomClient:
    """One real websocket to /ws/rooms/<id>/ on one server, with a member's or facilitator's
    session cookie and the server's own Origin."""

    def __init__(self, *, port: int, room_id: int, cookie: str, name: str = "") -> None:
        self.port = port
        self.room_id = room_id
        self.cookie = cookie
        self.name = name
        self.ws: ClientConnection | None = None
        self.received: list[dict[str, Any]] = []  # every message, in order, across connections
        self.unread: list[dict[str, Any]] = []  # the rest of a run of ticks
        self.failed_connects = 0

    async def connect(self, timeout: float = 5) -> None:
        self.ws = await connect(
            f"ws://{HOST}:{self.port}/ws/rooms/{self.room_id}/",
            origin=Origin(f"http://{HOST}:{self.port}"),
            additional_headers={"Cookie": self.cookie},
            proxy=None,
            open_timeout=timeout,
            ping_interval=None,
            close_timeout=1,
        )

    async def connect_retrying(self, deadline: float) -> dict[str, Any]:
        """Connect and sync, retrying until `deadline` (loop time); returns the snapshot."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.connect(timeout=max(0.5, min(3, deadline - loop.time())))
                return await self.sync(timeout=3)
            except DISCONNECTED:
                self.failed_connects += 1
                await self.close()
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        """The next message; a run of ticks in one frame (docs/protocol.md, "Runs of ticks"),
        alone or before an event, is read as its ticks, one per call, as the browser reads it."""
        if self.unread:
            return self.unread.pop(0)
        assert self.ws is not None
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if message.get("type") == "tick" and "from" in message:
            ticks = [{"type": "tick", "seq": n} for n in range(message["from"], message["seq"] + 1)]
            self.received.extend(ticks)
            message, self.unread = ticks[0], ticks[1:]
            return message
        if "ticks_from" in message:  # the run just before this event, in its frame
            first = message.pop("ticks_from")
            ticks = [{"type": "tick", "seq": n} for n in range(first, message["seq"])]
            self.received.extend([*ticks, message])
            message, self.unread = ticks[0], [*ticks[1:], message]
            return message
        self.received.append(message)
        return message

    async def recv_until(self, predicate: Any, timeout: float = 3) -> dict[str, Any]:
        """Read until a message matches (a type name or a callable); returns it."""
        if isinstance(predicate, str):
            type_ = predicate
            predicate = lambda m: m.get("type") == type_  # noqa: E731
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: nothing matching within {timeout}s")
            message = await self.recv(remaining)
            if predicate(message):
                return message

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives until `quiet` seconds pass without a message."""
        got = []
        while True:
            try:
                got.append(await self.recv(quiet))
            except TimeoutError:
                return got

    async def sync(self, timeout: float = 3) -> dict[str, Any]:
        await self.send({"type": "sync"})
        return await self.recv_until("snapshot", timeout)

    async def request(self, message: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
        """Send a change and wait for its ack or error (matched by client_id)."""
        await self.send(message)
        client_id = message["client_id"]
        return await self.recv_until(
            lambda m: m.get("type") in ("ack", "error") and m.get("client_id") == client_id,
            timeout,
        )

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
            self.ws = None


# --- members who type ----------------------------------------------------------------------


@dataclass
class SlotState:
    """What one client knows of one of its draft slots."""

    kind: str
    slot: int
    words: list[str] = field(default_factory=list)  # every word typed here, in order
    text: str = ""  # the last acknowledged text
    version: int = 0  # the last acknowledged version
    draft_id: int | None = None


@dataclass
class Ack:
    client_id: str
    kind: str
    slot: int
    version: int
    text: str
    duplicate: bool


class Typist:
    """A member typing into their own slots: one word per change, each change sent only after the
    previous one was acknowledged (its base_version is the acknowledged version). The change in
    flight is `pending` until its ack arrives; like the browser's localStorage copy it survives a
    lost connection and is resent with the same client_id and base_version."""

    def __init__(
        self,
        *,
        name: str,
        member_id: int,
        cookie: str,
        room_id: int,
        port: int,
        slots: tuple[tuple[str, int], ...] = (("argument", 1), ("argument", 2)),
    ) -> None:
        self.name = name
        self.member_id = member_id
        self.client = RoomClient(port=port, room_id=room_id, cookie=cookie, name=name)
        self.slots = {(kind, slot): SlotState(kind, slot) for kind, slot in slots}
        self.pending: dict[str, Any] | None = None
        self.acks: list[Ack] = []
        self.refusals: list[dict[str, Any]] = []  # not_saved / rate_limited errors
        self.counter = 0
        self.disconnects = 0
        self.resent_duplicates = 0
        self.resent_applied = 0

    def _next_change(self) -> dict[str, Any]:
        if self.pending is not None:
            return self.pending
        keys = list(self.slots)
        state = self.slots[keys[self.counter % len(keys)]]
        self.counter += 1
        word = f"{self.name}.{state.kind[0]}{state.slot}.w{self.counter}"
        state.words.append(word)
        self.pending = {
            "type": "draft.save",
            "client_id": f"{self.name}-{self.counter}",
            "kind": state.kind,
            "slot": state.slot,
            "text": " ".join(state.words),
            "base_version": state.version,
        }
        return self.pending

    def _apply_ack(self, ack: dict[str, Any]) -> None:
        change = self.pending
        assert change is not None and ack["client_id"] == change["client_id"], (ack, change)
        state = self.slots[(change["kind"], change["slot"])]
        assert ack["version"] == state.version + 1, (
            f"{self.name}: ack {ack} is not version {state.version + 1} for {change}"
        )
        state.text = change["text"]
        state.version = ack["version"]
        state.draft_id = ack["id"]
        self.acks.append(
            Ack(
                change["client_id"],
                change["kind"],
                change["slot"],
                ack["version"],
                change["text"],
                ack["duplicate"],
            )
        )
        self.pending = None

    async def save_once(self, timeout: float = 5) -> dict[str, Any]:
        """Send the next change (or the pending one again); returns the ack or error."""
        change = self._next_change()
        reply = await self.client.request(change, timeout)
        if reply["type"] == "ack":
            self._apply_ack(reply)
        elif reply.get("code") in ("not_saved", "rate_limited"):
            self.refusals.append(reply)
        else:
            raise AssertionError(f"{self.name}: unexpected reply {reply} to {change}")
        return reply

    async def type_until(self, stop: asyncio.Event, interval: float = 0.02) -> None:
        """Keep saving until `stop` is set or the connection is lost."""
        while not stop.is_set():
            try:
                reply = await self.save_once()
            except DISCONNECTED:
                self.disconnects += 1
                await self.client.close()
                return
            await asyncio.sleep(interval if reply["type"] == "ack" else 0.1)

    async def keep_typing(self, stop: asyncio.Event, interval: float = 0.02) -> None:
        """Type until `stop`; when the connection is lost, reconnect, resync and resend."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if self.client.ws is None:
                try:
                    await self.reconnect_and_resend(loop.time() + 2)
                except DISCONNECTED:
                    continue
            await self.type_until(stop, interval)

    async def reconnect_and_resend(self, deadline: float) -> dict[str, Any]:
        """Reconnect (retrying until `deadline`), sync, check the snapshot against what this client
        knows, resend the pending change, and return the snapshot."""
        loop = asyncio.get_running_loop()
        snapshot = await self.client.connect_retrying(deadline)
        self.check_snapshot(snapshot)
        while self.pending is not None:
            change = self.pending
            state = self.slots[(change["kind"], change["slot"])]
            committed = _snapshot_has(snapshot, self.member_id, change)
            reply = await self.client.request(change)
            if reply["type"] == "error" and reply.get("code") in ("not_saved", "rate_limited"):
                if loop.time() > deadline:
                    raise AssertionError(f"{self.name}: resend still refused: {reply}")
                await asyncio.sleep(0.2)
                continue
            assert reply["type"] == "ack", f"{self.name}: resend of {change} got {reply}"
            assert reply["duplicate"] is committed, (
                f"{self.name}: the snapshot says committed={committed} but the resend ack is "
                f"{reply}"
            )
            assert reply["version"] == state.version + 1, (reply, state)
            if committed:
                self.resent_duplicates += 1
            else:
                self.resent_applied += 1
            self._apply_ack(reply)
        return snapshot

    def check_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Every own slot in the snapshot is at the acknowledged version, or one past it when the
        pending change was committed without its ack reaching us."""
        mine = {
            (d["kind"], d["slot"]): d
            for d in snapshot["drafts"]
            if d["author_id"] == self.member_id
        }
        for key, state in self.slots.items():
            draft = mine.get(key)
            if state.version == 0 and draft is None:
                continue
            assert draft is not None, f"{self.name}: acknowledged draft {key} missing from snapshot"
            if draft["version"] == state.version:
                assert draft["text"] == state.text, (self.name, key, draft, state)
                continue
            change = self.pending
            assert (
                change is not None
                and (change["kind"], change["slot"]) == key
                and draft["version"] == state.version + 1
                and draft["last_client_id"] == change["client_id"]
                and draft["text"] == change["text"]
            ), f"{self.name}: snapshot {draft} does not follow from acked {state} + {change}"


def _snapshot_has(snapshot: dict[str, Any], member_id: int, change: dict[str, Any]) -> bool:
    return any(
        d["author_id"] == member_id
        and d["kind"] == change["kind"]
        and d["slot"] == change["slot"]
        and d["last_client_id"] == change["client_id"]
        for d in snapshot["drafts"]
    )


def drafts_in_database(room_id: int) -> dict[tuple[int, str, int], dict[str, Any]]:
    """(author, kind, slot) -> text, version, last_client_id, read straight from PostgreSQL."""
    from debate.models import Draft

    return {
        (d.author_id, d.kind, d.slot): {
            "text": d.text,
            "version": d.version,
            "last_client_id": d.last_client_id,
        }
        for d in Draft.objects.filter(room_id=room_id)
    }


def check_acks_in_database(
    typists: list[Typist], db: dict[tuple[int, str, int], dict[str, Any]]
) -> None:
    """Every acknowledged change is in the database at its version or later (texts only grow, so
    a later version starts with the acknowledged text)."""
    for typist in typists:
        for ack in typist.acks:
            row = db.get((typist.member_id, ack.kind, ack.slot))
            assert row is not None, f"acknowledged {ack} of {typist.name} is not in the database"
            assert row["version"] >= ack.version, (typist.name, ack, row)
            assert row["text"].startswith(ack.text), (typist.name, ack, row)
        for key, state in typist.slots.items():
            if state.version == 0:
                continue
            row = db[(typist.member_id, *key)]
            if row["version"] == state.version:
                assert row["text"] == state.text, (typist.name, key, row, state)
            else:  # only the pending change may have been committed without an ack
                change = typist.pending
                assert change is not None, (typist.name, key, row, state)
                assert row["version"] == state.version + 1, (typist.name, key, row, state)
                assert row["last_client_id"] == change["client_id"], (row, change)
                assert row["text"] == change["text"], (row, change)


def check_clients_match_database(
    typists: list[Typist], db: dict[tuple[int, str, int], dict[str, Any]]
) -> None:
    """Each client ends identical to the database: every word typed, once, in order."""
    for typist in typists:
        assert typist.pending is None, f"{typist.name} still has {typist.pending}"
        for key, state in typist.slots.items():
            if not state.words:
                continue
            row = db.get((typist.member_id, *key))
            assert row is not None, f"{typist.name} {key} missing"
            assert row["text"] == " ".join(state.words) == state.text, (typist.name, key, row)
            assert row["version"] == state.version == len(state.words), (typist.name, key, row)


# --- rooms ---------------------------------------------------------------------------------


@dataclass
class Seat:
    member: Member
    cookie: str

    @property
    def position_id(self) -> int:
        assert self.member.position_id is not None
        return self.member.position_id


def _drafting_room(names: list[str]) -> tuple[Room, list[Seat]]:
    scenario = services.scenario_install_builtin()
    owner = get_user_model().objects.create_user(username="ms.faults", password="x-Unguessable-77")
    room = services.room_create(owner=owner, scenario=scenario, title="Fault drill")
    for name in names:
        services.member_join(code=room.code, display_name=name)
    services.phase_advance(room_id=room.pk, actor=owner, to_phase="drafting")
    seats = [Seat(m, member_cookie(m)) for m in Member.objects.filter(room=room).order_by("pk")]
    return Room.objects.get(pk=room.pk), seats


drafting_room = sync_to_async(_drafting_room)
"""A room in the drafting phase with these members on balanced teams, and their cookies."""

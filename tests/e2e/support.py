"""Helpers for the browser tests: the availability check, a real server process, and the steps a
facilitator or member takes in the UI. Nothing here imports Playwright at module level, so a
machine without it gets a clear skip (or, under REQUIRE_SERVICES=1, a failure) instead of an
import error."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

BASE_DIR = Path(__file__).resolve().parents[2]
RESULTS_DIR = BASE_DIR / "test-results"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "127.0.0.1"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PASSWORD = "Cl4ssroom-Debate!"  # a throwaway account on a throwaway database


def skip_or_fail(reason: str, *, module_level: bool = False) -> None:
    """Skip for a missing browser or service, unless REQUIRE_SERVICES=1 (then fail)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed in this environment"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no system Chromium at {CHROMIUM} (the browser tests never download one)"
    return None


def require_browser() -> None:
    """Called at the top of each test module, before it imports Playwright."""
    reason = missing_browser()
    if reason:
        skip_or_fail(f"browser tests: {reason}", module_level=True)


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or default_port), 1):
            return True
    except OSError:
        return False


class PostgresDatabase:
    """A fresh database for one run, on the server DATABASE_URL names; dropped at the end."""

    def __init__(self, url: str) -> None:
        self.base_url = url
        self.name = f"quorum_e2e_{os.getpid()}"
        parsed = urlparse(url)
        self.url = urlunparse(parsed._replace(path=f"/{self.name}"))
        self._admin_dbname = parsed.path.lstrip("/") or "postgres"

    def _admin(self) -> Any:
        import psycopg

        parsed = urlparse(self.base_url)
        kwargs = {
            "host": parsed.hostname or HOST,
            "port": parsed.port or 5432,
            "user": parsed.username or None,
            "password": parsed.password or None,
            "autocommit": True,
            "connect_timeout": 5,
        }
        # The maintenance database first (as Django does), then the one the URL names.
        for dbname in ("postgres", self._admin_dbname):
            try:
                return psycopg.connect(dbname=dbname, **kwargs)
            except psycopg.OperationalError:
                continue
        return psycopg.connect(dbname=self._admin_dbname, **kwargs)

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement, params)

    def create(self) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


@dataclass
class Server:
    """A real Daphne process serving config.asgi on a free port."""

    base_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    database: str
    channel_layer: str

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if Daphne is still closing application instances after 3 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def server_env(var_dir: Path) -> tuple[dict[str, str], PostgresDatabase | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SQLITE_PATH"))}
    env.update(
        QUORUM_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=f"{HOST},localhost",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        PYTHONUNBUFFERED="1",
    )
    database = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url:
        if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
            skip_or_fail(f"DATABASE_URL is not PostgreSQL ({database_url.split(':', 1)[0]})")
        if not reachable(database_url, 5432):
            skip_or_fail("PostgreSQL named by DATABASE_URL is not reachable")
        database = PostgresDatabase(database_url)
        env["DATABASE_URL"] = database.url
    else:
        env.pop("DATABASE_URL", None)
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        if not reachable(redis_url, 6379):
            skip_or_fail("Redis named by REDIS_URL is not reachable")
        env["REDIS_URL"] = redis_url
        # A channel-layer prefix of its own: other servers on this Redis never reach it.
        env["CHANNEL_LAYER_PREFIX"] = f"quorum-e2e-{os.getpid()}"
    else:
        env.pop("REDIS_URL", None)
    return env, database


def http_status(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our server)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def offset_room_ids(var_dir: Path, database: PostgresDatabase | None) -> int:
    """Start room ids at a random offset. Group names are built from room ids (`room.<id>...`) and
    Redis pub/sub channels are global to a Redis server, so a run starting at room 1 would exchange
    events with any other Quorum (another run, a dev server) using the same Redis."""
    first = 1_000_000 + secrets.randbelow(1_000_000_000)
    if database is not None:
        database.execute("SELECT setval(pg_get_serial_sequence('debate_room', 'id'), %s)", (first,))
    else:
        with contextlib.closing(sqlite3.connect(var_dir / "quorum.sqlite3")) as conn, conn:
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'debate_room'")
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('debate_room', ?)", (first,)
            )
    return first


def start_server(var_dir: Path, env: dict[str, str], database: PostgresDatabase | None) -> Server:
    python = Path(sys.executable)
    log_path = var_dir / "server.log"
    migrate = subprocess.run(  # noqa: S603 (fixed argv)
        [str(python), "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    offset_room_ids(var_dir, database)
    daphne = [str(python), "-m", "config.serve"]  # Daphne on uvloop, as in production
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 (fixed argv)
                [*daphne, "-b", HOST, "-p", str(port), "config.asgi:application"],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = Server(
            base_url=f"http://{HOST}:{port}",
            proc=proc,
            log_path=log_path,
            database=f"postgresql:{database.name}" if database else "sqlite",
            channel_layer="redis" if env.get("REDIS_URL") else "in-memory",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                if http_status(f"{server.base_url}/healthz") == 200:
                    return server
            time.sleep(0.1)
        last_error = server.log_tail()
        server.stop()
    raise RuntimeError(f"the server did not answer GET /healthz with 200:\n{last_error}")


# --- steps in the UI ---------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def sign_up(page: Page) -> str:
    username = unique("teach")
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#id_title")
    return username


def create_room(page: Page, title: str) -> tuple[int, str]:
    """From the dashboard: open a room; returns (room id, join code) from the projector page."""
    page.fill("#id_title", title)
    page.get_by_role("button", name="Open room").click()
    page.wait_for_url(re.compile(r"/rooms/\d+/present/$"))
    room_id = int(re.search(r"/rooms/(\d+)/present/", page.url).group(1))
    code = page.inner_text(".present-code").strip()
    assert re.fullmatch(r"[A-Z0-9-]{4,12}", code), code
    return room_id, code


def join(page: Page, code: str, name: str) -> int:
    """Join with the code as `name`; returns the member id the room page was given."""
    page.goto(f"/join/{code}/")
    page.fill("#id_display_name", name)
    page.click("button[type=submit]")
    page.wait_for_selector(".my-position")
    return room_config(page)["memberId"]


def room_config(page: Page) -> dict[str, Any]:
    return json.loads(page.locator("#room-config").text_content())


def open_console(page: Page) -> None:
    page.get_by_role("link", name="Open the facilitator console").click()
    page.wait_for_selector("#advance")


def phase_step(page: Page) -> Any:
    """The phase marked current in the banner."""
    return page.locator("#phase-banner [aria-current=step]")


def export_markdown(page: Page, room_id: int) -> str:
    """The room's record as the server has it (read from the database), through `page`'s
    session: the facilitator may download it at any phase."""
    response = page.context.request.get(f"/rooms/{room_id}/record.md")
    assert response.status == 200, response.status
    return response.text()

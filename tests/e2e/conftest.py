"""Browser tests: a real Daphne server (SQLite and the in-memory channel layer, or a fresh
PostgreSQL database and Redis when DATABASE_URL / REDIS_URL are set) driven by the system
Chromium through Playwright's sync API. On failure, every open page is saved as a screenshot in
test-results/ and the server log's tail is printed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RESULTS_DIR,
    Server,
    missing_browser,
    server_env,
    sign_up,
    skip_or_fail,
    start_server,
)

ACTION_TIMEOUT_MS = 10_000
EXPECT_TIMEOUT_MS = 10_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    setattr(item, f"e2e_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def quorum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`manage.py migrate`, then Daphne on a free port; killed (and its database dropped) after
    the session."""
    var_dir = tmp_path_factory.mktemp("quorum-e2e")
    env, database = server_env(var_dir)
    if database is not None:
        database.create()
    server = None
    try:
        server = start_server(var_dir, env, database)
        yield server
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            database.drop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    reason = missing_browser()
    if reason:
        skip_or_fail(f"browser tests: {reason}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def facilitator_login(chromium: Any, quorum_server: Server) -> dict[str, Any]:
    """Sign a facilitator up once; later contexts start from its cookies."""
    context = chromium.new_context(base_url=quorum_server.base_url)
    try:
        page = context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        sign_up(page)
        return context.storage_state()
    finally:
        context.close()


@dataclass
class Actor:
    """One person's browser context and page, with what the page saw on its socket."""

    label: str
    context: Any
    page: Any
    frames_received: list[str] = field(default_factory=list)
    frames_sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        """Record socket frames and script errors of `page` (the first one or a later tab)."""
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        page.on("pageerror", lambda exc: self.errors.append(f"{self.label}: {exc}"))
        page.on("websocket", self._on_websocket)
        return page

    def _on_websocket(self, ws: Any) -> None:
        ws.on("framereceived", lambda payload: self.frames_received.append(str(payload)))
        ws.on("framesent", lambda payload: self.frames_sent.append(str(payload)))


class Stage:
    """The people in one test. Every context is closed at the end of the test."""

    def __init__(self, browser: Any, server: Server, request: pytest.FixtureRequest) -> None:
        self.browser = browser
        self.server = server
        self.request = request
        self.actors: list[Actor] = []

    def actor(
        self, label: str, *, width: int = 1280, height: int = 860, storage_state: Any = None
    ) -> Actor:
        context = self.browser.new_context(
            base_url=self.server.base_url,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            storage_state=storage_state,
        )
        actor = Actor(label=label, context=context, page=None)
        actor.page = actor.watch(context.new_page())
        self.actors.append(actor)
        return actor

    def facilitator(self) -> Actor:
        """A facilitator already signed in (the account the session signed up once), on the
        dashboard. The whole-flow test signs up through the form itself."""
        actor = self.actor(
            "facilitator", storage_state=self.request.getfixturevalue("facilitator_login")
        )
        actor.page.goto("/")
        actor.page.wait_for_selector("#id_title")
        return actor

    def socket_log(self, last: int = 8) -> str:
        lines = []
        for actor in self.actors:
            for direction, frames in (
                ("sent", actor.frames_sent),
                ("received", actor.frames_received),
            ):
                for frame in frames[-last:]:
                    lines.append(f"{actor.label} {direction}: {frame[:300]}")
        return "\n".join(lines)

    def script_errors(self) -> list[str]:
        return [error for actor in self.actors for error in actor.errors]

    def screenshots(self, test_name: str) -> list[str]:
        RESULTS_DIR.mkdir(exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name)
        saved = []
        for actor in self.actors:
            for index, page in enumerate(actor.context.pages):
                path = RESULTS_DIR / f"{stem}-{actor.label}-{index}.png"
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(path), full_page=True, timeout=5000)
                    saved.append(str(path))
        return saved

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                actor.context.close()


@pytest.fixture
def stage(request: pytest.FixtureRequest, chromium: Any, quorum_server: Server) -> Iterator[Stage]:
    stage = Stage(chromium, quorum_server, request)
    try:
        yield stage
    finally:
        reports = [getattr(request.node, f"e2e_report_{when}", None) for when in ("setup", "call")]
        if any(report is not None and report.failed for report in reports):
            saved = stage.screenshots(request.node.name)
            print(f"screenshots: {', '.join(saved) or 'none'}")
            print(f"script errors: {stage.script_errors() or 'none'}")
            print(f"----- last socket frames -----\n{stage.socket_log()}")
            print(f"----- server ({quorum_server.database}, {quorum_server.channel_layer}) -----")
            print(quorum_server.log_tail())
        stage.close()

"""Fixtures of the fault tests: real server processes that are always killed afterwards, and rooms
set up in the test database (which the servers share: transactional tests commit their data)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests.faults.support import (
    Daphne,
    RedisServer,
    TcpProxy,
    daphne_env,
    database_url_for_test,
    free_port,
    require_live_services,
)


@pytest.fixture(scope="session", autouse=True)
def _live_services() -> None:
    # Session-scoped so that it runs before pytest-django creates the test database: with an
    # unreachable PostgreSQL these tests skip (or fail under REQUIRE_SERVICES=1) with the reason.
    require_live_services()


class Cluster:
    """Starts processes for one test and kills every one of them at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.daphnes: list[Daphne] = []
        self.redises: list[RedisServer] = []
        self.proxies: list[TcpProxy] = []

    def daphne(
        self,
        name: str,
        *,
        port: int | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        **extra_env: str,
    ) -> Daphne:
        env = daphne_env(
            database_url=database_url or database_url_for_test(),
            redis_url=redis_url or os.environ["REDIS_URL"],
            # The fault tests type faster than a person; the rate limit is not what they test.
            QUORUM_RATE_PER_SECOND="1000",
            QUORUM_RATE_BURST="1000",
            **extra_env,
        )
        server = Daphne(port=port or free_port(), env=env, log_dir=self.log_dir, name=name)
        self.daphnes.append(server)
        return server

    async def start(self, *servers: Daphne) -> None:
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))

    def redis(self) -> RedisServer:
        server = RedisServer(port=free_port(), log_dir=self.log_dir)
        self.redises.append(server)
        return server

    def proxy(self, target: tuple[str, int]) -> TcpProxy:
        proxy = TcpProxy(target)
        self.proxies.append(proxy)
        return proxy

    def dump_stacks(self) -> None:
        """Every running server prints all its threads' stacks (faulthandler, on SIGABRT)."""
        for server in self.daphnes:
            if server.proc is not None and server.proc.poll() is None:
                server.kill(signal.SIGABRT)

    def close(self) -> None:
        for server in self.daphnes:
            with contextlib.suppress(Exception):
                server.kill()
        for server in self.redises:
            with contextlib.suppress(Exception):
                server.kill()
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.close()

    def logs(self) -> str:
        parts = [
            f"----- daphne {s.name} (port {s.port}) -----\n{s.log_tail(150)}" for s in self.daphnes
        ]
        parts += [
            f"----- proxy :{p.port} -> {p.target} -----\n" + "\n".join(p.events[-60:])
            for p in self.proxies
        ]
        return "\n".join(parts)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.faults_call_failed = report.failed
    return report


@pytest.fixture
def cluster(request, tmp_path):
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        if getattr(request.node, "faults_call_failed", False):
            cluster.dump_stacks()  # a stuck server shows where it is stuck
        cluster.close()
        # Shown by pytest only when the test failed.
        print(cluster.logs())

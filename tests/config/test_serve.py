"""config.serve: Daphne's loop is uvloop's unless QUORUM_UVLOOP=0. Each case runs in a fresh
interpreter, since Daphne makes its loop once, when daphne.server is first imported. The server
processes of tests/faults and tests/e2e are started through this entry point, so those tests
run on the loop production runs on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE = Path(__file__).resolve().parents[2]
PROBE = (
    "from config import serve; chosen = serve.install_loop(); "
    "import daphne.server as s; from twisted.internet import reactor; "
    "print(chosen, type(s.twisted_loop).__module__, type(reactor._asyncioEventloop).__module__)"
)


def _probe(**env: str) -> list[str]:
    base_env = {k: v for k, v in os.environ.items() if k != "QUORUM_UVLOOP"}
    out = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", PROBE],
        cwd=BASE,
        env={**base_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.split()


def test_daphne_runs_on_uvloop_by_default():
    assert _probe() == ["uvloop", "uvloop", "uvloop"]


def test_quorum_uvloop_off_keeps_asyncio_loop():
    for off in ("0", "false", "off"):
        chosen, loop_module, reactor_loop_module = _probe(QUORUM_UVLOOP=off)
        assert chosen == "asyncio"
        assert loop_module == reactor_loop_module == "asyncio.unix_events"


def test_too_late_once_daphne_server_is_imported():
    code = "import daphne.server; from config import serve; serve.install_loop()"
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", code], cwd=BASE, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "already imported" in result.stderr


def test_the_entry_point_is_daphnes_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "config.serve", "--help"],
        cwd=BASE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--websocket_timeout" in result.stdout

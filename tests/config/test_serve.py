"""config.serve: Daphne's loop is uvloop's unless QUORUM_UVLOOP=0. Each case runs in a fresh
interpreter, since Daphne makes its loop once, when daphne.server is first imported. The server
processes of tests/faults and tests/e2e are started through this entry point, so those tests
run on the loop production runs on."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def _serve_on(listener: socket.socket, var_dir: Path) -> subprocess.Popen[bytes]:
    """config.serve adopting `listener` (--fd), as deploy/quorum@.service adopts systemd's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("PYTEST_")
    }
    env.update(
        QUORUM_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
    )
    fd = listener.fileno()
    return subprocess.Popen(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "config.serve", "--fd", str(fd), "config.asgi:application"],
        cwd=BASE,
        env=env,
        pass_fds=(fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_held_listening_socket_keeps_the_port_open_across_a_restart(tmp_path):
    """deploy/quorum@.socket holds the port while quorum@.service restarts: a connection made
    while no process runs waits in the backlog and the next process answers it (Twisted adopts
    the socket with --fd and must not shut it down when the old process stops)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}/healthz"
    first = second = None
    try:
        first = _serve_on(listener, tmp_path)
        deadline = time.monotonic() + 60
        while True:
            assert first.poll() is None, "config.serve --fd exited"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the first process never answered"
                time.sleep(0.2)
        _stop(first)
        assert first.returncode is not None

        # No process runs: the kernel still completes the connection (it is not refused).
        waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        second = _serve_on(listener, tmp_path)
        waiting.settimeout(60)
        reply = b""
        while chunk := waiting.recv(4096):
            reply += chunk
        waiting.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
        listener.close()

"""One command for the whole benchmark: `.venv/bin/python bench/run.py` (see bench/README.md).

It creates a dedicated PostgreSQL database (quorum_bench, dropped and re-created), migrates it,
creates a facilitator and rooms (bench/djtasks.py), starts real Daphne processes on free ports
(Quorum: config.asgi; baseline: bench.baseline) with DATABASE_URL, REDIS_URL and a
CHANNEL_LAYER_PREFIX unique to this invocation, joins every member through the HTTP join flow
(bench/load.py prepare), runs the scenarios of issue 8 with bench/load.py, and prints a table of
medians. Every server it starts is killed in `finally`; every step has a timeout; only 127.0.0.1.

Results: bench/out/<timestamp>/ (one JSON per run, results.json, table.txt, server logs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BASE = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
# Daphne as `make run` and deploy/quorum@.service start it: through config.serve (uvloop's loop).
DAPHNE = [str(PYTHON), "-m", "config.serve"]
PY_SPY = PYTHON.parent / "py-spy"
HOST = "127.0.0.1"
# The Makefile's DAPHNE_OPTS: the same server options as `make run` and docs/deploy.md.
DAPHNE_OPTS = [
    "--websocket_timeout", "14400",
    "--ping-interval", "20",
    "--ping-timeout", "30",
    "--websocket-max-message-size", "262144",
    "--websocket_connect_timeout", "30",
]  # fmt: skip
# The listen backlog (Twisted's default is 50: a reconnect storm overflows it). The Makefile's
# DAPHNE_BACKLOG, passed as a Twisted endpoint instead of -b/-p.
DAPHNE_BACKLOG = 2048
P99_TARGET_MS = 100.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Server:
    """One Daphne process, started fresh for each measured run (so peak RSS is that run's)."""

    def __init__(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        out: Path,
        port: int | None = None,
        *,
        held_socket: bool = False,
    ):
        self.name = name
        self.app = app
        self.env = env
        self.port = port or free_port()
        self.log_path = out / f"server-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # held_socket: this process holds the listening socket and each Daphne adopts it with
        # --fd, as systemd's deploy/quorum@.socket does for deploy/quorum@.service. Across a
        # restart the port keeps listening: connections wait in the backlog for the new process
        # instead of being refused.
        self.listener: socket.socket | None = None
        if held_socket:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((HOST, self.port))
            self.listener.listen(DAPHNE_BACKLOG)
            self.listener.set_inheritable(True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 40) -> Server:
        with self.log_path.open("ab") as logf:
            logf.write(f"\n===== start {time.ctime()} port {self.port} =====\n".encode())
            logf.flush()
            if self.listener is not None:
                bind = ["--fd", str(self.listener.fileno())]
                fds: tuple[int, ...] = (self.listener.fileno(),)
            else:
                bind = ["-e", f"tcp:port={self.port}:interface={HOST}:backlog={DAPHNE_BACKLOG}"]
                fds = ()
            self.proc = subprocess.Popen(  # noqa: S603 (fixed argv)
                [*DAPHNE, *bind, *DAPHNE_OPTS, self.app],
                cwd=BASE,
                env=self.env,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=fds,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=3) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer in {timeout}s")

    def close(self) -> None:
        """Stop the process and let go of a held listening socket."""
        self.stop()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def stop(self, grace: float = 5) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = time.strftime("%Y%m%d-%H%M%S")
        self.out = BASE / "bench" / "out" / self.run_id
        self.out.mkdir(parents=True, exist_ok=True)
        self.servers: list[Server] = []
        self.children: list[subprocess.Popen[bytes]] = []
        self.prefix = f"bench-{self.run_id}-{os.getpid()}"
        self.database_url = f"{args.pg_url.rstrip('/')}/{args.db_name}"
        self.results: dict[str, Any] = {
            "run_id": self.run_id,
            "args": vars(args),
            "machine": machine(),
            "loadavg_start": loadavg(),
            "scenarios": {},
        }
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "DJANGO_", "QUORUM_", "CHANNEL_LAYER"))
        }
        self.quorum_env = {
            **base_env,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": args.redis_url,
            "CHANNEL_LAYER_PREFIX": self.prefix,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "QUORUM_VAR_DIR": str(self.out / "var"),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.baseline_env = {
            **base_env,
            "REDIS_URL": args.redis_url,
            "CHANNEL_LAYER_PREFIX": self.prefix + "-baseline",
            "PYTHONUNBUFFERED": "1",
        }
        self.state = self.out / "state.json"
        self.redis_pid = redis_pid(args.redis_url)

    # -- processes ------------------------------------------------------------------------

    def server(
        self,
        name: str,
        *,
        baseline: bool = False,
        port: int | None = None,
        patch: str | None = None,
        held_socket: bool = False,
    ) -> Server:
        app, env = "config.asgi:application", self.quorum_env
        if baseline:
            app, env = "bench.baseline:application", self.baseline_env
        elif patch:  # bench/patched_asgi.py: the proposed fixes, tried without changing the app
            app, env = "bench.patched_asgi:application", {**env, "QUORUM_BENCH_PATCH": patch}
            if "asyncio" in patch.split(","):
                env["QUORUM_UVLOOP"] = "0"  # asyncio's own loop (config/serve.py)
        if not baseline and self.args.server_patch:  # measuring patches, on every Quorum server
            patch = ",".join(filter(None, [patch, self.args.server_patch.replace("+", ",")]))
            app, env = "bench.patched_asgi:application", {**env, "QUORUM_BENCH_PATCH": patch}
        server = Server(name, app, env, self.out, port, held_socket=held_socket)
        self.servers.append(server)
        return server

    def run_child(self, argv: list[str], *, env: dict[str, str], timeout: float) -> str:
        log("  $ " + " ".join(str(a) for a in argv)[:300])
        proc = subprocess.Popen(  # noqa: S603
            [str(a) for a in argv],
            cwd=BASE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.children.append(proc)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate(timeout=10)
            raise RuntimeError(f"timed out after {timeout}s: {argv[:3]}\n{output.decode()[-3000:]}")
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {argv[:3]}\n{text[-4000:]}")
        return text

    def load(
        self,
        command: str,
        *extra: Any,
        servers: list[Server],
        out: Path,
        timeout: float,
        wait: bool = True,
    ) -> dict[str, Any] | subprocess.Popen[bytes]:
        argv: list[Any] = [PYTHON, BASE / "bench" / "load.py", command, "--out", out]
        for server in servers:
            argv += ["--port", server.port, "--server-pid", server.pid]
        for pid in self.redis_pid:
            argv += ["--redis-pid", pid]
        argv += ["--state", self.state, *extra]
        if not wait:
            log("  $ " + " ".join(str(a) for a in argv)[:300])
            proc = subprocess.Popen(  # noqa: S603
                [str(a) for a in argv], cwd=BASE, env=self.quorum_env,
                stdout=(self.out / f"{out.stem}.log").open("wb"), stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            self.children.append(proc)
            return proc
        self.run_child(argv, env=self.quorum_env, timeout=timeout)
        return json.loads(out.read_text())

    def cleanup(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(Exception):
                    proc.wait(timeout=10)
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop(grace=3)
            with contextlib.suppress(Exception):
                server.close()

    # -- setup ----------------------------------------------------------------------------

    def setup(self) -> None:
        import psycopg

        log(f"database {self.args.db_name}: drop and create")
        with psycopg.connect(f"{self.args.pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.db_name}"')
        self.run_child([PYTHON, "manage.py", "migrate", "--noinput"], env=self.quorum_env,
                       timeout=300)  # fmt: skip
        rooms = max(self.args.stretch_rooms, -(-self.args.idle_members // self.args.members))
        setup_json = self.out / "setup.json"
        self.run_child(
            [PYTHON, "bench/djtasks.py", "setup", "--rooms", rooms, "--out", setup_json],
            env=self.quorum_env,
            timeout=300,
        )
        server = self.server("prepare").start()
        try:
            log(f"joining {rooms} x {self.args.members} members over HTTP")
            result = self.load(
                "prepare", "--setup", setup_json, "--rooms", rooms, "--members", self.args.members,
                servers=[server], out=self.out / "prepare.json", timeout=1200,
            )  # fmt: skip
            log(f"  prepared: {result}")
            self.results["prepare"] = result
        finally:
            server.stop()

    # -- scenarios ------------------------------------------------------------------------

    def typing(
        self,
        label: str,
        *,
        rooms: int,
        interval: float = 2.0,
        processes: int = 1,
        baseline: bool = False,
        duration: float | None = None,
        runs: int | None = None,
        profile: bool = False,
        db_stats: bool = True,
        patch: str | None = None,
    ) -> list[dict[str, Any]]:
        results = []
        duration = duration or self.args.duration
        for run in range(runs or self.args.runs):
            servers = [
                self.server(f"{label}-{run}-{i}", baseline=baseline, patch=patch).start()
                for i in range(processes)
            ]
            spy = None
            try:
                extra: list[Any] = [
                    "--rooms", rooms, "--members", self.args.members, "--interval", interval,
                    "--duration", duration, "--warmup", self.args.warmup,
                ]  # fmt: skip
                if baseline:
                    extra.append("--baseline")
                else:
                    extra += ["--database-url", self.database_url]
                    if not db_stats:
                        extra.append("--no-db-stats")
                log(f"{label} run {run + 1}: {rooms} rooms x {self.args.members} every "
                    f"{interval}s, {processes} process(es){' (baseline)' if baseline else ''}")  # fmt: skip
                out = self.out / f"{label}-{run}.json"
                if profile:
                    window = self.out / f"{label}-{run}.window"
                    extra += ["--window-file", window]
                    proc = self.load("typing", *extra, servers=servers, out=out, timeout=0,
                                     wait=False)  # fmt: skip
                    deadline = time.monotonic() + 600
                    while not window.exists() and proc.poll() is None:
                        if time.monotonic() > deadline:
                            raise RuntimeError("the profiled run did not start measuring")
                        time.sleep(0.1)
                    spy = self.py_spy(servers[0], label, duration - 1)
                    proc.wait(timeout=duration + 600)
                    spy.wait(timeout=120)
                    result = json.loads(out.read_text())
                else:
                    result = self.load("typing", *extra, servers=servers, out=out,
                                       timeout=duration + 600)  # fmt: skip
                result["pass"] = passes(result)
                log("  " + brief(result))
                results.append(result)
            finally:
                if spy is not None and spy.poll() is None:
                    spy.kill()
                for server in servers:
                    server.stop()
        self.results["scenarios"][label] = results
        self.save()
        return results

    def py_spy(self, server: Server, label: str, seconds: float) -> subprocess.Popen[bytes]:
        raw = self.out / f"profile-{label}.txt"
        argv = [str(PY_SPY), "record", "--pid", str(server.pid), "--duration", str(int(seconds)),
                "--rate", "100", "--format", "raw", "--threads", "--nonblocking", "--output", str(raw),
                *self.args.py_spy_args.split()]  # fmt: skip
        log("  $ " + " ".join(argv))
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603
        self.children.append(proc)
        return proc

    def ladders(self) -> None:
        """Throughput: baseline and Quorum step up the same ladder, interleaved step by step so
        that both see the same background load. A mode stops after two failing steps in a row
        (one noisy step does not end it); its throughput is its highest passing step. Repeated
        `--ladder-repeats` times; the table reports the median and the best repeat."""
        modes: dict[str, Any] = {"ladder-baseline": True, "ladder-quorum": False}
        for patch in filter(None, self.args.ladder_patches.split(",")):
            modes[f"ladder-quorum-{patch.replace('+', '-')}"] = patch.replace("+", ",")
        repeats: dict[str, list[dict[str, Any]]] = {label: [] for label in modes}
        for repeat in range(self.args.ladder_repeats):
            steps: dict[str, list[dict[str, Any]]] = {label: [] for label in modes}
            failures = dict.fromkeys(modes, 0)
            for rooms, interval in self.args.ladder:
                for label, mode in modes.items():
                    if failures[label] >= 2:
                        continue
                    result = self.typing(
                        f"{label}-{repeat}-{rooms}x{interval}", rooms=rooms, interval=interval,
                        baseline=mode is True, patch=mode if isinstance(mode, str) else None,
                        duration=self.args.ladder_duration, runs=1, db_stats=False,
                    )[0]  # fmt: skip
                    steps[label].append(result)
                    failures[label] = 0 if result["pass"] else failures[label] + 1
                if all(n >= 2 for n in failures.values()):
                    break
            for label in modes:
                passed = [s for s in steps[label] if s["pass"]]
                best = max(passed, key=lambda s: s["saves_per_s"]) if passed else None
                repeats[label].append(
                    {
                        "steps": [
                            {
                                "rooms": s["rooms"],
                                "interval": s["interval"],
                                "pass": s["pass"],
                                "p99": s["latency_ms"]["p99"],
                                "saves_per_s": s["saves_per_s"],
                                "deliveries_per_s": s["deliveries_per_s"],
                                "lost": s["lost"],
                                "server_cpu": s["cpu"]["server_pct"],
                                "loadavg": s["loadavg_start"],
                            }
                            for s in steps[label]
                        ],  # fmt: skip
                        "best_saves_per_s": best["saves_per_s"] if best else 0.0,
                        "best_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
                        "top_step_passed": bool(steps[label]) and steps[label][-1]["pass"],
                    }
                )
            for label, reps in repeats.items():
                self.results["scenarios"][label] = {
                    "repeats": reps,
                    "steps": reps[-1]["steps"],
                    "best_saves_per_s": med([r["best_saves_per_s"] for r in reps]),
                    "best_deliveries_per_s": med([r["best_deliveries_per_s"] for r in reps]),
                    "best_saves_per_s_each": [r["best_saves_per_s"] for r in reps],
                    "max_saves_per_s": max(r["best_saves_per_s"] for r in reps),
                    "top_step_passed": any(r["top_step_passed"] for r in reps),
                }
            self.save()

    def idle(self) -> dict[str, Any]:
        server = self.server("idle").start()
        try:
            log(f"idle: {self.args.idle_members} members connected on one process")
            result = self.load(
                "idle", "--count", self.args.idle_members, "--hold", self.args.idle_hold,
                servers=[server], out=self.out / "idle.json", timeout=900,
            )  # fmt: skip
        finally:
            server.stop()
        log(f"  {result}")
        self.results["scenarios"]["idle"] = result
        self.save()
        return result

    def reconnect(self) -> None:
        """--reconnect-runs rounds, the modes alternating inside each (so a drift of the machine
        touches both alike); each mode's figure is its median run by time to all in sync."""
        runs: dict[str, list[dict[str, Any]]] = {}
        for n in range(self.args.reconnect_runs):
            for mode in self.args.reconnect_modes.split(","):  # checked in main()
                key = "reconnect" if mode == "held" else "reconnect-plain"
                try:
                    runs.setdefault(key, []).append(self.reconnect_once(held=mode == "held", run=n))
                except Exception as exc:  # the other mode still runs; the failure is recorded
                    log(f"reconnect ({mode}, run {n + 1}) failed: {exc!r}")
                    self.results["scenarios"][f"reconnect-{mode}-error"] = repr(exc)
                    self.save()
        for key, results in runs.items():
            timed = sorted(
                results, key=lambda r: r["all_synced_after_restart_began_s"] or float("inf")
            )
            median = dict(timed[(len(timed) - 1) // 2])
            median["runs"] = [r["all_synced_after_restart_began_s"] for r in results]
            self.results["scenarios"][key] = median
        self.save()

    def reconnect_once(self, *, held: bool, run: int = 0) -> dict[str, Any]:
        """1,000 synced members, then a restart. held: the listening socket outlives the process
        (systemd's socket unit, as deployed); plain: the port refuses connections meanwhile."""
        key = "reconnect" if held else "reconnect-plain"
        # Each run its own files: a ready file left by the run before would start the restart
        # before this run's clients are in.
        name = f"{key}-{run}"
        server = self.server(name, held_socket=held).start()
        ready = self.out / f"{name}.ready"
        out = self.out / f"{name}.json"
        ready.unlink(missing_ok=True)
        try:
            log(
                f"{key}: {self.args.reconnect_members} members, then a server restart "
                f"({'the listening socket held across it' if held else 'the port closed meanwhile'})"
            )
            proc = self.load(
                "reconnect", "--count", self.args.reconnect_members, "--ready-file", ready,
                "--timeout", 120, servers=[server], out=out, timeout=600, wait=False,
            )  # fmt: skip
            deadline = time.monotonic() + 400
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the reconnect clients did not get ready")
                time.sleep(0.2)
            time.sleep(2)
            t_stop = time.time()
            server.stop()  # SIGTERM, as systemd does on restart
            t_stopped = time.time()
            server.start()
            t_up = time.time()
            spy = self.py_spy(server, name, 20) if self.args.profile_reconnect else None
            proc.wait(timeout=300)
            if spy is not None:
                spy.wait(timeout=120)
            result = json.loads(out.read_text())
        finally:
            server.close()
        times = result.pop("synced_times", [])
        result.update(
            {
                "restart_seconds": round(t_up - t_stop, 2),
                "stop_seconds": round(t_stopped - t_stop, 2),
                "all_synced_after_restart_began_s": round(result["all_synced"] - t_stop, 2)
                if result.get("all_synced") else None,
                "all_synced_after_server_up_s": round(result["all_synced"] - t_up, 2)
                if result.get("all_synced") else None,
                "p50_synced_after_restart_began_s": round(times[len(times) // 2] - t_stop, 2)
                if times else None,
            }
        )  # fmt: skip
        result["listening_socket_held"] = held
        log(f"  {result}")
        self.results["scenarios"][key] = result
        self.save()
        return result

    def snapshot(self) -> dict[str, Any]:
        out = self.out / "snapshot.json"
        log("snapshot build time, 40-member room")
        self.run_child(
            [PYTHON, "bench/djtasks.py", "snapshot", "--members", 40, "--iterations",
             self.args.snapshot_iterations, "--out", out],
            env=self.quorum_env, timeout=600,
        )  # fmt: skip
        result = json.loads(out.read_text())
        self.results["scenarios"]["snapshot"] = result
        self.save()
        return result

    def page(self) -> dict[str, Any]:
        server = self.server("page").start()
        try:
            result = self.load("page", servers=[server], out=self.out / "page.json", timeout=120)
        finally:
            server.stop()
        self.results["scenarios"]["page"] = result
        self.save()
        return result

    def save(self) -> None:
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2, default=str))


# --- helpers -------------------------------------------------------------------------------


def passes(r: dict[str, Any]) -> bool:
    p99 = r["latency_ms"]["p99"]
    return (
        p99 is not None
        and p99 <= P99_TARGET_MS
        and r["lost"] == 0
        and r.get("pending_at_end", 0) == 0
        and r["duplicated"] == 0
        and r["saves_per_s"] >= 0.9 * r["offered_saves_per_s"]
    )


def brief(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return (
        f"p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} max {lat['max']} ms; "
        f"{r['deliveries_per_s']} deliveries/s, {r['saves_per_s']}/{r['offered_saves_per_s']} "
        f"saves/s; lost {r['lost']} pending {r.get('pending_at_end')} dup {r['duplicated']}; "
        f"skipped {r.get('skipped_slot_busy')}; errors {r['errors']}; "
        f"cpu {r['cpu']}; rss {r['server_peak_rss_mb']} MB; db {r.get('db', {}).get('writes_per_save')}"
        f" writes/save; pass={r.get('pass')}"
    )


def redis_pid(url: str) -> list[int]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), 2) as sock:
            sock.sendall(b"INFO server\r\n")
            sock.settimeout(2)
            data = b""
            while b"process_id" not in data or not data.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("process_id:"):
                return [int(line.split(":")[1])]
    except OSError:
        pass
    return []


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def med(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    if not values:
        return None
    m = statistics.median(values)
    return round(m, 2) if isinstance(m, float) else m


def table(results: dict[str, Any]) -> str:
    sc = results["scenarios"]
    head = (
        f"{'scenario':<34} {'runs':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"{'deliv/s':>8} {'saves/s':>8} {'lost':>5} {'pend':>6} {'dup':>4} {'srvCPU%':>8} {'genCPU%':>8} "
        f"{'pgCPU%':>7} {'RSS MB':>7} {'wr/save':>8} {'tx/save':>8} {'WAL B/save':>10} {'HOT':>5} "
        f"{'p99/base':>8}"
    )
    lines = [head, "-" * len(head)]
    base_p99: dict[str, Any] = {}
    for key, runs in sc.items():
        if key.startswith("baseline") and isinstance(runs, list):
            base_p99[key.removeprefix("baseline-")] = med([r["latency_ms"]["p99"] for r in runs])
    for key, runs in sc.items():
        if not isinstance(runs, list) or key.startswith("ladder"):
            continue
        g = lambda f: med([f(r) for r in runs])  # noqa: E731
        p99 = g(lambda r: r["latency_ms"]["p99"])
        bp = base_p99.get(key.removeprefix("quorum-"))
        vs = f"{p99 / bp:.1f}x" if (bp and p99 and not key.startswith("baseline")) else ""
        lines.append(
            f"{key:<34} {len(runs):>4} {g(lambda r: r['latency_ms']['p50']):>7} "
            f"{g(lambda r: r['latency_ms']['p95']):>7} {p99:>7} "
            f"{g(lambda r: r['latency_ms']['max']):>7} {g(lambda r: r['deliveries_per_s']):>8} "
            f"{g(lambda r: r['saves_per_s']):>8} {g(lambda r: r['lost']):>5} "
            f"{g(lambda r: r.get('pending_at_end', 0)):>6} "
            f"{g(lambda r: r['duplicated']):>4} {g(lambda r: r['cpu']['server_pct']):>8} "
            f"{g(lambda r: r['cpu']['loadgen_pct']):>8} "
            f"{g(lambda r: r['cpu'].get('postgres_pct'))!s:>7} "
            f"{g(lambda r: r['server_peak_rss_mb']):>7} "
            f"{g(lambda r: r.get('db', {}).get('writes_per_save'))!s:>8} "
            f"{g(lambda r: r.get('db', {}).get('commits_per_save'))!s:>8} "
            f"{g(lambda r: r.get('db', {}).get('wal_bytes_per_save'))!s:>10} "
            f"{g(lambda r: r.get('db', {}).get('hot_update_share'))!s:>5} {vs:>8}"
        )
    out = ["\n".join(lines), ""]
    lq, lb = sc.get("ladder-quorum"), sc.get("ladder-baseline")
    if lq and lb:
        ratio = (
            (lq["best_saves_per_s"] / lb["best_saves_per_s"]) if lb["best_saves_per_s"] else None
        )
        note = " (baseline passed its top step: its ceiling is higher, the ratio an upper bound)" \
            if lb["top_step_passed"] and lb["steps"] and lb["steps"][-1]["pass"] else ""  # fmt: skip
        if lq.get("max_saves_per_s") and lb.get("max_saves_per_s"):
            out.append(
                f"best repeats: Quorum {lq['max_saves_per_s']} saves/s, baseline "
                f"{lb['max_saves_per_s']} saves/s; ratio "
                f"{lq['max_saves_per_s'] / lb['max_saves_per_s']:.2f}; each repeat: Quorum "
                f"{lq['best_saves_per_s_each']}, baseline {lb['best_saves_per_s_each']}"
            )
        out.append(
            f"sustained throughput at p99 <= {P99_TARGET_MS:.0f} ms, nothing lost: Quorum "
            f"{lq['best_saves_per_s']} saves/s ({lq['best_deliveries_per_s']} deliveries/s), "
            f"baseline {lb['best_saves_per_s']} saves/s ({lb['best_deliveries_per_s']} "
            f"deliveries/s); ratio {ratio:.2f}{note}"
            if ratio is not None
            else "ratio: n/a"
        )
        for name, lad in (("quorum", lq), ("baseline", lb)):
            for i, rep in enumerate(lad.get("repeats", [lad])):
                out.append(f"  ladder {name} #{i + 1}: " + ", ".join(
                    f"{s['rooms']}x25@{s['interval']}s p99={s['p99']} "
                    f"{'ok' if s['pass'] else 'FAIL'}" for s in rep["steps"]))  # fmt: skip
    for key, lad in sc.items():
        if key.startswith("ladder-quorum-") and isinstance(lad, dict) and lb:
            base = lb.get("max_saves_per_s") or lb["best_saves_per_s"]
            out.append(
                f"{key} (bench/patched_asgi.py): median {lad['best_saves_per_s']} saves/s, best "
                f"{lad.get('max_saves_per_s')}, each {lad.get('best_saves_per_s_each')}; ratio of "
                f"bests to the baseline {lad.get('max_saves_per_s', 0) / base:.2f}"
                if base
                else f"{key}: {lad['best_saves_per_s']}"
            )
    if "idle" in sc:
        i = sc["idle"]
        out.append(
            f"idle: {i['members']} members connected ({i['connected_at_end']} at the end), "
            f"RSS {i['rss_mb']} MB (peak {i['peak_rss_mb']}, before {i['rss_before_mb']}), "
            f"{i['kb_per_member']} kB/member, connect {i['connect_seconds']} s, "
            f"errors {i['connect_errors']}"
        )
    for key in ("reconnect", "reconnect-plain"):
        if key not in sc:
            continue
        r = sc[key]
        how = "socket held, as deployed" if r.get("listening_socket_held") else "port closed"
        out.append(
            f"{key} ({how}): {r['synced']}/{r['members']} in sync "
            f"{r['all_synced_after_restart_began_s']} s after the restart began "
            f"({r['all_synced_after_server_up_s']} s after the new server answered; restart took "
            f"{r['restart_seconds']} s; median client {r['p50_synced_after_restart_began_s']} s); "
            f"replies {r['replies']}, connect errors {r['connect_errors']}"
            + (f"; median of runs {r['runs']}" if len(r.get("runs", [])) > 1 else "")
        )
    if "snapshot" in sc:
        s = sc["snapshot"]
        out.append(
            f"snapshot (40 members, {s.get('drafts_in_room')} drafts): member "
            f"{s['member']['median_ms']:.2f} ms median (p95 {s['member']['p95_ms']:.2f}), "
            f"facilitator {s['facilitator']['median_ms']:.2f} ms median (p95 "
            f"{s['facilitator']['p95_ms']:.2f}); queries by room size {s['queries']}"
        )
    if "page" in sc:
        p = sc["page"]
        for who, page in p["situations"].items():
            out.append(
                f"room page ({who}): {page['total']} B total (target {p['target_bytes']}: "
                f"{'met' if page['meets_target'] else 'NOT met'}), by type {page['by_type']}"
            )
        out.append(
            f"room page, heaviest: {p['max']['situation']} {p['max']['total']} B; "
            f"measured by {p['method']}"
        )
    out.append(f"load average: start {results['loadavg_start']}, end {results.get('loadavg_end')}")
    return "\n".join(out)


ALL = ["snapshot", "page", "main", "stretch", "scaleout", "idle", "reconnect", "ladder"]
RECONNECT_MODES = ("held", "plain")


def parse_ladder(text: str) -> list[tuple[int, float]]:
    steps = []
    for part in text.split(","):
        rooms, _, interval = part.partition("@")
        steps.append((int(rooms), float(interval or 2)))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each main scenario")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--main-rooms", type=int, default=20)
    parser.add_argument("--stretch-rooms", type=int, default=40)
    parser.add_argument(
        "--scaleout-rooms", type=lambda t: [int(x) for x in t.split(",") if x], default=[8],
        help="rooms of the two-process runs besides --main-rooms: a load one process keeps up "
        "with, to see whether a member misses an event across processes short of overload",
    )  # fmt: skip
    parser.add_argument("--idle-members", type=int, default=2000)
    parser.add_argument("--idle-hold", type=float, default=20)
    parser.add_argument("--reconnect-members", type=int, default=1000)
    parser.add_argument("--reconnect-runs", type=int, default=1,
                        help="restarts per mode (median by time to all in sync)")  # fmt: skip
    parser.add_argument(
        "--reconnect-modes",
        default="held,plain",
        help="restarts to measure: held (the listening socket outlives the process, as "
        "deploy/quorum@.socket keeps it; the figure for the target) and plain (the port refuses "
        "connections while no process listens)",
    )
    parser.add_argument("--snapshot-iterations", type=int, default=300)
    parser.add_argument("--ladder", type=parse_ladder,
                        default=parse_ladder("2@2,3@2,4@2,5@2,6@2,8@2,10@2,12@2,14@2,16@2,20@2,30@2,40@2"),
                        help="rooms@interval steps for the throughput ladder")  # fmt: skip
    parser.add_argument("--ladder-duration", type=float, default=20)
    parser.add_argument("--ladder-repeats", type=int, default=3, help="ladders per mode (median)")
    parser.add_argument(
        "--experiments",
        default="",
        help="comma-separated patch sets for bench/patched_asgi.py, '+' joins "
        "patches: e.g. none,switch,nonblock,threads,switch+nonblock+threads",
    )
    parser.add_argument("--experiment-rooms", type=int, default=20)
    parser.add_argument("--server-patch", default="",
                        help="measuring patch sets of bench/patched_asgi.py for every Quorum "
                        "server of the run, e.g. gclog+looplag")  # fmt: skip
    parser.add_argument("--ladder-patches", default="",
                        help="also ladder Quorum with these bench/patched_asgi.py patch sets")  # fmt: skip
    parser.add_argument("--py-spy-args", default="", help="extra py-spy record flags, e.g. --idle")
    parser.add_argument("--experiment-runs", type=int, default=1)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated: {','.join(ALL)}")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also one py-spy profiled run of the main scenario (not in medians)",
    )
    parser.add_argument(
        "--profile-reconnect",
        action="store_true",
        help="py-spy the restarted server for the first 20 s of the reconnect scenario",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without database",
    )
    parser.add_argument("--db-name", default="quorum_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL",
                        "redis://127.0.0.1:6379/0"))  # fmt: skip
    args = parser.parse_args()
    only = set(args.only.split(","))
    unknown = only - set(ALL) - {"experiments", "profile"}
    if unknown:
        parser.error(f"unknown scenarios: {unknown}")
    modes = set(args.reconnect_modes.split(",")) - set(RECONNECT_MODES)
    if modes:
        parser.error(f"--reconnect-modes: {modes} not among {RECONNECT_MODES}")
    bench = Bench(args)
    log(f"results in {bench.out}; load average {loadavg()}; {bench.results['machine']}")
    m, s = args.main_rooms, args.stretch_rooms
    plan = [
        ("snapshot", bench.snapshot),
        ("page", bench.page),
        ("main", lambda: bench.typing(f"baseline-{m}x25", rooms=m, baseline=True)),
        ("main", lambda: bench.typing(f"quorum-{m}x25", rooms=m)),
        ("stretch", lambda: bench.typing(f"baseline-{s}x25", rooms=s, baseline=True)),
        ("stretch", lambda: bench.typing(f"quorum-{s}x25", rooms=s)),
        ("scaleout", lambda: bench.typing(f"quorum-{m}x25-2proc", rooms=m, processes=2)),
        *(("scaleout", lambda k=k: bench.typing(f"quorum-{k}x25-2proc", rooms=k, processes=2))
          for k in args.scaleout_rooms if k != m),
        ("profile", lambda: bench.typing(f"profile-{m}x25", rooms=m, runs=1, profile=True,
                                         db_stats=False)),
        ("idle", bench.idle),
        ("reconnect", bench.reconnect),
        ("ladder", bench.ladders),
    ]  # fmt: skip
    for patch in filter(None, args.experiments.split(",")):
        rooms = args.experiment_rooms
        plan.append(("experiments", lambda patch=patch, rooms=rooms: bench.typing(
            f"experiment-{patch.replace('+', '-')}-{rooms}x25", rooms=rooms,
            runs=args.experiment_runs, patch=patch.replace("+", ","),
            duration=args.ladder_duration)))  # fmt: skip
    if args.experiments:
        only.add("experiments")
    if args.profile:
        only.add("profile")
    try:
        bench.setup()
        for name, step in plan:
            if name not in only:
                continue
            try:
                step()
            except Exception as exc:  # one failed scenario does not cost the others
                log(f"!! {name} failed: {exc!r}"[:3000])
                bench.results.setdefault("failures", []).append(f"{name}: {exc!r}"[:3000])
                bench.cleanup()
                bench.save()
    finally:
        bench.cleanup()
        bench.results["loadavg_end"] = loadavg()
        bench.save()
    text = table(bench.results)
    (bench.out / "table.txt").write_text(text + "\n")
    print()
    print(text)


if __name__ == "__main__":
    main()

"""Quorum load generator: real members over the real join flow and the socket protocol.

Subcommands (all traffic goes to 127.0.0.1; every wait has a timeout):

  prepare    log the facilitator in (GET/POST /accounts/login/), join R x M members through
             GET /join/<code>/ + POST /join/ (CSRF cookie, session cookie kept), then move every
             room to drafting from a facilitator socket (phase.advance). Writes a state file.
  typing     R rooms x M members + one facilitator per room; every member saves a draft slot
             every `interval` seconds (+-jitter) with growing, varied text, the client_id and
             base_version following docs/protocol.md (one change in flight per slot, base_version
             from the last ack). Measures, over a window after a warm-up:
               - delivery latency: sender's send time -> each teammate's receipt of draft.updated
                 (the send time is embedded in the client_id, which draft.updated carries back as
                 last_client_id, so no shared state is needed), p50/p95/p99/max;
               - ack latency (send -> ack), deliveries/s (every event with a seq), saves/s;
               - lost / duplicated deliveries: every client must receive every seq of its room
                 after its snapshot's seq, up to the room's final seq, exactly once (ticks too);
               - server CPU and peak RSS (/proc of the server pids), PostgreSQL backend CPU,
                 the load generator's own CPU, the event loop's lag;
               - database writes per save: pg_stat_database xact_commit and
                 tup_inserted+tup_updated+tup_deleted deltas / saves, and per table; the share
                 of updates that were heap-only (HOT); WAL bytes per save.
             With --baseline the clients speak to bench/baseline.py instead (no join, no cookie).
             With several --port values members are spread over the processes (scale-out).
  idle       N members connect, sync and stay idle (browser heartbeat); server RSS.
  reconnect  N members connect and sync; when the server goes away (bench/run.py restarts it)
             each reconnects with the browser's backoff and sends sync with its last_seq;
             reports the time until every client is synced again.
  page       what the room page weighs in headless Chromium (/usr/bin/chromium): the bytes of
             every response the page fetched (HTML, CSS, JS modules, images; uncompressed; not
             the websocket) for a member and a facilitator in drafting, a member and a
             facilitator in review (a room it creates) and a solo room (one it starts) in drafting
             and in recommendation; each against the 150,000-byte target. --page-crawl: the old crawl of everything the HTML
             and the modules' imports reach, an upper bound, not what a page loads.

Output: one JSON document (--out), also summarised on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
DISCONNECTED = (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError)

WORDS = [
    "the",
    "weights",
    "once",
    "published",
    "cannot",
    "be",
    "recalled",
    "and",
    "any",
    "patch",
    "arrives",
    "too",
    "late",
    "for",
    "copies",
    "already",
    "mirrored;",
    "vetted",
    "researchers",
    "could",
    "audit",
    "the",
    "model",
    "for",
    "dangerous",
    "capabilities",
    "while",
    "an",
    "API",
    "lets",
    "the",
    "lab",
    "monitor",
    "misuse,",
    "revoke",
    "keys",
    "and",
    "rate-limit",
    "abuse,",
    "yet",
    "closed",
    "release",
    "concentrates",
    "power",
    "and",
    "blocks",
    "independent",
    "replication",
    "of",
    "safety",
    "claims;",
    "academic",
    "access",
    "by",
    "application",
    "keeps",
    "scrutiny",
    "without",
    "handing",
    "fine-tuning",
    "to",
    "everyone,",
    "although",
    "leaks",
    "happen",
    "and",
    "vetting",
    "costs",
    "money;",
    "evaluation",
    "red-team",
    "disclosure",
    "incident",
    "reporting",
    "provenance",
    "watermarking",
    "compute",
    "thresholds",
    "liability",
    "insurance",
    "export",
    "controls",
    "open",
    "science",
    "startups",
    "competition",
    "trust",
    "regulators",
    "journalists",
    "students",
    "hospitals",
    "translation",
    "tutoring",
]


# --- small helpers -------------------------------------------------------------------------


def now() -> float:
    return time.time()


def latency_spread(stats: Stats) -> dict[str, Any]:
    """p99 of teammate deliveries by second of the window (by send time) and by room."""
    by_second: dict[int, list[float]] = {}
    by_room: dict[int, list[float]] = {}
    for sent, room, ms in stats.latency_points:
        by_second.setdefault(int(sent - stats.window[0]), []).append(ms)
        by_room.setdefault(room, []).append(ms)
    acks: dict[int, list[float]] = {}
    for sent, ms in stats.ack_points:
        acks.setdefault(int(sent - stats.window[0]), []).append(ms)
    return {
        "p99_ms_by_second": [percentiles(by_second[k])["p99"] for k in sorted(by_second)],
        "p99_ms_by_room": {k: percentiles(v)["p99"] for k, v in sorted(by_room.items())},
        # the acknowledgements too: late with the deliveries, the save itself waited
        "ack_p99_ms_by_second": [percentiles(acks[k])["p99"] for k in sorted(acks)],
    }


def percentiles(samples: list[float]) -> dict[str, float | int | None]:
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(samples)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]

    return {
        "n": len(s),
        "p50": round(pick(0.50), 2),
        "p95": round(pick(0.95), 2),
        "p99": round(pick(0.99), 2),
        "max": round(s[-1], 2),
        "mean": round(statistics.fmean(s), 2),
    }


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is state (field 3); utime is field 14, stime 15 -> indexes 11, 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process including its threads (the /proc/<pid>/stat totals cover threads)."""
    return proc_cpu_seconds(pid)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Sampler:
    """Samples the servers' RSS every 0.25 s; CPU deltas over marked windows."""

    def __init__(self, pids: list[int], extra_pids: dict[str, list[int]] | None = None) -> None:
        self.pids = pids
        self.extra = extra_pids or {}
        self.peak_rss_kb: dict[int, int] = dict.fromkeys(pids, 0)
        self.task: asyncio.Task | None = None
        self.marks: dict[str, dict[str, Any]] = {}

    async def _run(self) -> None:
        while True:
            for pid in self.pids:
                rss = proc_status(pid).get("VmRSS", 0)
                self.peak_rss_kb[pid] = max(self.peak_rss_kb[pid], rss)
            await asyncio.sleep(0.25)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def mark(self, name: str) -> None:
        self.marks[name] = {
            "t": time.monotonic(),
            "server": {pid: proc_cpu_seconds(pid) for pid in self.pids},
            "self": proc_cpu_seconds(os.getpid()),
            "extra": {
                key: [proc_cpu_seconds(pid) for pid in pids] for key, pids in self.extra.items()
            },
        }

    def cpu(self, a: str, b: str) -> dict[str, Any]:
        m0, m1 = self.marks[a], self.marks[b]
        dt = m1["t"] - m0["t"]

        def pct(x0: float | None, x1: float | None) -> float | None:
            if x0 is None or x1 is None or dt <= 0:
                return None
            return round(100 * (x1 - x0) / dt, 1)

        servers = {pid: pct(m0["server"][pid], m1["server"][pid]) for pid in self.pids}
        extra = {}
        for key in self.extra:
            total = 0.0
            for x0, x1 in zip(m0["extra"][key], m1["extra"][key], strict=True):
                if x0 is not None and x1 is not None:
                    total += x1 - x0
            extra[key] = round(100 * total / dt, 1) if dt > 0 else None
        return {
            "seconds": round(dt, 2),
            "server_pct": round(sum(v or 0 for v in servers.values()), 1),
            "server_pct_each": list(servers.values()),
            "loadgen_pct": pct(m0["self"], m1["self"]),
            **{f"{k}_pct": v for k, v in extra.items()},
        }


class LoopLag:
    """The load generator's own event loop: late by how much, and when (a stall here delays
    what it measures, acknowledgements and deliveries alike)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.points: list[tuple[float, float]] = []  # (wall time, ms late)
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            late = (time.monotonic() - t - 0.05) * 1000
            self.samples.append(late)
            self.points.append((now(), late))

    def max_by_second(self, window: tuple[float, float]) -> list[float]:
        by_second: dict[int, float] = {}
        for t, ms in self.points:
            if window[0] <= t < window[1]:
                k = int(t - window[0])
                by_second[k] = max(by_second.get(k, 0.0), ms)
        return [round(by_second[k], 1) for k in sorted(by_second)]

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        return percentiles(self.samples)


# --- PostgreSQL statistics -----------------------------------------------------------------


class PgStats:
    """pg_stat_database / pg_stat_user_tables of the bench database (read in a thread)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.conn = None

    def _connect(self):
        import psycopg

        if self.conn is None:
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        return self.conn

    def _read(self) -> dict[str, Any]:
        conn = self._connect()
        with conn.cursor() as cur:
            cur.execute(
                "select xact_commit, tup_inserted, tup_updated, tup_deleted from pg_stat_database "
                "where datname = current_database()"
            )
            commit, ins, upd, dele = cur.fetchone()
            cur.execute(
                "select relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd "
                "from pg_stat_user_tables where n_tup_ins + n_tup_upd + n_tup_del > 0"
            )
            rows = cur.fetchall()
            tables = {name: (i, u, d) for name, i, u, d, _ in rows}
            # The WAL position (the whole server's: the benchmark is alone on it)
            cur.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            wal = cur.fetchone()[0]
        return {
            "commits": commit,
            "writes": ins + upd + dele,
            "tables": tables,
            "updates": sum(r[2] for r in rows),
            "hot_updates": sum(r[4] for r in rows),
            "wal": wal,
        }

    def _backend_pids(self) -> list[int]:
        conn = self._connect()
        with conn.cursor() as cur:
            cur.execute(
                "select pid from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid()"
            )
            return [row[0] for row in cur.fetchall()]

    async def read(self) -> dict[str, Any] | None:
        if not self.url:
            return None
        return await asyncio.to_thread(self._read)

    async def backend_pids(self) -> list[int]:
        if not self.url:
            return []
        return await asyncio.to_thread(self._backend_pids)

    async def settled(self, quiet: float = 11.0, timeout: float = 30.0) -> dict[str, Any] | None:
        """Statistics once they stop moving. A PostgreSQL 15 backend that flushed its counters
        less than a second ago keeps new ones pending for up to 10 s (PGSTAT_IDLE_INTERVAL), so
        the counters must stay still for `quiet` seconds before they are trusted."""
        if not self.url:
            return None
        deadline = time.monotonic() + timeout
        last = await self.read()
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            current = await self.read()
            if current["writes"] != last["writes"]:
                still_since = time.monotonic()
            last = current
            if time.monotonic() - still_since >= quiet:
                break
        return last

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any], saves: int) -> dict[str, Any]:
        if not a or not b:
            return {}
        per = (lambda x: round(x / saves, 3)) if saves else (lambda x: None)
        tables = {}
        for name, (i1, u1, d1) in b["tables"].items():
            i0, u0, d0 = a["tables"].get(name, (0, 0, 0))
            changed = (i1 - i0) + (u1 - u0) + (d1 - d0)
            if changed:
                tables[name] = per(changed)
        return {
            "commits": b["commits"] - a["commits"],
            "writes": b["writes"] - a["writes"],
            "commits_per_save": per(b["commits"] - a["commits"]),
            "writes_per_save": per(b["writes"] - a["writes"]),
            "writes_per_save_by_table": tables,
            # heap-only updates rewrite the row on its page and write no index entry
            "hot_update_share": round((b["hot_updates"] - a["hot_updates"]) / updates, 3)
            if (updates := b["updates"] - a["updates"])
            else None,
            "wal_bytes_per_save": per(b["wal"] - a["wal"]),
        }

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()


class PgWaits:
    """What the bench database's sessions wait for, sampled every `every` seconds in a thread
    of its own (pg_stat_activity): per second of the window, the most sessions running a
    statement at once, the most waiting for a lock, the oldest running statement, and the wait
    events seen. Finds a stall on the database's side (a lock queue, an I/O or WAL wait) that
    the clients only see as late acknowledgements."""

    QUERY = """
select extract(epoch from clock_timestamp()), pid, state, wait_event_type, wait_event,
       extract(epoch from clock_timestamp() - query_start) * 1000,
       cardinality(pg_blocking_pids(pid)), left(query, 60)
from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'
"""

    def __init__(self, url: str | None, every: float = 0.1) -> None:
        self.url = url
        self.every = every
        self.samples: list[tuple[float, list[tuple[Any, ...]]]] = []
        self._stop = None
        self._thread = None

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(self.QUERY).fetchall()
                t = float(rows[0][0]) if rows else time.time()
                self.samples.append((t, [r[1:] for r in rows]))

    def start(self) -> None:
        import threading

        if not self.url:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            await asyncio.to_thread(self._thread.join, 5)

    def by_second(self, window: tuple[float, float]) -> dict[str, Any]:
        seconds: dict[int, dict[str, Any]] = {}
        for t, rows in self.samples:
            if not window[0] <= t < window[1]:
                continue
            k = int(t - window[0])
            sec = seconds.setdefault(
                k, {"active": 0, "lock_waits": 0, "oldest_ms": 0.0, "events": Counter()}
            )
            active = [r for r in rows if r[1] == "active"]
            sec["active"] = max(sec["active"], len(active))
            sec["lock_waits"] = max(sec["lock_waits"], sum(1 for r in rows if r[5]))
            for r in rows:
                if r[4] is not None and r[1] != "idle":
                    sec["oldest_ms"] = max(sec["oldest_ms"], round(float(r[4]), 1))
                if r[2]:
                    sec["events"][f"{r[2]}:{r[3]}"] += 1
        keys = sorted(seconds)
        return {
            "samples": sum(1 for t, _ in self.samples if window[0] <= t < window[1]),
            "active_max_by_second": [seconds[k]["active"] for k in keys],
            "lock_waits_max_by_second": [seconds[k]["lock_waits"] for k in keys],
            "oldest_statement_ms_by_second": [seconds[k]["oldest_ms"] for k in keys],
            "wait_events_by_second": [dict(seconds[k]["events"].most_common(4)) for k in keys],
        }


# --- HTTP (the real join flow) -------------------------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    cookies: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, http.client.HTTPMessage, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Host": f"{HOST}:{port}", "Accept-Encoding": "identity"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        new = {}
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            new[name.strip()] = rest.split(";", 1)[0]
        return resp.status, resp.headers, data, new
    finally:
        conn.close()


CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def _csrf_form_get(port: int, path: str, cookies: dict[str, str]) -> str:
    status, _h, body, new = http_request(port, "GET", path, cookies=cookies)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    cookies.update(new)
    match = CSRF_INPUT.search(body)
    if not match:
        raise RuntimeError(f"GET {path}: no CSRF token in the form")
    return match.group(1).decode()


def login(port: int, username: str, password: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    token = _csrf_form_get(port, "/accounts/login/", cookies)
    status, headers, _body, new = http_request(
        port,
        "POST",
        "/accounts/login/",
        cookies=cookies,
        form={"username": username, "password": password, "csrfmiddlewaretoken": token},
    )
    cookies.update(new)
    if status != 302 or "sessionid" not in cookies:
        raise RuntimeError(f"login failed: HTTP {status}")
    return {"sessionid": cookies["sessionid"]}


def join(port: int, code: str, name: str) -> tuple[int, str]:
    """GET /join/<code>/ (CSRF cookie), POST /join/ -> (room_id, sessionid)."""
    cookies: dict[str, str] = {}
    token = _csrf_form_get(port, f"/join/{code}/", cookies)
    status, headers, _body, new = http_request(
        port,
        "POST",
        "/join/",
        cookies=cookies,
        form={"code": code, "display_name": name, "csrfmiddlewaretoken": token},
    )
    cookies.update(new)
    location = headers.get("Location", "")
    match = re.search(r"/rooms/(\d+)/", location)
    if status != 302 or not match or "sessionid" not in cookies:
        raise RuntimeError(f"join {code} as {name}: HTTP {status} {location}")
    return int(match.group(1)), cookies["sessionid"]


# --- sockets -------------------------------------------------------------------------------


def ws_uri(port: int, room_id: int, query: str = "") -> str:
    return f"ws://{HOST}:{port}/ws/rooms/{room_id}/" + (f"?{query}" if query else "")


async def ws_open(
    port: int, room_id: int, *, cookie: str | None, query: str = "", timeout: float = 30
) -> ClientConnection:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else None
    return await connect(
        ws_uri(port, room_id, query),
        origin=Origin(f"http://{HOST}:{port}"),
        additional_headers=headers,
        open_timeout=timeout,
        close_timeout=2,
        ping_interval=None,  # browsers answer the server's pings but send none
        compression=None,
        max_size=2**22,
        max_queue=None,
    )


@dataclass
class Slot:
    kind: str
    slot: int
    version: int = 0
    words: list[str] = field(default_factory=list)
    inflight: str | None = None  # client_id of the change in flight


@dataclass
class Seat:
    """One socket of the run: a member (or a facilitator when member_index is None)."""

    room_index: int
    room_id: int
    member_index: int | None
    port: int
    cookie: str | None = None
    query: str = ""

    @property
    def tag(self) -> str:
        m = "f" if self.member_index is None else str(self.member_index)
        return f"r{self.room_index}m{m}"


class Stats:
    def __init__(self) -> None:
        self.window = (float("inf"), float("inf"))
        self.latency: list[float] = []
        self.fac_latency: list[float] = []
        self.ack_latency: list[float] = []
        self.ack_points: list[tuple[float, float]] = []  # (send time, ms), in the window
        # (send time, room, ms) of each teammate delivery: when in the window, and in which
        # room, the late ones were (a stall of the whole process, or one room's backlog)
        self.latency_points: list[tuple[float, int, float]] = []
        self.deliveries_in_window = 0
        self.frames_in_window = 0  # event frames: a run of ticks is one frame, many deliveries
        self.acks_in_window = 0
        self.saves_sent = 0
        self.saves_sent_in_window = 0
        self.acks = 0
        self.acks_written = 0
        self.acks_duplicate = 0
        self.skipped_busy = 0
        self.errors: Counter[str] = Counter()
        self.connect_errors: Counter[str] = Counter()
        self.disconnects = 0

    def in_window(self, t: float) -> bool:
        return self.window[0] <= t < self.window[1]


class Client:
    def __init__(self, seat: Seat, stats: Stats, rng: random.Random) -> None:
        self.seat = seat
        self.stats = stats
        self.rng = rng
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task | None = None
        self.snap_seq: int | None = None
        self.last_seq: int | None = None
        self.seqs: Counter[int] = Counter()
        self.position_id: int | None = None
        self.member_id: int | None = None
        self.slots = [
            Slot("argument", 1),
            Slot("argument", 2),
            Slot("argument", 3),
            Slot("risk", 1),
        ]
        self.sent_at: dict[str, float] = {}
        self.counter = 0
        self.synced = asyncio.Event()
        self.snapshot_waiter: asyncio.Future | None = None
        self.closed = asyncio.Event()
        self.last_received = time.monotonic()
        self.synced_at: float | None = None

    @property
    def is_facilitator(self) -> bool:
        return self.seat.member_index is None

    async def open(self, timeout: float = 30) -> None:
        self.synced.clear()
        self.closed.clear()
        self.ws = await ws_open(
            self.seat.port,
            self.seat.room_id,
            cookie=self.seat.cookie,
            query=self.seat.query,
            timeout=timeout,
        )
        self.reader = asyncio.create_task(self._read())

    async def sync(self, last_seq: int | None = None, timeout: float = 30) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self.snapshot_waiter = loop.create_future()
        await self.ws.send(json.dumps({"type": "sync", "last_seq": last_seq}))
        reply = await asyncio.wait_for(self.snapshot_waiter, timeout)
        return reply

    async def _read(self) -> None:
        stats = self.stats
        try:
            async for raw in self.ws:
                t = now()
                self.last_received = time.monotonic()
                msg = json.loads(raw)
                kind = msg.get("type")
                seq = msg.get("seq")
                if kind in ("snapshot", "synced"):
                    if kind == "snapshot":
                        me = msg.get("me") or {}
                        self.position_id = me.get("position_id")
                        self.member_id = me.get("member_id")
                        self._adopt_versions(msg.get("drafts") or [])
                    if self.snap_seq is None:
                        self.snap_seq = msg["seq"]
                    self.last_seq = max(self.last_seq or 0, msg["seq"])
                    self.synced.set()
                    self.synced_at = t
                    if self.snapshot_waiter is not None and not self.snapshot_waiter.done():
                        self.snapshot_waiter.set_result(msg)
                    continue
                if seq is not None and kind not in ("ack",):
                    # A tick may stand for a run of numbers (docs/protocol.md, "tick"): each
                    # counts as a delivery, for the lost/duplicate accounting too.
                    # An event may carry the run just before it as `ticks_from`.
                    first = msg.get("from") if kind == "tick" else msg.get("ticks_from")
                    numbers = range(first, seq + 1) if isinstance(first, int) else (seq,)
                    for number in numbers:
                        self.seqs[number] += 1
                    if self.last_seq is None or seq > self.last_seq:
                        self.last_seq = seq
                    if stats.in_window(t):
                        stats.deliveries_in_window += len(numbers)
                        stats.frames_in_window += 1
                    if kind == "draft.updated":
                        self._delivered(msg["draft"], t)
                elif kind == "ack":
                    self._acked(msg, t)
                elif kind == "error":
                    stats.errors[msg.get("code", "?")] += 1
                    self._refused(msg)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _adopt_versions(self, drafts: list[dict[str, Any]]) -> None:
        if self.member_id is None:
            return
        for d in drafts:
            if d.get("author_id") != self.member_id or d.get("position_id") != self.position_id:
                continue
            for slot in self.slots:
                if slot.kind == d.get("kind") and slot.slot == d.get("slot"):
                    if (d.get("version") or 0) > slot.version:
                        # Go on editing the stored text, as the browser would.
                        slot.version = d["version"]
                        slot.words = (d.get("text") or "").split()

    def _delivered(self, draft: dict[str, Any], t: float) -> None:
        client_id = draft.get("last_client_id") or ""
        tag, _, rest = client_id.partition("-")
        if not rest or tag == self.seat.tag:
            return  # our own change coming back, or not from the load generator
        try:
            sent = int(rest.rsplit("-", 1)[1]) / 1e6
        except (IndexError, ValueError):
            return
        if self.stats.in_window(sent):
            ms = (t - sent) * 1000
            if self.is_facilitator:
                self.stats.fac_latency.append(ms)
            else:
                self.stats.latency.append(ms)
                self.stats.latency_points.append((sent, self.seat.room_index, ms))

    def _slot_of(self, client_id: str) -> Slot | None:
        for slot in self.slots:
            if slot.inflight == client_id:
                return slot
        return None

    def _acked(self, msg: dict[str, Any], t: float) -> None:
        stats = self.stats
        slot = self._slot_of(msg.get("client_id"))
        stats.acks += 1
        if msg.get("duplicate"):
            stats.acks_duplicate += 1
        else:
            stats.acks_written += 1
            if stats.in_window(t):
                stats.acks_in_window += 1
        sent = self.sent_at.pop(msg.get("client_id"), None)
        if sent is not None and stats.in_window(sent):
            stats.ack_latency.append((t - sent) * 1000)
            stats.ack_points.append((sent, (t - sent) * 1000))
        if slot is not None:
            slot.version = msg["version"]
            slot.inflight = None

    def _refused(self, msg: dict[str, Any]) -> None:
        slot = self._slot_of(msg.get("client_id"))
        self.sent_at.pop(msg.get("client_id"), None)
        if slot is None:
            return
        current = msg.get("current") or {}
        if msg.get("code") == "conflict" and isinstance(current.get("version"), int):
            slot.version = current["version"]
        slot.inflight = None

    def _text(self, slot: Slot) -> str:
        slot.words.extend(self.rng.choice(WORDS) for _ in range(self.rng.randint(1, 4)))
        if len(slot.words) > 70:  # keep editing inside a paragraph, not growing for ever
            del slot.words[: self.rng.randint(5, 30)]
        return " ".join(slot.words)

    async def save(self) -> bool:
        free = [s for s in self.slots if s.inflight is None]
        if not free or self.ws is None:
            self.stats.skipped_busy += 1
            return False
        slot = self.rng.choice(free)
        self.counter += 1
        t = now()
        client_id = f"{self.seat.tag}-{self.counter}-{int(t * 1e6)}"
        message = {
            "type": "draft.save",
            "client_id": client_id,
            "kind": slot.kind,
            "slot": slot.slot,
            "position_id": self.position_id,
            "text": self._text(slot),
            "base_version": slot.version,
        }
        slot.inflight = client_id
        self.sent_at[client_id] = t
        await self.ws.send(json.dumps(message))
        self.stats.saves_sent += 1
        if self.stats.in_window(t):
            self.stats.saves_sent_in_window += 1
        return True

    def inflight(self) -> int:
        return sum(1 for s in self.slots if s.inflight is not None)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


async def open_all(clients: list[Client], concurrency: int, stats: Stats, timeout: float) -> float:
    """Connect and sync every client, `concurrency` handshakes at a time; returns the seconds."""
    sem = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()

    async def one(client: Client) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    await client.open(timeout)
                    await client.sync(None, timeout)
                    return
                except DISCONNECTED as exc:
                    stats.connect_errors[_exc_name(exc)] += 1
                    await client.close()
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise RuntimeError(f"{client.seat.tag} could not connect")

    await asyncio.gather(*(one(c) for c in clients))
    return time.monotonic() - t0


def _exc_name(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


# --- seats from the state file / for the baseline ------------------------------------------


def seats_for(args: argparse.Namespace, ports: list[int], rooms: int, members: int) -> list[Seat]:
    seats: list[Seat] = []
    if args.baseline:
        for r in range(rooms):
            room_id = 10_000 + r
            seats.append(Seat(r, room_id, None, ports[0], query="role=facilitator&member=0"))
            for m in range(members):
                team = 1 + m % 3
                member_id = r * 1000 + m + 1
                seats.append(
                    Seat(
                        r,
                        room_id,
                        m,
                        ports[m % len(ports)],
                        query=f"role=member&team={team}&member={member_id}",
                    )
                )
        return seats
    state = json.loads(Path(args.state).read_text())
    if rooms > len(state["rooms"]):
        raise SystemExit(f"the state has {len(state['rooms'])} rooms, {rooms} asked")
    for r, room in enumerate(state["rooms"][:rooms]):
        seats.append(Seat(r, room["id"], None, ports[0], cookie=state["facilitator"]))
        if members > len(room["members"]):
            raise SystemExit(f"room {room['id']} has {len(room['members'])} members")
        for m, cookie in enumerate(room["members"][:members]):
            seats.append(Seat(r, room["id"], m, ports[m % len(ports)], cookie=cookie))
    return seats


# --- subcommands ---------------------------------------------------------------------------


async def cmd_prepare(args: argparse.Namespace) -> dict[str, Any]:
    setup = json.loads(Path(args.setup).read_text())
    port = args.port[0]
    rooms = setup["rooms"][: args.rooms]
    t0 = time.monotonic()
    facilitator = await asyncio.to_thread(login, port, setup["username"], setup["password"])
    pool = ThreadPoolExecutor(max_workers=args.http_concurrency)
    loop = asyncio.get_running_loop()
    jobs = []
    for room in rooms:
        for m in range(args.members):
            jobs.append(loop.run_in_executor(pool, join, port, room["code"], f"Member {m + 1:02d}"))
    results = await asyncio.gather(*jobs)
    pool.shutdown()
    joined = time.monotonic() - t0
    by_room: dict[int, list[str]] = defaultdict(list)
    for room_id, cookie in results:
        by_room[room_id].append(cookie)
    # phase.advance to drafting, from a facilitator socket per room (assigns positions).
    sem = asyncio.Semaphore(10)

    async def advance(room: dict[str, Any]) -> None:
        async with sem:
            ws = await ws_open(port, room["id"], cookie=facilitator["sessionid"])
            try:
                await ws.send(json.dumps({"type": "phase.advance", "to": "drafting"}))
                async with asyncio.timeout(60):
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg.get("type") == "phase.changed" or (
                            msg.get("type") == "error" and msg.get("code") == "wrong_phase"
                        ):
                            return
                        if msg.get("type") == "error":
                            raise RuntimeError(f"phase.advance in room {room['id']}: {msg}")
            finally:
                await ws.close()

    await asyncio.gather(*(advance(room) for room in rooms))
    state = {
        "facilitator": facilitator["sessionid"],
        "rooms": [
            {"id": room["id"], "code": room["code"], "members": by_room[room["id"]]}
            for room in rooms
        ],
    }
    Path(args.state).write_text(json.dumps(state))
    return {
        "rooms": len(rooms),
        "members": len(results),
        "join_seconds": round(joined, 1),
        "joins_per_second": round(len(results) / joined, 1),
        "total_seconds": round(time.monotonic() - t0, 1),
    }


async def cmd_typing(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed if args.seed is not None else time.time_ns())
    stats = Stats()
    seats = seats_for(args, args.port, args.rooms, args.members)
    clients = [Client(seat, stats, random.Random(rng.random())) for seat in seats]
    facilitators = {c.seat.room_index: c for c in clients if c.is_facilitator}
    members = [c for c in clients if not c.is_facilitator]
    pg = PgStats(args.database_url)
    lag = LoopLag()
    waits = PgWaits(args.database_url)  # cheap: also in the ladder's steps (--no-db-stats)
    result: dict[str, Any] = {
        "mode": "baseline" if args.baseline else "quorum",
        "rooms": args.rooms,
        "members_per_room": args.members,
        "processes": len(args.port),
        "interval": args.interval,
        "clients": len(clients),
        "loadavg_start": loadavg(),
    }
    try:
        connect_seconds = await open_all(clients, args.connect_concurrency, stats, 60)
        result["connect_seconds"] = round(connect_seconds, 1)
        no_team = [c.seat.tag for c in members if c.position_id is None]
        if no_team:
            raise RuntimeError(f"members without a position (not drafting?): {no_team[:5]}")
        await asyncio.sleep(args.settle)
        backends = await pg.backend_pids()
        sampler = Sampler(args.server_pid, {"postgres": backends, "redis": args.redis_pid})
        sampler.start()
        lag.start()
        waits.start()
        pg_before = None if args.no_db_stats else await pg.settled()
        start = now()
        stats.window = (start + args.warmup, start + args.warmup + args.duration)
        stop = asyncio.Event()

        async def typist(client: Client) -> None:
            await asyncio.sleep(rng.uniform(0, args.interval))
            while not stop.is_set():
                with contextlib.suppress(*DISCONNECTED):
                    await client.save()
                pause = args.interval * rng.uniform(1 - args.jitter, 1 + args.jitter)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

        tasks = [asyncio.create_task(typist(c)) for c in members]
        # The generator's own cyclic collector stays off while it measures: with hundreds of
        # thousands of samples, a collection of its oldest generation paused this process for
        # 40-50 ms, and every delivery read during the pause counted as the server's delay.
        # Nothing it keeps forms cycles that must be freed in the meantime.
        gc.collect()
        gc.freeze()
        gc.disable()
        await asyncio.sleep(args.warmup)
        sampler.mark("t0")
        if args.window_file:  # bench/run.py attaches the profiler now
            Path(args.window_file).write_text(str(now()))
        await asyncio.sleep(args.duration)
        sampler.mark("t1")
        gc.enable()
        await waits.stop()
        stop.set()
        await asyncio.gather(*tasks)
        # Let every change in flight be acknowledged, then the events settle.
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline and any(c.inflight() for c in members):
            await asyncio.sleep(0.2)
        result["inflight_at_end"] = sum(c.inflight() for c in members)
        await asyncio.sleep(args.drain)
        pg_after = None if args.no_db_stats else await pg.settled()
        await sampler.stop()
        # The room's final sequence number, from a facilitator's fresh snapshot.
        final: dict[int, int] = {}
        for index, fac in facilitators.items():
            snap = await fac.sync(None, 60)
            final[index] = snap["seq"]
        # Events numbered up to the final seq may still be on their way to slower sockets.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            (c.last_seq or 0) < final[c.seat.room_index] for c in clients
        ):
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        lost = dup = beyond = pending = 0
        worst: list[str] = []
        for c in clients:
            top = final[c.seat.room_index]
            start_seq = c.snap_seq or 0
            # A seq missing below the highest one the client received is a gap: lost. Above it,
            # the event may still be queued in an overloaded server: "pending", not lost.
            reached = max(c.seqs, default=start_seq)
            missing = [s for s in range(start_seq + 1, min(top, reached) + 1) if not c.seqs.get(s)]
            pending += max(0, top - max(reached, start_seq))
            doubled = sum(n - 1 for n in c.seqs.values() if n > 1)
            lost += len(missing)
            dup += doubled
            beyond += sum(1 for s in c.seqs if s > top)
            if missing and len(worst) < 5:
                worst.append(f"{c.seat.tag}: {len(missing)} missing, e.g. {missing[:5]}")
        cpu = sampler.cpu("t0", "t1")
        duration = args.duration
        result.update(
            {
                "duration": duration,
                "warmup": args.warmup,
                "latency_ms": percentiles(stats.latency),
                "facilitator_latency_ms": percentiles(stats.fac_latency),
                "ack_latency_ms": percentiles(stats.ack_latency),
                **latency_spread(stats),
                "deliveries_per_s": round(stats.deliveries_in_window / duration, 1),
                "event_frames_per_s": round(stats.frames_in_window / duration, 1),
                "saves_per_s": round(stats.acks_in_window / duration, 1),
                "offered_saves_per_s": round(len(members) / args.interval, 1),
                "saves_sent": stats.saves_sent,
                "acks": stats.acks,
                "acks_written": stats.acks_written,
                "acks_duplicate": stats.acks_duplicate,
                "skipped_slot_busy": stats.skipped_busy,
                "errors": dict(stats.errors),
                "connect_errors": dict(stats.connect_errors),
                "lost": lost,
                "pending_at_end": pending,
                "duplicated": dup,
                "seq_beyond_final": beyond,
                "lost_examples": worst,
                "cpu": cpu,
                "server_peak_rss_mb": round(max(sampler.peak_rss_kb.values()) / 1024, 1),
                "server_peak_rss_mb_each": [
                    round(v / 1024, 1) for v in sampler.peak_rss_kb.values()
                ],
                "db": PgStats.delta(pg_before, pg_after, stats.acks_written),
                "loop_lag_ms": await lag.stop(),
                "loop_lag_max_ms_by_second": lag.max_by_second(stats.window),
                "db_waits": waits.by_second(stats.window),
                "loadavg_end": loadavg(),
            }
        )
        return result
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        pg.close()


async def cmd_idle(args: argparse.Namespace) -> dict[str, Any]:
    stats = Stats()
    state = json.loads(Path(args.state).read_text())
    seats = []
    for r, room in enumerate(state["rooms"]):
        for m, cookie in enumerate(room["members"]):
            seats.append(Seat(r, room["id"], m, args.port[m % len(args.port)], cookie=cookie))
    seats = seats[: args.count]
    if len(seats) < args.count:
        raise SystemExit(f"the state has only {len(seats)} members")
    rng = random.Random(args.seed)
    clients = [Client(s, stats, random.Random(rng.random())) for s in seats]
    pid = args.server_pid[0]
    rss_before = proc_status(pid).get("VmRSS", 0)
    stop = asyncio.Event()

    async def heartbeat(client: Client) -> None:
        """The browser's: every 5 s, a ping if nothing was received for 10 s."""
        await asyncio.sleep(rng.uniform(0, 5))
        while not stop.is_set():
            if time.monotonic() - client.last_received > 10 and client.ws is not None:
                with contextlib.suppress(*DISCONNECTED):
                    await client.ws.send('{"type":"ping"}')
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)

    sampler = Sampler(args.server_pid)
    sampler.start()
    try:
        seconds = await open_all(clients, args.connect_concurrency, stats, 60)
        beats = [asyncio.create_task(heartbeat(c)) for c in clients]
        sampler.mark("t0")
        await asyncio.sleep(args.hold)
        sampler.mark("t1")
        connected = sum(1 for c in clients if not c.closed.is_set())
        rss_after = proc_status(pid)
        stop.set()
        await asyncio.gather(*beats)
        await sampler.stop()
        return {
            "members": len(clients),
            "connected_at_end": connected,
            "connect_seconds": round(seconds, 1),
            "connect_errors": dict(stats.connect_errors),
            "rss_before_mb": round(rss_before / 1024, 1),
            "rss_mb": round(rss_after.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(max(sampler.peak_rss_kb.values()) / 1024, 1),
            "hwm_mb": round(rss_after.get("VmHWM", 0) / 1024, 1),
            "kb_per_member": round((rss_after.get("VmRSS", 0) - rss_before) / len(clients), 1),
            "idle_cpu": sampler.cpu("t0", "t1"),
            "errors": dict(stats.errors),
            "loadavg": loadavg(),
        }
    finally:
        stop.set()
        await sampler.stop()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """socket.js's backoffDelay, in seconds."""
    cap = 4.0 if attempt < 12 else 30.0
    return min(cap, 1.0 * 2**attempt) * rng.uniform(0.7, 1.3)


async def cmd_reconnect(args: argparse.Namespace) -> dict[str, Any]:
    """Connect N members; when the server goes away, reconnect like the browser (socket.js):
    delay min(cap, 1 * 2^attempt) s x U(0.7, 1.3) with cap 4 s for the first 12 attempts and 30 s
    after (backoff_delay), attempt reset by any message; on open, sync
    with last_seq. Reports the wall-clock times, bench/run.py adds the restart's."""
    stats = Stats()
    state = json.loads(Path(args.state).read_text())
    seats = []
    for r, room in enumerate(state["rooms"]):
        for m, cookie in enumerate(room["members"]):
            seats.append(Seat(r, room["id"], m, args.port[0], cookie=cookie))
    seats = seats[: args.count]
    rng = random.Random(args.seed)
    clients = [Client(s, stats, random.Random(rng.random())) for s in seats]
    outcome: dict[str, Any] = {"members": len(clients)}
    synced_after: dict[int, float] = {}
    first_close: list[float] = []
    kinds: Counter[str] = Counter()
    attempts_total = 0

    async def survive(i: int, client: Client) -> None:
        nonlocal attempts_total
        await client.closed.wait()
        first_close.append(now())
        attempt = 0
        while True:
            delay = backoff_delay(attempt, rng)
            await asyncio.sleep(delay)
            attempts_total += 1
            try:
                await client.close()
                await client.open(timeout=15)
                reply = await client.sync(client.last_seq, timeout=20)
                kinds[reply["type"]] += 1
                synced_after[i] = now()
                return
            except DISCONNECTED as exc:
                stats.connect_errors[_exc_name(exc)] += 1
                attempt += 1

    try:
        outcome["connect_seconds"] = round(
            await open_all(clients, args.connect_concurrency, stats, 60), 1
        )
        await asyncio.sleep(1)
        watchers = [asyncio.create_task(survive(i, c)) for i, c in enumerate(clients)]
        Path(args.ready_file).write_text(str(now()))
        try:
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(*watchers)
        except TimeoutError:
            for w in watchers:
                w.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        outcome.update(
            {
                "first_close": min(first_close) if first_close else None,
                "all_synced": max(synced_after.values())
                if len(synced_after) == len(clients)
                else None,
                "synced": len(synced_after),
                "replies": dict(kinds),
                "attempts": attempts_total,
                "connect_errors": dict(stats.connect_errors),
                "loadavg": loadavg(),
            }
        )
        if synced_after:
            outcome["synced_times"] = sorted(synced_after.values())
        return outcome
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# --- page weight: what a browser actually fetches ----------------------------------------------

PAGE_TARGET_BYTES = 150_000  # issue 8: the room page, uncompressed, in total
CHROMIUM = "/usr/bin/chromium"  # the system browser (never a downloaded one)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
SELECT = re.compile(rb'<select name="([^"]+)"[^>]*>(.*?)</select>', re.S)
OPTION = re.compile(rb'<option value="([^"]+)"')


def _first_option(html: bytes, name: str) -> str:
    for select_name, options in SELECT.findall(html):
        if select_name.decode() == name:
            match = OPTION.search(options)
            if match:
                return match.group(1).decode()
    raise RuntimeError(f"no <select name={name!r}> with a choice on the page")


def _home_form(
    port: int, jar: dict[str, str], path: str, fields: Callable[[bytes], dict[str, str]]
) -> tuple[int, dict[str, str]]:
    """A form of the home page, as a browser sends it: GET / for the CSRF token and the
    choices (`fields` builds the form from the page), then POST `path`. `jar` gathers the
    cookies; returns the POST's status and headers."""
    status, _h, html, new = http_request(port, "GET", "/", cookies=jar)
    jar.update(new)
    token = CSRF_INPUT.search(html)
    if status != 200 or not token:
        raise RuntimeError(f"GET / for {path}: HTTP {status}")
    form = {"csrfmiddlewaretoken": token.group(1).decode(), **fields(html)}
    status, headers, _b, new = http_request(port, "POST", path, cookies=jar, form=form)
    jar.update(new)
    return status, headers


def _create_room(port: int, facilitator: dict[str, str], title: str) -> int:
    """The dashboard's "Open room" form, as the facilitator: the built-in scenario (the first)."""
    status, headers = _home_form(
        port,
        dict(facilitator),
        "/rooms/new/",
        lambda html: {
            "scenario": _first_option(html, "scenario"),
            "title": title,
            "assignment_method": "balanced",
        },
    )
    match = re.search(r"/rooms/(\d+)/present/", headers.get("Location", ""))
    if status != 302 or not match:
        raise RuntimeError(f"POST /rooms/new/: HTTP {status} {headers.get('Location')}")
    return int(match.group(1))


def _solo_start(port: int) -> tuple[int, str]:
    """The home page's "Start alone" form, anonymous: (room id, sessionid)."""
    jar: dict[str, str] = {}
    status, headers = _home_form(
        port,
        jar,
        "/solo/start/",
        lambda html: {
            "solo-scenario": _first_option(html, "solo-scenario"),
            "solo-display_name": "Page weight",
        },
    )
    match = re.search(r"/rooms/(\d+)/", headers.get("Location", ""))
    if status != 302 or not match or "sessionid" not in jar:
        raise RuntimeError(f"POST /solo/start/: HTTP {status} {headers.get('Location')}")
    return int(match.group(1)), jar["sessionid"]


async def _advance(port: int, room_id: int, cookie: str, to: str) -> None:
    ws = await ws_open(port, room_id, cookie=cookie)
    try:
        await ws.send(json.dumps({"type": "phase.advance", "to": to}))
        async with asyncio.timeout(30):
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("type") == "phase.changed" and msg.get("phase") == to:
                    return
                if msg.get("type") == "error":
                    raise RuntimeError(f"phase.advance to {to} in room {room_id}: {msg}")
    finally:
        await ws.close()


async def _page_rooms(args: argparse.Namespace) -> list[tuple[str, int, str, str]]:
    """(situation, room id, sessionid, selector shown once the page is drawn) for every page
    that matters: a group room in drafting (the state file's first room) and in review (a room
    of its own, three members, advanced through drafting), and a solo room."""
    state = json.loads(Path(args.state).read_text())
    port = args.port[0]
    facilitator = {"sessionid": state["facilitator"]}
    drafting = state["rooms"][0]
    review_id = await asyncio.to_thread(_create_room, port, facilitator, "Page weight: review")
    code = await asyncio.to_thread(_room_code, port, facilitator, review_id)
    members = [(await asyncio.to_thread(join, port, code, f"Reader {n}"))[1] for n in range(1, 4)]
    for phase in ("drafting", "review"):
        await _advance(port, review_id, facilitator["sessionid"], phase)
    solo_id, solo_cookie = await asyncio.to_thread(_solo_start, port)
    fac = facilitator["sessionid"]
    return [
        ("member, drafting", drafting["id"], drafting["members"][0], "#my-case-h"),
        ("facilitator, drafting", drafting["id"], fac, "#advance"),
        ("member, review", review_id, members[0], "#vote-h"),
        ("facilitator, review", review_id, fac, "#vote-admin-h"),
        ("solo", solo_id, solo_cookie, ".solo-steps"),
    ]


def _room_code(port: int, facilitator: dict[str, str], room_id: int) -> str:
    status, _h, html, _c = http_request(
        port, "GET", f"/rooms/{room_id}/present/", cookies=facilitator
    )
    match = re.search(rb'class="present-code"[^>]*>\s*([A-Z0-9-]+)', html)
    if status != 200 or not match:
        raise RuntimeError(f"GET /rooms/{room_id}/present/: HTTP {status}, no join code")
    return match.group(1).decode()


async def _weigh_in_chromium(port: int, rooms: list[tuple[str, int, str, str]]) -> dict[str, Any]:
    """Open each page in headless Chromium (a fresh profile each: nothing cached) and add up the
    bytes of every response it fetched (the document, CSS, JS modules, images; the websocket is
    not a response), after the page is drawn and the network has been idle for 500 ms, so a
    module the page imports lazily counts exactly when the page loads it."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(
            f"page: no Chromium at {CHROMIUM} (apt-get install chromium); the crawl "
            "(--page-crawl) counts everything reachable, not what a page loads"
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        raise RuntimeError("page: the playwright package is missing (the test extra)") from exc
    base = f"http://{HOST}:{port}"
    out: dict[str, Any] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for situation, room_id, cookie, drawn in rooms:
                context = await browser.new_context(base_url=base)
                await context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
                page = await context.new_page()
                responses: list[Any] = []
                page.on("response", lambda response: responses.append(response))
                resp = await page.goto(f"/rooms/{room_id}/")
                if resp is None or resp.status != 200:
                    raise RuntimeError(f"{situation}: GET /rooms/{room_id}/ failed")
                await page.wait_for_selector(drawn, timeout=20_000)
                await page.wait_for_load_state("networkidle")
                fetched: dict[str, int] = {}
                by_type: Counter[str] = Counter()
                for response in responses:
                    body = await response.body()  # decoded: the uncompressed size
                    path = response.url.removeprefix(base)
                    fetched[path] = fetched.get(path, 0) + len(body)  # twice: counted twice
                    kind = response.request.resource_type  # document, stylesheet, script, ...
                    by_type[kind] += len(body)
                await context.close()
                total = sum(fetched.values())
                out[situation] = {
                    "total": total,
                    "by_type": dict(by_type),
                    "fetched": fetched,
                    "meets_target": total <= PAGE_TARGET_BYTES,
                }
        finally:
            await browser.close()
    return out


ASSET = re.compile(rb'<(?:link|script|img)\b[^>]*?(?:href|src)="(/static/[^"]+)"')
IMPORT = re.compile(
    rb'(?:import|export)\s[^;]*?from\s*["\']([^"\']+)["\']|import\(\s*["\']([^"\']+)["\']'
)


async def _crawl(port: int, rooms: list[tuple[str, int, str, str]]) -> dict[str, Any]:
    """The fallback, and NOT what a page loads: every <link>/<script>/<img> of the HTML and every
    module reachable through static and dynamic imports, whether the page ever loads it or not
    (an upper bound)."""
    out: dict[str, Any] = {}
    for situation, room_id, cookie, _drawn in rooms:
        status, _h, html, _c = await asyncio.to_thread(
            http_request, port, "GET", f"/rooms/{room_id}/", cookies={"sessionid": cookie}
        )
        if status != 200:
            raise RuntimeError(f"GET /rooms/{room_id}/ as {situation}: HTTP {status}")
        seen: dict[str, int] = {}
        todo = [m.decode() for m in ASSET.findall(html)]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            status, _h, body, _c = await asyncio.to_thread(http_request, port, "GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path}: HTTP {status}")
            seen[path] = len(body)
            if path.endswith(".js"):
                base = path.rsplit("/", 1)[0]
                for a, b in IMPORT.findall(body):
                    target = (a or b).decode()
                    if target.startswith("./"):
                        todo.append(f"{base}/{target[2:]}")
                    elif target.startswith("/"):
                        todo.append(target)
        by_kind: Counter[str] = Counter({"document": len(html)})
        for path, size in seen.items():
            by_kind[path.rsplit(".", 1)[-1]] += size
        total = len(html) + sum(seen.values())
        out[situation] = {
            "total": total,
            "by_type": dict(by_kind),
            "fetched": seen,
            "meets_target": total <= PAGE_TARGET_BYTES,
        }
    return out


async def cmd_page(args: argparse.Namespace) -> dict[str, Any]:
    """The room page's weight in each situation that matters (see _page_rooms), measured as what
    headless Chromium fetched; --page-crawl measures the crawl upper bound instead."""
    rooms = await _page_rooms(args)
    # And a solo room past drafting, which loads the review's code (the recommendation builder,
    # the cases in tabs) next to its own: as heavy as the facilitator's review.
    port = args.port[0]
    solo_id, solo_cookie = await asyncio.to_thread(_solo_start, port)
    ws = await ws_open(port, solo_id, cookie=solo_cookie)
    try:
        await ws.send(json.dumps({"type": "solo.step", "to": "recommendation"}))
        async with asyncio.timeout(30):
            while (message := json.loads(await ws.recv())).get("type") != "phase.changed":
                if message.get("type") == "error":
                    raise RuntimeError(f"solo.step in room {solo_id}: {message}")
    finally:
        await ws.close()
    rooms.append(("solo, recommendation", solo_id, solo_cookie, "#rec-edit-h"))
    if args.page_crawl:
        situations = await _crawl(args.port[0], rooms)
        method = "crawl: everything reachable from the HTML, not what a page loads"
    else:
        situations = await _weigh_in_chromium(args.port[0], rooms)
        method = "chromium: bytes of every response the page fetched"
    heaviest = max(situations, key=lambda name: situations[name]["total"])
    return {
        "method": method,
        "target_bytes": PAGE_TARGET_BYTES,
        "situations": situations,
        "max": {"situation": heaviest, "total": situations[heaviest]["total"]},
        "meets_target": all(s["meets_target"] for s in situations.values()),
    }


# --- entry point ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["prepare", "typing", "idle", "reconnect", "page"])
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        required=True,
        help="server port; repeat to spread members over several processes",
    )
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--redis-pid", type=int, action="append", default=[])
    parser.add_argument("--database-url", default=None, help="for pg_stat deltas")
    parser.add_argument("--no-db-stats", action="store_true", help="skip the pg_stat settling")
    parser.add_argument("--state", default="bench/out/state.json")
    parser.add_argument("--setup", default=None, help="prepare: JSON from djtasks.py setup")
    parser.add_argument("--baseline", action="store_true", help="drive bench/baseline.py")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between saves")
    parser.add_argument("--jitter", type=float, default=0.25, help="+- fraction of the interval")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--drain", type=float, default=2.0)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--count", type=int, default=2000, help="idle/reconnect: members")
    parser.add_argument("--hold", type=float, default=20.0, help="idle: seconds connected")
    parser.add_argument("--timeout", type=float, default=90.0, help="reconnect: give up after")
    parser.add_argument("--ready-file", default=None)
    parser.add_argument("--window-file", default=None, help="typing: written when measuring starts")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--http-concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock")
    parser.add_argument(
        "--page-crawl",
        action="store_true",
        help="page: crawl everything reachable instead of what Chromium fetched (an upper bound)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    handlers = {
        "prepare": cmd_prepare,
        "typing": cmd_typing,
        "idle": cmd_idle,
        "reconnect": cmd_reconnect,
        "page": cmd_page,
    }
    hard_limit = {
        "typing": args.warmup + args.duration + 400,
        "reconnect": args.timeout + 300,
        "idle": args.hold + 400,
    }.get(args.command, 900)

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(hard_limit):
            return await handlers[args.command](args)

    result = asyncio.run(bounded())
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    summary = {k: v for k, v in result.items() if k not in ("synced_times", "assets")}
    print(json.dumps(summary, default=str)[:4000], file=sys.stdout)


if __name__ == "__main__":
    main()

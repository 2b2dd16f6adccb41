"""Hypothesis fuzzing of the socket protocol on the real ASGI app.

Random and mutated messages (built from protocol.SCHEMAS, so a new message type is fuzzed as soon
as it has a schema) never cause a server error, an unhandled exception, a leaked stack trace, a
socket closed other than with a documented code, or any database change by a sender not entitled
to make it.

Sockets live on one event loop in a background thread for the whole test, so Hypothesis (which
drives plain functions) can send example after example through the same connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debate import protocol
from debate.consumers import FACILITATOR_ACTIONS
from debate.models import Draft, Phase
from tests.conftest import Socket
from tests.security.conftest import World, full_state, state_diff, world_with_drafts

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 200  # per test; the three tests together stay well under a minute
# A member may write these (their own drafts, their position); everything else is not theirs.
MEMBER_WRITES = {"draft.save", "position.choose"}
# Close codes a client may see (docs/protocol.md). The fuzzer stays under the size limit, so
# 1009 never happens here (test_oversized_message_closes_with_1009 covers it).
DOCUMENTED_CLOSE_CODES = {protocol.CLOSE_FORBIDDEN, protocol.CLOSE_TOO_MANY_ERRORS}
SERVER_ERROR_CODES = {protocol.ERR_SERVER}
LEAK_MARKERS = ("Traceback", 'File "', "django.db", "psycopg", "sqlite3", "Error(")

# Generous rate limits: the fuzzer is not testing the rate limiter (test_consumer.py does).
FUZZ_LIMITS = {
    "MAX_MESSAGE_BYTES": 64 * 1024,
    "MAX_DRAFT_CHARS": 4000,
    "MAX_RECOMMENDATION_CHARS": 6000,
    "RATE_PER_SECOND": 100_000,
    "RATE_BURST": 100_000,
    "PRESENCE_TOUCH_SECONDS": 60,
}


# ---- strategies --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.integers(min_value=-3, max_value=40)
    | st.floats()
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
WORDS = [
    "",
    " ",
    "drafting",
    "review",
    "recommendation",
    "closed",
    "lobby",
    "argument",
    "risk",
    "start",
    "pause",
    "extend",
    "clear",
    "balanced",
    "choice",
    "owner",
    "otherfac",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "\x00\ud7ff\u202e",
    "lone \ud800 surrogate",
]
texts = st.sampled_from(WORDS) | st.text(max_size=300) | st.text(min_size=3990, max_size=4100)
small_ints = st.integers(min_value=-2, max_value=60)  # hits real ids in the test database
ints = small_ints | st.integers(min_value=-(2**70), max_value=2**70)


# Plausible values for some fields, so that well-formed messages often succeed and the fuzzer
# explores past the first refusal (an allowed write, then what follows it).
FIELD_HINTS: dict[str, list[Any]] = {
    "kind": ["argument", "risk"],
    "slot": [1, 2, 3],
    "base_version": [0, 1],
    "to": [p.value for p in Phase],
    "phase": [p.value for p in Phase],
    "action": ["start", "pause", "resume", "extend", "clear"],
    "seconds": [30, 600],
    "assignment_method": ["balanced", "random", "manual", "choice"],
    "username": ["otherfac", "cofac", "owner"],
    "client_id": ["c-1", "c-2"],
}


def _value_for(name: str, field: protocol.Field, hints: dict[str, list[Any]]):
    options = []
    if name in hints:
        hint = st.sampled_from(hints[name])
        options += [hint, hint, hint]
    if int in field.types:
        options.append(ints)
    if str in field.types:
        options.append(texts)
    if bool in field.types:
        options.append(st.booleans())
    if type(None) in field.types:
        options.append(st.none())
    return st.one_of(options)


def frames_for(world: World) -> st.SearchStrategy[str]:
    """Raw frames for `world`: ids are often the real ones of its room (and of the other room)."""
    members = [m.pk for m in world.members.values()]
    positions = [p.pk for p in world.positions.values()]
    drafts = list(Draft.objects.values_list("pk", flat=True)) or [1]
    hints = {
        **FIELD_HINTS,
        "member_id": members,
        "position_id": positions,
        "decision_id": positions,
        "draft_id": drafts,
    }

    def well_formed(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        schema = protocol.SCHEMAS[kind]
        required = {n: _value_for(n, f, hints) for n, f in schema.items() if f.required}
        optional = {n: _value_for(n, f, hints) for n, f in schema.items() if not f.required}
        return st.fixed_dictionaries({"type": st.just(kind), **required}, optional=optional)

    @st.composite
    def mutated(draw, kind: str) -> dict[str, Any]:
        message = dict(draw(well_formed(kind)))
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            action = draw(st.sampled_from(["drop", "replace", "add"]))
            keys = sorted(message)
            if action == "drop" and keys:
                message.pop(draw(st.sampled_from(keys)))
            elif action == "replace" and keys:
                message[draw(st.sampled_from(keys))] = draw(json_values)
            else:
                message[draw(st.text(max_size=12))] = draw(json_values)
        return message

    # A member's own draft, often accepted: so the fuzzer also runs past a successful write.
    own_draft = st.fixed_dictionaries(
        {
            "type": st.just("draft.save"),
            "client_id": st.text(min_size=1, max_size=64) | st.just("\udc00"),
            "text": texts,
            "base_version": st.sampled_from([0, 0, 1]),
            "kind": st.sampled_from(["argument", "risk"]),
            "slot": st.sampled_from([1, 2, 3]),
        }
    )
    messages = st.one_of(
        st.sampled_from(TYPES).flatmap(well_formed),
        # The writes members may make, often: what a member may change is checked most closely.
        *[st.sampled_from(sorted(MEMBER_WRITES)).flatmap(well_formed)] * 3,
        own_draft,
        own_draft,
        st.sampled_from(TYPES).flatmap(mutated),
        st.dictionaries(st.text(max_size=12), json_values, max_size=5),
    ).map(json.dumps)
    return st.one_of(
        messages,
        messages,
        messages,
        json_values.map(json.dumps),  # valid JSON that is not an object
        st.text(min_size=1, max_size=200),  # not JSON at all
        st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),  # deep
    )


TYPES = sorted(protocol.SCHEMAS)


# ---- the harness -------------------------------------------------------------------------------


class LoopThread:
    """An event loop in a thread of its own: the sockets live there between examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Session:
    """The world's room with open sockets for the roles being fuzzed (reopened when a socket was
    closed with a documented code, e.g. after a fuzzed facilitator removed that member)."""

    def __init__(self, world: World, roles: tuple[str, ...]) -> None:
        self.world = world
        self.roles = roles
        self.loop = LoopThread()
        self.socks: dict[str, Socket] = {}
        self.closed: dict[str, int] = {}
        self.sent = 0
        for role in roles:
            self.open(role)

    def db(self, fn, *args):
        """Database work on the consumers' own database thread (SQLite's shared in-memory test
        database locks tables between connections)."""
        return self.loop.run(sync_to_async(fn)(*args))

    def open(self, role: str) -> None:
        async def connect() -> Socket:
            cookie = await sync_to_async(self.world.cookie)(role)
            sock = Socket(self.world.room.pk, cookie)
            assert await sock.connect()
            # The answer to a sync comes once connect() has finished (presence recorded), and
            # the presence event has been read before any state is compared.
            await sock.sync()
            await sock.drain(0.2)
            return sock

        self.socks[role] = self.loop.run(connect())

    def exchange(self, role: str, frame: str) -> tuple[list[str], int | None]:
        """Send `frame`, then a marker; returns the raw replies before the marker's answer, and
        the close code if the socket was closed instead."""
        sock = self.socks[role]

        # The end of the answer: an unknown type the server names in its error. Unique, so a
        # fuzzed ping's pong (or any reply) cannot be mistaken for it.
        self.sent += 1
        marker = f"end-of-answer-{self.sent}"

        async def go() -> tuple[list[str], int | None]:
            await sock.send_raw(frame)
            await sock.send({"type": marker})
            replies: list[str] = []
            while True:
                output = await sock.comm.receive_output(timeout=10)
                if output["type"] == "websocket.close":
                    return replies, output.get("code")
                text = output.get("text", "")
                if json.loads(text).get("received_type") == marker:
                    return replies, None
                replies.append(text)

        return self.loop.run(go())

    def close(self) -> None:
        for sock in self.socks.values():
            with contextlib.suppress(Exception):  # already closed by the server
                self.loop.run(sock.close(), timeout=5)
        self.loop.stop()


def check_replies(replies: list[str]) -> None:
    for text in replies:
        reply = json.loads(text)  # every reply is JSON
        assert isinstance(reply, dict) and isinstance(reply.get("type"), str), text
        if reply["type"] == "error":
            assert reply.get("code") not in SERVER_ERROR_CODES, text
            assert isinstance(reply.get("message"), str), text
        for marker in LEAK_MARKERS:
            assert marker not in text, f"{marker!r} leaked in {text[:300]}"


class ErrorLog(logging.Handler):
    """Collects ERROR records: an exception the consumer caught as a server error is logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log():
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _fuzz(world: World, roles: tuple[str, ...], entitled, error_log: ErrorLog) -> None:
    session = Session(world, roles)
    try:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(role=st.sampled_from(roles), frame=session.db(frames_for, world))
        def one(role: str, frame: str) -> None:
            if role in session.closed:
                return
            kind = _type_of(frame)
            guarded = not entitled(role, kind)
            before = session.db(full_state) if guarded else None
            replies, code = session.exchange(role, frame)
            check_replies(replies)
            if code is not None:
                assert code in DOCUMENTED_CLOSE_CODES, (code, frame[:300])
                session.closed[role] = code
            if guarded:
                after = session.db(full_state)
                assert after == before, (role, frame[:300], state_diff(before, after))
            assert not error_log.records, [r.getMessage() for r in error_log.records]

        one()
    finally:
        session.close()


def _type_of(frame: str) -> str | None:
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_members_change_only_what_is_theirs(scenario, error_log):
    """A member may save their own drafts and choose a position; a muted member may change
    nothing; neither may do anything a facilitator does."""
    world = world_with_drafts(scenario, Phase.DRAFTING, assignment_method="choice")

    def entitled(role: str, kind: str | None) -> bool:
        return role == "member" and kind in MEMBER_WRITES

    _fuzz(world, ("member", "muted"), entitled, error_log)


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_facilitator_in_the_lobby(scenario, error_log):
    """A facilitator's messages, fuzzed: refused or done, never a server error."""
    world = world_with_drafts(scenario, Phase.LOBBY)
    _fuzz(world, ("facilitator",), lambda role, kind: True, error_log)


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_facilitator_and_member_while_drafting(scenario, error_log):
    world = world_with_drafts(scenario, Phase.DRAFTING)

    def entitled(role: str, kind: str | None) -> bool:
        return role == "facilitator" or kind in MEMBER_WRITES

    _fuzz(world, ("facilitator", "member"), entitled, error_log)


def test_every_facilitator_action_is_fuzzed():
    """The strategies are built from SCHEMAS; every type a handler serves has one."""
    assert set(FACILITATOR_ACTIONS) <= set(protocol.SCHEMAS)
    assert set(TYPES) == set(protocol.SCHEMAS)


@override_settings(QUORUM=FUZZ_LIMITS)
def test_oversized_message_closes_with_1009(scenario):
    world = world_with_drafts(scenario, Phase.DRAFTING)
    session = Session(world, ("member",))
    try:
        before = session.db(full_state)
        big = json.dumps({"type": "draft.save", "text": "x" * (64 * 1024)})
        replies, code = session.exchange("member", big)
        assert code == protocol.CLOSE_MESSAGE_TOO_BIG
        assert not [r for r in replies if json.loads(r)["type"] in ("ack", "error")], replies
        after = session.db(full_state)
        # (The room's sequence number moves on: the closed socket's member goes offline.)
        for table in ("debate.Draft", "debate.Recommendation", "debate.Member"):
            assert after[table] == before[table], state_diff(before, after)
    finally:
        session.close()


# Inputs the fuzzer found that the database refused (server errors on PostgreSQL), kept as fixed
# examples: (role, message, expected error code or None).
FOUND = [
    ("facilitator", {"type": "facilitator.add", "username": "other\x00fac"}, None),
    ("facilitator", {"type": "room.announce", "text": "lone \ud800 surrogate"}, "invalid"),
    (
        "member",
        {"type": "draft.save", "client_id": "\udc00", "text": "x", "base_version": 0,
         "kind": "argument", "slot": 2},
        "invalid",
    ),
    (
        "member",
        {"type": "draft.save", "client_id": "c-nul", "text": "a\x00b", "base_version": 0,
         "kind": "argument", "slot": 2},
        None,
    ),
]  # fmt: skip


@override_settings(QUORUM=FUZZ_LIMITS)
@pytest.mark.parametrize(("role", "message", "code"), FOUND)
def test_found_by_the_fuzzer(role, message, code, scenario, error_log):
    world = world_with_drafts(scenario, Phase.DRAFTING)
    session = Session(world, (role,))
    try:
        before = session.db(full_state)
        replies, closed = session.exchange(role, json.dumps(message))
        assert closed is None
        check_replies(replies)
        errors = [json.loads(r) for r in replies if json.loads(r)["type"] == "error"]
        assert [e["code"] for e in errors] == ([code] if code else []), replies
        if code:
            assert session.db(full_state) == before
        assert not error_log.records, [r.getMessage() for r in error_log.records]
    finally:
        session.close()

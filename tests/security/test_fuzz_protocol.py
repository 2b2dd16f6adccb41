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
from django.conf import settings as django_settings
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debate import protocol
from debate.consumers import FACILITATOR_ACTIONS
from debate.models import Draft, Phase, Position, ResearchNote
from tests.conftest import Socket
from tests.security.conftest import (
    World,
    _complete_recommendation,
    full_state,
    state_diff,
    world_with_drafts,
)

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 200  # per test; the six tests together stay under a minute (about 35 s here)
# A member may write these (their own drafts, their position, their review marks, votes and
# sign-off, their research notes and judgement, their warm-up); everything else is not theirs.
MEMBER_WRITES = {
    "draft.save",
    "position.choose",
    "comment.add",
    "strongest.mark",
    "case.vote",
    "vote.cast",
    "signoff.record",
    "warmup.submit",
    "research.note.save",
    "research.note.delete",
    "research.judge",
}
# A muted member may still take the warm-up check (a private self-check, not a write others see).
MUTED_WRITES = {"warmup.submit"}
# A chair member also edits the recommendation.
CHAIR_WRITES = MEMBER_WRITES | {"recommendation.save"}
# Close codes a client may see (docs/protocol.md). The fuzzer stays under the size limit, so
# 1009 never happens here (test_oversized_message_closes_with_1009 covers it).
DOCUMENTED_CLOSE_CODES = {protocol.CLOSE_FORBIDDEN, protocol.CLOSE_TOO_MANY_ERRORS}
SERVER_ERROR_CODES = {protocol.ERR_SERVER}
LEAK_MARKERS = ("Traceback", 'File "', "django.db", "psycopg", "sqlite3", "Error(")

# Generous rate limits: the fuzzer is not testing the rate limiter (test_consumer.py does).
FUZZ_LIMITS = {
    **django_settings.QUORUM,
    "RATE_PER_SECOND": 100_000,
    "RATE_BURST": 100_000,
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
    "kind": ["argument", "risk", "rebuttal", "question"],
    "slot": [1, 2, 3],
    "base_version": [0, 1],
    "to": [p.value for p in Phase],
    "phase": [p.value for p in Phase],
    "action": ["start", "pause", "resume", "extend", "clear"],
    "seconds": [30, 600],
    "assignment_method": ["balanced", "random", "manual", "choice"],
    "username": ["otherfac", "cofac", "owner"],
    "client_id": ["c-1", "c-2"],
    "stance": ["sign", "dissent"],
    "trend": ["more_open", "more_closed", "mixed"],
    "approach": ["open_weights", "api_only", "restricted", "staged", "other"],
    "source_url": ["https://example.org/policy", "javascript:alert(1)", "data:text/html,x"],
    "year": [2024, 2025],
    "month": [1, 12],
    "chair": [True, False],
    "reason": ["Least harm.", ""],
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
    if list in field.types:
        options.append(st.lists(ints, max_size=4))
    if dict in field.types:
        options.append(st.dictionaries(st.text(max_size=8), texts, max_size=4))
    if not options:
        options.append(json_values)
    return st.one_of(options)


def frames_for(world: World) -> st.SearchStrategy[str]:
    """Raw frames for `world`: ids are often the real ones of its room (and of the other room,
    the solo rooms, another scenario's positions)."""
    members = [m.pk for m in world.members.values()]
    positions = list(Position.objects.values_list("pk", flat=True))
    drafts = list(Draft.objects.values_list("pk", flat=True)) or [1]
    notes = list(ResearchNote.objects.values_list("pk", flat=True)) or [1]
    draft_lists = st.lists(st.sampled_from(drafts), max_size=4)
    hints = {
        **FIELD_HINTS,
        "member_id": members,
        "position_id": positions,
        "decision_id": positions,
        "draft_id": drafts,
        "risk_draft_id": drafts,
        "note_id": notes,
    }
    list_hints = {"draft_ids": draft_lists, "citation_ids": draft_lists}
    warmup = world.room.scenario.warmup or {}
    reasons = [r["key"] for r in warmup.get("reasons", [])] or ["x"]
    answers = st.fixed_dictionaries(
        {item["key"]: st.sampled_from(reasons) for item in warmup.get("items", [])}
    )

    def well_formed(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        schema = protocol.SCHEMAS[kind]

        def value(name: str, field: protocol.Field):
            if name in list_hints:
                return list_hints[name] | _value_for(name, field, hints)
            if name == "answers":
                return answers | answers | _value_for(name, field, hints)
            return _value_for(name, field, hints)

        required = {n: value(n, f) for n, f in schema.items() if f.required}
        optional = {n: value(n, f) for n, f in schema.items() if not f.required}
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

    def __init__(self, world: World, roles: tuple[str, ...], room=None) -> None:
        self.world = world
        self.room = room or world.room
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
            sock = Socket(self.room.pk, cookie)
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


def _fuzz(world: World, roles: tuple[str, ...], entitled, error_log: ErrorLog, room=None) -> None:
    session = Session(world, roles, room)
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

    _notes(world)

    def entitled(role: str, kind: str | None) -> bool:
        if role == "muted":
            return kind in MUTED_WRITES
        return role == "member" and kind in MEMBER_WRITES

    _fuzz(world, ("member", "muted"), entitled, error_log)


def _notes(world: World) -> None:
    """A research note in the room (Ana's) and one in the other room: ids the fuzzer aims at."""
    from django.contrib.auth.models import AnonymousUser

    from debate import services

    for role in ("member", "other_member"):
        member = world.members[role]
        services.research_note_save(
            room_id=member.room_id, actor=AnonymousUser(), member_id=member.pk,
            client_id=f"note-{role}", note_id=None, base_version=0, organisation="A lab",
            year=2024, month=5, approach="staged", summary="Weights after a review.",
            source_url="https://example.org/policy",
        )  # fmt: skip


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_review_members_and_chair(scenario, error_log):
    """In the review: members comment, mark, choose their case and vote; a chair member is a
    member there; a muted member changes nothing (the warm-up aside, closed by now)."""
    world = world_with_drafts(scenario, Phase.REVIEW)

    def entitled(role: str, kind: str | None) -> bool:
        return role in ("member", "chair") and kind in MEMBER_WRITES

    _fuzz(world, ("member", "chair", "muted"), entitled, error_log)


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_recommendation_chair_and_members(scenario, error_log):
    """In the recommendation phase: the chair member edits the recommendation, members sign off;
    the facilitator (fuzzed too) may finalize, after which every write is refused."""
    world = world_with_drafts(scenario, Phase.RECOMMENDATION)
    _complete_recommendation(world)

    def entitled(role: str, kind: str | None) -> bool:
        if role == "facilitator":
            return True
        if role == "chair":
            return kind in CHAIR_WRITES
        return kind in MEMBER_WRITES

    _fuzz(world, ("chair", "member", "facilitator"), entitled, error_log)


@override_settings(QUORUM=FUZZ_LIMITS)
def test_fuzz_solo_learner(scenario, error_log):
    """The solo learner may do anything in their own room; never a server error. Ids of the
    group room and of another solo room are in the mix."""
    world = world_with_drafts(scenario, Phase.DRAFTING)
    _fuzz(world, ("solo",), lambda role, kind: True, error_log, room=world.solo_room)


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

"""The room socket. Thin: authorise in connect, validate, dispatch through an explicit table to
services, forward group events. See docs/protocol.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone
from django.utils.translation import gettext as _

from classroom.identity import member_id_for, session_user

from . import events, heartbeat, protocol, selectors, services
from .dbthreads import database_sync_to_async
from .errors import DomainError
from .models import Room

logger = logging.getLogger("quorum.socket")

Handler = Callable[["RoomConsumer", dict[str, Any]], Awaitable[None]]


class TokenBucket:
    """Per-connection rate limit: `rate` messages a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RoomConsumer(AsyncWebsocketConsumer):
    room_id: int
    member_id: int | None = None
    position_id: int | None = None
    is_facilitator: bool = False
    # Set once connect() has admitted a participant. A refused client is accepted and then closed
    # with a code; anything it sends before the close takes effect is ignored.
    admitted: bool = False
    groups_joined: list[str]
    # The socket's own messages wait here for its worker task (receive/_work), so that group
    # events keep reaching this socket while one of its messages waits for the database.
    inbox: asyncio.Queue[tuple[dict[str, Any] | None, Any] | None] | None = None
    worker: asyncio.Task[None] | None = None
    # The client id of the change the worker is handling, and the group events held back while
    # that change's own event would otherwise overtake its ack (room_event).
    replying_to: str | None = None
    held: list[dict[str, Any]] | None = None
    # A run of consecutive ticks not sent yet (first and last number) and the timer that sends
    # it as one frame (_queue_tick); anything else this socket sends goes after it.
    tick_first: int | None = None
    tick_last: int | None = None
    tick_timer: asyncio.TimerHandle | None = None
    tick_sending: asyncio.Task[None] | None = None
    tick_run_seconds: float = 0.0
    # The highest room number this socket has sent, in an event or a run of ticks. A tick below
    # it fills a gap the client is waiting on, so it is never held (_queue_tick).
    seq_sent: int = 0
    # The number of the news the socket's team group follows (a member.moved or a sync reply),
    # and the lock that keeps two such moves (the worker's sync, a forwarded member.moved) apart.
    position_seq: int = -1
    team_lock: asyncio.Lock | None = None

    # ---- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        events.bind_consumer_loop()
        self.groups_joined = []
        self.room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.user = AnonymousUser()  # until _admit has read the session
        # Accept first (every outcome is told with a close code after an accept anyway): the
        # handshake completes without waiting for the database, which matters when a thousand
        # browsers reconnect at once.
        await self.accept()
        self.user, admission, counted = await database_sync_to_async(_admit)(
            self.room_id, self.scope.get("session")
        )
        if admission is None:
            exists = await database_sync_to_async(_room_exists)(self.room_id)
            await self.close(
                code=protocol.CLOSE_NOT_PARTICIPANT if exists else protocol.CLOSE_ROOM_NOT_FOUND
            )
            return
        if admission.removed:
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            return
        self.admitted = True
        self.is_facilitator = admission.is_facilitator
        limits = settings.QUORUM
        self.bucket = TokenBucket(limits["RATE_PER_SECOND"], limits["RATE_BURST"])
        self.rate_errors = 0
        self.refusals_since = time.monotonic()
        self.touch_every = limits["PRESENCE_TOUCH_SECONDS"] / 2
        self.touched_at = time.monotonic()
        self.typing_sent_at = 0.0
        self.tick_run_seconds = limits["TICK_RUN_MS"] / 1000
        if admission.member_id is not None:
            self.member_id = admission.member_id
            self.position_id = admission.position_id
            groups = events.groups_for_member(self.room_id, self.member_id, self.position_id)
        else:
            groups = events.groups_for_facilitator(self.room_id)
        for group in groups:
            await self._join(group)
        set_sink = getattr(self.channel_layer, "set_sink", None)  # config/channel_layers.py
        if set_sink is not None and self.member_id is not None and self.tick_run_seconds > 0:
            set_sink(self.channel_name, self._take_tick)
        if self.member_id is not None and not counted:
            # Not online yet: counted under the room lock and announced (member.presence), now
            # that this socket hears its groups.
            await database_sync_to_async(services.member_connected)(
                room_id=self.room_id, member_id=self.member_id
            )

    async def disconnect(self, code: int) -> None:
        drop_sink = getattr(self.channel_layer, "drop_sink", None)
        if drop_sink is not None:
            drop_sink(self.channel_name)
        await self._stop_worker()
        if self.tick_timer is not None:
            self.tick_timer.cancel()
        try:
            for group in list(self.groups_joined):
                try:
                    await self.channel_layer.group_discard(group, self.channel_name)
                except Exception as exc:  # Redis down: the subscription dies with the process
                    logger.warning("could not leave group %s: %r", group, exc)
            self.groups_joined = []
        finally:
            if self.member_id is not None:
                try:
                    await database_sync_to_async(services.member_disconnected)(
                        room_id=self.room_id, member_id=self.member_id
                    )
                except DatabaseError:
                    logger.warning("could not record disconnect of member %s", self.member_id)
            if drop_sink is not None:
                drop_sink(self.channel_name)  # a message that came meanwhile marked it busy again

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def _leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        if group in self.groups_joined:
            self.groups_joined.remove(group)

    # ---- inbound -----------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.admitted:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode("utf-8")) > settings.QUORUM["MAX_MESSAGE_BYTES"]:
            await self.close(code=protocol.CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError as exc:
            message = None
            error = exc
        if not self.bucket.take():
            # Refusals are counted over a sliding window: a client that keeps flooding after
            # being told to slow down is disconnected.
            now = time.monotonic()
            if now - self.refusals_since > REFUSAL_WINDOW_SECONDS:
                self.refusals_since = now
                self.rate_errors = 0
            self.rate_errors += 1
            if self.rate_errors > settings.QUORUM["RATE_BURST"] * 5:
                await self.close(code=protocol.CLOSE_TOO_MANY_ERRORS)
                return
            await self._error(
                {
                    "code": protocol.ERR_RATE_LIMITED,
                    "message": _("Too many messages; slow down. This one was not processed."),
                },
                message=message,
            )
            return
        # Handled in arrival order by this socket's worker task; receive() returns at once, so
        # Channels goes on delivering group events to this socket while the message waits for
        # the database (a teammate's edit is not held up behind this member's own save).
        if self.inbox is None:
            self.inbox = asyncio.Queue()
            self.worker = asyncio.create_task(self._work(self.inbox))
        self.inbox.put_nowait((message, None if message is not None else error))

    async def _work(self, inbox: asyncio.Queue) -> None:
        while (item := await inbox.get()) is not None:
            message, error = item
            try:
                if message is None:
                    await self._error(error.as_payload())
                else:
                    client_id = message.get("client_id")
                    self.replying_to = client_id if isinstance(client_id, str) else None
                    await self._handle(message)
            except Exception:
                # The reply could not be sent (the socket closed meanwhile); what was written
                # is committed, and the client resends anything it has no ack for.
                logger.debug("reply not sent", exc_info=True)
            finally:
                self.replying_to = None
                await self._release_held()

    async def _release_held(self) -> None:
        """Forward the events held back by room_event, in order (events arriving meanwhile join
        the end of the list)."""
        try:
            while self.held:
                await self._forward(self.held.pop(0))
        except Exception:
            logger.debug("held events not sent", exc_info=True)  # the socket closed meanwhile
        finally:
            self.held = None

    async def _stop_worker(self) -> None:
        """On disconnect: messages not started yet are dropped (the client resends whatever it
        has no ack for, safely: client ids make a resend a no-op); the one in progress finishes
        its transaction."""
        if self.worker is None or self.inbox is None:
            return
        while not self.inbox.empty():
            self.inbox.get_nowait()
        self.inbox.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self.worker), timeout=30)
        except TimeoutError:
            self.worker.cancel()
            with contextlib.suppress(BaseException):
                await self.worker

    async def _handle(self, message: dict[str, Any]) -> None:
        await self._touch()
        handler = HANDLERS[message["type"]]
        try:
            await handler(self, message)
        except DomainError as exc:
            await self._error(exc.as_payload(), message=message)
        except (OperationalError, InterfaceError):
            logger.warning("database unavailable while handling %s", message["type"])
            await self._error(
                {
                    "code": protocol.ERR_NOT_SAVED,
                    "message": _(
                        "The server could not save this just now; it is kept and will be sent "
                        "again."
                    ),
                },
                message=message,
            )
        except Exception:
            logger.exception("error handling %s", message["type"])
            await self._error(
                {"code": protocol.ERR_SERVER, "message": _("Something went wrong on the server.")},
                message=message,
            )

    async def _error(
        self, payload: dict[str, Any], *, message: dict[str, Any] | None = None
    ) -> None:
        body = {"type": "error", **payload}
        if message is not None and "client_id" in message:
            body.setdefault("client_id", message["client_id"])
        if message is not None:
            body.setdefault("request_type", message["type"])
        await self.send_json(body)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self._send_ticks()
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    # ---- handlers (one per inbound type; the table is HANDLERS below) --------------------------

    async def handle_ping(self, message: dict[str, Any]) -> None:
        try:
            seq = await heartbeat.room_seq(self.room_id)
        except DatabaseError:
            seq = None  # a heartbeat is answered even while the database is away
        await self.send_json(
            {"type": "pong", "server_time": timezone.now().isoformat(), "seq": seq}
        )

    async def _touch(self) -> None:
        """Refresh the member's last_seen at most once per PRESENCE_TOUCH_SECONDS / 2; the
        process writes the refreshes of all its sockets together (debate/heartbeat.py)."""
        now = time.monotonic()
        if self.member_id is None or now - self.touched_at < self.touch_every:
            return
        self.touched_at = now
        heartbeat.touch(self.member_id)

    async def handle_sync(self, message: dict[str, Any]) -> None:
        last_seq = message.get("last_seq")
        reply = await database_sync_to_async(_sync_reply)(
            self.room_id, self.user, self.member_id, last_seq
        )
        if reply is None:  # removed from the room meanwhile
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            return
        # The database is the truth: if a member.moved event was missed, follow the team now.
        await self._follow_team(reply.pop("_position_id"), reply["seq"])
        await self.send_json(reply)

    async def handle_draft_save(self, message: dict[str, Any]) -> None:
        result = await database_sync_to_async(services.draft_save)(
            room_id=self.room_id,
            actor=self.user,
            member_id=self.member_id,
            client_id=message["client_id"],
            text=message["text"],
            base_version=message["base_version"],
            kind=message.get("kind"),
            slot=message.get("slot"),
            draft_id=message.get("draft_id"),
            position_id=message.get("position_id"),
            citations=message.get("citations"),
        )
        await self._ack(message, result)

    async def handle_recommendation_save(self, message: dict[str, Any]) -> None:
        """Chairs (facilitators and members made chair) save the builder's form."""
        optional = ("citation_ids", "risk_draft_id", "risk_text")
        result = await database_sync_to_async(services.recommendation_build)(
            room_id=self.room_id,
            actor=self.user,
            member_id=self.member_id,
            client_id=message["client_id"],
            decision_id=message["decision_id"],
            rationale=message["rationale"],
            revisit_condition=message["revisit_condition"],
            base_version=message["base_version"],
            **{name: message[name] for name in optional if name in message},
        )
        await self._ack(message, result)

    async def handle_research_note_save(self, message: dict[str, Any]) -> None:
        result = await database_sync_to_async(services.research_note_save)(
            room_id=self.room_id,
            actor=self.user,
            member_id=self.member_id,
            client_id=message["client_id"],
            note_id=message.get("note_id"),
            base_version=message["base_version"],
            organisation=message["organisation"],
            year=message["year"],
            month=message["month"],
            approach=message["approach"],
            summary=message["summary"],
            source_url=message["source_url"],
        )
        await self._ack(message, result)

    async def handle_research_note_delete(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.research_note_delete)(
            room_id=self.room_id,
            actor=self.user,
            member_id=self.member_id,
            note_id=message["note_id"],
        )

    async def handle_research_judge(self, message: dict[str, Any]) -> None:
        result = await database_sync_to_async(services.trend_judge)(
            room_id=self.room_id,
            actor=self.user,
            member_id=self.member_id,
            client_id=message["client_id"],
            trend=message["trend"],
            reason=message["reason"],
        )
        await self._ack(message, result)

    async def handle_comment_add(self, message: dict[str, Any]) -> None:
        result = await database_sync_to_async(services.comment_add)(
            room_id=self.room_id,
            member_id=self.member_id,
            client_id=message["client_id"],
            draft_id=message["draft_id"],
            kind=message["kind"],
            text=message["text"],
        )
        await self._ack(message, result)

    async def handle_member_action(self, message: dict[str, Any]) -> None:
        """Members' review actions: each maps to one service, called with this member's id."""
        service, fields = MEMBER_ACTIONS[message["type"]]
        arguments = {name: message[name] for name in fields if name in message}
        await database_sync_to_async(service)(
            room_id=self.room_id, member_id=self.member_id, **arguments
        )

    async def handle_phase_advance(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.phase_advance)(
            room_id=self.room_id, actor=self.user, to_phase=message["to"]
        )

    async def handle_positions_assign(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.positions_assign)(
            room_id=self.room_id, actor=self.user
        )

    async def handle_member_move(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.member_move)(
            room_id=self.room_id,
            actor=self.user,
            member_id=message["member_id"],
            position_id=message["position_id"],
        )

    async def handle_typing(self, message: dict[str, Any]) -> None:
        """Ephemeral: relayed to the facilitators at most every TYPING_EVERY seconds, unstored."""
        now = time.monotonic()
        if self.member_id is None or now - self.typing_sent_at < TYPING_EVERY:
            return
        self.typing_sent_at = now
        event = {"type": events.MEMBER_TYPING, "member_id": self.member_id}
        try:
            await self.channel_layer.group_send(
                events.group_facilitators(self.room_id),
                {"type": events.GROUP_MESSAGE_TYPE, "event": event},
            )
        except Exception as exc:  # a lost typing hint does not matter
            logger.debug("typing relay failed: %r", exc)

    async def handle_position_choose(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.position_choose)(
            room_id=self.room_id, member_id=self.member_id, position_id=message["position_id"]
        )

    async def handle_timer_expired(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.timer_expired)(
            room_id=self.room_id, phase=message["phase"]
        )

    async def handle_facilitator_action(self, message: dict[str, Any]) -> None:
        """Facilitator actions: each maps to one service; the service checks the role."""
        service, fields = FACILITATOR_ACTIONS[message["type"]]
        arguments = {name: message.get(name) for name in fields}
        await database_sync_to_async(service)(room_id=self.room_id, actor=self.user, **arguments)

    async def handle_warmup_submit(self, message: dict[str, Any]) -> None:
        attempt = await database_sync_to_async(services.warmup_submit)(
            room_id=self.room_id,
            member_id=self.member_id,
            client_id=message["client_id"],
            answers=message["answers"],
        )
        await self.send_json(
            {
                "type": "ack",
                "request_type": message["type"],
                "client_id": message["client_id"],
                "id": attempt.pk,
                "score": attempt.score,
                "total": attempt.total,
            }
        )

    async def handle_solo_step(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(services.solo_phase_set)(
            room_id=self.room_id, member_id=self.member_id, to_phase=message["to"]
        )

    async def _ack(self, message: dict[str, Any], result: services.SaveResult) -> None:
        await self.send_json(
            {
                "type": "ack",
                "request_type": message["type"],
                "client_id": message["client_id"],
                "id": result.id,
                "version": result.version,
                "duplicate": result.duplicate,
                "seq": result.seq,
            }
        )

    # ---- group events: forward only ----------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Group events go straight to room_event. Channels' AsyncConsumer.dispatch awaits
        aclose_old_connections() before every handler: a hop onto asgiref's single database
        thread, so each delivery would queue behind the database work waiting there. room_event
        uses no database, and every handler that does reaches it through database_sync_to_async,
        which closes old connections around each call. Everything else (the socket's own
        messages, connect, disconnect) keeps Channels' dispatch."""
        if message.get("type") == events.GROUP_MESSAGE_TYPE:
            await self.room_event(message)
            return
        await super().dispatch(message)

    async def room_event(self, message: dict[str, Any]) -> None:
        """Forward a group event. The sender of a change receives its ack before the change's
        own event (docs/protocol.md, "ack"): the event can reach this socket while the worker is
        still between the commit and the ack, so it is held, with every event after it (the
        order is kept), until the ack has gone."""
        if self.held is not None:
            self.held.append(message)
            return
        if self.replying_to is not None and _carries_client_id(message["event"], self.replying_to):
            self.held = [message]
            return
        await self._forward(message)

    async def _forward(self, message: dict[str, Any]) -> None:
        event = message["event"]
        seq = event.get("seq")
        if isinstance(seq, int):
            heartbeat.seen(self.room_id, seq)
            if event["type"] == events.TICK and self.tick_run_seconds > 0:
                await self._queue_tick(seq)
                return
        if event["type"] == events.MEMBER_MOVED and event["member_id"] == self.member_id:
            # This member changed team: follow the team's group (channel layer only, no ORM).
            # It sends nothing; whatever the worker sends meanwhile sends the waiting run first.
            await self._follow_team(event["position_id"], seq)
        # From here to the send nothing awaits, so the run taken off cannot be overtaken.
        ticks_from = self._run_ending_at(seq - 1) if isinstance(seq, int) else None
        if ticks_from is None:
            await self._send_ticks()
        text = message.get("text")  # encoded once per event by events.broadcast
        if not isinstance(text, str):
            text = json.dumps(event, separators=(",", ":"))
        if ticks_from is not None:
            # The run just before this event rides in its frame (docs/protocol.md, "tick").
            text = f'{{"ticks_from":{ticks_from},{text[1:]}'
        if isinstance(seq, int) and seq > self.seq_sent:
            self.seq_sent = seq
        await self.send(text_data=text)
        if event["type"] == events.MEMBER_REMOVED and event["member_id"] == self.member_id:
            await self.close(code=protocol.CLOSE_FORBIDDEN)

    # ---- ticks: a run of consecutive numbers leaves as one frame ---------------------------------

    async def _queue_tick(self, seq: int) -> None:
        """Hold a tick for up to TICK_RUN_MS so that the ticks after it join it in one frame,
        `{"type": "tick", "seq": last, "from": first}` (docs/protocol.md, "tick"). Most of a
        busy room's events are other teams' drafts, which reach a member only as ticks: one
        frame per run instead of one per event. Whatever else the socket sends first sends the
        run (send_json, _forward), so the order on the socket is kept."""
        if self.tick_last is not None and seq == self.tick_last + 1:
            self.tick_last = seq
            return
        await self._send_ticks()  # not the next number: the run so far goes first
        if seq < self.seq_sent:
            # A room's events can reach a socket out of order (two database threads, or several
            # processes, publish them): the client already has a later number and waits for
            # this one before it shows what came after, so it leaves at once.
            await self._send_run(seq, seq)
            return
        self._start_run(seq)

    def _take_tick(self, message: dict[str, Any]) -> bool:
        """The channel layer's sink (config/channel_layers.py): a tick that reaches this socket
        while it is idle joins the run here, without waking the consumer's task; at 25 members
        a room's busy minute is mostly ticks. Declines (the message then goes through the
        queue and _forward) anything but a tick that starts a run or continues the one
        waiting, and everything while events are held back for an ack."""
        if not isinstance(message, dict):
            return False
        event = message.get("event")
        if (
            message.get("type") != events.GROUP_MESSAGE_TYPE
            or self.held is not None
            or not isinstance(event, dict)
            or event.get("type") != events.TICK
        ):
            return False
        seq = event.get("seq")
        if not isinstance(seq, int) or seq < self.seq_sent:
            return False  # a number the client waits on: _queue_tick sends it at once
        if self.tick_last is None:
            self._start_run(seq)
        elif seq == self.tick_last + 1:
            self.tick_last = seq
        else:
            return False
        heartbeat.seen(self.room_id, seq)
        return True

    def _run_ending_at(self, seq: int) -> int | None:
        """If the run of ticks waiting ends at `seq`, take it off the socket and return its
        first number: the event numbered seq + 1 carries it as `ticks_from`, one frame for both."""
        if self.tick_last != seq:
            return None
        first, _ = self._take_run()
        return first

    def _start_run(self, seq: int) -> None:
        """A run begins at `seq`; it leaves when the timer fires unless something takes it first."""
        self.tick_first = self.tick_last = seq
        self.tick_timer = asyncio.get_running_loop().call_later(
            self.tick_run_seconds, self._tick_timer_fired
        )

    def _take_run(self) -> tuple[int, int]:
        """Take the waiting run off the socket (first and last number) and stop its timer."""
        first, last = self.tick_first, self.tick_last
        assert first is not None and last is not None, "no run is waiting"
        self.tick_first = self.tick_last = None
        if self.tick_timer is not None:
            self.tick_timer.cancel()
            self.tick_timer = None
        return first, last

    def _tick_timer_fired(self) -> None:
        self.tick_timer = None
        self.tick_sending = asyncio.ensure_future(self._send_ticks_quietly())

    async def _send_ticks_quietly(self) -> None:
        try:
            await self._send_ticks()
        except Exception:
            logger.debug("ticks not sent", exc_info=True)  # the socket closed meanwhile

    async def _send_ticks(self) -> None:
        """Send the run of ticks waiting, if any, as one frame."""
        if self.tick_last is None:
            return
        await self._send_run(*self._take_run())

    async def _send_run(self, first: int, last: int) -> None:
        tick: dict[str, Any] = {"type": events.TICK, "seq": last}
        if first != last:
            tick["from"] = first
        if last > self.seq_sent:
            self.seq_sent = last
        await self.send(text_data=json.dumps(tick, separators=(",", ":")))

    async def _follow_team(self, position_id: int | None, seq: Any) -> None:
        """Listen to the team `position_id` as of the room's number `seq`. The worker (a sync
        reply) and the group events (a member.moved) both call this: one at a time, and news
        older than what the socket already follows is ignored, so a sync read just before a move
        cannot take the socket back to the old team after the move's event has moved it."""
        if self.member_id is None:
            return
        if self.team_lock is None:
            self.team_lock = asyncio.Lock()
        async with self.team_lock:
            if isinstance(seq, int):
                if seq < self.position_seq:
                    return
                self.position_seq = seq
            if position_id == self.position_id:
                return
            await self._leave(events.group_team(self.room_id, self.position_id))
            self.position_id = position_id
            await self._join(events.group_team(self.room_id, self.position_id))


def _carries_client_id(event: dict[str, Any], client_id: str) -> bool:
    """Whether an event reports the change with this client id: its object (draft,
    recommendation, note, attempt, comment...) names it as last_client_id or client_id."""
    for value in event.values():
        if isinstance(value, dict) and client_id in (
            value.get("last_client_id"),
            value.get("client_id"),
        ):
            return True
    return False


TYPING_EVERY = 2.0
REFUSAL_WINDOW_SECONDS = 10.0

# Facilitator actions: message type -> (service, message fields passed as keyword arguments).
FACILITATOR_ACTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "member.mute": (services.member_mute, ("member_id", "muted")),
    "member.remove": (services.member_remove, ("member_id",)),
    "member.readmit": (services.member_readmit, ("member_id",)),
    "draft.moderate": (services.draft_moderate, ("draft_id", "hidden", "needs_source")),
    "draft.feedback": (services.feedback_add, ("draft_id", "text")),
    "room.lock": (services.editing_lock, ("locked",)),
    "room.announce": (services.announcement_set, ("text",)),
    "room.configure": (services.room_configure, ("assignment_method", "choice_cap")),
    "timer.control": (services.timer_control, ("action", "seconds", "auto_advance")),
    "round.switch": (services.round_switch, ()),
    "facilitator.add": (services.cofacilitator_add, ("username",)),
    "case.pick": (services.case_pick, ("position_id", "draft_ids")),
    "vote.close": (services.vote_close, ()),
    "chair.set": (services.chair_set, ("member_id", "chair")),
    "recommendation.finalize": (services.recommendation_finalize, ()),
}

# Members' review actions: message type -> (service, message fields passed when present).
MEMBER_ACTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "strongest.mark": (services.strongest_mark, ("draft_id",)),
    "case.vote": (services.case_vote, ("draft_id", "chosen")),
    "vote.cast": (services.vote_cast, ("position_id", "reason")),
    "signoff.record": (services.signoff_record, ("stance", "text")),
}

HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(FACILITATOR_ACTIONS, RoomConsumer.handle_facilitator_action),
    **dict.fromkeys(MEMBER_ACTIONS, RoomConsumer.handle_member_action),
    "comment.add": RoomConsumer.handle_comment_add,
    "typing": RoomConsumer.handle_typing,
    "position.choose": RoomConsumer.handle_position_choose,
    "timer.expired": RoomConsumer.handle_timer_expired,
    "ping": RoomConsumer.handle_ping,
    "sync": RoomConsumer.handle_sync,
    "draft.save": RoomConsumer.handle_draft_save,
    "recommendation.save": RoomConsumer.handle_recommendation_save,
    "phase.advance": RoomConsumer.handle_phase_advance,
    "positions.assign": RoomConsumer.handle_positions_assign,
    "member.move": RoomConsumer.handle_member_move,
    "warmup.submit": RoomConsumer.handle_warmup_submit,
    "solo.step": RoomConsumer.handle_solo_step,
    "research.note.save": RoomConsumer.handle_research_note_save,
    "research.note.delete": RoomConsumer.handle_research_note_delete,
    "research.judge": RoomConsumer.handle_research_judge,
}
assert set(HANDLERS) == set(protocol.SCHEMAS), "every message type needs a schema and a handler"


class Admission(NamedTuple):
    """Who a socket is, as its connect needs it."""

    member_id: int | None
    position_id: int | None
    is_facilitator: bool
    removed: bool


def _admit(room_id: int, session: Any) -> tuple[Any, Admission | None, bool]:
    """Who is connecting, in the socket's one database call: the user (session_user), the
    admission (None for nobody of this room), and whether this socket was counted already. A
    member who is online (another tab, or every member after a server restart) is counted in the
    same call, so a reconnect storm costs one call per socket here; others are counted once the
    socket has joined its groups (member_connected announces them). A member without an account
    (every student) is read with selectors.member_sync_state, a statement of plain SQL: the
    ORM's member-with-room-and-scenario query cost 1.4 ms of CPU to build, a thousand times
    after a restart (bench/RESULTS.md, eleventh round)."""
    user = session_user(session)
    member_id = member_id_for(session=session, room_id=room_id)
    if not user.is_authenticated:
        if member_id is None:
            return user, None, False  # a stranger: nothing to read
        state = selectors.member_sync_state(room_id=room_id, member_id=member_id)
        if state is None:
            return user, None, False
        admission = Admission(member_id, state.position_id, False, state.removed)
    else:
        viewer = selectors.viewer_for(room_id=room_id, user=user, member_id=member_id)
        if viewer is None:
            return user, None, False
        member = viewer.member
        admission = Admission(
            member.pk if member is not None else None,
            member.position_id if member is not None else None,
            viewer.is_facilitator,
            viewer.is_removed,
        )
    if admission.member_id is None or admission.removed:
        return user, admission, False
    counted = services.member_counted_if_online(room_id=room_id, member_id=admission.member_id)
    return user, admission, counted


def _room_exists(room_id: int) -> bool:
    return Room.objects.filter(pk=room_id).exists()


def _sync_reply(
    room_id: int, user: Any, member_id: int | None, last_seq: Any
) -> dict[str, Any] | None:
    """`synced` when the client is at the room's sequence number (the room's number is read in
    one statement, no snapshot is built: cheap when a thousand pages reconnect at once), else the
    snapshot. None if the viewer may no longer be here. `_position_id` is the member's team,
    read at or after the reply's `seq` (RoomConsumer._follow_team ignores news older than what
    the socket follows, so a team read before its number would be trusted too far)."""
    if last_seq is not None and member_id is not None:
        # A member's reconnect (the common case, a thousand at once after a restart): whether
        # they are still here and the room's number, in one statement.
        state = selectors.member_sync_state(room_id=room_id, member_id=member_id)
        if state is None or state.removed:
            return None
        if state.seq == last_seq:
            return {"type": "synced", "seq": last_seq, "_position_id": state.position_id}
    viewer = selectors.viewer_for(room_id=room_id, user=user, member_id=member_id)
    if viewer is None or viewer.is_removed:  # removed meanwhile, even if member.removed was lost
        return None
    position_id = viewer.member.position_id if viewer.member is not None else None
    if last_seq is not None:
        seq = selectors.room_seq(room_id=room_id)
        if seq is not None and seq == last_seq:
            return {"type": "synced", "seq": seq, "_position_id": position_id}
    snapshot = selectors.room_snapshot(viewer=viewer)
    return {"type": "snapshot", **snapshot, "_position_id": snapshot["me"]["position_id"]}

"""Experiments, bench only: Quorum's ASGI application with monkeypatches that try the fixes
proposed in bench/RESULTS.md before anyone changes the application.

    QUORUM_BENCH_PATCH=switch,nonblock,threads daphne ... bench.patched_asgi:application

- `switch`: sys.setswitchinterval(QUORUM_BENCH_SWITCH, default 0.0005 s). The DB worker thread
  is CPU-bound (ORM) and the event loop thread gives the GIL away at every socket write; with
  the default 5 ms interval the loop waits up to 5 ms to get it back each time (GIL convoy).
- `nonblock`: RoomConsumer.receive queues the message for a per-connection worker task instead of
  awaiting the handler, so group events keep flowing to a socket whose own save waits for the
  database (order of handling per connection is kept).
- `dispatch`: RoomConsumer.dispatch forwards group events (`room.event`) straight to room_event.
  Channels 4.2+ `AsyncConsumer.dispatch` awaits `aclose_old_connections()` before *every*
  handler, group events included: a sync_to_async hop onto the process's single DB thread, so each
  delivery queues behind the saves waiting there.
- `generalsave`: the one-round-trip typing save (debate/hotpath.py) is off, so every save takes
  services.draft_save's general path: the before of the sixth round's A/B.
- `db4`: DB_THREADS 4 instead of the default 2.
- `nocheck`: the database pool hands out connections without its check query
  (DB_HEALTH_CHECKS=0 in the environment does the same).
- `ticksN` (e.g. `ticks200`, the default before the eighth round): sockets hold a run of
  ticks up to N ms (QUORUM_TICK_RUN_MS) instead of the default 600.
- `gcdefault`: the collector as Python leaves it, instead of config/asgi.py's tuning
  (gc.unfreeze(), thresholds 700, 10, 10): the before of the eighth round.
- `gclog`: a measuring patch, not a fix: logs every collection of the oldest generation, and
  any collection of 20 ms or more, with its duration (the server's log in bench/out/).
- `looplag`: a measuring patch: a task wakes every 50 ms and logs, with the wall time, every turn
  of the server's event loop that came 50 ms or more late (the server's log in bench/out/), to
  line a stall up with the clients' figures and the database's waits.
- `asyncio`: Daphne runs on asyncio's own loop instead of uvloop's (QUORUM_UVLOOP=0 for
  config/serve.py, set by bench/run.py; nothing to patch here): the before of the eighth round.
- `checkall`: the pool checks every connection it hands out, as Django's own pool does
  (DB_CHECK_IDLE_SECONDS=0 does the same): the before of the eighth round.
- `nosink`: the channel layer queues every group message for its consumer, as channels_redis
  does (no tick taken by an idle socket's run directly): the before of the seventh round.
- `publishone`: each broadcast publishes in a pipeline of its own under the shard's lock (one
  round trip per event, so at most one per turn of the event loop), and group_send is
  channels_redis's, instead of the layer's batches: the before of the tenth round.
- `nocarry`: a run of ticks always leaves in its own frame, never inside the event after it.
- `threads`: draft_save runs with thread_sensitive=False (the loop's default executor, 6
  threads on 2 cores) instead of the process-wide single thread, so saves of different rooms
  overlap their database round trips.

Nothing here is imported by the application; bench/run.py --experiments uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

PATCHES = {p for p in os.environ.get("QUORUM_BENCH_PATCH", "").split(",") if p}
logger = logging.getLogger("quorum.bench")

if "switch" in PATCHES:
    sys.setswitchinterval(float(os.environ.get("QUORUM_BENCH_SWITCH", "0.0005")))

from config.asgi import application  # noqa: E402
from debate import consumers, services  # noqa: E402

__all__ = ["application"]

if "threads" in PATCHES:
    from channels.db import DatabaseSyncToAsync

    _original = consumers.database_sync_to_async

    def _database_sync_to_async(func, *args, **kwargs):
        if func is services.draft_save:
            return DatabaseSyncToAsync(func, thread_sensitive=False)
        return _original(func, *args, **kwargs)

    consumers.database_sync_to_async = _database_sync_to_async

if "dispatch" in PATCHES:
    from debate import events

    _dispatch = consumers.RoomConsumer.dispatch

    async def dispatch(self, message) -> None:
        if message.get("type") == events.GROUP_MESSAGE_TYPE:
            await self.room_event(message)  # forwards only: no database, no connection cleanup
            return
        await _dispatch(self, message)

    consumers.RoomConsumer.dispatch = dispatch

if "nonblock" in PATCHES:
    _receive = consumers.RoomConsumer.receive
    _disconnect = consumers.RoomConsumer.disconnect

    async def _work(self, inbox: asyncio.Queue) -> None:
        while True:
            text_data, bytes_data = await inbox.get()
            try:
                await _receive(self, text_data, bytes_data)
            except Exception:
                logger.exception("bench worker")

    async def receive(self, text_data=None, bytes_data=None) -> None:
        inbox = getattr(self, "_bench_inbox", None)
        if inbox is None:
            inbox = self._bench_inbox = asyncio.Queue()
            self._bench_worker = asyncio.create_task(_work(self, inbox))
        inbox.put_nowait((text_data, bytes_data))

    async def disconnect(self, code: int) -> None:
        worker = getattr(self, "_bench_worker", None)
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(BaseException):
                await worker
        await _disconnect(self, code)

    consumers.RoomConsumer.receive = receive
    consumers.RoomConsumer.disconnect = disconnect

if "generalsave" in PATCHES:
    from debate import hotpath

    hotpath.available = lambda: False  # every typing save takes services.draft_save's own path

if "db4" in PATCHES:
    from django.conf import settings

    settings.DB_THREADS = 4  # read when the executor is first made, after this import

if "nocheck" in PATCHES:
    from django.db import connections

    # The pool is made on first use, after this import: no check query per checkout.
    connections["default"].settings_dict["CONN_HEALTH_CHECKS"] = False

if "gclog" in PATCHES:
    import gc
    import time

    _gc_started = [0.0]

    def _gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            _gc_started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - _gc_started[0]) * 1000
        if ms >= 20 or info["generation"] == 2:
            logger.warning(
                "gc generation %d: %.1f ms, %d collected", info["generation"], ms, info["collected"]
            )

    gc.callbacks.append(_gc_timer)

if "gcdefault" in PATCHES:
    import gc

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)

for _patch in PATCHES:
    if _patch.startswith("ticks") and _patch[5:].isdigit():
        from django.conf import settings

        settings.QUORUM = {**settings.QUORUM, "TICK_RUN_MS": int(_patch[5:])}

if "checkall" in PATCHES:
    from django.conf import settings

    settings.DB_CHECK_IDLE_SECONDS = 0  # read when the pool is made, on first use

if "nosink" in PATCHES:
    from config import channel_layers

    channel_layers.ResilientLoopLayer.set_sink = lambda self, channel, sink: None

if "publishone" in PATCHES:
    from config import channel_layers

    async def group_send_many_alone(self, sends):
        """Each call its own pipeline, under the shard's lock, as before the tenth round."""
        layer = self._get_layer()
        await layer.publish_pipelined(
            [(layer._get_group_channel_name(g), self.serialize(m)) for g, m in sends]
        )

    channel_layers.ResilientRedisPubSubChannelLayer.group_send_many = group_send_many_alone
    del channel_layers.ResilientRedisPubSubChannelLayer.group_send  # channels_redis's own

if "nocarry" in PATCHES:
    consumers.RoomConsumer._run_ending_at = lambda self, seq: None

if "looplag" in PATCHES:
    import time

    async def _watch_loop() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            late = (time.monotonic() - t - 0.05) * 1000
            if late >= 50:
                logger.warning("loop late %.0f ms at %.3f", late, time.time())

    _inner_app, _watching = application, []

    async def application(scope, receive, send):  # the watched application
        if not _watching:
            _watching.append(asyncio.get_running_loop().create_task(_watch_loop()))
        return await _inner_app(scope, receive, send)


if PATCHES:
    logger.warning("bench patches active: %s", sorted(PATCHES))

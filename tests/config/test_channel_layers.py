"""config.channel_layers: which group messages a socket's sink is offered, and that everything
else reaches the socket's queue as channels_redis would deliver it. These drive the layer's own
routing (`DirectDeliveryShard._receive_message`, the call its Redis receive loop makes for each
published message) without a Redis server: routing does no I/O. Publishing in batches is tested
over a real Redis (REDIS_URL, default 127.0.0.1:6379). The sockets' side, over a real
Redis, is in tests/debate/test_socket_savings.py."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from config.channel_layers import ResilientLoopLayer, ResilientRedisPubSubChannelLayer
from tests.conftest import service_reachable, skip_or_fail

GROUP = "quorum__group__room.1.team.2"


class Sink:
    """Takes ticks, declines anything else; records what it was offered."""

    def __init__(self, *, fail: bool = False) -> None:
        self.offered: list[Any] = []
        self.fail = fail

    def __call__(self, message: Any) -> bool:
        self.offered.append(message)
        if self.fail:
            raise RuntimeError("a sink that breaks")
        return message["event"]["type"] == "tick"


@pytest.fixture
def layer() -> ResilientLoopLayer:
    outer = ResilientRedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0"])
    loop_layer = ResilientLoopLayer(hosts=["redis://127.0.0.1:6379/0"], channel_layer=outer)
    for channel in ("a", "b"):
        loop_layer.channels[channel] = asyncio.Queue()
    loop_layer.groups[GROUP] = {"a", "b"}
    return loop_layer


def message(kind: str, seq: int) -> dict[str, Any]:
    return {"type": "room.event", "event": {"type": kind, "seq": seq}}


def publish(layer: ResilientLoopLayer, payload: Any, *, raw: bytes | None = None) -> None:
    data = raw if raw is not None else layer.channel_layer.serialize(payload)
    layer._shards[0]._receive_message({"channel": GROUP.encode(), "data": data})


def queued(layer: ResilientLoopLayer, channel: str) -> list[Any]:
    queue = layer.channels[channel]
    items = []
    while not queue.empty():
        items.append(layer.channel_layer.deserialize(queue.get_nowait()))
    return items


def test_an_idle_socket_s_sink_takes_a_tick_and_declines_content(layer):
    sink = Sink()
    layer.set_sink("a", sink)
    publish(layer, message("tick", 5))
    publish(layer, message("draft.updated", 6))
    assert [m["event"]["seq"] for m in sink.offered] == [5, 6]
    assert queued(layer, "a") == [message("draft.updated", 6)]
    # The socket without a sink gets both, queued, as channels_redis would deliver them.
    assert queued(layer, "b") == [message("tick", 5), message("draft.updated", 6)]


def test_a_tick_behind_a_queued_message_is_queued_after_it_not_offered(layer):
    """Content 6 is on a's queue (its consumer has not taken it yet): tick 7 must not join a run
    that could leave before 6, so the sink is not even asked."""
    sink = Sink()
    layer.set_sink("a", sink)
    layer.channels["a"].put_nowait(layer.channel_layer.serialize(message("draft.updated", 6)))
    publish(layer, message("tick", 7))
    assert sink.offered == []
    assert queued(layer, "a") == [message("draft.updated", 6), message("tick", 7)]


async def test_a_socket_is_busy_from_taking_a_message_to_asking_for_the_next(layer):
    """While a's consumer handles the message receive() gave it, a tick is queued, not offered;
    once it asks for the next message, the sink is offered again."""
    sink = Sink()
    layer.set_sink("a", sink)
    layer.channels["a"].put_nowait(layer.channel_layer.serialize(message("draft.updated", 6)))
    assert await layer.receive("a") == message("draft.updated", 6)
    publish(layer, message("tick", 7))
    assert sink.offered == []
    assert await layer.receive("a") == message("tick", 7)  # asked again: no longer busy...
    waiting = asyncio.ensure_future(layer.receive("a"))
    await asyncio.sleep(0)  # ...and, once it waits for the next one, idle
    publish(layer, message("tick", 8))
    assert [m["event"]["seq"] for m in sink.offered] == [8]
    assert layer.channels["a"].empty()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_consumer_that_stops_leaves_no_sink_behind(layer):
    """However a consumer ends (disconnect or not), its pending receive() is cancelled: the sink
    and the busy mark go with it, so the layer keeps no closed socket alive."""
    layer.set_sink("a", Sink())
    layer.channels["a"].put_nowait(layer.channel_layer.serialize(message("tick", 1)))
    await layer.receive("a")
    assert "a" in layer.busy
    waiting = asyncio.ensure_future(layer.receive("a"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert "a" not in layer.sinks and "a" not in layer.busy


def test_a_message_that_does_not_decode_is_queued_for_everyone_as_before(layer):
    sink = Sink()
    layer.set_sink("a", sink)
    publish(layer, None, raw=b"\xc1 not msgpack")
    assert sink.offered == []
    for channel in ("a", "b"):
        assert layer.channels[channel].get_nowait() == b"\xc1 not msgpack"


def test_a_sink_that_fails_costs_nobody_the_message(layer):
    layer.set_sink("a", Sink(fail=True))
    layer.set_sink("b", Sink())
    publish(layer, message("tick", 3))
    assert queued(layer, "a") == [message("tick", 3)]  # a's sink broke: a gets it queued
    assert queued(layer, "b") == []  # b's sink took it


# --- publishing in batches, over a real Redis ------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_layer():
    if not service_reachable(REDIS_URL, 6379):
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}")
    layer = ResilientRedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=f"test-{uuid.uuid4().hex}")
    yield layer
    await layer.flush()


@pytest.fixture
def pipelines(monkeypatch) -> list[int]:
    """The size of every pipeline the layer sends to Redis, one round trip each."""
    sizes: list[int] = []
    execute = Pipeline.execute

    async def counted(self, *args, **kwargs):
        sizes.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    return sizes


def numbered(n: int) -> dict[str, Any]:
    return {"type": "room.event", "event": {"type": "draft.updated", "seq": n}}


async def received(layer, channel: str, count: int) -> list[int]:
    return [
        (await asyncio.wait_for(layer.receive(channel), 5))["event"]["seq"] for _ in range(count)
    ]


async def test_messages_sent_meanwhile_leave_together_in_order(redis_layer, pipelines):
    """Fifty events (two groups each) and a typing hint sent at once: every message arrives, in
    the order sent, in one or two round trips instead of channels_redis's 101."""
    channel = await redis_layer.new_channel()
    await redis_layer.group_add("team", channel)
    await redis_layer.group_add("facilitators", channel)
    sends = [redis_layer.group_send_many([("team", numbered(n)), ("facilitators", numbered(n))])
             for n in range(50)]  # fmt: skip
    sends.insert(25, redis_layer.group_send("facilitators", numbered(999)))
    await asyncio.gather(*sends)
    expected = [n for n in range(25) for _ in (0, 1)] + [999]
    expected += [n for n in range(25, 50) for _ in (0, 1)]
    assert await received(redis_layer, channel, 101) == expected
    assert sum(pipelines) == 101 and len(pipelines) <= 2


async def test_a_send_whose_caller_gave_up_before_its_batch_left_is_not_published(
    redis_layer, pipelines
):
    """As with channels_redis, where a cancelled send never took the lock: a broadcast that
    timed out while Redis was slow does not arrive later, out of its time."""
    channel = await redis_layer.new_channel()
    await redis_layer.group_add("team", channel)
    shard = redis_layer._get_layer()._shards[0]
    async with shard._lock:  # the first batch waits here, as behind a slow round trip
        first = asyncio.ensure_future(redis_layer.group_send("team", numbered(1)))
        await asyncio.sleep(0.05)
        given_up = asyncio.ensure_future(redis_layer.group_send("team", numbered(2)))
        await asyncio.sleep(0.05)
        given_up.cancel()
    await first
    await redis_layer.group_send("team", numbered(3))
    assert await received(redis_layer, channel, 2) == [1, 3]
    assert given_up.cancelled()
    assert pipelines == [1, 1]


async def test_a_failed_batch_is_an_error_for_its_callers_and_the_next_one_goes(
    redis_layer, monkeypatch
):
    channel = await redis_layer.new_channel()
    await redis_layer.group_add("team", channel)
    execute = Pipeline.execute
    failures = [RedisConnectionError("Redis went away")]

    async def failing_once(self, *args, **kwargs):
        if failures:
            raise failures.pop()
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", failing_once)
    results = await asyncio.gather(
        redis_layer.group_send("team", numbered(1)),
        redis_layer.group_send("team", numbered(2)),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [RedisConnectionError, RedisConnectionError]
    await redis_layer.group_send("team", numbered(3))
    assert await received(redis_layer, channel, 1) == [3]
    assert redis_layer._get_layer().channels[channel].empty()


# --- a stopped consumer's channel, over a real Redis -----------------------------------------


async def subscribers(layer, *channels: str) -> list[int]:
    """How many connections Redis counts as subscribed to each channel (PUBSUB NUMSUB)."""
    redis = layer._get_layer()._shards[0]._redis
    return [count for _name, count in await redis.pubsub_numsub(*channels)]


async def unsubscribed(layer, *channels: str, timeout: float = 5.0) -> bool:
    """Whether every channel has left Redis within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(await subscribers(layer, *channels)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_a_consumer_stopped_twice_while_its_shard_is_busy_leaves_nothing_subscribed(
    redis_layer, caplog
):
    """A consumer cancelled, then cancelled again while its shard's lock is held (a batch on its
    way, a server shutting down): it stops at once, no error is logged, and its channel is
    unsubscribed once the lock is free. channels_redis unsubscribed inside the cancelled call,
    so the second cancellation logged a traceback and left the channel subscribed."""
    channel = await redis_layer.new_channel()
    assert await subscribers(redis_layer, channel) == [1]
    shard = redis_layer._get_layer()._shards[0]
    waiting = asyncio.ensure_future(redis_layer.receive(channel))
    await asyncio.sleep(0.05)
    async with shard._lock:
        waiting.cancel()
        await asyncio.sleep(0.05)
        waiting.cancel()  # the task runner's own cancellation, as at shutdown
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 1)
    assert await unsubscribed(redis_layer, channel), "the channel is still subscribed"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    assert channel not in redis_layer._get_layer().channels


async def test_consumers_that_stop_together_leave_in_one_unsubscribe(redis_layer, monkeypatch):
    """Two hundred sockets closing at once (a class leaving): their channels leave Redis in a
    command or two, not one round trip each under the shard's lock."""
    channels = [await redis_layer.new_channel() for _ in range(200)]
    pubsub = type(redis_layer._get_layer()._shards[0]._pubsub)
    commands: list[int] = []
    unsubscribe = pubsub.unsubscribe

    def counted(self, *args):
        commands.append(len(args))
        return unsubscribe(self, *args)

    monkeypatch.setattr(pubsub, "unsubscribe", counted)
    waiting = [asyncio.ensure_future(redis_layer.receive(c)) for c in channels]
    await asyncio.sleep(0.05)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert await unsubscribed(redis_layer, *channels), "some channels are still subscribed"
    assert sum(commands) == 200 and len(commands) <= 2, commands

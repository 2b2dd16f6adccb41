"""The Redis pub/sub channel layer, made to tolerate a Redis that is away.

channels_redis subscribes a socket's channel (and its groups) before the consumer runs; with Redis
down, that SUBSCRIBE raises and the socket is refused, although the database (and so saving) works.
Here a failed subscription is recorded on redis-py's PubSub object instead, exactly as if it had
succeeded: when the connection comes back, redis-py re-subscribes every recorded channel
(PubSub.on_connect), and events flow again. Until then the socket saves and is acknowledged; clients
catch up from the database when they see a gap in sequence numbers.

It also lets a consumer take a group message on the spot instead of through its queue (a "sink",
`ResilientLoopLayer.set_sink`): the room socket takes the ticks of other teams' events that way
(debate/consumers.py, `RoomConsumer._take_tick`), so a tick costs a function call per local socket
instead of waking every recipient's consumer task. A message goes to the sink only while the
channel's queue is empty and its consumer is not handling a message it received, so it never
overtakes one that arrived before it.

And it publishes a process's group messages in batches (`ResilientLoopLayer.publish`): every
message sent while the last batch was on its way to Redis goes in the next batch, one pipeline,
one round trip. channels_redis publishes one message per round trip under the shard's lock, and a
round trip lasts at least a turn of the event loop, so a busy process could publish no more
messages a second than its loop made turns: past that, events queued behind the lock and reached
the sockets seconds late while the saves were acknowledged at once (bench/RESULTS.md, tenth round).

A stopped consumer's channel is unsubscribed the same way (`ResilientLoopLayer.receive`): its
name joins the next UNSUBSCRIBE of its shard, sent by a task of the layer's own, and the consumer
stops at once. channels_redis unsubscribes inside the cancelled receive(), one round trip under
the shard's lock each: when a class closes its laptops the unsubscribes queue behind one another
and the room's broadcasts; and a consumer cancelled again while it waits (a server shutting down)
logs a traceback and leaves its channel subscribed for the life of the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
    _wrap_close,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("quorum.channel_layer")

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, TimeoutError)


def _remember_subscription(shard, name: str) -> None:
    """Record `name` as subscribed on the shard's PubSub so that the reconnect subscribes it."""
    shard._ensure_redis()
    shard._ensure_receiver()
    pubsub = shard._pubsub
    pubsub.channels.update(pubsub._normalize_keys({name: None}))
    shard._subscribed_to.add(name)


Sink = Callable[[dict[str, Any]], bool]


class DirectDeliveryShard(RedisSingleShardConnection):
    def _receive_message(self, message):
        """channels_redis puts a group message on the queue of each local channel in the group,
        and each consumer decodes its own copy. Here the message is decoded once, and offered
        first to the sinks of channels that are idle (nothing queued, nothing being handled); a
        sink that declines it, and every other channel, gets it on the queue as before."""
        layer = self.channel_layer
        if message is None or not layer.sinks:
            return super()._receive_message(message)
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        members = layer.groups.get(name) if name not in layer.channels else None
        if not members:
            return super()._receive_message(message)
        data = message["data"]
        decoded = None
        for channel_name in list(members):
            queue = layer.channels.get(channel_name)
            if queue is None:
                continue
            sink = layer.sinks.get(channel_name)
            if sink is not None and queue.empty() and channel_name not in layer.busy:
                try:
                    if decoded is None:
                        decoded = layer.channel_layer.deserialize(data)
                    if sink(decoded):
                        continue
                except Exception:
                    # This loop serves every socket of the process: a message that does not
                    # decode, or a sink that fails, must not cost the others their delivery. The
                    # socket gets it queued, as without a sink (and decodes it, or fails, there).
                    logger.exception("channel layer sink failed for %s", channel_name)
                    layer.sinks.pop(channel_name, None)
            queue.put_nowait(data)


class ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [DirectDeliveryShard(shard.host, self) for shard in self._shards]
        # channel -> the consumer's sink; the channels whose consumer has taken a message from
        # receive() and not yet asked for the next one (it is handling that message).
        self.sinks: dict[str, Sink] = {}
        self.busy: set[str] = set()
        # Messages waiting for the next batch, each send with the future its caller awaits; the
        # task that publishes batches while there are any.
        self._outbox: list[tuple[list[tuple[str, bytes]], asyncio.Future[None]]] = []
        self._publisher: asyncio.Task[None] | None = None
        # Channels of stopped consumers, for the next UNSUBSCRIBE; the task that sends them.
        self._leaving: set[str] = set()
        self._unsubscriber: asyncio.Task[None] | None = None

    def publish(self, items: list[tuple[str, bytes]]) -> asyncio.Future[None]:
        """Publish (channel, serialised message) pairs, in order, after everything this loop's
        layer was given before them. The future is done when Redis has them, or holds the error
        that stopped their batch; a caller that stops waiting (cancels it) before its batch
        leaves takes its messages back."""
        future = asyncio.get_running_loop().create_future()
        self._outbox.append((items, future))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_outbox())
        return future

    async def _publish_outbox(self) -> None:
        while self._outbox:
            batch = [entry for entry in self._outbox if not entry[1].done()]
            self._outbox = []
            error: BaseException | None = None
            try:
                await self.publish_pipelined([pair for items, _ in batch for pair in items])
            except asyncio.CancelledError:
                error = ConnectionError("the channel layer was closed")
                raise
            except Exception as exc:
                error = exc
            finally:
                for _, future in batch:
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)

    async def publish_pipelined(self, items: list[tuple[str, bytes]]) -> None:
        """Publish the pairs in order, one pipeline (one round trip) per shard, under the shard's
        lock as channels_redis's own publish is."""
        by_shard: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
        for channel, data in items:
            shard = self._get_shard(channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append((channel, data))
        for shard, pairs in by_shard.values():
            async with shard._lock:
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for channel, data in pairs:
                    pipe.publish(channel, data)
                await pipe.execute()

    def set_sink(self, channel: str, sink: Sink) -> None:
        """Offer this channel's group messages to `sink` first, while the channel is idle. The
        sink runs in the layer's receive loop: it must not block or await, and returns whether
        it took the message (False: the message is queued as usual)."""
        self.sinks[channel] = sink

    def drop_sink(self, channel: str) -> None:
        self.sinks.pop(channel, None)
        self.busy.discard(channel)

    async def receive(self, channel):
        """channels_redis's receive(), but a stopped consumer leaves without waiting.

        Channels' consumers ask for the next message only once the last one is handled, so from
        a receive() returning to the next receive() call the channel is busy. A consumer that
        stops, with or without its disconnect handler, cancels the receive() it is waiting on:
        the sink and the queue go with it, and the channel is handed to the layer's unsubscriber
        (`_leave`) instead of being unsubscribed here, under the shard's lock, where a second
        cancellation would interrupt it."""
        self.busy.discard(channel)
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        queue = self.channels[channel]
        try:
            data = await queue.get()
        except (TimeoutError, asyncio.CancelledError, GeneratorExit):
            self.drop_sink(channel)
            if self.channels.pop(channel, None) is not None:
                self._leave(channel)
            raise
        self.busy.add(channel)
        return self.channel_layer.deserialize(data)

    def _leave(self, channel: str) -> None:
        self._leaving.add(channel)
        if self._unsubscriber is None or self._unsubscriber.done():
            self._unsubscriber = asyncio.get_running_loop().create_task(self._unsubscribe_leaving())

    async def _unsubscribe_leaving(self) -> None:
        """Unsubscribe the channels of stopped consumers: per shard, everything that left while
        the last UNSUBSCRIBE was on its way, in one command, under the shard's lock."""
        while self._leaving:
            leaving, self._leaving = self._leaving, set()
            by_shard: dict[int, tuple[Any, list[str]]] = {}
            for channel in leaving:
                shard = self._get_shard(channel)
                by_shard.setdefault(id(shard), (shard, []))[1].append(channel)
            for shard, channels in by_shard.values():
                async with shard._lock:
                    names = [c for c in channels if c in shard._subscribed_to]
                    if not names:
                        continue
                    shard._subscribed_to.difference_update(names)
                    try:
                        shard._ensure_redis()
                        shard._ensure_receiver()
                        await shard._pubsub.unsubscribe(*names)
                    except UNAVAILABLE as exc:
                        # The connection is gone, and its subscriptions with it; the reconnect
                        # must not subscribe these again (redis-py re-subscribes its record).
                        for key in shard._pubsub._normalize_keys(dict.fromkeys(names)):
                            shard._pubsub.channels.pop(key, None)
                        logger.warning(
                            "Redis unavailable; %d channel(s) dropped: %r", len(names), exc
                        )

    async def flush(self):
        self.sinks.clear()
        self.busy.clear()
        if self._publisher is not None and not self._publisher.done():
            self._publisher.cancel()  # its batch's callers get an error
        for _, future in self._outbox:
            if not future.done():
                future.set_exception(ConnectionError("the channel layer was closed"))
        self._outbox = []
        if self._unsubscriber is not None and not self._unsubscriber.done():
            self._unsubscriber.cancel()  # flush() closes the connections and what they subscribed
        self._leaving.clear()
        await super().flush()

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = asyncio.Queue()
        shard = self._get_shard(channel)
        try:
            await shard.subscribe(channel)
        except UNAVAILABLE as exc:
            logger.warning("Redis unavailable; channel subscribed on reconnect: %r", exc)
            _remember_subscription(shard, channel)

    async def group_add(self, group, channel):
        try:
            await super().group_add(group, channel)
        except UNAVAILABLE as exc:
            group_channel = self._get_group_channel_name(group)
            logger.warning("Redis unavailable; group %s subscribed on reconnect: %r", group, exc)
            _remember_subscription(self._get_shard(group_channel), group_channel)


class ResilientRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = ResilientLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)  # as the parent does: flush this loop's layer when it closes
        return layer

    async def group_send_many(self, sends: list[tuple[str, dict]]) -> None:
        """Publish several group messages, in order, in the loop layer's next batch (one Redis
        round trip per shard for everything sent meanwhile). An event goes to up to five groups
        (debate.events, docs/architecture.md)."""
        layer = self._get_layer()
        items = [
            (layer._get_group_channel_name(group), self.serialize(message))
            for group, message in sends
        ]
        await layer.publish(items)

    async def group_send(self, group, message):
        """The same queue as group_send_many, so a message sent after an event never overtakes
        it (the facilitators' typing hint after the draft it belongs to)."""
        await self.group_send_many([(group, message)])

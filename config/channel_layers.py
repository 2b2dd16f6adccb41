"""The Redis pub/sub channel layer, made to tolerate a Redis that is away.

channels_redis subscribes a socket's channel (and its groups) before the consumer runs; with Redis
down, that SUBSCRIBE raises and the socket is refused, although the database (and so saving) works.
Here a failed subscription is recorded on redis-py's PubSub object instead, exactly as if it had
succeeded: when the connection comes back, redis-py re-subscribes every recorded channel
(PubSub.on_connect), and events flow again. Until then the socket saves and is acknowledged; clients
catch up from the database when they see a gap in sequence numbers.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, _wrap_close
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


class ResilientLoopLayer(RedisPubSubLoopLayer):
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
        """Publish several group messages, in order, in one Redis round trip per shard (a
        pipeline). channels_redis's group_send publishes one message per round trip under the
        shard's lock, so a process could publish no faster than one round trip per group
        message, and an event goes to up to five groups (debate.events, docs/architecture.md)."""
        layer = self._get_layer()
        by_shard: dict[int, tuple] = {}
        for group, message in sends:
            channel = layer._get_group_channel_name(group)
            shard = layer._get_shard(channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append(
                (channel, self.serialize(message))
            )
        for shard, items in by_shard.values():
            async with shard._lock:
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()

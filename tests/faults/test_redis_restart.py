"""Redis (the channel layer) fails while two server processes serve a room.

Each test runs its own redis-server on a free port; the machine's shared Redis is never touched.
The database is the truth and the channel layer a doorbell: while Redis is away, saves are still
committed and acknowledged; afterwards clients resync, nothing acknowledged is lost, and live
delivery between the processes works again.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import skip_or_fail
from tests.faults.support import (
    RedisServer,
    RoomClient,
    Typist,
    check_acks_in_database,
    check_clients_match_database,
    drafting_room,
    drafts_in_database,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def redis(cluster) -> RedisServer:
    if not RedisServer.available():
        skip_or_fail("no redis-server binary to run a private Redis")
    server = cluster.redis()
    server.start()
    return server


async def _delivered(writer: Typist, reader: Typist, timeout: float = 3) -> bool:
    """`writer` saves a change; does `reader` (its teammate, on the other process) receive it?"""
    reply = await writer.save_once()
    assert reply["type"] == "ack", reply
    seq = reply["seq"]
    try:
        event = await reader.client.recv_until(
            lambda m: m.get("type") == "draft.updated" and m.get("seq") == seq, timeout
        )
    except TimeoutError:
        return False
    assert event["draft"]["text"] == writer.acks[-1].text
    return True


async def _delivery_resumes(writer: Typist, reader: Typist, within: float) -> float:
    """Seconds until a change saved by `writer` reaches `reader` again (each try is a new change:
    a pub/sub message published while nobody is subscribed is gone for good)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await _delivered(writer, reader, timeout=0.3):
        assert loop.time() - started < within, (
            f"no live delivery {writer.name} -> {reader.name} within {within}s of the restart"
        )
    return loop.time() - started


def _pairs(room, seats, server_a, server_b) -> list[tuple[Typist, Typist]]:
    """Teams of two, one teammate on each process."""
    teams: dict[int, list] = {}
    for seat in seats:
        teams.setdefault(seat.position_id, []).append(seat)
    assert sorted(len(t) for t in teams.values()) == [2] * len(teams)
    return [
        tuple(
            Typist(
                name=seat.member.display_name,
                member_id=seat.member.pk,
                cookie=seat.cookie,
                room_id=room.pk,
                port=server.port,
            )
            for seat, server in ((first, server_a), (second, server_b))
        )
        for first, second in teams.values()
    ]


async def test_redis_restart_loses_nothing_and_delivery_resumes(cluster, redis):
    room, seats = await drafting_room(["Ana", "Ben", "Cy", "Dee", "Eli", "Fay"])
    server_a = cluster.daphne("a", redis_url=redis.url)
    server_b = cluster.daphne("b", redis_url=redis.url)
    await cluster.start(server_a, server_b)
    pairs = _pairs(room, seats, server_a, server_b)
    typists = [typist for pair in pairs for typist in pair]
    on_a, on_b = pairs[0]
    try:
        for typist in typists:
            await typist.client.connect()
            await typist.client.sync()
        assert await _delivered(on_b, on_a), "no live delivery between the processes at all"
        assert await _delivered(on_a, on_b)

        stop = asyncio.Event()
        tasks = [asyncio.create_task(t.keep_typing(stop)) for t in typists]
        await asyncio.sleep(0.4)
        acks_before = sum(len(t.acks) for t in typists)
        redis.kill()
        await asyncio.sleep(1.0)
        # The doorbell is down, the database is not: open sockets keep saving.
        acks_while_down = sum(len(t.acks) for t in typists) - acks_before
        assert acks_while_down > 0, "nothing was acknowledged while Redis was down"
        await asyncio.to_thread(redis.start)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

        # Sockets that lived through the restart receive events again (channels_redis's receive
        # task retries once a second and redis-py resubscribes when it reconnects).
        assert all(t.client.ws is not None for t in typists), "a socket was dropped"
        resumed = [await _delivery_resumes(w, r, within=5) for w, r in (pairs[0], pairs[0][::-1])]
        # They missed events meanwhile; a sync brings them up to date with the database.
        for typist in typists:
            typist.check_snapshot(await typist.client.sync())
        database = await sync_to_async(drafts_in_database)(room.pk)
        check_acks_in_database(typists, database)

        # Every client reconnects and resyncs, as the browser does after a fault.
        for typist in typists:
            await typist.client.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        await asyncio.gather(*(t.reconnect_and_resend(deadline) for t in typists))
        database = await sync_to_async(drafts_in_database)(room.pk)
        check_acks_in_database(typists, database)
        check_clients_match_database(typists, database)
        for writer, reader in pairs:
            assert await _delivered(writer, reader), "no live delivery after reconnecting"
            assert await _delivered(reader, writer), "no live delivery after reconnecting"
        print(
            f"acks while Redis was down: {acks_while_down}; delivery on the old sockets resumed "
            f"after {resumed[0]:.2f}s / {resumed[1]:.2f}s"
        )
    finally:
        for typist in typists:
            await typist.client.close()


async def test_a_member_can_reconnect_and_save_while_redis_is_down(cluster, redis):
    """Channels subscribes a socket's channel before `connect`; config/channel_layers.py records
    a subscription that fails while Redis is away, so the socket is accepted, saves, and starts
    receiving events once Redis is back (redis-py re-subscribes on reconnect)."""
    room, seats = await drafting_room(["Ana", "Ben"])
    server = cluster.daphne("solo", redis_url=redis.url)
    await cluster.start(server)
    ana = seats[0]
    typist = Typist(
        name="Ana", member_id=ana.member.pk, cookie=ana.cookie, room_id=room.pk, port=server.port
    )
    try:
        await typist.client.connect()
        await typist.client.sync()
        assert (await typist.save_once())["type"] == "ack"
        await typist.client.close()
        redis.kill()
        await asyncio.sleep(0.2)
        typist.client = RoomClient(port=server.port, room_id=room.pk, cookie=ana.cookie, name="Ana")
        await typist.client.connect(timeout=3)
        await typist.client.sync()
        reply = await typist.save_once()
        assert reply["type"] == "ack", reply

        await asyncio.to_thread(redis.start)
        ben = seats[1]
        other = Typist(
            name="Ben",
            member_id=ben.member.pk,
            cookie=ben.cookie,
            room_id=room.pk,
            port=server.port,
        )
        await other.client.connect()
        await other.client.sync()
        # Ben's saves reach Ana's socket (opened while Redis was down) once it has re-subscribed:
        # a draft.updated or a tick, by sequence number.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        heard = None
        while heard is None and loop.time() < deadline:
            saved = await other.save_once()
            assert saved["type"] == "ack", saved
            with contextlib.suppress(TimeoutError):
                heard = await typist.client.recv_until(
                    lambda m: m.get("type") in ("draft.updated", "tick"), timeout=1
                )
        assert heard is not None, "no event reached the socket opened during the outage"
        await other.client.close()
    finally:
        await typist.client.close()


async def test_a_hung_redis_does_not_hold_back_acknowledgements(cluster, redis):
    room, seats = await drafting_room(["Ana", "Ben"])
    server = cluster.daphne("solo", redis_url=redis.url)
    await cluster.start(server)
    typists = [
        Typist(
            name=seat.member.display_name,
            member_id=seat.member.pk,
            cookie=seat.cookie,
            room_id=room.pk,
            port=server.port,
        )
        for seat in seats
    ]
    try:
        for typist in typists:
            await typist.client.connect()
            await typist.client.sync()
        redis.pause()  # connections stay open, nothing answers
        replies = await asyncio.gather(*(t.save_once(timeout=1.5) for t in typists))
        assert [r["type"] for r in replies] == ["ack", "ack"]
    finally:
        redis.resume()
        for typist in typists:
            await typist.client.close()

"""PostgreSQL becomes unreachable for a while: a TCP proxy between the server and the database
closes every connection and refuses new ones, then comes back.

While the database is away nothing is acknowledged: a save gets an error with code "not_saved"
(or the socket is refused), and nothing changes. Once it is back, the client resends the same
change (same client_id and base_version) and it is saved once and acknowledged.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from tests.faults.support import (
    DISCONNECTED,
    RoomClient,
    Typist,
    check_clients_match_database,
    database_address,
    database_url_for_test,
    drafting_room,
    drafts_in_database,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

# A save waits up to DB_POOL_TIMEOUT seconds (default 10) for a pooled connection before it fails
# with not_saved, on the one thread that runs every socket's database work; these tests want the
# failure in a second (the default is examined by the last test of this module).
FAIL_FAST = {"DB_POOL_TIMEOUT": "1"}


async def test_database_unreachable_nothing_acknowledged_then_resend_saves(cluster):
    room, seats = await drafting_room(["Ana", "Ben", "Cy"])
    proxy = cluster.proxy(database_address())
    proxy.start()
    # The server's pooled connections go through the proxy too: the cut breaks connections the
    # server believes healthy, and new ones are refused.
    server = cluster.daphne("db", database_url=database_url_for_test(port=proxy.port), **FAIL_FAST)
    await cluster.start(server)
    ana = seats[0]
    typist = Typist(
        name="Ana", member_id=ana.member.pk, cookie=ana.cookie, room_id=room.pk, port=server.port
    )
    try:
        await typist.client.connect()
        await typist.client.sync()
        for _ in range(2):
            reply = await typist.save_once()
            assert reply["type"] == "ack", reply
        before = await sync_to_async(drafts_in_database)(room.pk)

        await asyncio.to_thread(proxy.cut)
        # Every attempt while the database is away fails visibly and acknowledges nothing.
        for _ in range(2):
            reply = await typist.save_once()
            assert reply["type"] == "error", reply
            assert reply["code"] == "not_saved", reply
            assert reply["client_id"] == typist.pending["client_id"]
        assert typist.pending is not None and len(typist.acks) == 2
        # A sync cannot be served either; the socket stays usable.
        await typist.client.send({"type": "sync"})
        reply = await typist.client.recv_until(lambda m: m["type"] in ("snapshot", "error"))
        assert (reply["type"], reply["code"], reply["request_type"]) == (
            "error",
            "not_saved",
            "sync",
        ), reply
        # A new socket is refused (its member cannot be looked up).
        newcomer = RoomClient(port=server.port, room_id=room.pk, cookie=seats[1].cookie)
        with pytest.raises(DISCONNECTED):
            await newcomer.connect(timeout=3)
            await newcomer.sync(timeout=3)
        await newcomer.close()
        assert await sync_to_async(drafts_in_database)(room.pk) == before

        await asyncio.to_thread(proxy.restore)
        # The client resends the same change until it is acknowledged.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while typist.pending is not None:
            assert loop.time() < deadline, f"never acknowledged after restore: {typist.refusals}"
            await typist.save_once()
            if typist.pending is not None:
                await asyncio.sleep(0.2)
        assert typist.acks[-1].duplicate is False
        reply = await typist.save_once()
        assert reply["type"] == "ack", reply

        check_clients_match_database([typist], await sync_to_async(drafts_in_database)(room.pk))
        typist.check_snapshot(await typist.client.sync())
        # New sockets work again.
        newcomer = RoomClient(port=server.port, room_id=room.pk, cookie=seats[1].cookie)
        await newcomer.connect()
        assert (await newcomer.sync())["me"]["member_id"] == seats[1].member.pk
        await newcomer.close()
    finally:
        await typist.client.close()


async def test_database_cut_while_members_type_loses_and_duplicates_nothing(cluster):
    """The cut lands anywhere, including inside a save's transaction or between its COMMIT and
    the reply: a change may be committed and still reported as not_saved; its resend is then
    acknowledged as a duplicate, never applied twice."""
    room, seats = await drafting_room(["Ana", "Ben", "Cy", "Dee"])
    proxy = cluster.proxy(database_address())
    proxy.start()
    server = cluster.daphne("db", database_url=database_url_for_test(port=proxy.port), **FAIL_FAST)
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
        stop = asyncio.Event()
        tasks = [asyncio.create_task(t.keep_typing(stop, interval=0.005)) for t in typists]
        for _ in range(2):
            await asyncio.sleep(0.4)
            await asyncio.to_thread(proxy.cut)
            acks_at_cut = sum(len(t.acks) for t in typists)
            await asyncio.sleep(0.4)
            assert sum(len(t.acks) for t in typists) <= acks_at_cut + len(typists)
            await asyncio.to_thread(proxy.restore)
        await asyncio.sleep(0.4)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        for typist in typists:
            while typist.pending is not None:
                assert loop.time() < deadline, typist.refusals[-3:]
                if typist.client.ws is None:
                    await typist.reconnect_and_resend(deadline)
                else:
                    await typist.save_once()
        database = await sync_to_async(drafts_in_database)(room.pk)
        check_clients_match_database(typists, database)
        # Saves sent while the database was away were refused, or waited and went through.
        assert any(typist.refusals for typist in typists), "nobody saw the database go away"
        for typist in typists:
            typist.check_snapshot(await typist.client.sync())
        print(
            f"acks {sum(len(t.acks) for t in typists)}, not_saved "
            f"{sum(len(t.refusals) for t in typists)}, acked as duplicate "
            f"{sum(a.duplicate for t in typists for a in t.acks)}"
        )
    finally:
        for typist in typists:
            await typist.client.close()


ANSWER_WITHIN_SECONDS = 5


async def test_a_database_that_never_answers_is_reported_and_recovered_from(cluster):
    room, seats = await drafting_room(["Ana", "Ben"])
    proxy = cluster.proxy(database_address())
    proxy.start()
    server = cluster.daphne("db", database_url=database_url_for_test(port=proxy.port))
    await cluster.start(server)
    ana = seats[0]
    typist = Typist(
        name="Ana", member_id=ana.member.pk, cookie=ana.cookie, room_id=room.pk, port=server.port
    )
    try:
        await typist.client.connect()
        await typist.client.sync()
        assert (await typist.save_once())["type"] == "ack"
        await asyncio.to_thread(proxy.blackhole)
        reply = await typist.save_once(timeout=ANSWER_WITHIN_SECONDS)
        assert (reply["type"], reply.get("code")) == ("error", "not_saved"), reply
        # The network recovers; the connection attempts lost in the black hole stay lost.
        await asyncio.to_thread(proxy.heal)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WITHIN_SECONDS
        while typist.pending is not None:
            if loop.time() > deadline:
                raise TimeoutError(f"not saved {ANSWER_WITHIN_SECONDS}s after the network healed")
            await typist.save_once(timeout=ANSWER_WITHIN_SECONDS)
    finally:
        await asyncio.to_thread(proxy.restore)
        await typist.client.close()

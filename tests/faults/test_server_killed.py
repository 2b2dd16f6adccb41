"""The server process is SIGKILLed while members type, and restarted on the same port.

Nothing acknowledged may be lost; the change each client had in flight (committed or not) is
resent with its client_id and base_version after the restart and lands exactly once.

The kill is aimed at the worst moment: the server's database connection goes through a proxy
that lets one commit through (a COMMIT, or the one-query typing save, debate/hotpath.py) and then
swallows PostgreSQL's reply, so at the kill one change is
committed but was never acknowledged (its resend must be acknowledged as a duplicate), and the
other members' changes are in flight and not committed (their resends must be applied).
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.faults.support import (
    Typist,
    check_acks_in_database,
    check_clients_match_database,
    database_address,
    database_url_for_test,
    drafting_room,
    drafts_in_database,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

TYPING_SECONDS = 1.0
MORE_CHANGES_AFTER_RESTART = 4


async def test_sigkill_while_typing_loses_nothing_acknowledged(cluster):
    room, seats = await drafting_room(["Ana", "Ben", "Cy", "Dee", "Eli", "Fay"])
    proxy = cluster.proxy(database_address())
    proxy.start()
    server = cluster.daphne("solo", database_url=database_url_for_test(port=proxy.port))
    await cluster.start(server)
    typists = [
        Typist(
            name=seat.member.display_name,
            member_id=seat.member.pk,
            cookie=seat.cookie,
            room_id=room.pk,
            port=server.port,
            slots=(("argument", 1), ("argument", 2), ("risk", 1)),
        )
        for seat in seats
    ]
    try:
        for typist in typists:
            await typist.client.connect()
            await typist.client.sync()

        stop = asyncio.Event()
        tasks = [asyncio.create_task(t.type_until(stop, interval=0.01)) for t in typists]
        await asyncio.sleep(TYPING_SECONDS)
        trap = proxy.arm_commit_trap()
        assert await asyncio.to_thread(trap.wait, 5), "nothing committed while members were typing"
        await asyncio.sleep(0.1)  # the others' changes pile up behind the stuck one
        await asyncio.to_thread(server.kill, signal.SIGKILL)
        done, not_done = await asyncio.wait(tasks, timeout=5)
        stop.set()
        assert not not_done, "clients did not notice the server died"
        for task in done:
            task.result()
        for typist in typists:
            assert typist.disconnects == 1, typist.name
            assert typist.acks, f"{typist.name} had nothing acknowledged before the kill"
        in_flight = sum(t.pending is not None for t in typists)

        # Every acknowledged change is in the database, at its version or later.
        database = await sync_to_async(drafts_in_database)(room.pk)
        check_acks_in_database(typists, database)

        await asyncio.to_thread(server.start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        await asyncio.gather(*(t.reconnect_and_resend(deadline) for t in typists))
        for typist in typists:
            for _ in range(MORE_CHANGES_AFTER_RESTART):
                reply = await typist.save_once()
                assert reply["type"] == "ack", reply

        database = await sync_to_async(drafts_in_database)(room.pk)
        check_clients_match_database(typists, database)
        # A fresh snapshot agrees with the database too.
        for typist in typists:
            typist.check_snapshot(await typist.client.sync())

        resent = sum(t.resent_duplicates + t.resent_applied for t in typists)
        assert resent == in_flight
        # The trapped change was committed without an ack, and its resend changed nothing. The
        # server's other database thread may have committed one more change whose ack died with
        # the process (its COMMIT answered just before the kill): that resend is a duplicate too.
        assert 1 <= sum(t.resent_duplicates for t in typists) <= settings.DB_THREADS
        print(
            f"acks before kill: {sum(len(t.acks) for t in typists)}; in flight at kill: "
            f"{in_flight}; resends already committed (duplicate ack): "
            f"{sum(t.resent_duplicates for t in typists)}; resends applied: "
            f"{sum(t.resent_applied for t in typists)}"
        )
    finally:
        for typist in typists:
            await typist.client.close()

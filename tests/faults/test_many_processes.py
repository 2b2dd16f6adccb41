"""Two real Daphne processes sharing PostgreSQL and Redis serve one room.

Everything goes through the servers as a browser would: the facilitator signs up and creates the
room over HTTP, members join with the code (POST /join/ with a CSRF token) on either server, and
the session cookie from one server is good on the other.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from debate import services
from debate.models import Member, Room
from tests.faults.support import Browser, RoomClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


async def test_a_draft_saved_through_one_process_reaches_the_team_on_the_other(cluster):
    scenario = await sync_to_async(services.scenario_install_builtin)()
    server_a, server_b = cluster.daphne("a"), cluster.daphne("b")
    await cluster.start(server_a, server_b)
    clients: list[RoomClient] = []
    try:
        # The facilitator signs up and opens a room on A.
        facilitator = Browser(server_a.port)
        await asyncio.to_thread(facilitator.signup, "ms.twoprocs", "x-Unguessable-2024")
        room_id = await asyncio.to_thread(
            facilitator.create_room, scenario_id=scenario.pk, title="Across processes"
        )
        code = await sync_to_async(lambda: Room.objects.get(pk=room_id).code)()

        # Four members join, alternately through A and B (teams of 2, 1 and 1 once drafting
        # starts); a session made by one server is good on the other.
        names = ["Ana", "Ben", "Cy", "Dee"]
        browsers = {}
        for i, name in enumerate(names):
            browser = Browser((server_a, server_b)[i % 2].port)
            assert await asyncio.to_thread(browser.join, code=code, display_name=name) == room_id
            browsers[name] = browser

        chair = RoomClient(
            port=server_a.port, room_id=room_id, cookie=facilitator.session_cookie, name="chair"
        )
        clients.append(chair)
        await chair.connect()
        await chair.sync()
        await chair.send({"type": "phase.advance", "to": "drafting"})
        changed = await chair.recv_until("phase.changed")
        assert changed["phase"] == "drafting"

        # Teams as assigned; one teammate on each process, the other teams on both processes.
        positions = await sync_to_async(
            lambda: dict(
                Member.objects.filter(room_id=room_id).values_list("display_name", "position")
            )
        )()
        by_position: dict[int, list[str]] = {}
        for name in names:
            by_position.setdefault(positions[name], []).append(name)
        team = next(members for members in by_position.values() if len(members) == 2)
        others = [name for name in names if name not in team]
        placement = {team[0]: server_a, team[1]: server_b, others[0]: server_a, others[1]: server_b}

        sockets: dict[str, RoomClient] = {}
        member_ids: dict[str, int] = {}
        for name in names:
            client = RoomClient(
                port=placement[name].port,
                room_id=room_id,
                cookie=browsers[name].session_cookie,
                name=name,
            )
            clients.append(client)
            await client.connect()
            snapshot = await client.sync()
            assert snapshot["room"]["phase"] == "drafting"
            assert snapshot["me"]["position_id"] == positions[name]
            member_ids[name] = snapshot["me"]["member_id"]
            sockets[name] = client
        for client in clients:
            await client.drain(0.2)

        for writer, reader in ((team[0], team[1]), (team[1], team[0])):
            text = f"{writer}: the weights cannot be recalled once published"
            ack = await sockets[writer].request(
                {
                    "type": "draft.save",
                    "client_id": f"{writer}-1",
                    "kind": "argument",
                    "slot": 1,
                    "text": text,
                    "base_version": 0,
                }
            )
            assert ack["type"] == "ack", ack
            assert ack["version"] == 1 and ack["duplicate"] is False, ack
            seq = ack["seq"]

            # The teammate on the other process receives the draft itself.
            event = await sockets[reader].recv_until("draft.updated")
            assert event["seq"] == seq
            assert event["draft"]["text"] == text
            assert event["draft"]["author_id"] == member_ids[writer]
            # So does the facilitator.
            event = await chair.recv_until("draft.updated")
            assert event["seq"] == seq and event["draft"]["text"] == text

            # The other team, on either process, receives a content-free tick with the same seq.
            for name in others:
                tick = await sockets[name].recv_until(lambda m, seq=seq: m.get("seq") == seq)
                assert tick == {"type": "tick", "seq": seq}, (name, tick)
                later = await sockets[name].drain(0.3)
                assert not [m for m in later if m["type"] == "draft.updated"], (name, later)
            # The writer's own socket gets the event (its team's group) after the ack.
            await sockets[writer].recv_until(lambda m, seq=seq: m.get("seq") == seq)
    finally:
        for client in clients:
            await client.close()

"""The same member in two tabs edits the same slot from the same version. The second write is
stale: it must not overwrite the first silently, and the user's words must stay on screen with a
way to apply them. Two ways to get there: a tab that was offline (the client sees the newer version
in the snapshot when it reconnects), and a tab that missed the update event (the channel layer
delivers at most once), whose write the server refuses."""

from __future__ import annotations

import json
import re

from tests.e2e.support import (
    create_room,
    export_markdown,
    join,
    open_console,
    phase_step,
    require_browser,
)

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

MINE = "Written on the train while offline: release through the API only"
THEIRS = "Written on the laptop: restricted access for vetted researchers"


def set_page_offline(cdp, offline: bool) -> None:
    """One tab's network (Playwright's set_offline would cut every tab of the context)."""
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def test_stale_write_from_an_offline_tab(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Two tabs")
    member = stage.actor("fay")
    join(member.page, code, "Fay")
    open_console(fac.page)
    fac.page.click("#advance")

    tab_a = member.page
    tab_b = member.watch(member.context.new_page())
    tab_b.goto(tab_a.url)
    for tab in (tab_a, tab_b):
        expect(phase_step(tab)).to_have_text("Drafting")
        expect(tab.locator("#save-status")).to_have_text("Saved")
        expect(tab.locator("#arg-1")).to_have_value("")

    cdp = member.context.new_cdp_session(tab_a)
    cdp.send("Network.enable")
    set_page_offline(cdp, True)
    expect(tab_a.locator("#save-status")).to_have_text("Offline — reconnecting…")
    tab_a.bring_to_front()
    tab_a.fill("#arg-1", MINE)  # from version 0
    expect(tab_a.locator("#save-status")).to_have_text("Offline — 1 change kept on this device")

    tab_b.bring_to_front()
    tab_b.fill("#arg-1", THEIRS)  # also from version 0: saved first
    expect(tab_b.locator("#save-status")).to_have_text("Saved")
    assert THEIRS in export_markdown(fac.page, room_id)

    tab_a.bring_to_front()
    set_page_offline(cdp, False)
    panel = tab_a.locator(".conflict")
    expect(panel).to_be_visible(timeout=15_000)
    expect(tab_a.locator("#save-status")).to_have_text("Conflict: your version is kept below")
    expect(panel.locator("textarea")).to_have_value(MINE)
    expect(tab_a.locator("#arg-1")).to_have_value(THEIRS)  # the editor shows the saved text
    record = export_markdown(fac.page, room_id)
    assert THEIRS in record and MINE not in record, "the stale write overwrote the saved text"

    panel.get_by_role("button", name="Use my version").click()
    expect(panel).to_have_count(0)
    expect(tab_a.locator("#arg-1")).to_have_value(MINE)
    expect(tab_a.locator("#save-status")).to_have_text("Saved")
    record = export_markdown(fac.page, room_id)
    assert MINE in record and THEIRS not in record, record
    # The other tab follows the saved text.
    expect(tab_b.locator("#arg-1")).to_have_value(MINE)
    expect(tab_b.locator("#save-status")).to_have_text("Saved")
    assert not stage.script_errors(), stage.script_errors()


def test_stale_write_refused_by_the_server(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Missed event")
    member = stage.actor("gil")
    join(member.page, code, "Gil")
    open_console(fac.page)
    fac.page.click("#advance")

    # Tab B's socket goes through a relay that can lose draft.updated events.
    deaf = {"on": False}
    to_b: list[dict] = []

    def relay(ws):
        server = ws.connect_to_server()

        def from_server(message):
            event = json.loads(message)
            if deaf["on"] and event.get("type") == "draft.updated":
                return
            to_b.append(event)
            ws.send(message)

        server.on_message(from_server)

    tab_a = member.page
    tab_b = member.watch(member.context.new_page())
    tab_b.route_web_socket(re.compile(r"/ws/rooms/\d+/$"), relay)
    tab_b.goto(tab_a.url)
    for tab in (tab_a, tab_b):
        expect(phase_step(tab)).to_have_text("Drafting")
        expect(tab.locator("#save-status")).to_have_text("Saved")

    deaf["on"] = True
    tab_a.fill("#arg-1", THEIRS)
    expect(tab_a.locator("#save-status")).to_have_text("Saved")
    tab_b.bring_to_front()
    expect(tab_b.locator("#arg-1")).to_have_value("")  # tab B never heard of it
    tab_b.fill("#arg-1", MINE)  # from version 0, which is stale

    panel = tab_b.locator(".conflict")
    expect(panel).to_be_visible()
    refused = [e for e in to_b if e.get("type") == "error" and e.get("code") == "conflict"]
    assert refused, "the server did not refuse the stale write"
    assert refused[0]["current"]["text"] == THEIRS
    expect(panel.locator("textarea")).to_have_value(MINE)
    expect(tab_b.locator("#arg-1")).to_have_value(THEIRS)
    record = export_markdown(fac.page, room_id)
    assert THEIRS in record and MINE not in record

    deaf["on"] = False
    panel.get_by_role("button", name="Use my version").click()
    expect(panel).to_have_count(0)
    expect(tab_b.locator("#save-status")).to_have_text("Saved")
    record = export_markdown(fac.page, room_id)
    assert MINE in record and THEIRS not in record, record
    expect(tab_a.locator("#arg-1")).to_have_value(MINE)
    assert not stage.script_errors(), stage.script_errors()

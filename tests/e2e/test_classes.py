"""A class across two rooms in real browsers: a facilitator creates a class and runs two rooms
with it; students join the class once and are recognised in the second room without typing
their name; the class report shows both rooms' contributions on screen and in the CSV.

QUORUM_SCREENSHOTS=1 saves the class pages (desktop 1366 px, phone 390 px) in test-results/."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from tests.e2e.support import RESULTS_DIR, create_room, open_console, phase_step, room_config
from tests.e2e.support import unique as unique_name

from tests.e2e.support import require_browser  # isort: skip

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SCREENSHOTS = os.environ.get("QUORUM_SCREENSHOTS") == "1"

ANA_WEEK1 = "Clinics without cloud access could run the model offline"
BEN_WEEK1 = "An API lets the lab withdraw access when misuse appears"
BEN_RISK = "Closed access concentrates power in one company"
ANA_WEEK2 = "Vetted researchers can audit the weights before wider release"


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        RESULTS_DIR.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS_DIR / f"classes-{name}.png"), full_page=True)


def start_drafting(page) -> None:
    open_console(page)
    expect(page.locator("#advance")).to_have_text("Start drafting")
    page.click("#advance")
    expect(phase_step(page)).to_have_text("Drafting")


def test_a_class_across_two_rooms(stage):
    fac = stage.actor(
        "facilitator", **DESKTOP, storage_state=stage.request.getfixturevalue("facilitator_login")
    )
    page = fac.page
    class_name = unique_name("Ethics")
    page.goto("/classes/")
    page.fill("#id_name", class_name)
    page.get_by_role("button", name="Create class").click()
    page.wait_for_url(re.compile(r"/classes/\d+/$"))
    class_id = int(re.search(r"/classes/(\d+)/", page.url).group(1))
    class_code = page.locator(".class-bar .code-chip").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{6}", class_code), class_code

    # Room 1, from the class page: the class is already chosen in the form.
    page.get_by_role("link", name="Open a room for this class").click()
    expect(page.locator("#id_classgroup")).to_have_value(str(class_id))
    room1, code1 = create_room(page, "Week 1")

    # Students join the class once; the rejoin PIN is shown once.
    ana = stage.actor("ana-phone", **PHONE)
    ben = stage.actor("ben")
    for actor, name in ((ana, "Ana"), (ben, "Ben")):
        actor.page.goto(f"/class/join/{class_code}/")
        actor.page.fill("#id_display_name", name)
        actor.page.get_by_role("button", name="Join the class").click()
        expect(actor.page.locator(".secret-pin")).to_have_text(re.compile(r"^\d{6}$"))
        shot(actor.page, f"welcome-{actor.label}")
        actor.page.get_by_role("button", name="Enter Week 1").click()
        actor.page.wait_for_selector(".my-position")
        assert room_config(actor.page)["roomId"] == room1
    shot(ana.page, "week1-member-phone")

    start_drafting(page)
    expect(ana.page.locator("#arg-1")).to_be_visible()
    ana.page.fill("#arg-1", ANA_WEEK1)
    ben.page.fill("#arg-1", BEN_WEEK1)
    ben.page.fill("#risk-1", BEN_RISK)
    for member in (ana, ben):
        expect(member.page.locator("#save-status")).to_have_text("Saved")

    # Room 2: the students are recognised, nobody types a name.
    page.goto(f"/?class={class_id}")
    room2, code2 = create_room(page, "Week 2")
    ana.page.goto(f"/class/{class_id}/")
    expect(ana.page.locator(".secret-pin")).to_have_count(0)  # shown once only
    shot(ana.page, "student-home-phone")
    ana.page.get_by_role("button", name="Enter Week 2").click()
    ana.page.wait_for_selector(".my-position")
    assert room_config(ana.page)["roomId"] == room2
    ben.page.goto(f"/join/{code2}/")
    expect(ben.page.locator("#id_display_name")).to_have_value("Ben")
    ben.page.get_by_role("button", name="Join").click()
    ben.page.wait_for_selector(".my-position")
    assert room_config(ben.page)["roomId"] == room2
    start_drafting(page)
    expect(ana.page.locator("#arg-1")).to_be_visible()
    ana.page.fill("#arg-1", ANA_WEEK2)
    expect(ana.page.locator("#save-status")).to_have_text("Saved")

    # The class page lists both rooms; the report shows both rooms' contributions.
    page.goto(f"/classes/{class_id}/")
    expect(page.locator("#class-rooms ~ ul .room-title, .room-list .room-title")).to_have_count(2)
    expect(page.locator(".roster")).to_contain_text("Ana")
    shot(page, "class-page-desktop")
    page.get_by_role("link", name="Participation report").click()
    totals, by_room = page.locator("table.report").all()
    ana_total = totals.locator("tbody tr", has_text="Ana")
    expect(ana_total.locator("td").nth(0)).to_contain_text("2")  # drafts in both rooms
    words = len(ANA_WEEK1.split()) + len(ANA_WEEK2.split())
    expect(ana_total.locator("td").nth(1)).to_contain_text(str(words))
    expect(by_room.locator("tbody tr")).to_have_count(4)
    expect(by_room.locator("tbody tr", has_text="Week 1")).to_have_count(2)
    expect(by_room.locator("tbody tr", has_text="Week 2")).to_have_count(2)
    shot(page, "class-report-desktop")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    raw = Path(download_info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    table = {(r[0], r[1]): r for r in rows[1:]}
    assert set(table) == {
        ("Ana", "Week 1"),
        ("Ana", "Week 2"),
        ("Ben", "Week 1"),
        ("Ben", "Week 2"),
    }
    drafts = rows[0].index("Drafts")
    assert table[("Ana", "Week 1")][drafts] == "1" and table[("Ana", "Week 2")][drafts] == "1"
    assert table[("Ben", "Week 1")][drafts] == "2" and table[("Ben", "Week 2")][drafts] == "0"

    if SCREENSHOTS:
        phone = stage.actor("facilitator-phone", **PHONE, storage_state=fac.context.storage_state())
        phone.page.goto(f"/classes/{class_id}/report/")
        shot(phone.page, "class-report-phone")
        phone.page.goto(f"/classes/{class_id}/")
        shot(phone.page, "class-page-phone")
        phone.page.goto("/")
        shot(phone.page, "dashboard-phone")
        phone.page.goto(f"/classes/{class_id}/delete/")
        shot(phone.page, "class-delete-phone")
        page.goto(f"/rooms/{room1}/report/")
        shot(page, "room-report-desktop")
        page.goto("/classes/")
        shot(page, "classes-desktop")
        ana.page.goto("/class/rejoin/")
        shot(ana.page, "rejoin-pin-phone")
        assert code1 != code2
    assert not stage.script_errors(), stage.script_errors()

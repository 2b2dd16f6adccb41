"""The research board in real browsers: a note written by one member appears live for another
(on a phone), the timeline shows it, a javascript: source is refused with a message, judgements
fill the tally, and the record carries it all. Also the briefing page and a citation."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.support import create_room, export_markdown, join, open_console, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("QUORUM_SCREENSHOTS")  # a directory: save screenshots there to look at


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def add_note(page, organisation, month, year, approach, summary, url):
    page.fill("#research-org", organisation)
    page.select_option("#research-month", str(month))
    page.fill("#research-year", str(year))
    page.select_option("#research-approach", approach)
    page.fill("#research-summary", summary)
    page.fill("#research-url", url)
    page.get_by_role("button", name="Add note").click()


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_research_board_live(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Research period")
    open_console(fac.page)
    ana = stage.actor("ana")
    join(ana.page, code, "Ana")
    ben = stage.actor("ben", **PHONE)
    join(ben.page, code, "Ben")

    # A javascript: source is refused by the server, and the words stay in the form.
    add_note(ana.page, "Sneaky", 1, 2025, "other", "Not a real source.", "javascript:alert(1)")
    expect(ana.page.locator("#research-form-error")).to_contain_text("http")
    expect(ana.page.locator("#research-org")).to_have_value("Sneaky")
    ana.page.fill("#research-org", "")

    add_note(
        ana.page,
        "Example Lab",
        3,
        2024,
        "open_weights",
        "Published the weights of its mid-size model for anyone.",
        "https://example.org/weights",
    )
    # Live for Ben on his phone, with a safe link, and on the timeline.
    note = ben.page.locator(".research-note").filter(has_text="Example Lab")
    expect(note).to_be_visible()
    link = note.get_by_role("link")
    expect(link).to_have_attribute("href", "https://example.org/weights")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(ben.page.locator(".timeline-row")).to_have_count(1)
    expect(ben.page.locator(".timeline-date")).to_have_text("March 2024")
    expect(ana.page.locator("#research-org")).to_have_value("")  # cleared once acknowledged

    add_note(
        fac.page,
        "Other Lab",
        11,
        2025,
        "api_only",
        "Kept its newest model behind a paid interface.",
        "https://example.org/api",
    )
    expect(ben.page.locator(".timeline-row")).to_have_count(2)
    expect(ben.page.locator(".timeline-row").nth(1)).to_contain_text("Other Lab")
    # Ben cannot edit Ana's note; the facilitator can.
    expect(note.get_by_role("button", name="Edit")).to_have_count(0)

    ben.page.check("#trend-more_closed")
    ben.page.fill("#trend-reason", "The newest models stayed behind interfaces.")
    ben.page.get_by_role("button", name="Save my judgement").click()
    tally = ana.page.locator(".trend-more_closed .tally-count")
    expect(tally).to_have_text("1 of 1")
    expect(fac.page.locator(".judgements")).to_contain_text("Ben")
    assert no_horizontal_scroll(ben.page)
    shot(ben.page, "research-phone")
    shot(ana.page, "research-desktop")
    shot(fac.page, "research-console")

    record = export_markdown(fac.page, room_id)
    assert "## Research: release policies of real labs" in record
    assert "**Example Lab** (Open weights)" in record
    assert "- More closed: 1" in record
    assert "Ben: More closed — The newest models stayed behind interfaces." in record
    assert not stage.script_errors()


def test_briefing_and_a_citation(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Cards period")
    open_console(fac.page)
    ana = stage.actor("ana")
    join(ana.page, code, "Ana")
    cy = stage.actor("cy", **PHONE)
    join(cy.page, code, "Cy")
    fac.page.click("#advance")  # to drafting
    expect(ana.page.locator("#arg-1")).to_be_visible()

    ana.page.fill("#arg-1", "Once out, the weights stay out for good.")
    ana.page.locator("#arg-1-cite summary").click()
    ana.page.locator("#arg-1-cite").get_by_label("Published weights cannot be taken back").check()
    expect(ana.page.locator("#save-status")).to_have_text("Saved")
    expect(fac.page.locator(".citations").first).to_contain_text(
        "Published weights cannot be taken back"
    )
    shot(ana.page, "citation-picker")
    ana.page.reload()
    expect(ana.page.locator("#arg-1-cite summary")).to_contain_text("1 chosen")

    cy.page.locator("#arg-1-cite summary").click()
    expect(cy.page.locator("#arg-1-cite .citation-options li")).to_have_count(8)
    assert no_horizontal_scroll(cy.page)
    shot(cy.page, "citation-picker-phone")

    cy.page.goto(f"/rooms/{room_id}/briefing/")
    expect(cy.page.locator(".evidence-card")).to_have_count(8)
    assert no_horizontal_scroll(cy.page)
    shot(cy.page, "briefing-phone")
    assert "cites: Published weights cannot be taken back" in export_markdown(fac.page, room_id)
    assert not stage.script_errors()


def test_a_note_written_offline_is_kept_and_sent_later(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Offline research")
    open_console(fac.page)
    ana = stage.actor("ana")
    join(ana.page, code, "Ana")
    expect(ana.page.locator("#save-status")).to_have_text("Saved")

    ana.context.set_offline(True)
    expect(ana.page.locator("#save-status")).to_contain_text("Offline")
    add_note(
        ana.page,
        "Kept Lab",
        6,
        2025,
        "staged",
        "Widened access in three steps over a year.",
        "https://example.org/staged",
    )
    kept = ana.page.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('quorum:research:'))"
    )
    assert len(kept) == 1
    ana.page.close()  # closed before it could be sent
    ana.context.set_offline(False)

    page = ana.watch(ana.context.new_page())
    page.goto(f"/rooms/{room_id}/")
    expect(page.locator(".research-note").filter(has_text="Kept Lab")).to_be_visible()
    expect(fac.page.locator(".research-note").filter(has_text="Kept Lab")).to_have_count(1)
    page.wait_for_function(
        "() => !Object.keys(localStorage).some((k) => k.startsWith('quorum:research:'))"
    )
    assert "Kept Lab" in export_markdown(fac.page, room_id)
    assert not stage.script_errors()

"""Custom scenarios in a real browser: copy the built-in one, add a fourth position, save, open a
room with it; the console shows four teams. Also the editor's error messages on a phone."""

from __future__ import annotations

from tests.e2e.support import require_browser
from tests.e2e.test_research import no_horizontal_scroll, shot

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402


def test_copy_edit_and_run_a_custom_scenario(stage):
    fac = stage.facilitator()
    page = fac.page
    shot(page, "dashboard")
    page.get_by_role("link", name="Your scenarios: write, copy and edit").click()
    builtin = page.locator(".scenario-row").filter(has_text="Model release committee")
    expect(builtin.get_by_role("link", name="Edit")).to_have_count(0)  # read-only
    builtin.get_by_role("button", name="Copy and edit").click()
    expect(page.locator("#id_title")).to_have_value("Copy of Model release committee")
    expect(page.locator("#id_positions-2-name")).to_have_value("Restricted open-weight release")
    shot(page, "editor-copy-desktop")
    page.fill("#id_title", "Staged release committee")
    page.fill("#id_positions-3-name", "Staged release")
    page.fill("#id_positions-3-summary", "Release in steps, widening access as evidence comes in.")
    page.get_by_role("button", name="Save scenario").click()
    expect(page.locator("h1")).to_have_text("Staged release committee")
    expect(page.locator(".briefing-positions > li")).to_have_count(4)
    expect(page.locator(".evidence-card")).to_have_count(8)
    shot(page, "custom-briefing-desktop")

    page.goto("/")
    page.select_option("#id_scenario", label="Staged release committee")
    page.fill("#id_title", "Custom room")
    page.get_by_role("button", name="Open room").click()
    page.get_by_role("link", name="Open the facilitator console").click()
    expect(page.locator(".board .column")).to_have_count(4)
    expect(page.locator(".board")).to_contain_text("Staged release")
    shot(page, "custom-room-console")

    # Used by a room now: no Edit any more, only a copy.
    page.goto("/scenarios/")
    mine = page.locator(".scenario-row").filter(has_text="Staged release committee")
    expect(mine.get_by_role("link", name="Edit")).to_have_count(0)
    expect(mine).to_contain_text("used by 1 room")

    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "scenario-list-phone")
    assert no_horizontal_scroll(page)
    page.goto("/scenarios/new/")
    page.get_by_role("button", name="Save scenario").click()
    expect(page.locator(".form-error").first).to_be_visible()
    expect(page.get_by_text("Write at least two positions.")).to_be_visible()
    assert no_horizontal_scroll(page)
    shot(page, "editor-errors-phone")
    assert not stage.script_errors()

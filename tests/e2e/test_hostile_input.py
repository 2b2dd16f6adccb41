"""Hostile text in a real browser: HTML and script typed as a room title, a display name, a draft
and an announcement is shown as text on every page that shows it, live and after a reload, and
never becomes markup (no element is created from it, no handler runs)."""

from __future__ import annotations

from tests.e2e.support import create_room, join, open_console, phase_step, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

TITLE = '<img src="x" id="t-inj"> [t](javascript:1)'
NAME = '<b id="n-inj">Bo</b>'
DRAFT = '<img src="x" id="d-inj" onerror="window.__xss=1"><script>window.__xss=2</script>'
ANNOUNCEMENT = '<svg id="a-inj" onload="window.__xss=3"></svg> <a href="javascript:1">go</a>'
INJECTED = "#t-inj, #n-inj, #d-inj, #a-inj, a[href^='javascript']"


def assert_inert(page, *texts: str) -> None:
    assert page.locator(INJECTED).count() == 0, "user text became markup"
    assert page.evaluate("() => window.__xss === undefined"), "a handler from user text ran"
    body = page.locator("body")
    for text in texts:
        expect(body).to_contain_text(text)


def test_hostile_text_stays_text(stage):
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, TITLE)
    assert_inert(fac.page, TITLE)
    bo = stage.actor("bo")
    mate = stage.actor("mate")
    join(bo.page, code, NAME)
    join(mate.page, code, "Mae")
    expect(fac.page.locator("#present-members")).to_contain_text(NAME)
    assert_inert(fac.page, NAME)
    open_console(fac.page)
    fac.page.click("#advance")
    expect(phase_step(bo.page)).to_have_text("Drafting")
    bo_position = bo.page.evaluate("() => window.quorum.state.snap.me.position_id")
    mate_id = mate.page.evaluate("() => window.quorum.state.snap.me.member_id")
    fac.page.select_option(f"#move-{mate_id}", str(bo_position))
    expect(mate.page.locator(".team .mate h3")).to_have_text([NAME])

    bo.page.fill("#arg-1", DRAFT)
    expect(mate.page.locator(".team .mate .draft-text")).to_have_text([DRAFT])
    expect(fac.page.locator(".board")).to_contain_text(DRAFT)
    fac.page.fill("#announce-text", ANNOUNCEMENT)
    fac.page.click("#announce-send")
    for actor in (fac, bo, mate):
        expect(actor.page.locator("body")).to_contain_text(ANNOUNCEMENT)
    assert_inert(mate.page, NAME, DRAFT, ANNOUNCEMENT, TITLE)
    assert_inert(fac.page, NAME, DRAFT, ANNOUNCEMENT, TITLE)
    # After a reload (the page and its snapshot), and on the dashboard.
    mate.page.reload()
    expect(mate.page.locator(".team .mate .draft-text")).to_have_text([DRAFT])
    assert_inert(mate.page, NAME, DRAFT, TITLE)
    fac.page.goto("/")
    assert_inert(fac.page, TITLE)
    assert not stage.script_errors(), stage.script_errors()

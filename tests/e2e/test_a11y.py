"""Accessibility in a real browser: axe-core (vendored, tests/e2e/vendor/) on every page and in
every phase with no serious or critical violation; the core activity by keyboard alone; live
updates that never steal focus; no sideways scrolling at 320 px.

Adding a page: one line in STATIC_PAGES (or one step in test_room_pages_in_every_phase).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import (
    create_room,
    join,
    open_console,
    phase_step,
    require_browser,
)

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

AXE_PATH = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_VERSION = "4.14.1"
BLOCKING = {"serious", "critical"}
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 320, "height": 640}
DESKTOP = {"width": 1366, "height": 860}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "a11y"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now. The script is evaluated through the DevTools
    protocol, which the page's Content-Security-Policy does not apply to (the app's CSP stays
    on: no inline script is added to the page)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_PATH.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "wcag22aa", "best-practice"]},
            resultTypes: ["violations"],
          });
          return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " +
                                               (n.failureSummary || "").slice(0, 200)),
          }));
        }"""
    )
    return result


def check_page(page: Any, label: str, found: dict[str, list[dict[str, Any]]]) -> None:
    """Record blocking violations of `page` under `label` (asserted at the end of a test, so
    one run lists every page that fails)."""
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    if blocking:
        found[label] = blocking
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for label, violations in found.items():
        for v in violations:
            lines.append(f"{label}: {v['id']} ({v['impact']}) {v['help']}")
            lines += [f"    {node}" for node in v["nodes"]]
    return "\n".join(lines)


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_vendored_axe_is_the_pinned_version():
    head = AXE_PATH.read_text(encoding="utf-8")[:200]
    assert f"axe v{AXE_VERSION}" in head
    assert (AXE_PATH.parent / "axe-core.LICENSE").exists()


# ---- pages without a room ----------------------------------------------------------------------

# label -> (who: "anonymous" or "facilitator", path)
STATIC_PAGES: dict[str, tuple[str, str]] = {
    "home": ("anonymous", "/"),
    "signup": ("anonymous", "/accounts/signup/"),
    "login": ("anonymous", "/accounts/login/"),
    "join": ("anonymous", "/join/"),
    "join-with-code": ("anonymous", "/join/ABCD-EFG/"),
    "dashboard-and-room-create": ("facilitator", "/"),
    "404": ("anonymous", "/rooms/999999999/"),
}


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_pages_without_a_room(stage, viewport):
    size = DESKTOP if viewport == "desktop" else PHONE
    found: dict[str, list[dict[str, Any]]] = {}
    anonymous = stage.actor(f"anon-{viewport}", **size)
    facilitator = stage.actor(
        f"fac-{viewport}",
        storage_state=stage.request.getfixturevalue("facilitator_login"),
        **size,
    )
    for label, (who, path) in STATIC_PAGES.items():
        page = (anonymous if who == "anonymous" else facilitator).page
        page.goto(path)
        check_page(page, f"{label}-{viewport}", found)
    # A join form with errors (the error messages are part of the page).
    anonymous.page.goto("/join/")
    anonymous.page.click("button[type=submit]")
    check_page(anonymous.page, f"join-errors-{viewport}", found)
    assert not found, report(found)


# ---- a room in every phase, as member, facilitator console, projector, 403 ---------------------


def write_and_wait(member: Any, fac: Any, text: str) -> None:
    """The member writes; the save is acknowledged and the console shows it (so no re-render
    is still on its way when the next button is pressed)."""
    member.page.fill("#arg-1", text)
    expect(member.page.locator("#save-status")).to_have_text("Saved")
    expect(fac.page.locator(".board")).to_contain_text(text)


def test_room_pages_in_every_phase(stage):
    found: dict[str, list[dict[str, Any]]] = {}
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Accessibility")
    check_page(fac.page, "projector", found)
    member = stage.actor("member-phone", **PHONE)
    join(member.page, code, "Ana")
    mate = stage.actor("mate")
    join(mate.page, code, "Ben")
    check_page(fac.page, "projector-with-members", found)
    open_console(fac.page)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("lobby", lambda: None),
        ("drafting", lambda: write_and_wait(member, fac, "Offline hospitals could use it")),
        ("review", lambda: None),
        ("recommendation", lambda: None),
    ]
    for index, (phase, action) in enumerate(steps):
        if index:
            fac.page.click("#advance")
            expect(phase_step(member.page)).to_have_text(phase.capitalize())
        action()
        check_page(member.page, f"member-{phase}", found)
        check_page(fac.page, f"console-{phase}", found)
        assert no_horizontal_scroll(member.page), f"member page scrolls sideways in {phase}"
    # Close the room (the recommendation needs its three parts first).
    fac.page.locator("input[name=decision]").first.check()
    fac.page.fill("#rec-rationale", "Staged access keeps audits possible")
    fac.page.fill("#rec-revisit", "Unsafe fine-tunes appear within six months")
    expect(fac.page.locator("#save-status")).to_have_text("Saved")
    fac.page.once("dialog", lambda dialog: dialog.accept())
    expect(fac.page.locator("#advance")).to_be_enabled()
    fac.page.click("#advance")
    expect(phase_step(member.page)).to_have_text("Closed")
    check_page(member.page, "member-closed", found)
    check_page(fac.page, "console-closed", found)

    fac.page.goto(f"/rooms/{room_id}/present/")  # the projector of a closed room
    check_page(fac.page, "projector-closed", found)
    assert not found, report(found)


def test_removed_member_sees_an_accessible_403(stage):
    found: dict[str, list[dict[str, Any]]] = {}
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Removal")
    member = stage.actor("member")
    member_id = join(member.page, code, "Cleo")
    open_console(fac.page)
    fac.page.once("dialog", lambda dialog: dialog.accept())
    fac.page.click(f"#remove-{member_id}")
    member.page.wait_for_timeout(300)
    response = member.page.reload()
    assert response.status == 403
    check_page(member.page, "403", found)
    assert not found, report(found)


# ---- keyboard only -----------------------------------------------------------------------------


def tab_to(page: Any, selector: str, *, limit: int = 80, backwards: bool = False) -> None:
    """Press Tab until the element matching `selector` has the focus, and check that the focus
    is visible there (an outline or a box shadow)."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)",
                         selector):  # fmt: skip
            break
        page.keyboard.press(key)
    else:
        raise AssertionError(f"Tab never reached {selector}")
    visible = page.evaluate(
        """() => {
          const s = getComputedStyle(document.activeElement);
          return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) ||
                 (s.boxShadow && s.boxShadow !== "none");
        }"""
    )
    assert visible, f"no visible focus on {selector}"


def test_the_activity_by_keyboard_alone(stage):
    fac = stage.facilitator()
    page = fac.page
    # Open a room from the dashboard.
    tab_to(page, "#id_title")
    page.keyboard.type("Keyboard only")
    tab_to(page, "button[type=submit].primary")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/rooms/\d+/present/$"))
    code = page.inner_text(".present-code").strip()
    tab_to(page, "a.button.primary")  # "Open the facilitator console"
    page.keyboard.press("Enter")
    page.wait_for_selector("#advance")

    member = stage.actor("keyboard-member", **PHONE)
    mpage = member.page
    mpage.goto(f"/join/{code}/")
    tab_to(mpage, "#id_display_name")
    mpage.keyboard.type("Kai")
    mpage.keyboard.press("Enter")  # submits the join form
    mpage.wait_for_selector(".my-position")

    tab_to(page, "#advance")
    page.keyboard.press("Enter")
    expect(phase_step(mpage)).to_have_text("Drafting")

    tab_to(mpage, "#arg-1")
    mpage.keyboard.type("Clinics without internet could run it locally")
    tab_to(mpage, "#risk-1")
    mpage.keyboard.type("Anyone can strip the safeguards")
    expect(mpage.locator("#save-status")).to_have_text("Saved")
    expect(page.locator(".board")).to_contain_text("Clinics without internet could run it locally")

    tab_to(page, "#advance")
    page.keyboard.press("Enter")
    expect(phase_step(mpage)).to_have_text("Review")
    tab_to(page, "#advance")
    page.keyboard.press("Enter")
    expect(phase_step(mpage)).to_have_text("Recommendation")

    tab_to(page, "input[name=decision]")
    page.keyboard.press("Space")
    expect(page.locator("input[name=decision]:checked")).to_have_count(1)
    tab_to(page, "#rec-rationale")
    page.keyboard.type("Staged access keeps independent audits possible")
    tab_to(page, "#rec-revisit")
    page.keyboard.type("Unsafe fine-tuned copies appear within six months")
    expect(page.locator("#save-status")).to_have_text("Saved")
    page.once("dialog", lambda dialog: dialog.accept())  # "Close the room?" (a native confirm)
    tab_to(page, "#advance", backwards=True)
    expect(page.locator("#advance")).to_be_enabled()
    page.keyboard.press("Enter")
    expect(phase_step(mpage)).to_have_text("Closed")
    assert not stage.script_errors(), stage.script_errors()


# ---- live updates: announced politely, focus kept ----------------------------------------------


def test_live_updates_never_steal_focus(stage):
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Focus")
    ana = stage.actor("ana")
    ben = stage.actor("ben")
    join(ana.page, code, "Ana")
    join(ben.page, code, "Ben")
    open_console(fac.page)
    fac.page.click("#advance")
    expect(phase_step(ana.page)).to_have_text("Drafting")
    # Both on one team, so Ana receives Ben's draft live.
    ana_position = ana.page.evaluate("() => window.quorum.state.snap.me.position_id")
    ben_id = ben.page.evaluate("() => window.quorum.state.snap.me.member_id")
    fac.page.select_option(f"#move-{ben_id}", str(ana_position))
    expect(ben.page.locator(".team .mate h3")).to_have_text(["Ana"])

    announcer = ana.page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    assert ana.page.locator("#save-status").get_attribute("aria-live") == "polite"
    ana.page.click("#arg-1")
    ana.page.keyboard.type("Half a sentence")
    ben.page.fill("#arg-1", "Open weights let outside labs reproduce the evaluations")
    expect(ana.page.locator(".team .mate .draft-text")).to_have_text(
        ["Open weights let outside labs reproduce the evaluations"]
    )
    fac.page.fill("#announce-text", "Five minutes left")
    fac.page.click("#announce-send")
    expect(announcer).to_have_text("Announcement: Five minutes left")
    # Ana's cursor never left her textarea, and she keeps typing where she was.
    assert ana.page.evaluate("() => document.activeElement.id") == "arg-1"
    ana.page.keyboard.type(" and the rest")
    expect(ana.page.locator("#arg-1")).to_have_value("Half a sentence and the rest")


# ---- small screens -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [PHONE, NARROW], ids=["390px", "320px"])
def test_member_flow_on_small_screens(stage, size):
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Small screens, a long room title that has to wrap")
    member = stage.actor(f"member-{size['width']}", **size)
    page = member.page
    for path in ("/", "/join/", f"/join/{code}/"):
        page.goto(path)
        assert no_horizontal_scroll(page), f"{path} scrolls sideways at {size['width']} px"
    join(page, code, "Wilhelmina-Alexandra")
    open_console(fac.page)
    for phase in ("Drafting", "Review", "Recommendation"):
        fac.page.click("#advance")
        expect(phase_step(page)).to_have_text(phase)
        if phase == "Drafting":
            write_and_wait(member, fac, "A-very-long-unbroken-word-" * 6)
        assert no_horizontal_scroll(page), f"{phase} scrolls sideways at {size['width']} px"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"member-{size['width']}-{phase}.png"))


def test_throttled_sign_in_is_explained(stage):
    """After too many failed sign-ins the page says why, politely, and stays accessible."""
    found: dict[str, list[dict[str, Any]]] = {}
    visitor = stage.actor("visitor", **PHONE)
    page = visitor.page
    for _ in range(6):
        page.goto("/accounts/login/")
        page.fill("#id_username", "nobody-at-all")
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("Too many attempts to sign in")
    check_page(page, "login-throttled", found)
    assert not found, report(found)

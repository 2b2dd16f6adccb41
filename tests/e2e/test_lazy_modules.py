"""The room page downloads only the code it uses (issue 8): a group room in drafting fetches
neither solo.js nor review.js (nor their stylesheets), and each role only its own modules (a
member's editors, the facilitator's console); when the facilitator starts the review while the
member's page is open, the page fetches review.js and review.css then, with the role's review
module (review-member.js or review-console.js, never the other's), and shows the review (the
cases in tabs and the vote), with no script error. A failed module fetch (weak Wi-Fi) says so and
is retried."""

from __future__ import annotations

from tests.e2e.support import create_room, join, open_console, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}


def _fetched(actor) -> list[str]:
    urls: list[str] = []
    actor.page.on("request", lambda request: urls.append(request.url))
    return urls


def _names(urls: list[str]) -> set[str]:
    return {url.split("?", 1)[0].rsplit("/", 1)[-1] for url in urls}


def test_drafting_skips_review_and_solo_then_review_loads_live(stage):
    fac = stage.facilitator()
    fac_urls = _fetched(fac)
    _room_id, code = create_room(fac.page, "Lazy modules")
    ana = stage.actor("ana-phone", **PHONE)
    ana_urls = _fetched(ana)
    join(ana.page, code, "Ana")
    open_console(fac.page)
    fac.page.click("#advance")  # drafting
    expect(ana.page.locator("#my-case-h")).to_be_visible()
    ana.page.wait_for_load_state("networkidle")
    for urls, who in ((ana_urls, "member"), (fac_urls, "facilitator")):
        names = _names(urls)
        assert "room.js" in names, who
        assert not names & {"solo.js", "solo.css", "review.js", "review.css"}, (who, names)
    assert {"member.js", "editors.js"} <= _names(ana_urls)
    assert "console.js" not in _names(ana_urls)
    assert "console.js" in _names(fac_urls)
    assert not _names(fac_urls) & {"member.js", "editors.js", "cases.js"}

    # The review starts while Ana's page is open: review.js arrives and the review shows.
    fac.page.click("#advance")
    expect(ana.page.locator("#cases-h")).to_be_visible()
    expect(ana.page.locator(".review-tabs [role=tab]")).to_have_count(3)
    expect(ana.page.locator("#vote-h")).to_be_visible()
    expect(fac.page.locator("#vote-admin-h")).to_be_visible()
    for urls in (ana_urls, fac_urls):
        assert {"review.js", "review.css"} <= _names(urls)
        assert "solo.js" not in _names(urls)
    assert {"review-member.js", "cases.js"} <= _names(ana_urls)
    assert "review-console.js" not in _names(ana_urls)
    assert "review-console.js" in _names(fac_urls)
    assert not _names(fac_urls) & {"review-member.js", "cases.js"}
    # review.css applies (the tabs are styled as tabs on a phone, not as plain buttons).
    assert ana.page.locator(".tabbed-cases .columns > .column:not(.active)").first.is_hidden()
    assert not stage.script_errors()


def test_a_failed_module_load_is_retried(stage):
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Weak wifi")
    ana = stage.actor("ana")
    join(ana.page, code, "Ana")
    open_console(fac.page)
    fac.page.click("#advance")  # drafting
    expect(ana.page.locator("#my-case-h")).to_be_visible()

    failures = {"left": 2}

    def flaky(route):
        if failures["left"]:
            failures["left"] -= 1
            route.abort("internetdisconnected")
        else:
            route.continue_()

    ana.page.route("**/static/js/review.js*", flaky)
    fac.page.click("#advance")  # review
    expect(ana.page.locator("#load-failed")).to_be_visible()
    expect(ana.page.locator("#vote-h")).to_be_visible(timeout=15_000)
    expect(ana.page.locator("#load-failed")).to_have_count(0)


def test_activity_while_the_console_loads_is_listed_once_it_arrives(stage):
    """The console's "Recent activity" lists events the page applied before console.js came."""
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Slow console")
    held = []
    fac.page.route("**/static/js/console.js*", lambda route: held.append(route))  # answered later
    fac.page.goto(f"/rooms/{room_id}/")
    fac.page.wait_for_function("() => window.quorum.state.snap !== null")
    # The page asks for console.js once it has the snapshot; route handlers run while the test
    # waits in Playwright, so wait for the request rather than assume it has been seen.
    for _ in range(200):
        if held:
            break
        fac.page.wait_for_timeout(50)
    assert held, "the page did not ask for console.js"
    ana = stage.actor("ana")
    join(ana.page, code, "Ana")
    fac.page.wait_for_function(
        "() => window.quorum.state.snap.members.some((m) => m.display_name === 'Ana')"
    )
    expect(fac.page.locator("#advance")).to_have_count(0)  # no console without its code
    held[0].continue_()
    expect(fac.page.locator("#advance")).to_be_visible()
    expect(fac.page.locator("ol.activity")).to_contain_text("Ana joined")
    assert not stage.script_errors()

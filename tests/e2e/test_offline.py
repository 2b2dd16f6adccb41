"""Nothing a member types is lost: not when the network drops mid-sentence, not when the page is
closed before the change was sent."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

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

FIRST = "Closed access keeps the ability to withdraw the model "
SECOND = "if a dangerous capability is found after release"
RISK = "Outside researchers cannot verify our safety claims"
UNSENT = "Typed and closed before the debounce had a chance to send it"
LAST_WORDS = "Weights cannot be recalled once they are mirrored"
OFFLINE = re.compile(r"^Offline — ")


def drafting_room(stage, member_name: str):
    """A facilitator's room in drafting with one member; returns (facilitator, member, room id)."""
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, f"Offline {member_name}")
    member = stage.actor(member_name.lower())
    join(member.page, code, member_name)
    open_console(fac.page)
    fac.page.click("#advance")
    expect(phase_step(member.page)).to_have_text("Drafting")
    expect(member.page.locator("#save-status")).to_have_text("Saved")
    return fac, member, room_id


def test_typing_through_a_network_cut(stage):
    fac, dana, room_id = drafting_room(stage, "Dana")
    page = dana.page
    status = page.locator("#save-status")

    page.locator("#arg-1").press_sequentially(FIRST, delay=10)
    dana.context.set_offline(True)
    expect(status).to_have_text(OFFLINE)
    page.locator("#arg-1").press_sequentially(SECOND, delay=10)
    expect(status).to_have_text("Offline — 1 change kept on this device")
    page.fill("#risk-1", RISK)
    expect(status).to_have_text("Offline — 2 changes kept on this device")
    expect(page.locator("#arg-1")).to_have_value(FIRST + SECOND)
    # The server has not seen what was typed offline.
    record = export_markdown(fac.page, room_id)
    assert FIRST + SECOND not in record
    assert RISK not in record

    dana.context.set_offline(False)
    expect(status).to_have_text("Saved", timeout=15_000)
    record = export_markdown(fac.page, room_id)
    assert FIRST + SECOND in record, record
    assert RISK in record, record
    assert page.evaluate("() => window.quorum.outbox.pendingCount()") == 0
    # The facilitator's console shows the saved text too.
    expect(fac.page.locator(".board")).to_contain_text(FIRST + SECOND)
    assert not stage.script_errors(), stage.script_errors()


def test_closed_before_sending_then_reopened(stage):
    fac, eva, room_id = drafting_room(stage, "Eva")
    room_url = eva.page.url

    eva.page.fill("#arg-2", UNSENT)
    eva.page.close()  # well within the send debounce
    assert not [frame for frame in eva.frames_sent if UNSENT in frame], "sent before the close"
    assert UNSENT not in export_markdown(fac.page, room_id)

    page = eva.watch(eva.context.new_page())
    page.goto(room_url)
    expect(page.locator("#arg-2")).to_have_value(UNSENT)
    expect(page.locator("#save-status")).to_have_text("Saved")
    assert UNSENT in export_markdown(fac.page, room_id)
    assert page.evaluate("() => localStorage.length") == 0, "the acknowledged change is kept"
    assert not stage.script_errors(), stage.script_errors()


def test_two_tabs_offline_then_closed_keep_both_changes(stage):
    fac, gus, room_id = drafting_room(stage, "Gus")
    tab_a = gus.page
    tab_b = gus.watch(gus.context.new_page())
    tab_b.goto(tab_a.url)
    expect(tab_b.locator("#save-status")).to_have_text("Saved")

    gus.context.set_offline(True)
    tab_a.fill("#arg-1", "Tab one words on the first argument")
    tab_b.fill("#arg-2", "Tab two words on the second argument")
    expect(tab_a.locator("#save-status")).to_have_text("Offline — 1 change kept on this device")
    expect(tab_b.locator("#save-status")).to_have_text("Offline — 1 change kept on this device")
    # The browser goes away without unload handlers (a crash, a phone discarding its tabs).
    tab_a.close()
    tab_b.close()
    gus.context.set_offline(False)

    page = gus.watch(gus.context.new_page())
    page.goto(f"/rooms/{room_id}/")
    expect(page.locator("#save-status")).to_have_text("Saved")
    expect(page.locator("#arg-2")).to_have_value("Tab two words on the second argument")
    record = export_markdown(fac.page, room_id)
    assert "Tab two words on the second argument" in record
    assert "Tab one words on the first argument" in record, "tab one's change was lost"


def test_typing_around_a_lost_acknowledgement(stage):
    fac, hal, room_id = drafting_room(stage, "Hal")
    # Hal's tab talks to the server through a relay that can lose the server's replies and
    # refuse new connections, like a network that dies silently mid-save.
    link = {"deaf": False, "down": False, "routes": []}

    def relay(ws):
        if link["down"]:
            ws.close()
            return
        server = ws.connect_to_server()
        link["routes"].append(ws)
        server.on_message(lambda message: None if link["deaf"] else ws.send(message))

    page = hal.watch(hal.context.new_page())
    page.route_web_socket(re.compile(r"/ws/rooms/\d+/$"), relay)
    page.goto(hal.page.url)
    hal.page.close()
    expect(page.locator("#save-status")).to_have_text("Saved")

    link["deaf"] = True
    page.fill("#arg-1", "Weights cannot be recalled")
    page.wait_for_function("() => [...window.quorum.outbox.entries.values()].some((e) => e.sent)")
    page.fill("#arg-1", "Weights cannot be recalled once")  # while the save is in flight
    link["down"] = True
    link["routes"][-1].close()  # the connection drops; the acknowledgement never came
    expect(page.locator("#save-status")).to_have_text(OFFLINE)
    page.fill("#arg-1", LAST_WORDS)  # while offline
    link["deaf"] = link["down"] = False

    expect(page.locator("#save-status")).to_have_text("Saved", timeout=15_000)
    expect(page.locator("#arg-1")).to_have_value(LAST_WORDS, timeout=2_000)  # settled: Saved
    assert LAST_WORDS in export_markdown(fac.page, room_id), "the last words were lost"


REBUTTAL = "Mirrored weights stay online long after any recall notice"
AUTHOR_ARG = "A monitored API lets the lab withdraw the model the day misuse is found"
LATE = "Posted offline while the facilitator ended the review"
KEPT = re.compile(r"kept on this device")
SHOTS = os.environ.get("QUORUM_SHOTS")  # a directory: save screenshots there, to look at


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


PHONE = {"width": 390, "height": 844}


def review_room(stage, rebutter_name: str, author_name: str, **screen):
    """A room in review with two members on different positions, the author's argument written;
    `screen` (width, height) is the rebutter's. Returns (facilitator, rebutter, author, room id,
    the argument's draft id)."""
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, f"Offline review {rebutter_name}")
    rebutter = stage.actor(rebutter_name.lower(), **screen)
    author = stage.actor(author_name.lower())
    join(rebutter.page, code, rebutter_name)
    join(author.page, code, author_name)
    open_console(fac.page)
    fac.page.click("#advance")  # drafting: positions assigned, two members on two positions
    expect(phase_step(author.page)).to_have_text("Drafting")
    author.page.fill("#arg-1", AUTHOR_ARG)
    expect(author.page.locator("#save-status")).to_have_text("Saved")
    fac.page.click("#advance")  # review
    for actor in (rebutter, author):
        expect(phase_step(actor.page)).to_have_text("Review")
    # The review's snapshot (which brings the other team's drafts) has arrived (on a phone the
    # argument is drawn in its position's tab, not necessarily the one open).
    expect(rebutter.page.locator(".column li", has_text=AUTHOR_ARG)).to_have_count(1)
    draft_id = author.page.evaluate(
        "(text) => window.quorum.state.snap.drafts.find((d) => d.text === text).id", AUTHOR_ARG
    )
    return fac, rebutter, author, room_id, draft_id


def post_rebuttal(page, draft_id: int, text: str) -> None:
    """Rebut the author's argument: on a phone, after opening its position's tab."""
    tabs = page.locator(".review-tabs [role=tab]")
    if tabs.first.is_visible():
        index = page.evaluate(
            """(id) => {
                const s = window.quorum.state.snap;
                const draft = s.drafts.find((d) => d.id === id);
                return s.scenario.positions.findIndex((p) => p.id === draft.position_id);
            }""",
            draft_id,
        )
        tabs.nth(index).click()
    page.locator(".column li:visible", has_text=AUTHOR_ARG).get_by_role(
        "button", name="Rebut"
    ).click()
    page.fill(f"#comment-{draft_id}", text)
    page.get_by_role("button", name="Post").click()


def scrolls_sideways(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def stored_comments(page, text: str) -> int:
    return page.evaluate(
        "(text) => window.quorum.state.snap.review.comments.filter((c) => c.text === text).length",
        text,
    )


def test_a_rebuttal_posted_offline_reaches_the_room_once_after_a_reload(stage):
    fac, ivy, jon, room_id, draft_id = review_room(stage, "Ivy", "Jon")
    ivy.context.set_offline(True)
    expect(ivy.page.locator("#save-status")).to_have_text(OFFLINE)
    post_rebuttal(ivy.page, draft_id, REBUTTAL)
    # The form closes; the words stay under the argument, marked as not yet posted.
    unsent = ivy.page.locator(".comment-list li.unsent")
    expect(unsent).to_contain_text(REBUTTAL)
    expect(unsent).to_contain_text(KEPT)
    expect(ivy.page.locator("#save-status")).to_have_text("Offline — 1 change kept on this device")
    shot(ivy.page, "rebuttal-kept-offline")
    expect(jon.page.locator(".comment-list")).to_have_count(0)
    # The tab goes away before the connection is back (a phone discarding it).
    ivy.page.close()
    ivy.context.set_offline(False)

    page = ivy.watch(ivy.context.new_page())
    page.goto(f"/rooms/{room_id}/")
    expect(page.locator("#save-status")).to_have_text("Saved")
    expect(jon.page.locator(".comment-list")).to_contain_text(REBUTTAL)
    expect(page.locator(".comment-list li:not(.unsent)")).to_contain_text(REBUTTAL)
    expect(page.locator(".comment-list li.unsent")).to_have_count(0)
    assert stored_comments(fac.page, REBUTTAL) == 1
    assert page.evaluate("() => localStorage.length") == 0, "the posted rebuttal is still kept"
    # Sent again after the reload, then nothing more: one row however often it went out.
    page.reload()
    expect(page.locator("#save-status")).to_have_text("Saved")
    assert stored_comments(page, REBUTTAL) == 1
    assert not stage.script_errors(), stage.script_errors()


def test_a_rebuttal_the_room_no_longer_takes_stays_on_screen_until_dismissed(stage):
    fac, kim, _lee, room_id, draft_id = review_room(stage, "Kim", "Lee")
    kim.context.set_offline(True)
    expect(kim.page.locator("#save-status")).to_have_text(OFFLINE)
    post_rebuttal(kim.page, draft_id, LATE)
    fac.page.click("#advance")  # recommendation: rebuttals are over
    expect(phase_step(fac.page)).to_have_text("Recommendation")
    kim.context.set_offline(False)

    refused = kim.page.locator("#refused-posts")
    expect(refused).to_contain_text(LATE)
    expect(refused).to_contain_text("review")  # the server's reason
    shot(kim.page, "rebuttal-not-posted")
    expect(kim.page.locator("#save-status")).to_have_text("Saved")
    assert stored_comments(fac.page, LATE) == 0
    assert LATE not in export_markdown(fac.page, room_id)
    # Still there after a reload, until its author dismisses it.
    kim.page.reload()
    expect(refused).to_contain_text(LATE)
    refused.get_by_role("button", name="Dismiss").click()
    expect(refused).to_have_count(0)
    assert kim.page.evaluate("() => localStorage.length") == 0
    assert not stage.script_errors(), stage.script_errors()


def test_on_a_phone_a_kept_rebuttal_and_its_refusal_fit_the_screen(stage):
    """The same two moments on a 390 px phone, where the positions are tabs: the words kept
    under the argument, then the "Not posted" card, both on screen without sideways scrolling."""
    fac, oli, _pam, _room_id, draft_id = review_room(stage, "Oli", "Pam", **PHONE)
    oli.context.set_offline(True)
    expect(oli.page.locator("#save-status")).to_have_text(OFFLINE)
    post_rebuttal(oli.page, draft_id, LATE)
    unsent = oli.page.locator(".comment-list li.unsent")
    expect(unsent).to_contain_text(LATE)
    expect(unsent).to_contain_text(KEPT)
    unsent.scroll_into_view_if_needed()
    expect(unsent).to_be_in_viewport()
    assert not scrolls_sideways(oli.page)
    shot(oli.page, "rebuttal-kept-offline-phone")

    fac.page.click("#advance")  # recommendation: rebuttals are over
    expect(phase_step(fac.page)).to_have_text("Recommendation")
    oli.context.set_offline(False)
    refused = oli.page.locator("#refused-posts")
    expect(refused).to_contain_text(LATE)
    refused.scroll_into_view_if_needed()
    expect(refused.get_by_role("button", name="Dismiss")).to_be_in_viewport()
    box = refused.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert not scrolls_sideways(oli.page)
    shot(oli.page, "rebuttal-not-posted-phone")
    assert stored_comments(fac.page, LATE) == 0
    refused.get_by_role("button", name="Dismiss").click()
    expect(refused).to_have_count(0)
    assert not stage.script_errors(), stage.script_errors()


def test_two_tabs_posting_offline_then_closed_post_both_once(stage):
    """Each tab keeps its own post in the same store: the second tab's write must not drop the
    first's, and after both are gone a new tab posts each of them exactly once."""
    fac, quinn, _ray, room_id, draft_id = review_room(stage, "Quinn", "Ray")
    tab_a = quinn.page
    tab_b = quinn.watch(quinn.context.new_page())
    tab_b.goto(f"/rooms/{room_id}/")
    expect(tab_b.locator("#save-status")).to_have_text("Saved")
    first, second = "Tab one asks who audits the API", "Tab two asks how a recall would work"

    quinn.context.set_offline(True)
    for tab in (tab_a, tab_b):
        expect(tab.locator("#save-status")).to_have_text(OFFLINE)
    post_rebuttal(tab_a, draft_id, first)
    post_rebuttal(tab_b, draft_id, second)
    expect(tab_a.locator(".comment-list li.unsent")).to_contain_text(first)
    expect(tab_b.locator(".comment-list li.unsent")).to_contain_text(second)
    kept = tab_b.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('quorum:posts:'))"
        ".map((k) => Object.values(JSON.parse(localStorage.getItem(k))).length)"
    )
    assert kept == [2], f"the store should hold both tabs' posts, holds {kept}"
    tab_a.close()
    tab_b.close()
    quinn.context.set_offline(False)

    page = quinn.watch(quinn.context.new_page())
    page.goto(f"/rooms/{room_id}/")
    expect(page.locator("#save-status")).to_have_text("Saved")
    posted = page.locator(".comment-list li:not(.unsent)")
    expect(posted.filter(has_text=first)).to_have_count(1)
    expect(posted.filter(has_text=second)).to_have_count(1)
    assert stored_comments(fac.page, first) == 1
    assert stored_comments(fac.page, second) == 1
    assert page.evaluate("() => localStorage.length") == 0
    assert not stage.script_errors(), stage.script_errors()


def test_a_post_the_server_could_not_save_is_sent_again_alone(stage):
    """A `not_saved` answer resends that one post after 3 s, not every kept post: one error per
    post must not multiply the messages while the server struggles."""
    _fac, mia, _ned, room_id, draft_id = review_room(stage, "Mia", "Ned")
    # Mia's tab talks to the server through a relay that can refuse connections, and answers the
    # first try of every post with `not_saved` instead of passing it on.
    link = {"down": False, "routes": []}
    tries: dict[str, int] = {}

    def relay(ws):
        if link["down"]:
            ws.close()
            return
        server = ws.connect_to_server()
        link["routes"].append(ws)

        def from_page(message):
            data = json.loads(message)
            if data.get("type") == "comment.add":
                tries[data["client_id"]] = tries.get(data["client_id"], 0) + 1
                if tries[data["client_id"]] == 1:
                    ws.send(
                        json.dumps(
                            {
                                "type": "error",
                                "code": "not_saved",
                                "message": "Not saved, try again.",
                                "client_id": data["client_id"],
                            }
                        )
                    )
                    return
            server.send(message)

        ws.on_message(from_page)

    page = mia.watch(mia.context.new_page())
    page.route_web_socket(re.compile(r"/ws/rooms/\d+/$"), relay)
    page.goto(f"/rooms/{room_id}/")
    mia.page.close()
    expect(page.locator("#save-status")).to_have_text("Saved")

    link["down"] = True
    link["routes"][-1].close()
    expect(page.locator("#save-status")).to_have_text(OFFLINE)
    words = [f"{REBUTTAL} (first)", f"{REBUTTAL} (second)", f"{REBUTTAL} (third)"]
    for text in words:
        post_rebuttal(page, draft_id, text)
    expect(page.locator(".comment-list li.unsent")).to_have_count(3)
    link["down"] = False  # the three go out together on the reconnect; each is refused once

    expect(page.locator("#save-status")).to_have_text("Saved", timeout=20_000)
    for text in words:
        expect(page.locator(".comment-list li:not(.unsent)", has_text=text)).to_have_count(1)
    page.wait_for_timeout(4_000)  # any stray retry would have gone out by now
    assert sorted(tries.values()) == [2, 2, 2], tries
    assert not stage.script_errors(), stage.script_errors()

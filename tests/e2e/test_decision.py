"""Issue 5 in real browsers: review (tabs on a phone, a rebuttal, a strongest mark), a hidden
vote closed by the facilitator, a member chair building the recommendation with a citation and
the accepted risk, sign-off and dissent, finalize, and the three exports (Markdown, JSON, the
printable page through the share link, printed to PDF).

With QUORUM_SHOTS=<dir> the test also saves screenshots and the PDF there, to look at."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.e2e.support import create_room, join, open_console, phase_step, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("QUORUM_SHOTS")

ANA_ARG = "Hospitals without cloud access could run diagnosis offline with these weights"
BEN_ARG = "A monitored API lets the lab withdraw the model the day misuse is found"
BEN_RISK = "Outsiders cannot check the safety claims the lab makes about it"
CHIDI_ARG = "Vetted researchers can audit the model for a year before anyone else holds it"
CHIDI_RISK = "One leaked researcher copy ends up public and the vetting bought nothing"
REBUTTAL = "Offline copies can never be patched when a flaw turns up"
RATIONALE = "Staged access keeps independent audits while limiting irreversible spread"
REVISIT = "Fine tuned copies without safeguards appear within six months of release"
DISSENT = "Open weights would help far more hospitals than they would harm"


def shot(page, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)


def snap(page, expression: str):
    return page.evaluate(f"() => {{ const s = window.quorum.state.snap; return {expression}; }}")


def accept_dialogs(page, seen: list[str]) -> None:
    def accept(dialog):
        seen.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)


def test_review_vote_recommendation_finalize_export(stage, tmp_path):
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Period 5 decision")
    ana = stage.actor("ana-phone", **PHONE)
    ben = stage.actor("ben")
    chidi = stage.actor("chidi")
    ids = {
        "Ana": join(ana.page, code, "Ana"),
        "Ben": join(ben.page, code, "Ben"),
        "Chidi": join(chidi.page, code, "Chidi"),
    }
    dialogs: list[str] = []
    accept_dialogs(fac.page, dialogs)
    open_console(fac.page)
    fac.page.click("#advance")  # drafting
    for member in (ana, ben, chidi):
        expect(member.page.locator("#arg-1")).to_be_visible()
    ana.page.fill("#arg-1", ANA_ARG)
    ben.page.fill("#arg-1", BEN_ARG)
    ben.page.fill("#risk-1", BEN_RISK)
    chidi.page.fill("#arg-1", CHIDI_ARG)
    chidi.page.fill("#risk-1", CHIDI_RISK)
    for member in (ana, ben, chidi):
        expect(member.page.locator("#save-status")).to_have_text("Saved")
    positions = {
        name: snap(actor.page, "s.me.position_id")
        for name, actor in (("Ana", ana), ("Ben", ben), ("Chidi", chidi))
    }
    assert len(set(positions.values())) == 3

    # Review: on the phone the positions are tabs; Ana rebuts Ben's argument.
    fac.page.click("#advance")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Review")
    tabs = ana.page.locator(".review-tabs [role=tab]")
    expect(tabs).to_have_count(3)
    expect(ana.page.locator(".tabbed-cases .column:visible")).to_have_count(1)
    ben_draft = snap(ben.page, f"s.drafts.find((d) => d.text === {json.dumps(BEN_ARG)}).id")
    chidi_draft = snap(chidi.page, f"s.drafts.find((d) => d.text === {json.dumps(CHIDI_ARG)}).id")
    chidi_risk = snap(chidi.page, f"s.drafts.find((d) => d.text === {json.dumps(CHIDI_RISK)}).id")
    ben_index = snap(
        ana.page, f"s.scenario.positions.findIndex((p) => p.id === {positions['Ben']})"
    )
    ben_tab = ana.page.locator(f"#case-panel-{ben_index}")
    tabs.nth(ben_index).click()
    expect(ben_tab).to_be_visible()
    ben_item = ben_tab.locator("li", has_text=BEN_ARG)
    ben_item.get_by_role("button", name="Rebut").click()
    ana.page.fill(f"#comment-{ben_draft}", REBUTTAL)
    ana.page.get_by_role("button", name="Post").click()
    for actor in (ben, chidi):
        expect(actor.page.locator(".comment-list")).to_contain_text(REBUTTAL)
    # Chidi marks Ben's argument as the strongest of its position.
    chidi.page.locator(".column li", has_text=BEN_ARG).get_by_role(
        "button", name="Mark strongest"
    ).click()
    expect(ben.page.locator(".column li", has_text=BEN_ARG)).to_contain_text("strongest for 1")
    shot(ana.page, "review-phone")
    shot(chidi.page, "review-desktop")

    # The vote: hidden until the facilitator closes it; the facilitator sees turnout only.
    ana.page.check(f"#vote-{positions['Chidi']}")
    ana.page.fill("#vote-reason", "A middle path keeps audits going")
    ana.page.click("#vote-submit")
    ben.page.check(f"#vote-{positions['Chidi']}")
    ben.page.click("#vote-submit")
    chidi.page.check(f"#vote-{positions['Ana']}")
    chidi.page.click("#vote-submit")
    expect(fac.page.locator("#turnout")).to_contain_text("3 of 3")
    for actor in (fac, ana, ben, chidi):
        expect(actor.page.locator(".vote-results")).to_have_count(0)
    frames = "".join(ben.frames_received + fac.frames_received)
    assert '"counts"' not in frames, "vote counts left the server before the close"
    shot(fac.page, "review-facilitator")
    fac.page.click("#close-vote")
    for actor in (fac, ana, ben, chidi):
        expect(actor.page.locator(".vote-outcome")).to_contain_text("Most votes: Restricted")
    shot(ana.page, "vote-results-phone")

    # The recommendation: Ben is made chair and builds it; Ana signs off, Chidi dissents.
    fac.page.click("#advance")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Recommendation")
    fac.page.check(f"#chair-{ids['Ben']}")
    editor = ben.page.locator(".rec-editor")
    expect(editor).to_be_visible()
    editor.locator(f"#decision-{positions['Chidi']}").check()
    ben.page.fill("#rec-rationale", RATIONALE)
    ben.page.check(f"#cite-{chidi_draft}")
    ben.page.select_option("#rec-risk-draft", str(chidi_risk))
    ben.page.fill("#rec-revisit", REVISIT)
    expect(ben.page.locator("#save-status")).to_have_text("Saved")
    details = ana.page.locator(".rec-details")
    expect(details).to_contain_text(CHIDI_ARG)
    expect(details).to_contain_text("— Restricted open-weight release, Chidi")
    expect(ana.page.locator(".recommendation-view")).to_contain_text(REVISIT)
    ana.page.click("#sign-off")
    chidi.page.fill("#dissent-text", DISSENT)
    chidi.page.get_by_role("button", name="Record my dissent").click()
    expect(fac.page.locator(".signoff-list")).to_contain_text(DISSENT)
    expect(fac.page.locator(".signoff-list")).to_contain_text("Ana signs off")
    shot(ben.page, "builder-chair")
    shot(ana.page, "recommendation-phone")

    # Finalize: the room closes, the record is frozen, a share link appears.
    fac.page.click("#finalize")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Closed")
    assert any("Finalize the record?" in d for d in dialogs), dialogs
    share = fac.page.locator("#share-link")
    expect(share).to_have_value(re.compile(r"/record/[A-Za-z0-9_-]{40,}/$"))
    share_url = share.input_value()
    assert "/record/" in share_url
    shot(fac.page, "closed-facilitator")

    # Exports: Markdown and JSON downloads.
    with fac.page.expect_download() as md_info:
        fac.page.locator(".record-links").get_by_role(
            "link", name="Download the record (.md)"
        ).click()
    markdown = Path(md_info.value.path()).read_text(encoding="utf-8")
    for text in (RATIONALE, REVISIT, CHIDI_ARG, CHIDI_RISK, REBUTTAL, DISSENT):
        assert text in markdown, text
    with fac.page.expect_download() as json_info:
        fac.page.click("#record-json")
    record = json.loads(Path(json_info.value.path()).read_text(encoding="utf-8"))
    assert (record["schema"], record["version"]) == ("quorum.record", 1)
    assert record["vote"]["leaders"] == ["Restricted open-weight release"]
    assert [c["text"] for c in record["recommendation"]["citations"]] == [CHIDI_ARG]
    assert record["recommendation"]["risk"]["draft"]["text"] == CHIDI_RISK

    # The share link needs no login: a fresh browser opens the printable page and prints it.
    guest = stage.actor("guest")
    guest.page.goto(share_url)
    memo = guest.page.locator("article.memo")
    for text in (RATIONALE, REVISIT, CHIDI_ARG, BEN_RISK, REBUTTAL):
        expect(memo).to_contain_text(text)
    pdf_path = Path(SHOTS or tmp_path) / "record.pdf"
    guest.page.emulate_media(media="print")
    shot(guest.page, "record-print-media")
    guest.page.pdf(path=str(pdf_path), format="A4", print_background=True)
    assert pdf_path.read_bytes().startswith(b"%PDF")
    guest.page.emulate_media(media="screen")
    guest.page.set_viewport_size(PHONE)
    shot(guest.page, "record-phone")
    assert not stage.script_errors(), stage.script_errors()

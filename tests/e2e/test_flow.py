"""The whole activity in real browsers: a facilitator and three members (one on a phone), live
team drafts that stay inside the team, review, the recommendation, closing and the record."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.support import (
    create_room,
    export_markdown,
    join,
    open_console,
    phase_step,
    require_browser,
    sign_up,
)

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}

# Plain words only, so the Markdown record holds them verbatim (no escaping to account for).
ANA_ARG = "Hospitals without cloud access could run diagnosis support offline with these weights"
BEN_ARG = "Open weights let outside labs reproduce the safety evaluations themselves"
CHIDI_ARG = "Vetted researchers can audit the model for a year before anyone else holds it"
CHIDI_RISK = "One leaked researcher copy ends up public and the vetting bought nothing"
RATIONALE = "Staged access keeps independent audits while limiting irreversible spread"
REVISIT = "Fine tuned copies without safeguards appear within six months of release"

LEAK_WATCH = """(secret) => {
  window.__leaked = false;
  const check = () => {
    const values = [...document.querySelectorAll("textarea, input")].map((el) => el.value);
    if (document.body.textContent.includes(secret) || values.some((v) => v.includes(secret))) {
      window.__leaked = true;
    }
  };
  new MutationObserver(check).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
  check();
}"""


def without_timestamp(record: str) -> str:
    return re.sub(r"^Exported: .*$", "", record, flags=re.MULTILINE)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_whole_flow(stage):
    fac = stage.actor("facilitator")
    sign_up(fac.page)
    room_id, code = create_room(fac.page, "Period 3 e2e")

    ana = stage.actor("ana-phone", **PHONE)
    ben = stage.actor("ben")
    chidi = stage.actor("chidi")
    ids = {
        "Ana": join(ana.page, code, "Ana"),
        "Ben": join(ben.page, code, "Ben"),
        "Chidi": join(chidi.page, code, "Chidi"),
    }
    # The projector page lists everyone who joined, live.
    expect(fac.page.locator("#member-count")).to_have_text("3")
    expect(fac.page.locator("#present-members")).to_contain_text("Chidi")

    open_console(fac.page)
    expect(fac.page.locator("#advance")).to_have_text("Start drafting")
    fac.page.click("#advance")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Drafting")
    for member in (ana, ben, chidi):
        expect(member.page.locator("#arg-1")).to_be_visible()
        expect(member.page.locator("#save-status")).to_have_text("Saved")

    # Balanced: three members, three positions, one each (the console agrees with the members).
    position_names = [m.page.inner_text(".my-position-name") for m in (ana, ben, chidi)]
    assert len(set(position_names)) == 3, position_names
    for index in range(3):
        expect(fac.page.locator(f".board .column.pos-{index} .member-row")).to_have_count(1)

    # Ben moves to Ana's team; Chidi stays on his own.
    ana_position = ana.page.evaluate("() => window.quorum.state.snap.me.position_id")
    fac.page.select_option(f"#move-{ids['Ben']}", str(ana_position))
    expect(ben.page.locator(".my-position-name")).to_have_text(position_names[0])
    expect(ben.page.locator(".team .mate h3")).to_have_text(["Ana"])
    expect(ana.page.locator(".team .mate h3")).to_have_text(["Ben"])

    chidi.page.evaluate(LEAK_WATCH, ANA_ARG)
    ana.page.locator("#arg-1").press_sequentially(ANA_ARG[:20], delay=15)
    ana.page.locator("#arg-1").fill(ANA_ARG)
    # Live for the teammate and the facilitator, before any phase change.
    expect(ben.page.locator(".team .mate .draft-text")).to_have_text([ANA_ARG])
    expect(fac.page.locator(".board")).to_contain_text(ANA_ARG)
    ben.page.fill("#arg-1", BEN_ARG)
    expect(ana.page.locator(".team .mate .draft-text")).to_have_text([BEN_ARG])
    chidi.page.fill("#arg-1", CHIDI_ARG)
    chidi.page.fill("#risk-1", CHIDI_RISK)
    for member in (ana, ben, chidi):
        expect(member.page.locator("#save-status")).to_have_text("Saved")
    expect(fac.page.locator(".board")).to_contain_text(CHIDI_RISK)
    assert no_horizontal_scroll(ana.page), "the drafting page scrolls sideways on a phone"

    # The other team never received Ana's words: not on its socket, not in its page.
    assert chidi.frames_received, "no socket frames recorded for Chidi"
    leaks = [frame for frame in chidi.frames_received if ANA_ARG in frame]
    assert not leaks, f"Ana's draft reached another team during drafting: {leaks[:1]}"
    assert chidi.page.evaluate("() => window.__leaked") is False
    expect(chidi.page.locator("#app")).not_to_contain_text(ANA_ARG)

    # Review: everyone sees every position's case, with its authors.
    fac.page.click("#advance")
    for member in (ana, ben, chidi):
        expect(phase_step(member.page)).to_have_text("Review")
        columns = member.page.locator(".columns-wrap")
        for text in (ANA_ARG, BEN_ARG, CHIDI_ARG, CHIDI_RISK, "— Ana", "— Ben", "— Chidi"):
            expect(columns).to_contain_text(text)
    assert no_horizontal_scroll(ana.page), "the review page scrolls sideways on a phone"

    # Recommendation: the facilitator writes it, members watch it take shape.
    fac.page.click("#advance")
    expect(phase_step(fac.page)).to_have_text("Recommendation")
    decision = fac.page.locator(".rec-editor label.choice", has_text="Restricted")
    decision_name = decision.inner_text().strip()
    decision.locator("input[name=decision]").check()
    fac.page.fill("#rec-rationale", RATIONALE)
    fac.page.fill("#rec-revisit", REVISIT)
    expect(fac.page.locator("#save-status")).to_have_text("Saved")
    for member in (ana, ben, chidi):
        view = member.page.locator(".recommendation-view")
        expect(view.locator(".decision")).to_have_text(decision_name)
        expect(view).to_contain_text(RATIONALE)
        expect(view).to_contain_text(REVISIT)

    # Closing asks for confirmation.
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    fac.page.once("dialog", accept)
    expect(fac.page.locator("#advance")).to_have_text("Close the room")
    expect(fac.page.locator("#advance")).to_be_enabled()
    fac.page.click("#advance")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Closed")
    assert dialogs and "Close the room?" in dialogs[0], dialogs

    # The record, downloaded as the facilitator does it.
    with fac.page.expect_download() as download_info:
        fac.page.get_by_role("link", name="Download record (.md)").click()
    download = download_info.value
    assert re.fullmatch(rf"quorum-{code.lower()}-record\.md", download.suggested_filename)
    record = Path(download.path()).read_text(encoding="utf-8")
    for text in (ANA_ARG, BEN_ARG, CHIDI_ARG, CHIDI_RISK, RATIONALE, REVISIT):
        assert text in record, f"{text!r} missing from the record"
    for author in ("— Ana", "— Ben", "— Chidi"):
        assert author in record, f"{author!r} missing from the record"
    assert f"**Decision:** {decision_name}" in record
    assert "Phase: Closed" in record

    # A member can take the record home once the room is closed (phone layout).
    with ana.page.expect_download() as member_download:
        ana.page.get_by_role("link", name="Download the record (.md)").click()
    member_record = Path(member_download.value.path()).read_text(encoding="utf-8")
    assert without_timestamp(member_record) == without_timestamp(record)
    assert export_markdown(fac.page, room_id).count(ANA_ARG) == 1
    assert not stage.script_errors(), stage.script_errors()

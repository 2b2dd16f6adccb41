"""A learner does the whole activity alone across two devices: device A starts from the home page
without an account, takes the warm-up check and writes; device B (a phone) comes back by the
private link and sees everything; device C comes back by code and PIN; the learner continues,
chairs the recommendation, finishes and downloads the record. And the warm-up in a group room:
the facilitator's console shows the class's results live."""

from __future__ import annotations

import re

from tests.e2e.support import create_room, join, open_console, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}
RIGHT = {"inspect": "study", "retrain": "strip", "clinic": "access", "recall": "irreversible"}
# Plain words only, so the Markdown record holds them verbatim.
OPEN_ARGS = [
    "Outside teams could trace the model reasoning failures in its weights",
    "Clinics far from any data centre could run it without fees",
    "Many groups fine tuning it spreads the gains across languages",
]
API_ARG_A = "The lab can watch for misuse patterns and cut access within hours"
API_ARG_B = "Written on the phone: rate limits slow any mass misuse down"
RISK = "Outsiders can not verify what the lab says about safety"
RATIONALE = "Staged access keeps independent audits while limiting irreversible spread"
REVISIT = "Fine tuned copies without safeguards appear within six months of release"


def step(page, label: str) -> None:
    page.locator(".solo-steps").get_by_role("button", name=re.compile(label)).click()
    expect(page.locator(".solo-steps [aria-current=step]")).to_contain_text(label)


def saved(page) -> None:
    expect(page.locator("#save-status")).to_have_text("Saved")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_a_learner_alone_across_two_devices(stage):
    a = stage.actor("device-a", width=1366)
    page = a.page
    page.goto("/")
    page.fill("#id_solo-display_name", "Lea")
    page.get_by_role("button", name="Start alone").click()
    page.wait_for_selector(".solo-steps")
    pin = page.locator("#solo-pin").inner_text().strip()
    code = page.locator("#solo-code").inner_text().strip()
    link = page.locator("#solo-link").input_value()
    room_id = int(re.search(r"/rooms/(\d+)/", page.url).group(1))
    assert re.fullmatch(r"\d{6}", pin)

    # Warm-up: one wrong try with feedback, then all right (select menus: keyboard or pointer).
    expect(page.locator(".solo-steps [aria-current=step]")).to_contain_text("Warm-up")
    page.select_option("#warmup-inspect", "access")
    page.select_option("#warmup-clinic", "study")
    page.select_option("#warmup-retrain", "strip")
    page.select_option("#warmup-recall", "irreversible")
    page.click("#warmup-submit")
    expect(page.locator("#warmup-score")).to_contain_text("2 of 4")
    expect(page.locator(".warmup-item.wrong")).to_have_count(2)
    for key, value in RIGHT.items():
        page.select_option(f"#warmup-{key}", value)
    page.focus("#warmup-submit")
    page.keyboard.press("Enter")
    expect(page.locator("#warmup-score")).to_contain_text("4 of 4")

    # Each position in turn: the other positions' drafts are hidden unless asked for.
    page.click("#solo-next")
    expect(page.locator("#solo-step-h")).to_contain_text("Full open-weight release")
    for index, text in enumerate(OPEN_ARGS):
        page.locator(".my-case textarea").nth(index).fill(text)
    saved(page)
    step(page, "Arguments: API only")
    page.locator(".my-case textarea").first.fill(API_ARG_A)
    saved(page)
    expect(page.get_by_text(OPEN_ARGS[0])).to_have_count(0)
    page.click("#solo-show-others")
    expect(page.locator("#solo-others")).to_contain_text(OPEN_ARGS[0])
    page.click("#solo-show-others")
    expect(page.get_by_text(OPEN_ARGS[0])).to_have_count(0)
    # The balance check names the thinner side.
    expect(page.locator("#balance-summary")).to_contain_text("Restricted is the thinner side")

    # Device B, a phone, resumes by the private link and sees everything written so far.
    b = stage.actor("device-b", **PHONE)
    phone = b.page
    phone.goto(link)
    phone.wait_for_selector(".solo-steps")
    expect(phone.locator("#solo-pin")).to_have_count(0)  # the PIN was shown once only
    step(phone, "Arguments: Open weights")
    for index, text in enumerate(OPEN_ARGS):
        expect(phone.locator(".my-case textarea").nth(index)).to_have_value(text)
    step(phone, "Arguments: API only")
    expect(phone.locator(".my-case textarea").first).to_have_value(API_ARG_A)
    phone.locator(".my-case textarea").nth(1).fill(API_ARG_B)
    saved(phone)
    assert no_horizontal_scroll(phone)
    # Device A, on the same step, sees the phone's text arrive live.
    expect(page.locator(".my-case textarea").nth(1)).to_have_value(API_ARG_B)

    # Device C comes back with the code and the PIN.
    c = stage.actor("device-c", **PHONE)
    c.page.goto("/solo/resume/")
    c.page.fill("#id_code", code)
    c.page.fill("#id_pin", pin)
    c.page.get_by_role("button", name="Continue").click()
    c.page.wait_for_selector(".solo-steps")
    step(c.page, "Arguments: API only")
    expect(c.page.locator(".my-case textarea").nth(1)).to_have_value(API_ARG_B)

    # The learner continues on the phone: a risk, the recommendation (they chair), research.
    step(phone, "Risk: API only")
    phone.locator(".my-case textarea").first.fill(RISK)
    saved(phone)
    step(phone, "Recommendation")
    phone.wait_for_selector("#rec-rationale")
    phone.locator("label.choice").filter(has_text="Restricted open-weight release").click()
    phone.fill("#rec-rationale", RATIONALE)
    phone.fill("#rec-revisit", REVISIT)
    saved(phone)
    # Device A follows the phase: its drafting step gives way to the recommendation.
    expect(page.locator("#rec-rationale")).to_have_value(RATIONALE)
    # The research board appears once, inside the research step (hidden on the other steps).
    expect(phone.locator("#research-root")).to_be_hidden()
    phone.click("#solo-next")
    expect(phone.locator("#solo-step-h")).to_contain_text("Research")
    expect(phone.locator("#research-root")).to_have_count(1)
    expect(phone.locator(".solo-research #research-root")).to_be_visible()
    phone.fill("#research-org", "Example Lab")
    phone.select_option("#research-month", "3")
    phone.fill("#research-year", "2024")
    phone.select_option("#research-approach", "staged")
    phone.fill("#research-summary", "Released in stages over a year.")
    phone.fill("#research-url", "https://example.org/staged")
    phone.get_by_role("button", name="Add note").click()
    expect(phone.locator(".solo-research #research-root")).to_contain_text("Example Lab")
    phone.check("#trend-mixed")
    phone.fill("#trend-reason", "Some labs opened up, others closed down.")
    phone.get_by_role("button", name="Save my judgement").click()
    expect(phone.locator(".trend-mixed .tally-count")).to_have_text("1 of 1")
    assert no_horizontal_scroll(phone)
    phone.click("#solo-finish")
    expect(phone.locator(".solo-done")).to_be_visible()
    expect(page.locator(".solo-done")).to_be_visible()
    # The finished view shows the research once and links the printable record.
    expect(phone.locator("#research-root")).to_have_count(1)
    expect(phone.locator("#research-root")).to_contain_text("Example Lab")
    phone.get_by_role("link", name="Open the printable record").click()
    expect(phone.locator("#research-h")).to_be_visible()
    expect(phone.locator(".memo-warmup")).to_contain_text("4/4")
    phone.wait_for_load_state("load")  # the stylesheets too, before measuring the width
    assert no_horizontal_scroll(phone)

    record = page.context.request.get(f"/rooms/{room_id}/record.md")
    assert record.status == 200
    body = record.text()
    for text in [*OPEN_ARGS, API_ARG_A, API_ARG_B, RISK, RATIONALE, REVISIT]:
        assert text in body, text
    assert "**Decision:** Restricted open-weight release" in body
    # The learner argued every position; the frozen record has their research and warm-up.
    assert body.count("Team: Lea") == 3
    assert "## Research: release policies of real labs" in body
    assert "<https://example.org/staged>" in body
    assert "| Lea | 4/4 | 4/4 | 2 |" in body
    data = page.context.request.get(f"/rooms/{room_id}/record.json").json()
    assert data["finalized_at"] and data["research"]["notes"][0]["author"] == "Lea"
    assert data["warmup"]["members"][0]["member"] == "Lea"
    assert stage.script_errors() == []


def test_the_facilitator_sees_the_class_warmup_live(stage):
    fac = stage.facilitator()
    room_id, code = create_room(fac.page, "Warm-up period")
    open_console(fac.page)
    ana = stage.actor("ana", **PHONE)
    join(ana.page, code, "Ana")
    expect(fac.page.locator(".warmup-results")).to_contain_text("Nobody has tried")
    ana.page.select_option("#warmup-inspect", "study")
    ana.page.select_option("#warmup-retrain", "strip")
    ana.page.select_option("#warmup-clinic", "study")
    ana.page.select_option("#warmup-recall", "irreversible")
    ana.page.click("#warmup-submit")
    expect(ana.page.locator("#warmup-score")).to_contain_text("3 of 4")
    row = fac.page.locator(".warmup-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Ana")
    expect(row).to_contain_text("3/4")
    expect(fac.page.locator(".warmup-results")).to_contain_text("1 of 1 members tried")
    assert no_horizontal_scroll(ana.page)
    assert stage.script_errors() == []
    assert room_id > 0


def test_solo_typing_through_a_network_cut_and_a_refused_step(stage):
    """Offline, the learner's text for two positions stays on the device, moving on to the
    recommendation is held back, and everything is saved once the network is back."""
    a = stage.actor("offline", width=1366)
    page = a.page
    page.goto("/")
    page.get_by_role("button", name="Start alone").click()
    page.wait_for_selector(".solo-steps")
    room_id = int(re.search(r"/rooms/(\d+)/", page.url).group(1))
    status = page.locator("#save-status")
    step(page, "Arguments: Restricted")
    saved(page)
    a.context.set_offline(True)
    expect(status).to_have_text(re.compile(r"^Offline — "))
    page.locator(".my-case textarea").first.fill(OPEN_ARGS[0])
    step(page, "Risk: Open weights")
    page.locator(".my-case textarea").first.fill(RISK)
    expect(status).to_have_text("Offline — 2 changes kept on this device")
    page.locator(".solo-steps").get_by_role("button", name=re.compile("Recommendation")).click()
    expect(page.locator("#app > .form-error")).to_contain_text("You are offline")
    expect(page.locator(".solo-steps [aria-current=step]")).to_contain_text("Risk: Open weights")
    a.context.set_offline(False)
    expect(status).to_have_text("Saved", timeout=15_000)
    body = page.context.request.get(f"/rooms/{room_id}/record.md").text()
    assert OPEN_ARGS[0] in body and RISK in body
    assert body.index("## Restricted open-weight release") < body.index(OPEN_ARGS[0])
    assert stage.script_errors() == []

"""A timed, moderated session in an anonymous room, driven from the facilitator console: the phase
timer (pause, resume, extend, auto-advance), an announcement, "needs a source" and feedback that
stay inside the team, muting, hiding a draft, removing and re-admitting a member, locking editing.
Members never see each other's real names; the facilitator does."""

from __future__ import annotations

import re

from tests.e2e.support import create_room, join, open_console, phase_step, require_browser

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

PHONE = {"width": 390, "height": 844}

# Real names nobody else's page may show (ASCII, so they appear verbatim in JSON frames).
ANA = "Anouk Zedlerova"
BEN = "Bartolomeo Quintavalle"
CHIDI = "Cosima Vrellington"

ANA_ARG = "Local hospitals could run triage models offline if the weights were published"
BEN_ARG = "Independent labs can only check the safety claims with the weights in hand"
CHIDI_ARG = "A year of vetted access finds the worst failure modes before anyone copies it"
ANNOUNCEMENT = "Five minutes left: tie every argument to this model"
FEEDBACK = "Which hospitals? Cite a deployment study for this claim"
MUTED_TYPING = "typed while muted"

NAME_WATCH = """(names) => {
  window.__namesSeen = [];
  const check = () => {
    const values = [...document.querySelectorAll("textarea, input")].map((el) => el.value);
    const text = [document.body.textContent, ...values].join(" ");
    for (const name of names) {
      if (text.includes(name) && !window.__namesSeen.includes(name)) window.__namesSeen.push(name);
    }
  };
  new MutationObserver(check).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
  check();
}"""

COUNTING = r"^Time left 0[01]:\d\d · moves on at zero$"


def watch_names(actor, others: list[str]) -> None:
    """Record, for the life of the page, any of `others` that ever appears in it."""
    actor.page.evaluate(NAME_WATCH, others)


def names_seen(actor) -> list[str]:
    return actor.page.evaluate("() => window.__namesSeen")


def frames_with(actor, text: str) -> list[str]:
    return [frame for frame in actor.frames_received if text in frame]


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_timed_moderated_anonymous_session(stage):
    fac = stage.facilitator()
    fac.page.check("#id_anonymous")
    room_id, code = create_room(fac.page, "Console e2e")

    ana = stage.actor("ana-phone", **PHONE)
    ben = stage.actor("ben")
    chidi = stage.actor("chidi")
    members = (ana, ben, chidi)
    real_names = {ana.label: ANA, ben.label: BEN, chidi.label: CHIDI}
    # Actors are keyed by label (the dataclass is not hashable).
    ids = {m.label: join(m.page, code, real_names[m.label]) for m in members}
    others = {m.label: [n for k, n in real_names.items() if k != m.label] for m in members}
    for member in members:
        watch_names(member, others[member.label])
    # Members see each other in the lobby, by code name only.
    for member in members:
        expect(member.page.locator(".chip-list .member-chip")).to_have_count(3)

    open_console(fac.page)
    board = fac.page.locator(".board")
    for name in (ANA, BEN, CHIDI):
        expect(board).to_contain_text(name)  # the facilitator sees real names

    def code_name(member) -> str:
        row = board.locator(".member-row", has=fac.page.locator(f"#move-{ids[member.label]}"))
        return row.locator(".code-name").inner_text().strip(" ()")

    codes = {m.label: code_name(m) for m in members}
    assert len(set(codes.values())) == 3 and all(codes.values()), codes

    fac.page.click("#advance")
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Drafting")
    for member in members:
        expect(member.page.locator("#save-status")).to_have_text("Saved")

    # Ben joins Ana's team; Chidi argues another position on his own.
    ana_position = ana.page.evaluate("() => window.quorum.state.snap.me.position_id")
    fac.page.select_option(f"#move-{ids[ben.label]}", str(ana_position))
    expect(ben.page.locator(".team .mate h3")).to_have_text([codes[ana.label]])
    expect(ana.page.locator(".team .mate h3")).to_have_text([codes[ben.label]])
    assert chidi.page.evaluate("() => window.quorum.state.snap.me.position_id") != ana_position

    # --- the phase timer: 1 minute, moving on at zero -----------------------------------------
    fac.page.fill("#timer-minutes", "1")
    fac.page.check("#timer-auto")
    fac.page.click("#timer-start")
    for member in members:
        expect(member.page.locator("#phase-banner #timer")).to_have_text(re.compile(COUNTING))
    first = ben.page.inner_text("#timer")
    expect(ben.page.locator("#timer")).not_to_have_text(first)  # it counts down

    fac.page.click("#timer-pause")
    # The display rounds up: 59.1 s left reads 01:00.
    paused = re.compile(r"^Time left (01:00|00:[345]\d) \(paused\)$")
    for member in members:
        expect(member.page.locator("#timer")).to_have_text(paused)
    held = chidi.page.inner_text("#timer")
    chidi.page.wait_for_timeout(1200)
    assert chidi.page.inner_text("#timer") == held, "a paused timer kept counting"

    fac.page.click("#timer-resume")
    resumed = re.compile(r"^Time left (01:00|00:[345]\d) · moves on at zero$")
    for member in members:
        expect(member.page.locator("#timer")).to_have_text(resumed)

    fac.page.click("#timer-extend")
    extended = re.compile(r"^Time left (02:00|01:[345]\d) · moves on at zero$")
    for member in members:
        expect(member.page.locator("#timer")).to_have_text(extended)
    # Stopped here so that it cannot move the room on in the middle of the session.
    fac.page.click("#timer-clear")
    for member in members:
        expect(member.page.locator("#timer")).to_have_count(0)

    # --- an announcement reaches everyone ----------------------------------------------------
    fac.page.fill("#announce-text", ANNOUNCEMENT)
    fac.page.click("#announce-send")
    for actor in (fac, ana, ben, chidi):
        expect(actor.page.locator("#phase-banner .announcement")).to_have_text(
            f"Announcement: {ANNOUNCEMENT}"
        )
    assert no_horizontal_scroll(ana.page), "the banner scrolls sideways on a phone"

    # --- a draft, marked "needs a source", with feedback for the team only ---------------------
    ana.page.fill("#arg-1", ANA_ARG)
    expect(ana.page.locator("#save-status")).to_have_text("Saved")
    expect(ben.page.locator(".team .mate .draft-text")).to_have_text([ANA_ARG])
    ana_draft = board.locator(".draft-list li", has_text=ANA_ARG)
    ana_draft.get_by_role("button", name="Needs a source").click()
    expect(ana_draft.get_by_role("button", name="Source given")).to_be_visible()
    expect(ana.page.locator("label[for=arg-1] .badge")).to_have_text(["Needs a source"])
    expect(ben.page.locator(".team .mate .badge")).to_have_text(["Needs a source"])

    ana_draft.locator(".feedback-form input").fill(FEEDBACK)
    ana_draft.locator(".feedback-form").get_by_role("button", name="Send").click()
    expect(ana_draft.locator(".feedback-list")).to_contain_text(FEEDBACK)
    expect(ana.page.locator(".my-case .feedback-list")).to_have_text([f"Feedback: {FEEDBACK}"])
    expect(ben.page.locator(".team .mate .feedback-list")).to_have_text([f"Feedback: {FEEDBACK}"])
    # The other team: nothing on its page, nothing on its socket.
    expect(chidi.page.locator("#app")).not_to_contain_text(FEEDBACK)
    expect(chidi.page.locator("#app")).not_to_contain_text(ANA_ARG)
    assert chidi.frames_received, "no socket frames recorded for Chidi"
    assert not frames_with(chidi, FEEDBACK), "feedback reached another team"
    assert not frames_with(chidi, ANA_ARG), "a draft reached another team"

    # --- mute: Ben reads but cannot write; then unmute ----------------------------------------
    fac.page.click(f"#mute-{ids[ben.label]}")
    expect(fac.page.locator(f"#mute-{ids[ben.label]}")).to_have_text("Unmute")
    expect(ben.page.locator("#app .notice")).to_contain_text("The facilitator has muted you")
    editors = ben.page.locator(".my-case textarea")
    expect(editors).not_to_have_count(0)
    for index in range(editors.count()):
        expect(editors.nth(index)).not_to_be_editable()
    sent_before = len(ben.frames_sent)
    ben.page.locator("#arg-1").press_sequentially(MUTED_TYPING, delay=10)
    ben.page.wait_for_timeout(1000)  # longer than the client's send debounce
    expect(ben.page.locator("#arg-1")).to_have_value("")
    refused = [f for f in ben.frames_sent[sent_before:] if '"draft.save"' in f]
    assert not refused, f"a muted member's page sent a draft: {refused[:1]}"
    expect(board).not_to_contain_text(MUTED_TYPING)

    fac.page.click(f"#mute-{ids[ben.label]}")
    expect(fac.page.locator(f"#mute-{ids[ben.label]}")).to_have_text("Mute")
    expect(ben.page.locator("#app .notice")).to_have_count(0)
    expect(ben.page.locator("#arg-1")).to_be_editable()
    # The same keystrokes as above now reach the editor.
    ben.page.locator("#arg-1").press_sequentially(BEN_ARG[:12], delay=10)
    expect(ben.page.locator("#arg-1")).to_have_value(BEN_ARG[:12])
    ben.page.fill("#arg-1", BEN_ARG)
    expect(ben.page.locator("#save-status")).to_have_text("Saved")
    expect(ana.page.locator(".team .mate .draft-text")).to_have_text([BEN_ARG])

    # --- hide Ana's draft: gone for her teammate, marked hidden for her -----------------------
    ana_draft.get_by_role("button", name="Hide").click()
    ana_hidden = board.locator(".draft-list li.is-hidden", has_text=ANA_ARG)
    expect(ana_hidden.get_by_role("button", name="Show")).to_be_visible()
    expect(ben.page.locator(".team")).not_to_contain_text(ANA_ARG)
    expect(ben.page.locator(".team")).not_to_contain_text(FEEDBACK)
    expect(ana.page.locator("label[for=arg-1] .badge")).to_have_text(
        ["Needs a source", "Hidden by the facilitator"]
    )
    expect(ana.page.locator("#arg-1")).to_have_value(ANA_ARG)
    expect(ana.page.locator("#arg-1")).not_to_be_editable()

    # --- remove Chidi: his page says so, a reload is refused; then re-admit him ---------------
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    fac.page.once("dialog", accept)
    fac.page.click(f"#remove-{ids[chidi.label]}")
    expect(chidi.page.locator(".fatal")).to_contain_text("You are no longer part of this room.")
    assert dialogs and CHIDI in dialogs[0], dialogs
    removed = board.locator(".removed")
    expect(removed).to_contain_text(CHIDI)
    expect(fac.page.locator(f"#move-{ids[chidi.label]}")).to_have_count(0)
    response = chidi.page.reload()
    assert chidi.page.url.endswith(f"/rooms/{room_id}/"), chidi.page.url
    assert response is not None and response.status == 403, response and response.status
    expect(chidi.page.locator("h1")).to_have_text("You cannot open this page")
    expect(chidi.page.locator("main")).to_contain_text("The facilitator removed you from this room")

    removed.get_by_role("button", name="Re-admit").click()
    expect(removed).to_have_count(0)
    expect(fac.page.locator(f"#move-{ids[chidi.label]}")).to_be_visible()
    response = chidi.page.reload()
    assert response is not None and response.status == 200, response and response.status
    expect(phase_step(chidi.page)).to_have_text("Drafting")
    expect(chidi.page.locator("#save-status")).to_have_text("Saved")
    watch_names(chidi, others[chidi.label])  # a new page: watch it again

    # --- lock all editing, then unlock --------------------------------------------------------
    fac.page.click("#lock")
    expect(fac.page.locator("#lock")).to_have_text("Unlock editing")
    for member in members:
        expect(member.page.locator("#phase-banner .notice")).to_contain_text(
            "Editing is paused by the facilitator"
        )
    expect(ben.page.locator("#arg-2")).not_to_be_editable()
    expect(chidi.page.locator("#arg-1")).not_to_be_editable()
    fac.page.click("#lock")
    expect(fac.page.locator("#lock")).to_have_text("Lock all editing")
    for member in members:
        expect(member.page.locator("#phase-banner .notice")).to_have_count(0)
    expect(chidi.page.locator("#arg-1")).to_be_editable()
    chidi.page.fill("#arg-1", CHIDI_ARG)
    expect(chidi.page.locator("#save-status")).to_have_text("Saved")
    expect(board).to_contain_text(CHIDI_ARG)

    # --- a very short timer with "move on at zero": the room reaches review by itself ---------
    minutes = fac.page.locator("#timer-minutes")
    minutes.fill("0.05")
    fac.page.check("#timer-auto")
    if minutes.evaluate("(el) => el.checkValidity()"):
        fac.page.click("#timer-start")
    else:
        # The console takes whole minutes from 1 (min=1, no step: whole numbers), so the
        # browser refuses 0.05 and sends nothing; a one-minute wait is too long for this test.
        # The page exposes its socket (window.quorum.socket): send the start message directly.
        sent_before = len(fac.frames_sent)
        fac.page.click("#timer-start")
        fac.page.wait_for_timeout(300)
        assert not [f for f in fac.frames_sent[sent_before:] if "timer.control" in f]
        fac.page.evaluate(
            """() => window.quorum.socket.send(
              {type: "timer.control", action: "start", seconds: 2, auto_advance: true})"""
        )
    for actor in (fac, ana, ben, chidi):
        expect(phase_step(actor.page)).to_have_text("Review")
    expect(fac.page.locator("#timer")).to_have_count(0)  # a phase's timer ends with the phase

    # In review the hidden draft stays with its author; feedback stays with its team.
    for member in (ben, chidi):
        columns = member.page.locator(".columns-wrap")
        expect(columns).to_contain_text(BEN_ARG)
        expect(columns).to_contain_text(CHIDI_ARG)
        expect(columns).not_to_contain_text(ANA_ARG)
    expect(ana.page.locator(".columns-wrap")).to_contain_text(ANA_ARG)
    expect(chidi.page.locator("#app")).not_to_contain_text(FEEDBACK)
    assert not frames_with(chidi, FEEDBACK), "feedback reached another team"
    assert not frames_with(chidi, ANA_ARG), "a hidden draft reached another team"

    # Anonymous: members only ever had code names for each other; the facilitator, real names.
    for member in members:
        columns = member.page.locator(".columns-wrap")
        for other in members:  # "Team: …" under each position: code names, one's own name
            expected = real_names[other.label] if other is member else codes[other.label]
            expect(columns).to_contain_text(expected)
        assert names_seen(member) == [], f"{member.label} saw {names_seen(member)}"
        for name in others[member.label]:
            leaks = frames_with(member, name)
            assert not leaks, f"{name!r} reached {member.label}: {leaks[0][:200]}"
    for name in (ANA, BEN, CHIDI):
        expect(board).to_contain_text(name)
    assert not stage.script_errors(), stage.script_errors()

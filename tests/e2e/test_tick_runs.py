"""Runs of ticks in a real browser (docs/protocol.md §6, "Runs of ticks"; §7): while another team
saves several drafts in quick succession, a member's socket receives their numbers as one frame
`{"type": "tick", "seq": last, "from": first}`. The page reads the run as its ticks, one by one
(room.js handleTickRun), so it sees no gap and asks for no fresh snapshot (`sync` with
`last_seq: null`); a teammate's draft that follows is shown live. When the teammate's draft is
numbered just after a run still waiting, it carries the run (`ticks_from`), and the page reads
that the same way."""

from __future__ import annotations

import json
import time

from tests.e2e.support import create_room, join, open_console, require_browser, room_config

require_browser()  # before Playwright is imported: skip (or fail) cleanly without it

from playwright.sync_api import expect  # noqa: E402

GAP_WAIT_MS = 800  # room.js: how long a missing number is waited for before a resync
BURSTS = 3  # a run forms when the saves commit within QUORUM_TICK_RUN_MS (600 ms) of each other

# In the other team member's page: a second socket of theirs (their session's cookie, the page's
# origin) sends a burst of draft saves back to back and returns once each is acknowledged.
SAVE_BURST_JS = """
async ({ path, positionId, versions, burst }) => {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket refused"));
  });
  const slots = [["argument", 1], ["argument", 2], ["argument", 3], ["risk", 1]];
  const replies = [];
  const settled = new Promise((resolve) => {
    ws.onmessage = (message) => {
      const reply = JSON.parse(message.data);
      if (reply.type !== "ack" && reply.type !== "error") return;
      replies.push(reply);
      if (replies.length === slots.length) resolve();
    };
  });
  ws.send(JSON.stringify({ type: "sync", last_seq: null }));
  for (const [kind, slot] of slots) {
    const key = `${kind}:${slot}`;
    ws.send(JSON.stringify({
      type: "draft.save", client_id: `burst-${burst}-${key}`, kind, slot,
      position_id: positionId, base_version: versions[key] || 0, citations: [],
      text: `Burst ${burst}: ${kind} ${slot} for the other side, written fast.`,
    }));
  }
  await settled;
  ws.close();
  return replies.map((reply, index) => [slots[index].join(":"), reply]);
}
"""


def _position(actor) -> int:
    actor.page.wait_for_function(
        "() => window.quorum.state.snap && window.quorum.state.snap.me.position_id !== null"
    )
    return actor.page.evaluate("() => window.quorum.state.snap.me.position_id")


def _frames(raw: list[str]) -> list[dict]:
    frames = []
    for text in list(raw):
        try:
            frames.append(json.loads(text))
        except ValueError:
            continue  # not a JSON text frame
    return frames


# In the mate's page: a second socket of theirs, kept open on the page, that saves one draft and
# returns its ack.
MATE_SOCKET_JS = """
async ({ path }) => {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket refused"));
  });
  window.mateSocket = ws;
}
"""
MATE_SAVE_JS = """
async ({ positionId, version, n }) => {
  const ws = window.mateSocket;
  const clientId = `mate-${n}`;
  const reply = new Promise((resolve) => {
    ws.onmessage = (message) => {
      const data = JSON.parse(message.data);
      const reply = data.type === "ack" || data.type === "error";
      if (reply && data.client_id === clientId) resolve(data);
    };
  });
  ws.send(JSON.stringify({
    type: "draft.save", client_id: clientId, kind: "argument", slot: 2, position_id: positionId,
    base_version: version, citations: [], text: `Mate's line ${n}, right after the other side.`,
  }));
  return await reply;
}
"""


def _runs(actor) -> list[dict]:
    return [f for f in _frames(actor.frames_received) if f.get("type") == "tick" and "from" in f]


def _carried(actor) -> list[dict]:
    return [f for f in _frames(actor.frames_received) if "ticks_from" in f]


def _drafting_room(stage):
    """A room in drafting with four members on three positions; returns (watcher, mate, other):
    the watcher and the mate share a position, the other holds another. The watcher's page has
    just opened afresh, so its one `sync` with last_seq null is its first frame sent."""
    fac = stage.facilitator()
    _room_id, code = create_room(fac.page, "Runs of ticks")
    people = []
    for name in ("Ana", "Ben", "Cy", "Dee"):  # three positions, four members: one pair of mates
        actor = stage.actor(name.lower())
        join(actor.page, code, name)
        people.append(actor)
    open_console(fac.page)
    fac.page.click("#advance")  # drafting: positions are given
    positions = {actor.label: _position(actor) for actor in people}
    watcher, mate = next(
        (a, b)
        for i, a in enumerate(people)
        for b in people[i + 1 :]
        if positions[a.label] == positions[b.label]
    )
    other = next(a for a in people if positions[a.label] != positions[watcher.label])
    watcher.frames_sent.clear()
    watcher.frames_received.clear()
    watcher.page.reload()
    expect(watcher.page.locator("#my-case-h")).to_be_visible()
    watcher.page.wait_for_function("() => window.quorum.state.synced")
    return watcher, mate, other, positions


def _burst(other, positions, versions: dict[str, int], burst: int) -> None:
    config = room_config(other.page)
    replies = other.page.evaluate(
        SAVE_BURST_JS,
        {
            "path": config["socketPath"],
            "positionId": positions[other.label],
            "versions": versions,
            "burst": burst,
        },
    )
    for key, reply in replies:
        assert reply["type"] == "ack", reply
        versions[key] = reply["version"]


def _seen_within(watcher, frames_of, seconds: float = 2) -> bool:
    """Whether the watcher's page receives a frame `frames_of` picks within `seconds`."""
    deadline = time.monotonic() + seconds
    while not frames_of(watcher) and time.monotonic() < deadline:
        watcher.page.wait_for_timeout(50)
    return bool(frames_of(watcher))


def _settled_at(watcher, last: int) -> None:
    """The page has every number up to `last`, nothing waits on a gap, and it stays so for
    longer than a gap is waited for."""
    watcher.page.wait_for_function(
        "(last) => window.quorum.state.seq >= last && window.quorum.state.buffered.size === 0",
        arg=last,
    )
    watcher.page.wait_for_timeout(GAP_WAIT_MS + 700)


def _no_resync(stage, watcher) -> None:
    syncs = [f for f in _frames(watcher.frames_sent) if f.get("type") == "sync"]
    assert syncs and syncs[0]["last_seq"] is None, syncs  # the page's first sync
    resyncs = [f for f in syncs[1:] if f["last_seq"] is None]
    assert not resyncs, f"the page asked for a fresh snapshot after the run: {syncs}"
    assert watcher.page.evaluate("() => window.quorum.state.synced")
    assert not stage.script_errors()


def test_a_run_of_ticks_fills_the_numbers_without_a_resync(stage):
    watcher, mate, other, positions = _drafting_room(stage)
    versions: dict[str, int] = {}
    for burst in range(1, BURSTS + 1):
        _burst(other, positions, versions, burst)
        if _seen_within(watcher, _runs):
            break
    runs = _runs(watcher)
    assert runs, f"no run of ticks reached the page in {BURSTS} bursts: {watcher.frames_received}"
    _settled_at(watcher, max(run["seq"] for run in runs))

    # A teammate's draft (content for the watcher's team) then shows live on the watcher's page.
    mate.page.fill("#arg-1", "Mates see this live: weights cannot be recalled once published.")
    expect(watcher.page.locator("section.team")).to_contain_text(
        "Mates see this live: weights cannot be recalled once published."
    )

    _no_resync(stage, watcher)


def test_a_run_carried_by_a_teammates_draft_fills_the_numbers_without_a_resync(stage):
    watcher, mate, other, positions = _drafting_room(stage)
    mate.page.evaluate(MATE_SOCKET_JS, {"path": room_config(mate.page)["socketPath"]})
    versions: dict[str, int] = {}
    mate_version = 0
    for burst in range(1, BURSTS + 3):
        _burst(other, positions, versions, burst)  # the other side's saves: ticks for the watcher
        reply = mate.page.evaluate(  # at once: numbered just after them, while the run waits
            MATE_SAVE_JS, {"positionId": positions[mate.label], "version": mate_version, "n": burst}
        )
        assert reply["type"] == "ack", reply
        mate_version, mate_line = reply["version"], burst
        if _seen_within(watcher, _carried):
            break
    carried = _carried(watcher)
    assert carried, f"no event carried a run in {BURSTS + 2} tries: {watcher.frames_received}"
    assert carried[0]["type"] == "draft.updated" and carried[0]["ticks_from"] < carried[0]["seq"]
    _settled_at(watcher, max(f["seq"] for f in _frames(watcher.frames_received) if "seq" in f))
    expect(watcher.page.locator("section.team")).to_contain_text(
        f"Mate's line {mate_line}, right after the other side."
    )
    _no_resync(stage, watcher)

// The room page: one socket, the room's state from snapshots and events, and the editors whose
// unacknowledged changes live in the Outbox until the server confirms them. See docs/protocol.md.

import { h, clear, words, newClientId } from "./dom.js";
import { Outbox } from "./outbox.js";
import { RoomSocket } from "./socket.js";
import { renderSolo, soloHint } from "./solo.js";
import { applyWarmupEvent, renderWarmup, renderWarmupResults } from "./warmup.js";
import { createResearch, describeResearchEvent } from "./research.js";
import { citationPicker, citationList, sameIds } from "./citations.js";
import * as review from "./review.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const app = document.getElementById("app");
const statusEl = document.getElementById("save-status");
const bannerEl = document.getElementById("phase-banner");
const announcer = document.getElementById("announcer");

const PHASES = ["lobby", "drafting", "review", "recommendation", "closed"];
const PHASE_LABELS = {
  lobby: "Lobby",
  drafting: "Drafting",
  review: "Review",
  recommendation: "Recommendation",
  closed: "Closed",
};
const SEND_DEBOUNCE_MS = 700;
const SEND_MAX_WAIT_MS = 3000;
const GAP_WAIT_MS = 800;
const RETRY_AFTER_ERROR_MS = 3000;

const identity = config.memberId ? `m${config.memberId}` : `f${config.userId}`;
const outbox = new Outbox(`quorum:outbox:${config.roomId}:${identity}`);

const state = {
  snap: null, // the last snapshot with events applied
  seq: null,
  buffered: new Map(), // seq -> event that arrived ahead of a gap
  gapTimer: null,
  synced: false,
  fatal: null,
  lastError: null,
  clockOffset: 0, // server time minus this device's time, from the last snapshot
  typingUntil: new Map(), // member id -> time until which they count as typing (facilitators)
  activity: [], // recent events, newest first (facilitators)
  lastTickSeq: null,
  expiredSent: null,
};
const TYPING_SHOWN_MS = 5000;
const TYPING_SEND_EVERY_MS = 2000;
let typingSentAt = 0;

let sendTimer = null;
let firstUnsentAt = null;
let renderQueued = false;
const editors = new Map(); // target -> textarea (kept across renders so focus and undo survive)

// ---------------------------------------------------------------------------------------------
// Socket and sequence numbers

const socket = new RoomSocket({
  path: config.socketPath,
  onOpen: () => {
    state.synced = false;
    socket.send({ type: "sync", last_seq: state.seq });
  },
  onMessage: handleMessage,
  onStateChange: (s) => {
    if (s !== "open") {
      state.synced = false;
      for (const entry of outbox.entries.values()) entry.sent = false;
    }
    renderStatus();
  },
  onFatal: (reason) => {
    state.fatal = reason;
    render();
  },
});
const research = createResearch({ socket, config, announce: (text) => announce(text) });

function handleMessage(message) {
  switch (message.type) {
    case "snapshot":
      applySnapshot(message);
      break;
    case "synced":
      state.synced = true;
      flush();
      research.flush();
      renderStatus();
      break;
    case "ack":
      handleAck(message);
      break;
    case "error":
      handleError(message);
      break;
    case "pong":
      // The room moved on and no event reached us (a lost doorbell): fetch a snapshot.
      if (state.synced && typeof message.seq === "number" && message.seq > state.seq && !state.buffered.size) resync();
      break;
    case "member.typing":
      state.typingUntil.set(message.member_id, Date.now() + TYPING_SHOWN_MS);
      queueRender();
      setTimeout(queueRender, TYPING_SHOWN_MS + 50);
      break;
    default:
      if (typeof message.seq === "number") handleEvent(message);
  }
}

function handleEvent(event) {
  if (state.seq === null || !state.synced) {
    const held = state.buffered.get(event.seq);
    if (!(held && held.type !== "tick" && event.type === "tick")) state.buffered.set(event.seq, event);
    return;
  }
  if (event.seq === state.seq && state.lastTickSeq === event.seq && event.type !== "tick") {
    // The tick for this number came through another group first; this is its content.
    state.lastTickSeq = null;
    applyEvent(event);
    return;
  }
  if (event.seq <= state.seq) return; // already applied (or older than the snapshot)
  const waiting = state.buffered.get(event.seq);
  if (waiting && waiting.type !== "tick" && event.type === "tick") return;
  state.buffered.set(event.seq, event);
  drainBuffered();
  if (state.buffered.size && !state.gapTimer) {
    // A sequence number is missing: wait briefly for it, then ask for a fresh snapshot.
    state.gapTimer = setTimeout(() => {
      state.gapTimer = null;
      if (state.buffered.size) resync();
    }, GAP_WAIT_MS);
  }
}

function drainBuffered() {
  for (const seq of [...state.buffered.keys()]) if (seq <= state.seq) state.buffered.delete(seq);
  let next = state.buffered.get(state.seq + 1);
  while (next) {
    state.buffered.delete(next.seq);
    applyEvent(next);
    state.seq = next.seq;
    state.lastTickSeq = next.type === "tick" ? next.seq : null;
    next = state.buffered.get(state.seq + 1);
  }
  if (!state.buffered.size && state.gapTimer) {
    clearTimeout(state.gapTimer);
    state.gapTimer = null;
  }
}

function resync() {
  state.synced = false;
  socket.send({ type: "sync", last_seq: null });
}

function applySnapshot(snap) {
  const hadSnapshot = state.snap !== null;
  const previousPhase = state.snap && state.snap.room.phase;
  state.snap = snap;
  state.seq = snap.seq;
  state.lastTickSeq = null;
  state.synced = true;
  state.clockOffset = Date.parse(snap.server_time) - Date.now();
  drainBuffered();
  reconcileOutbox();
  research.onSnapshot(snap);
  if (hadSnapshot && previousPhase !== snap.room.phase) {
    announce(`Phase: ${PHASE_LABELS[snap.room.phase]}`);
  }
  render();
  flush();
}

function applyEvent(event) {
  const snap = state.snap;
  if (research.applyEvent(event)) {
    if (snap.me.role === "facilitator") recordActivity(event);
    queueRender();
    return;
  }
  switch (event.type) {
    case "member.joined": {
      if (!snap.members.some((m) => m.id === event.member.id)) {
        snap.members.push(event.member);
        announce(`${event.member.display_name} joined`);
      }
      break;
    }
    case "member.presence": {
      const member = snap.members.find((m) => m.id === event.member_id);
      if (member) member.online = event.online;
      break;
    }
    case "member.moved": {
      const member = snap.members.find((m) => m.id === event.member_id);
      if (member) member.position_id = event.position_id;
      if (snap.me.member_id === event.member_id) {
        snap.me.position_id = event.position_id;
        keepEntriesOfOtherPositions();
        announce(`You are now arguing: ${positionName(event.position_id)}`);
        resync(); // the new team's drafts
      }
      break;
    }
    case "draft.updated": {
      const index = snap.drafts.findIndex((d) => d.id === event.draft.id);
      if (index === -1) snap.drafts.push(event.draft);
      else if (snap.drafts[index].version <= event.draft.version) snap.drafts[index] = event.draft;
      break;
    }
    case "phase.changed": {
      snap.room.phase = event.phase;
      announce(`Phase: ${PHASE_LABELS[event.phase]}`);
      resync(); // what each audience may see depends on the phase
      break;
    }
    case "recommendation.updated": {
      if (event.recommendation.version >= snap.recommendation.version) {
        snap.recommendation = event.recommendation;
      }
      break;
    }
    case "member.muted": {
      const member = snap.members.find((m) => m.id === event.member_id);
      if (member) member.muted = event.muted;
      if (snap.me.member_id === event.member_id) {
        snap.me.muted = event.muted;
        announce(event.muted ? "The facilitator has muted you." : "You can write again.");
      }
      break;
    }
    case "member.removed": {
      const member = snap.members.find((m) => m.id === event.member_id);
      if (member) {
        member.removed = true;
        member.online = false;
      }
      break;
    }
    case "member.readmitted": {
      const index = snap.members.findIndex((m) => m.id === event.member.id);
      if (index === -1) snap.members.push(event.member);
      else snap.members[index] = event.member;
      break;
    }
    case "draft.moderated": {
      const draft = event.draft;
      const index = snap.drafts.findIndex((d) => d.id === draft.id);
      const mayRead = snap.me.role === "facilitator" || draft.author_id === snap.me.member_id;
      if (draft.hidden && !mayRead) {
        if (index !== -1) snap.drafts.splice(index, 1);
      } else if (index === -1) {
        if (draft.text !== undefined) snap.drafts.push(draft);
      } else {
        snap.drafts[index] = { ...snap.drafts[index], ...draft };
      }
      break;
    }
    case "draft.feedback": {
      if (!snap.feedback.some((f) => f.id === event.feedback.id)) snap.feedback.push(event.feedback);
      const draft = snap.drafts.find((d) => d.id === event.feedback.draft_id);
      if (draft && draft.author_id === snap.me.member_id) announce("New feedback on your draft");
      break;
    }
    case "room.settings": {
      const before = snap.room.announcement;
      Object.assign(snap.room, event.settings);
      if (event.settings.announcement && event.settings.announcement !== before) {
        announce(`Announcement: ${event.settings.announcement}`);
      }
      break;
    }
    case "facilitators.changed":
      snap.facilitators = event.facilitators;
      break;
    case "warmup.attempted":
      applyWarmupEvent(snap, event);
      break;
    default:
      review.applyEvent(snap, event); // review, vote, sign-off; "tick" only advances the number
      break;
  }
  if (snap.me.role === "facilitator" && event.type !== "tick") recordActivity(event);
  queueRender();
}

function recordActivity(event) {
  const text = describeEvent(event);
  if (!text) return;
  state.activity.unshift({ at: new Date(), text });
  state.activity.length = Math.min(state.activity.length, 12);
}

function describeEvent(event) {
  const name = (id) => memberName(id);
  switch (event.type) {
    case "member.joined": return `${event.member.display_name} joined`;
    case "member.moved": return `${name(event.member_id)} → ${positionName(event.position_id)}`;
    case "member.presence": return `${name(event.member_id)} is ${event.online ? "online" : "offline"}`;
    case "member.muted": return `${name(event.member_id)} ${event.muted ? "muted" : "unmuted"}`;
    case "member.removed": return `${name(event.member_id)} removed`;
    case "member.readmitted": return `${event.member.display_name} re-admitted`;
    case "draft.updated": return `${name(event.draft.author_id)} saved ${slotLabel(event.draft).toLowerCase()}`;
    case "draft.moderated": return `Draft by ${name(event.draft.author_id)}: ${event.draft.hidden ? "hidden" : "visible"}${event.draft.needs_source ? ", needs a source" : ""}`;
    case "draft.feedback": return "Feedback sent";
    case "phase.changed": return `Phase: ${PHASE_LABELS[event.phase]}`;
    case "room.settings": return "Room settings changed";
    case "facilitators.changed": return `Facilitators: ${event.facilitators.join(", ")}`;
    case "recommendation.updated": return "Recommendation saved";
    case "warmup.attempted": return `${name(event.attempt.member_id)}: warm-up ${event.attempt.score}/${event.attempt.total}`;
    default: return describeResearchEvent(event, name);
  }
}

// ---------------------------------------------------------------------------------------------
// Outbox: queue, send, acknowledge, conflicts

function draftTarget(positionId, kind, slot) {
  return `draft:${positionId}:${kind}:${slot}`;
}

function serverItem(target) {
  const snap = state.snap;
  if (!snap) return null;
  if (target === "recommendation") return snap.recommendation;
  const [, positionId, kind, slot] = target.split(":");
  return (
    snap.drafts.find(
      (d) =>
        d.author_id === snap.me.member_id &&
        d.position_id === Number(positionId) &&
        (d.round || 1) === snap.room.round &&
        d.kind === kind &&
        d.slot === Number(slot),
    ) || null
  );
}

function sameValue(target, payload, item) {
  if (!item) return target !== "recommendation" && payload.text === "";
  if (target === "recommendation") {
    return (
      payload.decision_id === item.decision_id &&
      payload.rationale === item.rationale &&
      payload.revisit_condition === item.revisit_condition
    );
  }
  return payload.text === item.text && sameIds(payload.citations, item.citations);
}

function queueChange(target, payload) {
  const entry = outbox.get(target);
  if (!entry) {
    const item = serverItem(target);
    outbox.entries.set(target, {
      target,
      client_id: newClientId(),
      payload,
      base_version: item ? item.version : 0,
      sent: false,
      next: null,
    });
  } else if (!entry.sentOnce) {
    entry.payload = payload; // never sent: the newer text replaces it
    delete entry.failed;
  } else {
    // Sent at least once, so the server may already hold it under its client id: the newer
    // text waits in `next` and goes out, with a new id, after that change is acknowledged.
    entry.next = payload;
  }
  outbox.persist();
  if (firstUnsentAt === null) firstUnsentAt = Date.now();
  clearTimeout(sendTimer);
  const wait = Math.max(0, Math.min(SEND_DEBOUNCE_MS, firstUnsentAt + SEND_MAX_WAIT_MS - Date.now()));
  sendTimer = setTimeout(() => flush(), wait);
  renderStatus();
}

function flush() {
  if (!socket.isOpen() || !state.synced) {
    renderStatus();
    return;
  }
  firstUnsentAt = null;
  for (const entry of outbox.entries.values()) {
    if (entry.sent || entry.failed) continue;
    const sent = socket.send({ ...entry.payload, client_id: entry.client_id, base_version: entry.base_version });
    if (!sent) break;
    entry.sent = true;
    entry.sentOnce = true;
  }
  renderStatus();
}

function settle(entry, version) {
  // The change `entry` is committed at `version`: send what was typed meanwhile, if anything.
  if (entry.next) {
    outbox.entries.set(entry.target, {
      target: entry.target,
      client_id: newClientId(),
      payload: entry.next,
      base_version: version,
      sent: false,
      next: null,
    });
  } else {
    outbox.deleteEntry(entry.target);
  }
}

function handleAck(ack) {
  if (research.handleAck(ack)) return;
  const entry = outbox.byClientId(ack.client_id);
  if (!entry) return;
  const item = serverItem(entry.target);
  if (entry.target === "recommendation") {
    if (ack.version >= state.snap.recommendation.version) {
      state.snap.recommendation = { ...entry.payload, version: ack.version, last_client_id: ack.client_id };
      delete state.snap.recommendation.type;
    }
  } else if (!item || item.version <= ack.version) {
    const [, positionId, kind, slot] = entry.target.split(":");
    const index = state.snap.drafts.findIndex((d) => d.id === ack.id);
    const draft = {
      hidden: false,
      needs_source: false,
      ...(index === -1 ? {} : state.snap.drafts[index]),
      id: ack.id,
      position_id: Number(positionId),
      author_id: state.snap.me.member_id,
      round: state.snap.room.round,
      kind,
      slot: Number(slot),
      text: entry.payload.text,
      citations: entry.payload.citations || (index === -1 ? [] : state.snap.drafts[index].citations),
      version: ack.version,
      last_client_id: ack.client_id,
    };
    if (index === -1) state.snap.drafts.push(draft);
    else state.snap.drafts[index] = draft;
  }
  settle(entry, ack.version);
  outbox.persist();
  flush();
  queueRender();
}

function handleError(error) {
  if (research.handleError(error)) return;
  const entry = error.client_id ? outbox.byClientId(error.client_id) : null;
  if (!entry) {
    showError(error.message);
    return;
  }
  if (error.code === "conflict" && error.current) {
    toConflict(entry, error.current, "changed");
    queueRender();
  } else if (error.code === "position_changed") {
    toConflict(entry, null, "moved");
    queueRender();
  } else if (["not_saved", "rate_limited", "server_error"].includes(error.code)) {
    entry.sent = false; // kept; sent again shortly
    setTimeout(() => flush(), RETRY_AFTER_ERROR_MS);
  } else {
    // Refused for good (e.g. drafting has ended): keep the words visible so nothing is lost.
    toConflict(entry, null, error.code === "wrong_phase" ? "phase" : "refused", error.message);
    queueRender();
  }
  outbox.persist();
  renderStatus();
}

function toConflict(entry, current, reason, message) {
  const mine = entry.next || entry.payload;
  outbox.deleteEntry(entry.target);
  outbox.conflicts.set(entry.target, {
    target: entry.target,
    mine,
    reason,
    message: message || "",
  });
  if (current && entry.target !== "recommendation" && current.id) {
    const index = state.snap.drafts.findIndex((d) => d.id === current.id);
    const merged = { ...(index === -1 ? {} : state.snap.drafts[index]), ...current };
    if (index === -1) {
      const [, positionId, kind, slot] = entry.target.split(":");
      Object.assign(merged, {
        position_id: Number(positionId),
        author_id: state.snap.me.member_id,
        round: state.snap.room.round,
        kind,
        slot: Number(slot),
      });
      state.snap.drafts.push(merged);
    } else state.snap.drafts[index] = merged;
  } else if (current && entry.target === "recommendation") {
    state.snap.recommendation = current;
  }
  // The editor shows the saved text; the user's words stay in the conflict panel.
  const editor = editors.get(entry.target);
  if (editor && entry.target !== "recommendation") {
    const item = serverItem(entry.target);
    editor.value = item ? item.text : "";
  }
}

function reconcileOutbox() {
  // After a (re)connect: which kept changes did the server already apply, which are stale?
  keepEntriesOfOtherPositions();
  for (const entry of [...outbox.entries.values()]) {
    const item = serverItem(entry.target);
    entry.sent = false;
    if (item && item.last_client_id === entry.client_id) {
      settle(entry, item.version);
    } else if ((item ? item.version : 0) !== entry.base_version) {
      if (sameValue(entry.target, entry.next || entry.payload, item)) outbox.deleteEntry(entry.target);
      else toConflict(entry, null, "changed");
    }
  }
  outbox.persist();
}

function keepEntriesOfOtherPositions() {
  const me = state.snap && state.snap.me;
  if (!me || me.role !== "member" || state.snap.room.is_solo) return; // solo: every position is theirs
  for (const entry of [...outbox.entries.values()]) {
    if (entry.target.startsWith("draft:") && Number(entry.target.split(":")[1]) !== me.position_id) {
      toConflict(entry, null, "moved");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Status, announcements, errors

function renderStatus() {
  if (!statusEl) return;
  const pending = outbox.pendingCount();
  let text;
  let kind;
  if (state.fatal) {
    text = "Disconnected";
    kind = "offline";
  } else if (outbox.conflicts.size) {
    text = "Conflict: your version is kept below";
    kind = "conflict";
  } else if (!socket.isOpen()) {
    text = pending
      ? `Offline — ${pending} ${pending === 1 ? "change" : "changes"} kept on this device`
      : "Offline — reconnecting…";
    kind = "offline";
  } else if (!state.synced || pending) {
    text = "Saving…";
    kind = "saving";
  } else {
    text = "Saved";
    kind = "saved";
  }
  if (statusEl.textContent !== text) statusEl.textContent = text;
  statusEl.dataset.state = kind;
}

function announce(text) {
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function showError(message) {
  state.lastError = message;
  queueRender();
  setTimeout(() => {
    if (state.lastError === message) {
      state.lastError = null;
      queueRender();
    }
  }, 8000);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function positionName(id) {
  const p = state.snap.scenario.positions.find((pos) => pos.id === id);
  return p ? p.name : "—";
}

function positionIndex(id) {
  return state.snap.scenario.positions.findIndex((pos) => pos.id === id);
}

function memberName(id) {
  const m = state.snap.members.find((member) => member.id === id);
  return m ? m.display_name : "—";
}

function render() {
  renderStatus();
  if (state.fatal) {
    renderFatal();
    return;
  }
  if (!state.snap) return;
  if (config.presenting) {
    renderPresenting();
    return;
  }
  const focus = captureFocus();
  renderBanner();
  const role = state.snap.me.role;
  clear(app);
  if (state.lastError) app.append(h("p", { class: "form-error", role: "alert" }, state.lastError));
  if (role === "facilitator") renderFacilitator();
  else if (state.snap.room.is_solo) renderSolo(ctx);
  else renderMember();
  restoreFocus(focus);
}

function captureFocus() {
  // Small forms (announcement, feedback, timer) are rebuilt on every render: keep what was typed.
  const values = [];
  for (const el of app.querySelectorAll("input[id]")) {
    if (el.type === "checkbox") values.push([el.id, el.checked]);
    else if (el.value !== el.defaultValue) values.push([el.id, el.value]);
  }
  const el = document.activeElement;
  const focus = el && el.id && app.contains(el) ? { id: el.id, start: el.selectionStart, end: el.selectionEnd } : null;
  return { focus, values };
}

function restoreFocus(saved) {
  for (const [id, value] of saved.values) {
    const el = document.getElementById(id);
    if (!el || el.tagName !== "INPUT") continue;
    if (el.type === "checkbox") el.checked = value;
    else el.value = value;
  }
  const focus = saved.focus;
  if (!focus) return;
  const el = document.getElementById(focus.id);
  if (!el || document.activeElement === el) return;
  el.focus({ preventScroll: true });
  if (typeof focus.start === "number" && el.setSelectionRange) {
    try {
      el.setSelectionRange(focus.start, focus.end);
    } catch (err) {
      // not a text control
    }
  }
}

function renderFatal() {
  const messages = {
    not_participant: "This browser is not part of the room. Join with the room code to take part.",
    removed: "You are no longer part of this room.",
    room_not_found: "This room does not exist any more.",
  };
  clear(app);
  app.append(
    h("div", { class: "card fatal", role: "alert" },
      h("h2", {}, "You are not connected to this room"),
      h("p", {}, messages[state.fatal] || "The connection was refused."),
      h("a", { class: "button primary", href: "/join/" }, "Join a room")),
  );
}

const PHASE_HINTS = {
  member: {
    lobby: "Waiting for the facilitator to start. You will be given a position to argue.",
    drafting:
      "Write three specific arguments for your position, tied to this model being far ahead of anything released so far, and one risk of your own position you cannot easily refute.",
    review: "Read every position's case side by side. Which arguments are strongest?",
    recommendation: "The chair is writing the committee's recommendation. Watch it take shape.",
    closed: "The committee has decided. The full record is below.",
  },
  facilitator: {
    lobby: "Students join with the code. Assign positions when everyone is in, then start drafting.",
    drafting: "Teams are drafting. Each team sees only its own drafts; you see everything.",
    review: "Everyone now sees all positions side by side. Let the debate run.",
    recommendation:
      "Record the committee's decision, its rationale and the condition that would reopen it. All three are required to close.",
    closed: "The room is closed. Download the record.",
  },
};

function renderBanner() {
  const phase = state.snap.room.phase;
  const role = state.snap.me.role;
  clear(bannerEl);
  bannerEl.dataset.phase = phase;
  bannerEl.append(
    // A solo room has its own steps (solo.js); the group phases would only confuse.
    state.snap.room.is_solo ? "" : h("ol", { class: "phase-steps", "aria-label": "Phases" },
      PHASES.map((p) =>
        h("li", {
          class: p === phase ? "current" : PHASES.indexOf(p) < PHASES.indexOf(phase) ? "done" : "",
          "aria-current": p === phase ? "step" : null,
        }, PHASE_LABELS[p]),
      )),
    h("p", { class: "phase-hint" }, state.snap.room.is_solo ? soloHint(phase) : PHASE_HINTS[role][phase]),
  );
  const room = state.snap.room;
  const timer = room.timer || {};
  if (timer.running || (timer.remaining_seconds !== null && timer.remaining_seconds !== undefined)) {
    bannerEl.append(h("p", { class: "timer", id: "timer", role: "timer", "aria-live": "off" }, timerText()));
  }
  if (room.round > 1) bannerEl.append(h("p", { class: "round-badge" }, `Round ${room.round}: sides switched`));
  if (room.announcement) {
    bannerEl.append(h("p", { class: "announcement", role: "status" },
      h("strong", {}, "Announcement: "), room.announcement));
  }
  if (room.editing_locked && phase === "drafting") {
    bannerEl.append(h("p", { class: "notice" }, "Editing is paused by the facilitator. Your text is safe; you can continue when it is unlocked."));
  }
}

function timerRemainingMs() {
  const timer = state.snap.room.timer || {};
  if (timer.running && timer.ends_at) {
    return Date.parse(timer.ends_at) - (Date.now() + state.clockOffset);
  }
  if (timer.remaining_seconds !== null && timer.remaining_seconds !== undefined) {
    return timer.remaining_seconds * 1000;
  }
  return null;
}

function timerText() {
  const timer = state.snap.room.timer || {};
  const ms = timerRemainingMs();
  if (ms === null) return "";
  const total = Math.max(0, Math.ceil(ms / 1000));
  const mm = String(Math.floor(total / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  if (total === 0) return "Time is up";
  const paused = timer.running ? "" : " (paused)";
  const moves = timer.auto_advance && timer.running ? " · moves on at zero" : "";
  return `Time left ${mm}:${ss}${paused}${moves}`;
}

function tickTimer() {
  if (!state.snap) return;
  const el = document.getElementById("timer");
  if (el) {
    const text = timerText();
    if (el.textContent !== text) el.textContent = text;
  }
  const timer = state.snap.room.timer || {};
  const ms = timerRemainingMs();
  const key = `${state.snap.room.phase}:${timer.ends_at}`;
  if (timer.running && ms !== null && ms <= 0 && state.expiredSent !== key && socket.isOpen()) {
    // Tell the server; it checks its own clock and advances once if auto-advance is on.
    state.expiredSent = key;
    setTimeout(() => socket.send({ type: "timer.expired", phase: state.snap.room.phase }), Math.random() * 1500);
  }
}
setInterval(tickTimer, 1000);

// ----- member --------------------------------------------------------------------------------

function renderMember() {
  const snap = state.snap;
  const phase = snap.room.phase;
  const me = snap.me;
  app.append(renderMyPosition());
  if (me.muted) {
    app.append(h("p", { class: "notice", role: "status" }, "The facilitator has muted you: you can read everything, but not write for now."));
  }
  renderConflicts();
  if (phase === "lobby" || phase === "drafting") app.append(renderWarmup(ctx) || "");
  const choosing = snap.room.assignment_method === "choice" && me.position_id === null;
  if (choosing && (phase === "lobby" || phase === "drafting")) app.append(renderChoice());
  if (phase === "lobby") {
    app.append(renderLobby());
  } else if (phase === "drafting") {
    if (me.position_id !== null) {
      app.append(h("div", { class: "drafting-grid" }, renderMyEditors(), renderTeamDrafts()));
    }
  } else {
    if (phase === "recommendation" && review.isChair()) app.append(renderRecommendationEditor(), review.finalizeButton() || "");
    else if (phase !== "review") app.append(renderRecommendationView());
    app.append(...review.memberSections("before"), renderColumns(), ...review.memberSections("after"));
  }
}

function renderMyPosition() {
  const me = state.snap.me;
  if (me.position_id === null) {
    return h("section", { class: "my-position unassigned card", "aria-label": "Your position" },
      h("p", { class: "eyebrow" }, `You are ${me.display_name}`),
      h("p", { class: "my-position-name" }, "No position yet"),
      h("p", {}, "The facilitator will assign you one of the positions."));
  }
  const pos = state.snap.scenario.positions.find((p) => p.id === me.position_id);
  return h("section", { class: `my-position card pos-${positionIndex(me.position_id)}`, "aria-label": "Your position" },
    h("p", { class: "eyebrow" }, `You are ${me.display_name} · your position`),
    h("p", { class: "my-position-name" }, pos.name),
    h("p", { class: "my-position-summary" }, pos.summary));
}

function renderChoice() {
  const snap = state.snap;
  const cap = snap.room.choice_cap;
  const section = h("section", { class: "card choice", "aria-labelledby": "choice-h" },
    h("h2", { id: "choice-h" }, "Choose the position you will argue"),
    cap ? h("p", { class: "help" }, `At most ${cap} per position.`) : null);
  const list = h("div", { class: "choice-grid" });
  for (const pos of snap.scenario.positions) {
    const count = snap.members.filter((m) => m.position_id === pos.id && !m.removed).length;
    const full = cap && count >= cap;
    list.append(h("button", {
      type: "button",
      class: `button choice-button pos-${positionIndex(pos.id)}`,
      disabled: full || snap.me.muted ? true : null,
      onclick: () => socket.send({ type: "position.choose", position_id: pos.id }),
    }, h("strong", {}, pos.name), h("span", { class: "muted" }, full ? "full" : `${count}${cap ? ` of ${cap}` : ""} chosen`)));
  }
  section.append(list);
  return section;
}

function renderLobby() {
  const members = state.snap.members;
  return h("section", { class: "card", "aria-labelledby": "lobby-h" },
    h("h2", { id: "lobby-h" }, `In the room (${members.length})`),
    h("ul", { class: "chip-list" }, members.map((m) => memberChip(m))));
}

function memberChip(m) {
  return h("li", { class: `member-chip${m.online ? " online" : ""}` },
    h("span", { class: "dot", "aria-hidden": "true" }),
    m.display_name,
    h("span", { class: "visually-hidden" }, m.online ? " (online)" : " (offline)"));
}

function editorValue(target, serverText) {
  const entry = outbox.get(target);
  if (entry) return (entry.next || entry.payload).text;
  return serverText;
}

function makeEditor(target, { id, label, hint, kind, slot, positionId, max }) {
  let area = editors.get(target);
  const item = serverItem(target);
  const value = editorValue(target, item ? item.text : "");
  if (!area) {
    area = h("textarea", { id, rows: 4, maxlength: max, "aria-describedby": `${id}-hint ${id}-count` });
    area.addEventListener("input", () => {
      queueChange(target, { type: "draft.save", kind, slot, position_id: positionId, text: area.value, citations: currentCitations(target) });
      maybeTyping();
      const counter = document.getElementById(`${id}-count`);
      if (counter) counter.textContent = countText(area.value, max);
    });
    editors.set(target, area);
    area.value = value;
  } else if (document.activeElement !== area && area.value !== value) {
    area.value = value;
  } else if (!outbox.get(target) && area.value !== value) {
    area.value = value; // changed elsewhere and nothing of ours pending
  }
  const room = state.snap.room;
  const blocked = state.snap.me.muted || room.editing_locked || (item && item.hidden);
  area.readOnly = Boolean(blocked);
  return h("div", { class: "field editor" },
    h("label", { for: id }, label, item ? draftBadges(item) : null),
    h("p", { class: "help", id: `${id}-hint` }, hint),
    area,
    h("p", { class: "counter", id: `${id}-count` }, countText(area.value, max)),
    citationPicker({
      cards: state.snap.cards,
      selected: currentCitations(target),
      id: `${id}-cite`,
      disabled: blocked,
      onChange: (ids) => queueChange(target, { type: "draft.save", kind, slot, position_id: positionId, text: area.value, citations: ids }),
    }),
    item ? feedbackList(item) : null);
}

function currentCitations(target) {
  const entry = outbox.get(target);
  const pending = entry && (entry.next || entry.payload);
  if (pending && pending.citations) return pending.citations;
  const item = serverItem(target);
  return (item && item.citations) || [];
}

function draftBadges(draft) {
  return [
    draft.needs_source ? h("span", { class: "badge warn" }, "Needs a source") : null,
    draft.hidden ? h("span", { class: "badge danger" }, "Hidden by the facilitator") : null,
  ];
}

function feedbackList(draft) {
  const notes = state.snap.feedback.filter((f) => f.draft_id === draft.id);
  if (!notes.length) return null;
  return h("ul", { class: "feedback-list", "aria-label": "Facilitator feedback" },
    notes.map((f) => h("li", {}, h("span", { class: "feedback-label" }, "Feedback: "), f.text)));
}

function maybeTyping() {
  const now = Date.now();
  if (now - typingSentAt > TYPING_SEND_EVERY_MS && socket.isOpen()) {
    typingSentAt = now;
    socket.send({ type: "typing" });
  }
}

function countText(text, max) {
  return `${words(text)} words · ${text.length}/${max} characters`;
}

function renderMyEditors() {
  const snap = state.snap;
  const positionId = snap.me.position_id;
  const section = h("section", { class: "card my-case", "aria-labelledby": "my-case-h" },
    h("h2", { id: "my-case-h" }, "Your case"));
  for (let slot = 1; slot <= snap.scenario.argument_slots; slot += 1) {
    section.append(makeEditor(draftTarget(positionId, "argument", slot), {
      id: `arg-${slot}`,
      label: `Argument ${slot}`,
      hint: "Specific, not general: why does it matter for this model, far ahead of the state of the art?",
      kind: "argument",
      slot,
      positionId,
      max: config.maxDraftChars,
    }));
  }
  for (let slot = 1; slot <= snap.scenario.risk_slots; slot += 1) {
    section.append(makeEditor(draftTarget(positionId, "risk", slot), {
      id: `risk-${slot}`,
      label: "A risk of our own position we cannot easily refute",
      hint: "Be honest: what is the strongest cost of the option you are defending?",
      kind: "risk",
      slot,
      positionId,
      max: config.maxDraftChars,
    }));
  }
  return section;
}

function renderTeamDrafts() {
  const snap = state.snap;
  const mates = snap.members.filter((m) => m.position_id === snap.me.position_id && m.id !== snap.me.member_id && !m.removed);
  const section = h("section", { class: "card team", "aria-labelledby": "team-h" },
    h("h2", { id: "team-h" }, "Your team"));
  if (!mates.length) {
    section.append(h("p", { class: "muted" }, "No teammates yet: you argue this position on your own."));
    return section;
  }
  for (const mate of mates) {
    const drafts = snap.drafts
      .filter((d) => d.author_id === mate.id && d.position_id === snap.me.position_id && (d.round || 1) === snap.room.round && d.text && d.text.trim())
      .sort(draftOrder);
    section.append(h("article", { class: "mate" },
      h("h3", {}, h("span", { class: `dot${mate.online ? " online" : ""}`, "aria-hidden": "true" }), mate.display_name),
      drafts.length
        ? h("ul", { class: "draft-list" }, drafts.map((d) => h("li", {}, h("span", { class: "slot-label" }, slotLabel(d), draftBadges(d)), h("span", { class: "draft-text" }, d.text), citationList(state.snap.cards, d.citations, config.briefingUrl), feedbackList(d))))
        : h("p", { class: "muted" }, "Nothing written yet.")));
  }
  return section;
}

function draftOrder(a, b) {
  if (a.kind !== b.kind) return a.kind === "argument" ? -1 : 1;
  return a.slot - b.slot;
}

function slotLabel(d) {
  return d.kind === "argument" ? `Argument ${d.slot}` : "Risk";
}

function renderConflicts() {
  for (const conflict of outbox.conflicts.values()) {
    const reasons = {
      changed: "This text was changed somewhere else (another tab or the facilitator) before your edit was saved. The saved text is shown in the editor; your version is kept here.",
      moved: "You moved to another position before this was saved. Your text is kept here.",
      phase: "This could not be saved because the phase had changed. Your text is kept here.",
      refused: conflict.message || "The server refused this change. Your text is kept here.",
    };
    const mine = conflict.mine.text !== undefined ? conflict.mine.text : `${conflict.mine.rationale}\n\n${conflict.mine.revisit_condition}`;
    const canReapply = conflict.reason === "changed" && (editors.has(conflict.target) || conflict.target === "recommendation");
    const id = `conflict-${conflict.target.replace(/[^a-z0-9]/gi, "-")}`;
    app.append(h("section", { class: "card conflict", role: "alert", "aria-labelledby": `${id}-h` },
      h("h2", { id: `${id}-h` }, "Your version is kept on this device"),
      h("p", {}, reasons[conflict.reason] || reasons.refused),
      h("label", { for: id }, "Your version"),
      h("textarea", { id, readonly: true, rows: 4, value: mine }),
      h("p", { class: "actions" },
        canReapply ? h("button", { type: "button", class: "button primary", onclick: () => reapply(conflict) }, "Use my version") : null,
        h("button", { type: "button", class: "button secondary", onclick: () => discardConflict(conflict) }, "Discard my version"))));
  }
}

function reapply(conflict) {
  outbox.deleteConflict(conflict.target);
  const editor = editors.get(conflict.target);
  if (editor && conflict.mine.text !== undefined) editor.value = conflict.mine.text;
  if (conflict.target === "recommendation" && recForm) {
    for (const input of recForm.querySelectorAll("input[name=decision]")) {
      input.checked = Number(input.value) === conflict.mine.decision_id;
    }
    recForm.querySelector("#rec-rationale").value = conflict.mine.rationale;
    recForm.querySelector("#rec-revisit").value = conflict.mine.revisit_condition;
  }
  queueChange(conflict.target, conflict.mine);
  render();
}

function discardConflict(conflict) {
  outbox.deleteConflict(conflict.target);
  outbox.persist();
  render();
}

function renderColumns() {
  const snap = state.snap;
  const wrapper = h("section", { class: "columns-wrap", "aria-labelledby": "cases-h" },
    h("h2", { id: "cases-h" }, "The positions' cases"));
  wrapper.append(review.withTabs(casesForRound(snap.room.round)));
  for (let round = snap.room.round - 1; round >= 1; round -= 1) {
    wrapper.append(h("details", { class: "earlier-round" },
      h("summary", {}, `Round ${round} (before switching sides)`), casesForRound(round)));
  }
  return wrapper;
}

function casesForRound(round) {
  const snap = state.snap;
  const columns = h("div", { class: "columns" });
  for (const pos of snap.scenario.positions) {
    const drafts = snap.drafts.filter((d) => d.position_id === pos.id && (d.round || 1) === round && d.text && d.text.trim());
    const args = drafts.filter((d) => d.kind === "argument").sort(draftOrder);
    const risks = drafts.filter((d) => d.kind === "risk");
    const team = snap.members.filter((m) => m.position_id === pos.id || snap.room.is_solo).map((m) => m.display_name);
    columns.append(h("article", { class: `column pos-${positionIndex(pos.id)}`, "aria-label": pos.name },
      h("h3", { class: "column-title" }, pos.name),
      h("p", { class: "muted" }, team.length ? `Team: ${team.join(", ")}` : "No team"),
      h("h4", {}, "Arguments"),
      args.length
        ? h("ol", { class: "case-list" }, args.map((d) => h("li", {}, h("p", { class: "draft-text" }, d.text), citationList(snap.cards, d.citations, config.briefingUrl), h("p", { class: "author" }, `— ${memberName(d.author_id)} `, draftBadges(d)), review.draftTools(d))))
        : h("p", { class: "muted" }, "No arguments written."),
      h("h4", {}, "Risk they accept"),
      risks.length
        ? h("ul", { class: "case-list risks" }, risks.map((d) => h("li", {}, h("p", { class: "draft-text" }, d.text), citationList(snap.cards, d.citations, config.briefingUrl), h("p", { class: "author" }, `— ${memberName(d.author_id)} `, draftBadges(d)), review.draftTools(d))))
        : h("p", { class: "muted" }, "No risk named.")));
  }
  return columns;
}

function renderRecommendationView() {
  const rec = state.snap.recommendation;
  const months = state.snap.scenario.revisit_months;
  return h("section", { class: "card recommendation-view", "aria-labelledby": "rec-h" },
    h("h2", { id: "rec-h" }, "Committee recommendation"),
    h("dl", {},
      h("dt", {}, "Decision"),
      h("dd", { class: "decision" }, rec.decision_id ? positionName(rec.decision_id) : "Not decided yet"),
      h("dt", {}, "Rationale"),
      h("dd", { class: "draft-text" }, rec.rationale || "—"),
      h("dt", {}, `We will revisit this ${months} months after release if…`),
      h("dd", { class: "draft-text" }, rec.revisit_condition || "—")));
}

// ----- facilitator ---------------------------------------------------------------------------

function renderFacilitator() {
  const snap = state.snap;
  const phase = snap.room.phase;
  app.append(renderControls());
  renderConflicts();
  if (phase === "recommendation") app.append(renderRecommendationEditor(), review.finalizeButton());
  if (phase === "closed") app.append(renderRecommendationView());
  app.append(...review.facilitatorSections());
  app.append(h("div", { class: "console-grid" }, renderBoard(), renderSidePanel()), renderWarmupResults(ctx) || "");
}

function renderControls() {
  const snap = state.snap;
  const phase = snap.room.phase;
  const next = PHASES[PHASES.indexOf(phase) + 1];
  const bar = h("section", { class: "controls card", "aria-label": "Room controls" });
  if (next) {
    const rec = snap.recommendation;
    const blocked = next === "closed" && !(rec.decision_id && rec.rationale.trim() && rec.revisit_condition.trim());
    bar.append(h("button", {
      type: "button",
      id: "advance",
      class: "button primary big",
      disabled: blocked || outbox.get("recommendation") ? true : null,
      onclick: () => {
        if (next === "closed" && !window.confirm("Close the room? The record is final and nothing can be edited afterwards.")) return;
        socket.send({ type: "phase.advance", to: next });
      },
    }, next === "closed" ? "Close the room" : `Start ${PHASE_LABELS[next].toLowerCase()}`));
    if (blocked) bar.append(h("span", { class: "muted" }, "The decision, rationale and revisit condition are all required."));
  }
  const unassigned = snap.members.filter((m) => m.position_id === null && !m.removed).length;
  if (unassigned && phase !== "closed") {
    bar.append(h("button", { type: "button", id: "assign", class: "button", onclick: () => socket.send({ type: "positions.assign" }) },
      `Assign positions (${unassigned} waiting)`));
  }
  if (phase === "review") {
    bar.append(h("button", {
      type: "button",
      id: "switch-sides",
      class: "button",
      onclick: () => {
        if (window.confirm("Switch sides? Every member moves to the next position and drafts a new round; this round's drafts stay in the record.")) {
          socket.send({ type: "round.switch" });
        }
      },
    }, "Switch sides for a new round"));
  }
  if (phase === "drafting") {
    const locked = snap.room.editing_locked;
    bar.append(h("button", {
      type: "button",
      id: "lock",
      class: `button${locked ? " primary" : ""}`,
      "aria-pressed": locked ? "true" : "false",
      onclick: () => socket.send({ type: "room.lock", locked: !locked }),
    }, locked ? "Unlock editing" : "Lock all editing"));
  }
  bar.append(
    h("a", { class: "button secondary", href: config.presentUrl }, "Show join code"),
    h("a", { class: "button secondary", href: config.exportUrl, download: "" }, "Download record (.md)"),
  );
  if (phase !== "closed") bar.append(renderTimerControls(), renderAnnouncementForm());
  if (phase === "lobby") bar.append(renderAssignmentForm());
  return bar;
}

function renderTimerControls() {
  const timer = state.snap.room.timer || {};
  const box = h("div", { class: "control-group", role: "group", "aria-labelledby": "timer-h" },
    h("h3", { id: "timer-h" }, "Phase timer"));
  if (timer.running || (timer.remaining_seconds !== null && timer.remaining_seconds !== undefined)) {
    box.append(h("p", { class: "timer-inline" }, timerText()));
    box.append(h("div", { class: "actions" },
      timer.running
        ? h("button", { type: "button", class: "button", id: "timer-pause", onclick: () => socket.send({ type: "timer.control", action: "pause" }) }, "Pause")
        : h("button", { type: "button", class: "button", id: "timer-resume", onclick: () => socket.send({ type: "timer.control", action: "resume" }) }, "Resume"),
      h("button", { type: "button", class: "button", id: "timer-extend", onclick: () => socket.send({ type: "timer.control", action: "extend", seconds: 60 }) }, "+1 minute"),
      h("button", { type: "button", class: "button secondary", id: "timer-clear", onclick: () => socket.send({ type: "timer.control", action: "clear" }) }, "Stop timer")));
    return box;
  }
  const minutes = h("input", { type: "number", id: "timer-minutes", min: 1, max: 240, value: 10, inputmode: "numeric" });
  const auto = h("input", { type: "checkbox", id: "timer-auto" });
  box.append(h("form", {
    class: "inline-controls",
    onsubmit: (event) => {
      event.preventDefault();
      const value = Math.round(Number(minutes.value) * 60);
      socket.send({ type: "timer.control", action: "start", seconds: value, auto_advance: auto.checked });
    },
  },
  h("label", { for: "timer-minutes" }, "Minutes"), minutes,
  h("span", { class: "check-inline" }, auto, h("label", { for: "timer-auto" }, "Move on at zero")),
  h("button", { type: "submit", class: "button", id: "timer-start" }, "Start timer")));
  return box;
}

function renderAnnouncementForm() {
  const room = state.snap.room;
  const input = h("input", { type: "text", id: "announce-text", maxlength: 280, placeholder: "e.g. Five minutes left: finish your risk" });
  return h("div", { class: "control-group", role: "group", "aria-labelledby": "announce-h" },
    h("h3", { id: "announce-h" }, "Announcement"),
    h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        socket.send({ type: "room.announce", text: input.value });
        input.value = "";
      },
    },
    h("label", { for: "announce-text", class: "visually-hidden" }, "Announcement to the whole room"), input,
    h("button", { type: "submit", class: "button", id: "announce-send" }, "Show to everyone"),
    room.announcement ? h("button", { type: "button", class: "button secondary", id: "announce-clear", onclick: () => socket.send({ type: "room.announce", text: "" }) }, "Remove") : null));
}

const METHOD_LABELS = {
  balanced: "Balanced, in order of joining",
  random: "Random, balanced",
  manual: "Manual: I place everyone",
  choice: "Members choose",
};

function renderAssignmentForm() {
  const room = state.snap.room;
  const select = h("select", { id: "method" },
    Object.entries(METHOD_LABELS).map(([value, label]) => h("option", { value, selected: value === room.assignment_method }, label)));
  const cap = h("input", { type: "number", id: "choice-cap", min: 1, max: 100, value: room.choice_cap || "", inputmode: "numeric" });
  return h("div", { class: "control-group", role: "group", "aria-labelledby": "method-h" },
    h("h3", { id: "method-h" }, "How positions are given"),
    h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        socket.send({ type: "room.configure", assignment_method: select.value, choice_cap: cap.value ? Number(cap.value) : null });
      },
    },
    h("label", { for: "method", class: "visually-hidden" }, "Assignment method"), select,
    h("label", { for: "choice-cap" }, "Cap per position"), cap,
    h("button", { type: "submit", class: "button", id: "method-save" }, "Apply")));
}

function renderBoard() {
  const snap = state.snap;
  const present = snap.members.filter((m) => !m.removed);
  const board = h("section", { class: "board", "aria-labelledby": "board-h" },
    h("h2", { id: "board-h" }, `Teams (${present.length} members, ${present.filter((m) => m.online).length} online)`),
    h("p", { class: "help" }, "Drag a member to another team, or use their “Move to” list."));
  const grid = h("div", { class: "columns" });
  const groups = [...snap.scenario.positions.map((p) => ({ id: p.id, name: p.name })), { id: null, name: "Waiting for a position" }];
  const round = snap.room.round;
  for (const group of groups) {
    const members = present.filter((m) => m.position_id === group.id);
    if (group.id === null && !members.length) continue;
    const drafts = group.id === null ? [] : snap.drafts.filter((d) => d.position_id === group.id && (d.round || 1) === round && d.text && d.text.trim());
    const slotsPerMember = snap.scenario.argument_slots + snap.scenario.risk_slots;
    const expected = Math.max(1, members.length * slotsPerMember);
    const column = h("article", { class: `column ${group.id === null ? "unassigned" : `pos-${positionIndex(group.id)}`}`, "aria-label": group.name },
      h("h3", { class: "column-title" }, group.name));
    if (group.id !== null) {
      column.addEventListener("dragover", (event) => { event.preventDefault(); column.classList.add("drop-target"); });
      column.addEventListener("dragleave", () => column.classList.remove("drop-target"));
      column.addEventListener("drop", (event) => {
        event.preventDefault();
        column.classList.remove("drop-target");
        const memberId = Number(event.dataTransfer.getData("text/plain"));
        if (memberId) socket.send({ type: "member.move", member_id: memberId, position_id: group.id });
      });
      const written = Math.min(drafts.length, expected);
      column.append(h("label", { class: "progress-label" },
        `${written} of ${expected} slots written`,
        h("progress", { max: expected, value: written })));
    }
    column.append(h("ul", { class: "member-rows" }, members.map((m) => memberRow(m, drafts))));
    if (drafts.length) {
      column.append(h("details", { class: "team-drafts", open: snap.room.phase !== "lobby" },
        h("summary", {}, `Drafts (${drafts.length})`),
        h("ul", { class: "draft-list" }, drafts.sort(draftOrder).map((d) => moderatedDraft(d)))));
    }
    grid.append(column);
  }
  board.append(grid);
  const removed = snap.members.filter((m) => m.removed);
  if (removed.length) {
    board.append(h("section", { class: "removed", "aria-labelledby": "removed-h" },
      h("h3", { id: "removed-h" }, "Removed"),
      h("ul", { class: "member-rows" }, removed.map((m) => h("li", { class: "member-row" },
        h("span", { class: "member-name" }, m.display_name),
        h("button", { type: "button", class: "button secondary small", onclick: () => socket.send({ type: "member.readmit", member_id: m.id }) }, "Re-admit"))))));
  }
  if (!snap.members.length) board.append(h("p", { class: "muted" }, "Nobody has joined yet. Show the join code to the class."));
  return board;
}

function moderatedDraft(d) {
  const feedbackId = `feedback-${d.id}`;
  const input = h("input", { type: "text", id: feedbackId, maxlength: 500, placeholder: "e.g. Too general: tie it to this model" });
  return h("li", { class: d.hidden ? "is-hidden" : "" },
    h("span", { class: "slot-label" }, `${slotLabel(d)} · ${memberName(d.author_id)} `, draftBadges(d)),
    h("span", { class: "draft-text" }, d.text),
    citationList(state.snap.cards, d.citations, config.briefingUrl),
    feedbackList(d),
    h("div", { class: "draft-actions" },
      h("button", { type: "button", class: "button small secondary", onclick: () => socket.send({ type: "draft.moderate", draft_id: d.id, hidden: !d.hidden }) }, d.hidden ? "Show" : "Hide"),
      h("button", { type: "button", class: "button small secondary", "aria-pressed": d.needs_source ? "true" : "false", onclick: () => socket.send({ type: "draft.moderate", draft_id: d.id, needs_source: !d.needs_source }) }, d.needs_source ? "Source given" : "Needs a source"),
      h("form", {
        class: "feedback-form",
        onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) socket.send({ type: "draft.feedback", draft_id: d.id, text: input.value.trim() });
          input.value = "";
        },
      },
      h("label", { for: feedbackId, class: "visually-hidden" }, `Feedback to ${memberName(d.author_id)}`), input,
      h("button", { type: "submit", class: "button small" }, "Send"))));
}

function memberRow(member, drafts) {
  const snap = state.snap;
  const count = drafts.filter((d) => d.author_id === member.id).length;
  const selectId = `move-${member.id}`;
  const typing = (state.typingUntil.get(member.id) || 0) > Date.now();
  const closed = snap.room.phase === "closed";
  const select = h("select", {
    id: selectId,
    disabled: closed ? true : null,
    onchange: (event) => socket.send({ type: "member.move", member_id: member.id, position_id: Number(event.target.value) }),
  },
  member.position_id === null ? h("option", { value: "", selected: true, disabled: true }, "—") : null,
  snap.scenario.positions.map((p) => h("option", { value: p.id, selected: p.id === member.position_id }, p.short_name)));
  const row = h("li", { class: "member-row", draggable: closed ? null : "true" },
    h("span", { class: `dot${member.online ? " online" : ""}`, "aria-hidden": "true" }),
    h("span", { class: "member-name" }, member.display_name,
      snap.room.anonymous && member.code_name ? h("span", { class: "muted code-name" }, ` (${member.code_name})`) : null,
      h("span", { class: "visually-hidden" }, member.online ? " (online)" : " (offline)"),
      typing ? h("span", { class: "typing" }, " typing…") : null,
      member.muted ? h("span", { class: "badge warn" }, "muted") : null),
    h("span", { class: "muted contributions", title: "Slots written" }, `${count} written`),
    h("label", { class: "visually-hidden", for: selectId }, `Move ${member.display_name} to`),
    select,
    closed ? null : h("span", { class: "row-buttons" },
      h("button", { type: "button", class: "button small secondary", id: `mute-${member.id}`, onclick: () => socket.send({ type: "member.mute", member_id: member.id, muted: !member.muted }) }, member.muted ? "Unmute" : "Mute"),
      h("button", {
        type: "button",
        class: "button small secondary",
        id: `remove-${member.id}`,
        onclick: () => {
          if (window.confirm(`Remove ${member.display_name} from the room? Their socket closes and they cannot come back unless you re-admit them.`)) {
            socket.send({ type: "member.remove", member_id: member.id });
          }
        },
      }, "Remove")));
  row.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("text/plain", String(member.id));
    event.dataTransfer.effectAllowed = "move";
  });
  return row;
}

function renderSidePanel() {
  const snap = state.snap;
  const panel = h("aside", { class: "side-panel", "aria-label": "Activity and facilitators" });
  panel.append(h("section", { class: "card", "aria-labelledby": "activity-h" },
    h("h2", { id: "activity-h" }, "Recent activity"),
    state.activity.length
      ? h("ol", { class: "activity" }, state.activity.map((a) => h("li", {},
        h("time", { datetime: a.at.toISOString() }, a.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })), " ", a.text)))
      : h("p", { class: "muted" }, "Nothing yet since this page opened.")));
  const username = h("input", { type: "text", id: "cofac-username", autocomplete: "off" });
  panel.append(h("section", { class: "card", "aria-labelledby": "fac-h" },
    h("h2", { id: "fac-h" }, "Facilitators"),
    h("ul", { class: "plain" }, (snap.facilitators || []).map((name) => h("li", {}, name))),
    snap.room.phase === "closed" ? null : h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        if (username.value.trim()) socket.send({ type: "facilitator.add", username: username.value.trim() });
        username.value = "";
      },
    },
    h("label", { for: "cofac-username" }, "Add a co-facilitator (username)"), username,
    h("button", { type: "submit", class: "button small" }, "Add"))));
  return panel;
}

function recommendationPayload(form) {
  const decision = form.querySelector("input[name=decision]:checked");
  return {
    type: "recommendation.save",
    decision_id: decision ? Number(decision.value) : null,
    rationale: form.querySelector("#rec-rationale").value,
    revisit_condition: form.querySelector("#rec-revisit").value,
    ...review.builderPayload(form),
  };
}

let recForm = null;

function renderRecommendationEditor() {
  const snap = state.snap;
  const entry = outbox.get("recommendation");
  const current = entry ? entry.next || entry.payload : snap.recommendation;
  if (!recForm) {
    recForm = h("form", { class: "card rec-editor", "aria-labelledby": "rec-edit-h", onsubmit: (e) => e.preventDefault() },
      h("h2", { id: "rec-edit-h" }, "Committee recommendation"),
      h("p", { class: "help" }, snap.scenario.recommendation_guidance),
      h("fieldset", {},
        h("legend", {}, "Decision"),
        snap.scenario.positions.map((p) => h("label", { class: `choice pos-${positionIndex(p.id)}` },
          h("input", { type: "radio", name: "decision", value: p.id, id: `decision-${p.id}` }), p.name))),
      h("div", { class: "field" },
        h("label", { for: "rec-rationale" }, "Rationale"),
        h("textarea", { id: "rec-rationale", rows: 6, maxlength: config.maxRecommendationChars })),
      h("div", { class: "field" },
        h("label", { for: "rec-revisit" }, `Condition that would make the committee revisit this ${snap.scenario.revisit_months} months after release`),
        h("p", { class: "help", id: "rec-revisit-hint" }, snap.scenario.revisit_guidance),
        h("textarea", { id: "rec-revisit", rows: 3, maxlength: config.maxRecommendationChars, "aria-describedby": "rec-revisit-hint" })),
      review.builderFields());
    recForm.addEventListener("input", () => {
      queueChange("recommendation", recommendationPayload(recForm));
      queueRender();
    });
  }
  const focused = recForm.contains(document.activeElement);
  if (!focused || !entry) {
    for (const input of recForm.querySelectorAll("input[name=decision]")) {
      input.checked = Number(input.value) === current.decision_id;
    }
    const rationale = recForm.querySelector("#rec-rationale");
    const revisit = recForm.querySelector("#rec-revisit");
    if (document.activeElement !== rationale) rationale.value = current.rationale;
    if (document.activeElement !== revisit) revisit.value = current.revisit_condition;
    review.syncBuilder(recForm, current);
  }
  return recForm;
}

// ----- presenting (projector page) -----------------------------------------------------------

function renderPresenting() {
  const list = document.getElementById("present-members");
  const count = document.getElementById("member-count");
  clear(list);
  // The projector is seen by the whole class: code names in anonymous rooms, no removed members.
  const shown = state.snap.members.filter((m) => !m.removed);
  const anonymous = state.snap.room.anonymous;
  for (const m of shown) list.append(memberChip(anonymous ? { ...m, display_name: m.code_name || "—" } : m));
  count.textContent = String(shown.length);
}

// ---------------------------------------------------------------------------------------------

window.addEventListener("beforeunload", (event) => {
  // Everything is in localStorage already; warn only if changes have not reached the server.
  if (outbox.pendingCount() && !socket.isOpen()) event.preventDefault();
});

// What solo.js and warmup.js use of this page (they render into the same app and outbox).
const ctx = {
  state, config, socket, app, announce, showError, render, flush, makeEditor, draftTarget, serverItem,
  editorValue, renderConflicts, renderRecommendationEditor, renderRecommendationView, renderColumns,
  positionIndex, newClientId,
};

review.init({ state, socket, config, announce, queueRender, positionName, positionIndex, memberName });
renderStatus();
socket.start();

// For tests and debugging: a read-only view of the client's state.
window.quorum = { state, outbox, socket };

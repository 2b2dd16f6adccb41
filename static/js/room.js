// The room page: one socket, the room's state from snapshots and events, and the editors whose
// unacknowledged changes live in the Outbox until the server confirms them. See docs/protocol.md.
//
// What a page draws depends on who and where it is, and only that code is downloaded (see
// docs/architecture.md, "The front end: which module loads when"): member.js for a member of a
// group room, console.js for a facilitator, solo.js for a solo learner, with editors.js (the
// draft slots) and cases.js (every position's case) where a member or solo learner uses them;
// review.js (and review.css) from the review phase on, with review-member.js or
// review-console.js for the page's role; warmup.js where a member or solo learner sees the
// warm-up. render() loads what the snapshot needs (neededModules) before it draws.

import { h, clear, newClientId } from "./dom.js";
import { KeptMessages, Outbox } from "./outbox.js";
import { RoomSocket } from "./socket.js";
import { createResearch } from "./research.js";
import { sameIds } from "./citations.js";
import { gettext, ngettext, interpolate } from "./i18n.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const app = document.getElementById("app");
const statusEl = document.getElementById("save-status");
const bannerEl = document.getElementById("phase-banner");
const announcer = document.getElementById("announcer");

const PHASES = ["lobby", "drafting", "review", "recommendation", "closed"];
const PHASE_LABELS = {
  // Translators: the room's phases.
  lobby: gettext("Lobby"),
  drafting: gettext("Drafting"),
  review: gettext("Review"),
  recommendation: gettext("Recommendation"),
  closed: gettext("Closed"),
};
const SEND_DEBOUNCE_MS = 700;
const SEND_MAX_WAIT_MS = 3000;
const GAP_WAIT_MS = 800;
const MAX_TICK_RUN = 10000;
const RETRY_AFTER_ERROR_MS = 3000;

const identity = config.memberId ? `m${config.memberId}` : `f${config.userId}`;
const outbox = new Outbox(`quorum:outbox:${config.roomId}:${identity}`);
// Rebuttals and questions posted and not yet acknowledged (or refused: kept until read).
const posts = new KeptMessages(`quorum:posts:${config.roomId}:${identity}`);

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
  lastTickSeq: null,
  expiredSent: null,
};
const TYPING_SHOWN_MS = 5000;

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
    if (posts.unsentCount()) queueRender(); // "posting…" becomes "kept on this device", and back
  },
  onFatal: (reason) => {
    state.fatal = reason;
    render();
  },
});
const research = createResearch({ socket, config, announce: (text) => announce(text) });

function handleMessage(message) {
  if (typeof message.ticks_from === "number" && typeof message.seq === "number") {
    // The run of ticks just before this event, sent in its frame (protocol §6, "tick").
    handleTickRun({ from: message.ticks_from, seq: message.seq - 1 });
  }
  switch (message.type) {
    case "snapshot":
      applySnapshot(message);
      break;
    case "synced":
      state.synced = true;
      flush();
      research.flush();
      flushPosts();
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
      if (message.type === "tick" && typeof message.from === "number") handleTickRun(message);
      else if (typeof message.seq === "number") handleEvent(message);
  }
}

// A run of consecutive ticks sent as one frame (protocol §6, "tick"): each number in turn.
function handleTickRun(run) {
  if (run.seq - run.from > MAX_TICK_RUN) {
    resync(); // more numbers than any real run: a fresh snapshot is cheaper than replaying them
    return;
  }
  for (let seq = run.from; seq <= run.seq; seq++) handleEvent({ type: "tick", seq });
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
  lazy.deferred = []; // review events held for review.js: this snapshot includes them
  drainBuffered();
  reconcileOutbox();
  research.onSnapshot(snap);
  if (hadSnapshot && previousPhase !== snap.room.phase) {
    announce(interpolate(gettext("Phase: %(phase)s"), { phase: PHASE_LABELS[snap.room.phase] }, true));
  }
  render();
  flush();
  flushPosts();
}

function applyEvent(event) {
  const snap = state.snap;
  if (research.applyEvent(event)) {
    if (snap.me.role === "facilitator") noteActivity(event);
    queueRender();
    return;
  }
  switch (event.type) {
    case "member.joined": {
      if (!snap.members.some((m) => m.id === event.member.id)) {
        snap.members.push(event.member);
        announce(interpolate(gettext("%(name)s joined"), { name: event.member.display_name }, true));
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
        announce(interpolate(gettext("You are now arguing: %(position)s"), { position: positionName(event.position_id) }, true));
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
      announce(interpolate(gettext("Phase: %(phase)s"), { phase: PHASE_LABELS[event.phase] }, true));
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
        announce(event.muted ? gettext("The facilitator has muted you.") : gettext("You can write again."));
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
      if (draft && draft.author_id === snap.me.member_id) announce(gettext("New feedback on your draft"));
      break;
    }
    case "room.settings": {
      const before = snap.room.announcement;
      Object.assign(snap.room, event.settings);
      if (event.settings.announcement && event.settings.announcement !== before) {
        announce(interpolate(gettext("Announcement: %(text)s"), { text: event.settings.announcement }, true));
      }
      break;
    }
    case "facilitators.changed":
      snap.facilitators = event.facilitators;
      break;
    case "warmup.attempted": {
      if (!snap.warmup_attempts) snap.warmup_attempts = [];
      if (!snap.warmup_attempts.some((a) => a.id === event.attempt.id)) snap.warmup_attempts.push(event.attempt);
      break;
    }
    default:
      // Review, vote, sign-off ("tick" only advances the number). They come only in the phases
      // that load review.js: one that arrives while it loads waits for it (see loadModules).
      if (modules.review) modules.review.applyEvent(snap, event);
      else if (event.type !== "tick") lazy.deferred.push(event);
      break;
  }
  if (snap.me.role === "facilitator" && event.type !== "tick") noteActivity(event);
  queueRender();
}

// The console's "Recent activity" (console.js describes and keeps the events); those applied
// before console.js has loaded wait for it, with the time they arrived.
const ACTIVITY_WAITING_MAX = 50;

function noteActivity(event) {
  if (modules.console) {
    modules.console.recordActivity(event, new Date());
    return;
  }
  lazy.activity.push([event, new Date()]);
  if (lazy.activity.length > ACTIVITY_WAITING_MAX) lazy.activity.shift();
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
  if (posts.has(ack.client_id)) {
    posts.remove(ack.client_id);
    if (!ack.duplicate) announce(gettext("Posted."));
    renderStatus();
    queueRender();
    return;
  }
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
  if (error.client_id && posts.has(error.client_id)) {
    postRefused(error);
    return;
  }
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

// Posts: a rebuttal or a question is a new row, not a version of a slot, so it is kept under
// its own client_id (posts) from the moment it is posted until the server acknowledges it, and
// sent again after every (re)connect that does not show it stored; the server never stores a
// client_id twice (protocol §17, comment.add).

function post(message) {
  posts.add(message);
  const sent = socket.isOpen() && state.synced && socket.send(message);
  renderStatus();
  queueRender();
  return sent;
}

function flushPosts() {
  if (!state.snap || !socket.isOpen() || !state.synced) return;
  const stored = new Set(((state.snap.review && state.snap.review.comments) || []).map((c) => c.client_id));
  for (const message of posts.values()) {
    if (stored.has(message.client_id)) posts.remove(message.client_id);
    else if (!message.refused && !socket.send(message)) break;
  }
  renderStatus();
  queueRender();
}

function postRefused(error) {
  const message = posts.get(error.client_id);
  if (["not_saved", "rate_limited", "server_error"].includes(error.code)) {
    // Kept, and this one (only) sent again shortly: resending every kept post on each error
    // would multiply the messages while the server is struggling.
    const clientId = error.client_id;
    setTimeout(() => {
      const kept = posts.get(clientId);
      if (kept && !kept.refused && socket.isOpen() && state.synced) socket.send(kept);
    }, RETRY_AFTER_ERROR_MS);
    return;
  }
  // Refused for good (the review is over, the draft was hidden, …): kept, with the reason, until
  // its author has read it and copied the words if they want them (review-member.js shows it).
  posts.add({ ...message, refused: error.message || gettext("Not posted.") });
  renderStatus();
  queueRender();
}

// ---------------------------------------------------------------------------------------------
// Status, announcements, errors

function renderStatus() {
  if (!statusEl) return;
  const pending = outbox.pendingCount() + posts.unsentCount();
  let text;
  let kind;
  if (state.fatal) {
    text = gettext("Disconnected");
    kind = "offline";
  } else if (outbox.conflicts.size) {
    text = gettext("Conflict: your version is kept below");
    kind = "conflict";
  } else if (!socket.isOpen()) {
    const kept = ngettext("Offline — %(count)s change kept on this device", "Offline — %(count)s changes kept on this device", pending);
    text = pending ? interpolate(kept, { count: pending }, true) : gettext("Offline — reconnecting…");
    kind = "offline";
  } else if (!state.synced || pending) {
    text = gettext("Saving…");
    kind = "saving";
  } else {
    text = gettext("Saved");
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
  const missing = neededModules(state.snap).filter((name) => !modules[name]);
  if (missing.length) {
    // Keep what is on screen (or "Connecting…") until the code for this phase is here.
    loadModules(missing);
    if (lazy.failed) renderLoadFailure();
    return;
  }
  const focus = captureFocus();
  renderBanner();
  const role = state.snap.me.role;
  clear(app);
  if (state.lastError) app.append(h("p", { class: "form-error", role: "alert" }, state.lastError));
  if (role === "facilitator") modules.console.renderFacilitator();
  else if (state.snap.room.is_solo) modules.solo.renderSolo(ctx);
  else modules.member.renderMember();
  restoreFocus(focus);
}

// ----- modules loaded when needed ------------------------------------------------------------

const REVIEW_PHASES = new Set(["review", "recommendation", "closed"]);
const LOAD_RETRY_MS = [1000, 2000, 4000, 8000, 15000]; // then every 15 s, and a button meanwhile
const modules = {}; // name -> module namespace, once loaded
// deferred: review events waiting for review.js; activity: [event, time] waiting for console.js
const lazy = { loading: null, failed: null, attempts: 0, retryTimer: null, deferred: [], activity: [] };

function neededModules(snap) {
  const role = snap.me.role;
  const phase = snap.room.phase;
  const needed = [role === "facilitator" ? "console" : snap.room.is_solo ? "solo" : "member"];
  // A solo learner's steps use the editors and the cases in every phase; a member writes in
  // drafting and reads the cases from the review on.
  if (role === "member" && (snap.room.is_solo || phase === "drafting")) needed.push("editors");
  if (role === "member" && (snap.room.is_solo || REVIEW_PHASES.has(phase))) needed.push("cases");
  // A solo room uses the review's pieces (cases in tabs, the recommendation builder) once it
  // leaves drafting; a group room from the review on, with what the page's role does in it.
  if (snap.room.is_solo ? phase !== "drafting" : REVIEW_PHASES.has(phase)) {
    needed.push("review");
    if (!snap.room.is_solo) needed.push(role === "facilitator" ? "reviewConsole" : "reviewMember");
  }
  const warmupShown = snap.room.is_solo ? phase === "drafting" : phase === "lobby" || phase === "drafting";
  if (snap.warmup && role === "member" && warmupShown) needed.push("warmup");
  return needed;
}

const MODULE_URLS = {
  console: "./console.js",
  member: "./member.js",
  solo: "./solo.js",
  editors: "./editors.js",
  cases: "./cases.js",
  review: "./review.js",
  reviewMember: "./review-member.js",
  reviewConsole: "./review-console.js",
  warmup: "./warmup.js",
};
// Their stylesheets, when room.html did not already link them (it links what the phase at
// page load needs): the module is used only once its styles are in, so nothing shows unstyled.
// (warmup.css: the warm-up form, and the class's results in the facilitator's console.)
const MODULE_STYLES = { review: app.dataset.reviewCss, warmup: app.dataset.warmupCss, console: app.dataset.warmupCss };

function loadModules(names) {
  if (lazy.loading || lazy.retryTimer) return; // render() runs again when this load settles
  lazy.loading = Promise.all(names.map(loadOne))
    .then(() => {
      lazy.failed = null;
      lazy.attempts = 0;
    })
    .catch((err) => {
      // Weak Wi-Fi: try again with growing pauses, and say so (with a button) meanwhile.
      lazy.failed = err;
      const wait = LOAD_RETRY_MS[Math.min(lazy.attempts, LOAD_RETRY_MS.length - 1)];
      lazy.attempts += 1;
      lazy.retryTimer = setTimeout(retryLoad, wait);
    })
    .finally(() => {
      lazy.loading = null;
      render();
    });
}

function retryLoad() {
  clearTimeout(lazy.retryTimer);
  lazy.retryTimer = null;
  render();
}

async function loadOne(name) {
  // A module whose fetch failed stays failed under its URL in this document: a retry asks
  // for it under a new one.
  const url = lazy.attempts ? `${MODULE_URLS[name]}?retry=${lazy.attempts}` : MODULE_URLS[name];
  const [module] = await Promise.all([import(url), loadStyle(MODULE_STYLES[name])]);
  if (module.init) module.init(ctx);
  modules[name] = module;
  if (name === "review") {
    // Events that came while it loaded (applySnapshot drops those older than its snapshot).
    for (const event of lazy.deferred.splice(0)) module.applyEvent(state.snap, event);
  }
  if (name === "console") {
    for (const [event, at] of lazy.activity.splice(0)) module.recordActivity(event, at);
  }
}

function loadStyle(href) {
  if (!href || document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return null;
  return new Promise((resolve, reject) => {
    const link = h("link", { rel: "stylesheet", href });
    link.addEventListener("load", resolve);
    link.addEventListener("error", () => {
      link.remove(); // the next try adds it again
      reject(new Error(`stylesheet ${href}`));
    });
    document.head.append(link);
  });
}

function renderLoadFailure() {
  if (document.getElementById("load-failed")) return;
  app.prepend(h("div", { class: "card notice", id: "load-failed", role: "alert" },
    h("p", {}, gettext("Part of this page did not load (the connection may be weak). Trying again…")),
    h("p", { class: "actions" },
      h("button", { type: "button", class: "button primary", onclick: retryLoad }, gettext("Try again now")))));
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
    not_participant: gettext("This browser is not part of the room. Join with the room code to take part."),
    removed: gettext("You are no longer part of this room."),
    room_not_found: gettext("This room does not exist any more."),
  };
  clear(app);
  app.append(
    h("div", { class: "card fatal", role: "alert" },
      h("h2", {}, gettext("You are not connected to this room")),
      h("p", {}, messages[state.fatal] || gettext("The connection was refused.")),
      h("a", { class: "button primary", href: "/join/" }, gettext("Join a room"))),
  );
}

// Each view has its hints: console.js, member.js, solo.js.
function phaseHint(phase) {
  if (state.snap.me.role === "facilitator") return modules.console.phaseHint(phase);
  return state.snap.room.is_solo ? modules.solo.soloHint(phase) : modules.member.phaseHint(phase);
}

function renderBanner() {
  const phase = state.snap.room.phase;
  clear(bannerEl);
  bannerEl.dataset.phase = phase;
  bannerEl.append(
    // A solo room has its own steps (solo.js); the group phases would only confuse.
    state.snap.room.is_solo ? "" : h("ol", { class: "phase-steps", "aria-label": gettext("Phases") },
      PHASES.map((p) =>
        h("li", {
          class: p === phase ? "current" : PHASES.indexOf(p) < PHASES.indexOf(phase) ? "done" : "",
          "aria-current": p === phase ? "step" : null,
        }, PHASE_LABELS[p]),
      )),
    h("p", { class: "phase-hint" }, phaseHint(phase)),
  );
  const room = state.snap.room;
  const timer = room.timer || {};
  if (timer.running || (timer.remaining_seconds !== null && timer.remaining_seconds !== undefined)) {
    bannerEl.append(h("p", { class: "timer", id: "timer", role: "timer", "aria-live": "off" }, timerText()));
  }
  if (room.round > 1) {
    bannerEl.append(h("p", { class: "round-badge" }, interpolate(gettext("Round %(round)s: sides switched"), { round: room.round }, true)));
  }
  if (room.announcement) {
    bannerEl.append(h("p", { class: "announcement", role: "status" },
      h("strong", {}, gettext("Announcement:"), " "), room.announcement));
  }
  if (room.editing_locked && phase === "drafting") {
    bannerEl.append(h("p", { class: "notice" }, gettext("Editing is paused by the facilitator. Your text is safe; you can continue when it is unlocked.")));
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
  if (total === 0) return gettext("Time is up");
  let format = gettext("Time left %(time)s");
  if (!timer.running) format = gettext("Time left %(time)s (paused)");
  else if (timer.auto_advance) format = gettext("Time left %(time)s · moves on at zero");
  return interpolate(format, { time: `${mm}:${ss}` }, true);
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

// ----- pieces the views share (member.js, console.js, solo.js, editors.js, cases.js) -----------

function memberChip(m) {
  return h("li", { class: `member-chip${m.online ? " online" : ""}` },
    h("span", { class: "dot", "aria-hidden": "true" }),
    m.display_name,
    h("span", { class: "visually-hidden" }, " ", m.online ? gettext("(online)") : gettext("(offline)")));
}

function editorValue(target, serverText) {
  const entry = outbox.get(target);
  if (entry) return (entry.next || entry.payload).text;
  return serverText;
}

function draftBadges(draft) {
  return [
    draft.needs_source ? h("span", { class: "badge warn" }, gettext("Needs a source")) : null,
    draft.hidden ? h("span", { class: "badge danger" }, gettext("Hidden by the facilitator")) : null,
  ];
}

function feedbackList(draft) {
  const notes = state.snap.feedback.filter((f) => f.draft_id === draft.id);
  if (!notes.length) return null;
  return h("ul", { class: "feedback-list", "aria-label": gettext("Facilitator feedback") },
    notes.map((f) => h("li", {}, h("span", { class: "feedback-label" }, gettext("Feedback:"), " "), f.text)));
}

function draftOrder(a, b) {
  if (a.kind !== b.kind) return a.kind === "argument" ? -1 : 1;
  return a.slot - b.slot;
}

function slotLabel(d) {
  return d.kind === "argument" ? interpolate(gettext("Argument %(slot)s"), { slot: d.slot }, true) : gettext("Risk");
}

function renderConflicts() {
  for (const conflict of outbox.conflicts.values()) {
    const reasons = {
      changed: gettext("This text was changed somewhere else (another tab or the facilitator) before your edit was saved. The saved text is shown in the editor; your version is kept here."),
      moved: gettext("You moved to another position before this was saved. Your text is kept here."),
      phase: gettext("This could not be saved because the phase had changed. Your text is kept here."),
      refused: conflict.message || gettext("The server refused this change. Your text is kept here."),
    };
    const mine = conflict.mine.text !== undefined ? conflict.mine.text : `${conflict.mine.rationale}\n\n${conflict.mine.revisit_condition}`;
    const canReapply = conflict.reason === "changed" && (editors.has(conflict.target) || conflict.target === "recommendation");
    const id = `conflict-${conflict.target.replace(/[^a-z0-9]/gi, "-")}`;
    app.append(h("section", { class: "card conflict", role: "alert", "aria-labelledby": `${id}-h` },
      h("h2", { id: `${id}-h` }, gettext("Your version is kept on this device")),
      h("p", {}, reasons[conflict.reason] || reasons.refused),
      h("label", { for: id }, gettext("Your version")),
      h("textarea", { id, readonly: true, rows: 4, value: mine }),
      h("p", { class: "actions" },
        canReapply ? h("button", { type: "button", class: "button primary", onclick: () => reapply(conflict) }, gettext("Use my version")) : null,
        h("button", { type: "button", class: "button secondary", onclick: () => discardConflict(conflict) }, gettext("Discard my version")))));
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

function renderRecommendationView() {
  const rec = state.snap.recommendation;
  const months = state.snap.scenario.revisit_months;
  return h("section", { class: "card recommendation-view", "aria-labelledby": "rec-h" },
    h("h2", { id: "rec-h" }, gettext("Committee recommendation")),
    h("dl", {},
      h("dt", {}, gettext("Decision")),
      h("dd", { class: "decision" }, rec.decision_id ? positionName(rec.decision_id) : gettext("Not decided yet")),
      h("dt", {}, gettext("Rationale")),
      h("dd", { class: "draft-text" }, rec.rationale || "—"),
      h("dt", {}, interpolate(gettext("We will revisit this %(months)s months after release if…"), { months }, true)),
      h("dd", { class: "draft-text" }, rec.revisit_condition || "—")));
}

// ----- the recommendation editor (chairs, facilitators, the solo learner) ---------------------

function recommendationPayload(form) {
  const decision = form.querySelector("input[name=decision]:checked");
  return {
    type: "recommendation.save",
    decision_id: decision ? Number(decision.value) : null,
    rationale: form.querySelector("#rec-rationale").value,
    revisit_condition: form.querySelector("#rec-revisit").value,
    ...modules.review.builderPayload(form),
  };
}

let recForm = null;

function renderRecommendationEditor() {
  const snap = state.snap;
  const entry = outbox.get("recommendation");
  const current = entry ? entry.next || entry.payload : snap.recommendation;
  if (!recForm) {
    recForm = h("form", { class: "card rec-editor", "aria-labelledby": "rec-edit-h", onsubmit: (e) => e.preventDefault() },
      h("h2", { id: "rec-edit-h" }, gettext("Committee recommendation")),
      h("p", { class: "help" }, snap.scenario.recommendation_guidance),
      h("fieldset", {},
        h("legend", {}, gettext("Decision")),
        snap.scenario.positions.map((p) => h("label", { class: `choice pos-${positionIndex(p.id)}` },
          h("input", { type: "radio", name: "decision", value: p.id, id: `decision-${p.id}` }), p.name))),
      h("div", { class: "field" },
        h("label", { for: "rec-rationale" }, gettext("Rationale")),
        h("textarea", { id: "rec-rationale", rows: 6, maxlength: config.maxRecommendationChars })),
      h("div", { class: "field" },
        h("label", { for: "rec-revisit" }, interpolate(gettext("Condition that would make the committee revisit this %(months)s months after release"), { months: snap.scenario.revisit_months }, true)),
        h("p", { class: "help", id: "rec-revisit-hint" }, snap.scenario.revisit_guidance),
        h("textarea", { id: "rec-revisit", rows: 3, maxlength: config.maxRecommendationChars, "aria-describedby": "rec-revisit-hint" })),
      modules.review.builderFields());
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
    modules.review.syncBuilder(recForm, current);
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
  if ((outbox.pendingCount() || posts.unsentCount()) && !socket.isOpen()) event.preventDefault();
});

// What the lazily loaded modules use of this page (they render into the same app and outbox);
// `modules` holds them, as they arrive.
const ctx = {
  state, config, socket, outbox, posts, post, app, modules, editors, announce, showError, render, queueRender,
  flush, queueChange, draftTarget, serverItem, editorValue, renderConflicts,
  renderRecommendationEditor, renderRecommendationView, positionIndex, positionName, memberName,
  slotLabel, draftOrder, draftBadges, feedbackList, memberChip, timerText, newClientId, PHASES,
  PHASE_LABELS,
};

renderStatus();
socket.start();

// For tests and debugging: a read-only view of the client's state.
window.quorum = { state, outbox, socket };

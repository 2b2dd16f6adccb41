// The facilitator's console: room controls (phase, timer, announcement, assignment, lock), the
// teams board with moderation, recent activity, co-facilitators and the class's warm-up results;
// from the review on, review-console.js's sections. Loaded by room.js for facilitators only
// (members never download it); room.js owns the socket, the state and the render loop and hands
// this module its helpers once, in init().

import { h } from "./dom.js";
import { citationList } from "./citations.js";
import { describeResearchEvent } from "./research.js";
import { gettext, interpolate } from "./i18n.js";

let state, socket, outbox, config, app, modules;
let PHASES, PHASE_LABELS, positionIndex, positionName, memberName, slotLabel, draftOrder, draftBadges;
let feedbackList, timerText, renderConflicts, renderRecommendationEditor, renderRecommendationView;

export function init(ctx) {
  ({ state, socket, outbox, config, app, PHASES, PHASE_LABELS, positionIndex, memberName, slotLabel } = ctx);
  ({ draftOrder, draftBadges, feedbackList, timerText, renderConflicts, renderRecommendationEditor } = ctx);
  ({ renderRecommendationView, positionName, modules } = ctx); // modules: those loaded so far
}

const PHASE_HINTS = {
  lobby: gettext("Students join with the code. Assign positions when everyone is in, then start drafting."),
  drafting: gettext("Teams are drafting. Each team sees only its own drafts; you see everything."),
  review: gettext("Everyone now sees all positions side by side. Let the debate run."),
  recommendation: gettext(
    "Record the committee's decision, its rationale and the condition that would reopen it. All three are required to close.",
  ),
  closed: gettext("The room is closed. Download the record."),
};

export function phaseHint(phase) {
  return PHASE_HINTS[phase];
}

export function renderFacilitator() {
  const snap = state.snap;
  const phase = snap.room.phase;
  const review = modules.reviewConsole; // loaded from the review on
  app.append(renderControls());
  renderConflicts();
  if (phase === "recommendation") app.append(renderRecommendationEditor(), review.finalizeButton());
  if (phase === "closed") app.append(renderRecommendationView());
  if (review) app.append(...review.facilitatorSections()); // none before the review
  app.append(h("div", { class: "console-grid" }, renderBoard(), renderSidePanel()), renderWarmupResults() || "");
}

// ----- recent activity: what happened since this page opened, newest first ---------------------

const activity = [];

// room.js calls this for every event it applies (not ticks), with the time it arrived.
export function recordActivity(event, at) {
  const text = describeEvent(event);
  if (!text) return;
  activity.unshift({ at, text });
  activity.length = Math.min(activity.length, 12);
}

function describeEvent(event) {
  const line = (format, name, values) => interpolate(format, { ...values, name }, true);
  const named = (format, id, values) => line(format, memberName(id), values);
  switch (event.type) {
    case "member.joined": return line(gettext("%(name)s joined"), event.member.display_name);
    // Translators: a member moved to another position.
    case "member.moved": return named(gettext("%(name)s → %(position)s"), event.member_id, { position: positionName(event.position_id) });
    case "member.presence": return named(event.online ? gettext("%(name)s is online") : gettext("%(name)s is offline"), event.member_id);
    case "member.muted": return named(event.muted ? gettext("%(name)s muted") : gettext("%(name)s unmuted"), event.member_id);
    case "member.removed": return named(gettext("%(name)s removed"), event.member_id);
    case "member.readmitted": return line(gettext("%(name)s re-admitted"), event.member.display_name);
    // Translators: "Ana saved argument 2", "Ana saved risk".
    case "draft.updated": return named(gettext("%(name)s saved %(slot)s"), event.draft.author_id, { slot: slotLabel(event.draft).toLowerCase() });
    case "draft.moderated": {
      const { hidden, needs_source: source } = event.draft;
      let format = hidden ? gettext("Draft by %(name)s: hidden") : gettext("Draft by %(name)s: visible");
      if (source) format = hidden ? gettext("Draft by %(name)s: hidden, needs a source") : gettext("Draft by %(name)s: visible, needs a source");
      return named(format, event.draft.author_id);
    }
    case "draft.feedback": return gettext("Feedback sent");
    case "phase.changed": return interpolate(gettext("Phase: %(phase)s"), { phase: PHASE_LABELS[event.phase] }, true);
    case "room.settings": return gettext("Room settings changed");
    case "facilitators.changed": return interpolate(gettext("Facilitators: %(names)s"), { names: event.facilitators.join(", ") }, true);
    case "recommendation.updated": return gettext("Recommendation saved");
    case "warmup.attempted": return named(gettext("%(name)s: warm-up %(score)s/%(total)s"), event.attempt.member_id, event.attempt);
    default: return describeResearchEvent(event, memberName);
  }
}

// ----- room controls -----------------------------------------------------------------------------

function renderControls() {
  const snap = state.snap;
  const phase = snap.room.phase;
  const next = PHASES[PHASES.indexOf(phase) + 1];
  const bar = h("section", { class: "controls card", "aria-label": gettext("Room controls") });
  if (next) {
    const rec = snap.recommendation;
    const blocked = next === "closed" && !(rec.decision_id && rec.rationale.trim() && rec.revisit_condition.trim());
    bar.append(h("button", {
      type: "button",
      id: "advance",
      class: "button primary big",
      disabled: blocked || outbox.get("recommendation") ? true : null,
      onclick: () => {
        if (next === "closed" && !window.confirm(gettext("Close the room? The record is final and nothing can be edited afterwards."))) return;
        socket.send({ type: "phase.advance", to: next });
      },
    }, next === "closed" ? gettext("Close the room") : START_LABELS[next]));
    if (blocked) bar.append(h("span", { class: "muted" }, gettext("The decision, rationale and revisit condition are all required.")));
  }
  const unassigned = snap.members.filter((m) => m.position_id === null && !m.removed).length;
  if (unassigned && phase !== "closed") {
    bar.append(h("button", { type: "button", id: "assign", class: "button", onclick: () => socket.send({ type: "positions.assign" }) },
      interpolate(gettext("Assign positions (%(count)s waiting)"), { count: unassigned }, true)));
  }
  if (phase === "review") {
    bar.append(h("button", {
      type: "button",
      id: "switch-sides",
      class: "button",
      onclick: () => {
        if (window.confirm(gettext("Switch sides? Every member moves to the next position and drafts a new round; this round's drafts stay in the record."))) {
          socket.send({ type: "round.switch" });
        }
      },
    }, gettext("Switch sides for a new round")));
  }
  if (phase === "drafting") {
    const locked = snap.room.editing_locked;
    bar.append(h("button", {
      type: "button",
      id: "lock",
      class: `button${locked ? " primary" : ""}`,
      "aria-pressed": locked ? "true" : "false",
      onclick: () => socket.send({ type: "room.lock", locked: !locked }),
    }, locked ? gettext("Unlock editing") : gettext("Lock all editing")));
  }
  bar.append(
    h("a", { class: "button secondary", href: config.presentUrl }, gettext("Show join code")),
    h("a", { class: "button secondary", href: config.exportUrl, download: "" }, gettext("Download record (.md)")),
  );
  if (phase !== "closed") bar.append(renderTimerControls(), renderAnnouncementForm());
  if (phase === "lobby") bar.append(renderAssignmentForm());
  return bar;
}

// The button that moves the room on to the next phase ("Close the room" for the last).
const START_LABELS = {
  drafting: gettext("Start drafting"),
  review: gettext("Start review"),
  recommendation: gettext("Start recommendation"),
};

function renderTimerControls() {
  const timer = state.snap.room.timer || {};
  const box = h("div", { class: "control-group", role: "group", "aria-labelledby": "timer-h" },
    h("h3", { id: "timer-h" }, gettext("Phase timer")));
  if (timer.running || (timer.remaining_seconds !== null && timer.remaining_seconds !== undefined)) {
    box.append(h("p", { class: "timer-inline" }, timerText()));
    box.append(h("div", { class: "actions" },
      timer.running
        ? h("button", { type: "button", class: "button", id: "timer-pause", onclick: () => socket.send({ type: "timer.control", action: "pause" }) }, gettext("Pause"))
        : h("button", { type: "button", class: "button", id: "timer-resume", onclick: () => socket.send({ type: "timer.control", action: "resume" }) }, gettext("Resume")),
      h("button", { type: "button", class: "button", id: "timer-extend", onclick: () => socket.send({ type: "timer.control", action: "extend", seconds: 60 }) }, gettext("+1 minute")),
      h("button", { type: "button", class: "button secondary", id: "timer-clear", onclick: () => socket.send({ type: "timer.control", action: "clear" }) }, gettext("Stop timer"))));
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
  h("label", { for: "timer-minutes" }, gettext("Minutes")), minutes,
  h("span", { class: "check-inline" }, auto, h("label", { for: "timer-auto" }, gettext("Move on at zero"))),
  h("button", { type: "submit", class: "button", id: "timer-start" }, gettext("Start timer"))));
  return box;
}

function renderAnnouncementForm() {
  const room = state.snap.room;
  const input = h("input", { type: "text", id: "announce-text", maxlength: 280, placeholder: gettext("e.g. Five minutes left: finish your risk") });
  return h("div", { class: "control-group", role: "group", "aria-labelledby": "announce-h" },
    h("h3", { id: "announce-h" }, gettext("Announcement")),
    h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        socket.send({ type: "room.announce", text: input.value });
        input.value = "";
      },
    },
    h("label", { for: "announce-text", class: "visually-hidden" }, gettext("Announcement to the whole room")), input,
    h("button", { type: "submit", class: "button", id: "announce-send" }, gettext("Show to everyone")),
    room.announcement ? h("button", { type: "button", class: "button secondary", id: "announce-clear", onclick: () => socket.send({ type: "room.announce", text: "" }) }, gettext("Remove")) : null));
}

const METHOD_LABELS = {
  balanced: gettext("Balanced, in order of joining"),
  random: gettext("Random, balanced"),
  manual: gettext("Manual: I place everyone"),
  choice: gettext("Members choose"),
};

function renderAssignmentForm() {
  const room = state.snap.room;
  const select = h("select", { id: "method" },
    Object.entries(METHOD_LABELS).map(([value, label]) => h("option", { value, selected: value === room.assignment_method }, label)));
  const cap = h("input", { type: "number", id: "choice-cap", min: 1, max: 100, value: room.choice_cap || "", inputmode: "numeric" });
  return h("div", { class: "control-group", role: "group", "aria-labelledby": "method-h" },
    h("h3", { id: "method-h" }, gettext("How positions are given")),
    h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        socket.send({ type: "room.configure", assignment_method: select.value, choice_cap: cap.value ? Number(cap.value) : null });
      },
    },
    h("label", { for: "method", class: "visually-hidden" }, gettext("Assignment method")), select,
    h("label", { for: "choice-cap" }, gettext("Cap per position")), cap,
    h("button", { type: "submit", class: "button", id: "method-save" }, gettext("Apply"))));
}

function renderBoard() {
  const snap = state.snap;
  const present = snap.members.filter((m) => !m.removed);
  const online = present.filter((m) => m.online).length;
  const board = h("section", { class: "board", "aria-labelledby": "board-h" },
    h("h2", { id: "board-h" }, interpolate(gettext("Teams (%(count)s members, %(online)s online)"), { count: present.length, online }, true)),
    h("p", { class: "help" }, gettext("Drag a member to another team, or use their “Move to” list.")));
  const grid = h("div", { class: "columns" });
  const groups = [...snap.scenario.positions.map((p) => ({ id: p.id, name: p.name })), { id: null, name: gettext("Waiting for a position") }];
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
        interpolate(gettext("%(written)s of %(expected)s slots written"), { written, expected }, true),
        h("progress", { max: expected, value: written })));
    }
    column.append(h("ul", { class: "member-rows" }, members.map((m) => memberRow(m, drafts))));
    if (drafts.length) {
      column.append(h("details", { class: "team-drafts", open: snap.room.phase !== "lobby" },
        h("summary", {}, interpolate(gettext("Drafts (%(count)s)"), { count: drafts.length }, true)),
        h("ul", { class: "draft-list" }, drafts.sort(draftOrder).map((d) => moderatedDraft(d)))));
    }
    grid.append(column);
  }
  board.append(grid);
  const removed = snap.members.filter((m) => m.removed);
  if (removed.length) {
    board.append(h("section", { class: "removed", "aria-labelledby": "removed-h" },
      h("h3", { id: "removed-h" }, gettext("Removed")),
      h("ul", { class: "member-rows" }, removed.map((m) => h("li", { class: "member-row" },
        h("span", { class: "member-name" }, m.display_name),
        h("button", { type: "button", class: "button secondary small", onclick: () => socket.send({ type: "member.readmit", member_id: m.id }) }, gettext("Re-admit")))))));
  }
  if (!snap.members.length) board.append(h("p", { class: "muted" }, gettext("Nobody has joined yet. Show the join code to the class.")));
  return board;
}

function moderatedDraft(d) {
  const feedbackId = `feedback-${d.id}`;
  const input = h("input", { type: "text", id: feedbackId, maxlength: 500, placeholder: gettext("e.g. Too general: tie it to this model") });
  return h("li", { class: d.hidden ? "is-hidden" : "" },
    h("span", { class: "slot-label" }, `${slotLabel(d)} · ${memberName(d.author_id)} `, draftBadges(d)),
    h("span", { class: "draft-text" }, d.text),
    citationList(state.snap.cards, d.citations, config.briefingUrl),
    feedbackList(d),
    h("div", { class: "draft-actions" },
      h("button", { type: "button", class: "button small secondary", onclick: () => socket.send({ type: "draft.moderate", draft_id: d.id, hidden: !d.hidden }) }, d.hidden ? gettext("Show") : gettext("Hide")),
      h("button", { type: "button", class: "button small secondary", "aria-pressed": d.needs_source ? "true" : "false", onclick: () => socket.send({ type: "draft.moderate", draft_id: d.id, needs_source: !d.needs_source }) }, d.needs_source ? gettext("Source given") : gettext("Needs a source")),
      h("form", {
        class: "feedback-form",
        onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) socket.send({ type: "draft.feedback", draft_id: d.id, text: input.value.trim() });
          input.value = "";
        },
      },
      h("label", { for: feedbackId, class: "visually-hidden" }, interpolate(gettext("Feedback to %(name)s"), { name: memberName(d.author_id) }, true)), input,
      h("button", { type: "submit", class: "button small" }, gettext("Send")))));
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
      h("span", { class: "visually-hidden" }, " ", member.online ? gettext("(online)") : gettext("(offline)")),
      typing ? h("span", { class: "typing" }, " ", gettext("typing…")) : null,
      // Translators: a muted member's badge.
      member.muted ? h("span", { class: "badge warn" }, gettext("muted")) : null),
    // Translators: draft slots written.
    h("span", { class: "muted contributions", title: gettext("Slots written") }, interpolate(gettext("%(count)s written"), { count }, true)),
    h("label", { class: "visually-hidden", for: selectId }, interpolate(gettext("Move %(name)s to"), { name: member.display_name }, true)),
    select,
    closed ? null : h("span", { class: "row-buttons" },
      h("button", { type: "button", class: "button small secondary", id: `mute-${member.id}`, onclick: () => socket.send({ type: "member.mute", member_id: member.id, muted: !member.muted }) }, member.muted ? gettext("Unmute") : gettext("Mute")),
      h("button", {
        type: "button",
        class: "button small secondary",
        id: `remove-${member.id}`,
        onclick: () => {
          const question = gettext("Remove %(name)s from the room? Their socket closes and they cannot come back unless you re-admit them.");
          if (window.confirm(interpolate(question, { name: member.display_name }, true))) {
            socket.send({ type: "member.remove", member_id: member.id });
          }
        },
      }, gettext("Remove"))));
  row.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("text/plain", String(member.id));
    event.dataTransfer.effectAllowed = "move";
  });
  return row;
}

function renderSidePanel() {
  const snap = state.snap;
  const panel = h("aside", { class: "side-panel", "aria-label": gettext("Activity and facilitators") });
  panel.append(h("section", { class: "card", "aria-labelledby": "activity-h" },
    h("h2", { id: "activity-h" }, gettext("Recent activity")),
    activity.length
      ? h("ol", { class: "activity" }, activity.map((a) => h("li", {},
        h("time", { datetime: a.at.toISOString() }, a.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })), " ", a.text)))
      : h("p", { class: "muted" }, gettext("Nothing yet since this page opened."))));
  const username = h("input", { type: "text", id: "cofac-username", autocomplete: "off" });
  panel.append(h("section", { class: "card", "aria-labelledby": "fac-h" },
    h("h2", { id: "fac-h" }, gettext("Facilitators")),
    h("ul", { class: "plain" }, (snap.facilitators || []).map((name) => h("li", {}, name))),
    snap.room.phase === "closed" ? null : h("form", {
      class: "inline-controls",
      onsubmit: (event) => {
        event.preventDefault();
        if (username.value.trim()) socket.send({ type: "facilitator.add", username: username.value.trim() });
        username.value = "";
      },
    },
    h("label", { for: "cofac-username" }, gettext("Add a co-facilitator (username)")), username,
    h("button", { type: "submit", class: "button small" }, gettext("Add")))));
  return panel;
}

// ----- facilitators: the class's results -------------------------------------------------------

function renderWarmupResults() {
  const snap = state.snap;
  const warmup = snap.warmup;
  if (!warmup) return null;
  const attempts = snap.warmup_attempts || [];
  const byMember = new Map();
  for (const a of attempts) {
    const row = byMember.get(a.member_id) || { tries: 0, best: 0, latest: null };
    row.tries += 1;
    row.best = Math.max(row.best, a.score);
    row.latest = a;
    byMember.set(a.member_id, row);
  }
  const latest = [...byMember.values()].map((r) => r.latest);
  const members = snap.members.filter((m) => !m.removed).length;
  const section = h("section", { class: "card warmup-results", "aria-labelledby": "warmup-results-h" },
    h("h2", { id: "warmup-results-h" }, interpolate(gettext("Warm-up check (%(tried)s of %(count)s members tried)"), { tried: byMember.size, count: members }, true)));
  if (!latest.length) {
    section.append(h("p", { class: "muted" }, gettext("Nobody has tried the warm-up check yet.")));
    return section;
  }
  section.append(h("h3", {}, gettext("Per argument (latest tries)")),
    h("ul", { class: "plain warmup-items" }, warmup.items.map((item, index) => {
      const right = latest.filter((a) => a.results[item.key]).length;
      return h("li", {},
        h("label", { class: "progress-label" }, interpolate(gettext("%(number)s. %(argument)s — %(right)s of %(tries)s right"), { number: index + 1, argument: item.text, right, tries: latest.length }, true),
          h("progress", { max: latest.length, value: right })));
    })));
  const names = new Map(snap.members.map((m) => [m.id, m.display_name]));
  section.append(h("h3", {}, gettext("Per member")),
    h("table", { class: "warmup-table" },
      h("thead", {}, h("tr", {}, [gettext("Member"), gettext("Latest"), gettext("Best"), gettext("Tries")].map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, [...byMember.entries()].map(([memberId, row]) => h("tr", { dataset: { member: memberId } },
        h("th", { scope: "row" }, names.get(memberId) || "—"),
        h("td", {}, `${row.latest.score}/${row.latest.total}`),
        h("td", {}, `${row.best}/${row.latest.total}`),
        h("td", {}, String(row.tries)))))));
  return section;
}

// A group room's member view: their position, the warm-up, choosing a position, the lobby, their
// editors (editors.js) and their team's drafts in drafting, the cases (cases.js) and
// review-member.js's parts afterwards. Loaded by room.js for members of group rooms only; room.js
// owns the socket, the state and the render loop and hands this module its helpers once, in
// init().

import { h } from "./dom.js";
import { citationList } from "./citations.js";
import { gettext, interpolate } from "./i18n.js";

let ctx, state, socket, config, app, modules;
let positionIndex, slotLabel, draftOrder, draftBadges, feedbackList, draftTarget;
let memberChip, renderConflicts, renderRecommendationEditor, renderRecommendationView;

export function init(context) {
  ctx = context;
  ({ state, socket, config, app, positionIndex, slotLabel, draftOrder, draftBadges, feedbackList } = ctx);
  ({ draftTarget, memberChip, renderConflicts, renderRecommendationEditor } = ctx);
  ({ renderRecommendationView, modules } = ctx); // modules: those loaded so far
}

const PHASE_HINTS = {
  lobby: gettext("Waiting for the facilitator to start. You will be given a position to argue."),
  drafting: gettext(
    "Write three specific arguments for your position, tied to this model being far ahead of anything released so far, and one risk of your own position you cannot easily refute.",
  ),
  review: gettext("Read every position's case side by side. Which arguments are strongest?"),
  recommendation: gettext("The chair is writing the committee's recommendation. Watch it take shape."),
  closed: gettext("The committee has decided. The full record is below."),
};

export function phaseHint(phase) {
  return PHASE_HINTS[phase];
}

export function renderMember() {
  const snap = state.snap;
  const phase = snap.room.phase;
  const me = snap.me;
  app.append(renderMyPosition());
  if (me.muted) {
    app.append(h("p", { class: "notice", role: "status" }, gettext("The facilitator has muted you: you can read everything, but not write for now.")));
  }
  renderConflicts();
  if ((phase === "lobby" || phase === "drafting") && modules.warmup) app.append(modules.warmup.renderWarmup(ctx) || "");
  const choosing = snap.room.assignment_method === "choice" && me.position_id === null;
  if (choosing && (phase === "lobby" || phase === "drafting")) app.append(renderChoice());
  if (phase === "lobby") {
    app.append(renderLobby());
  } else if (phase === "drafting") {
    if (me.position_id !== null) {
      app.append(h("div", { class: "drafting-grid" }, renderMyEditors(), renderTeamDrafts()));
    }
  } else {
    if (phase === "recommendation" && modules.reviewMember.isChair()) app.append(renderRecommendationEditor());
    else if (phase !== "review") app.append(renderRecommendationView());
    const sections = modules.reviewMember.memberSections;
    app.append(...sections("before"), modules.cases.renderColumns(), ...sections("after"));
  }
}

function renderMyPosition() {
  const me = state.snap.me;
  if (me.position_id === null) {
    return h("section", { class: "my-position unassigned card", "aria-label": gettext("Your position") },
      h("p", { class: "eyebrow" }, interpolate(gettext("You are %(name)s"), { name: me.display_name }, true)),
      h("p", { class: "my-position-name" }, gettext("No position yet")),
      h("p", {}, gettext("The facilitator will assign you one of the positions.")));
  }
  const pos = state.snap.scenario.positions.find((p) => p.id === me.position_id);
  return h("section", { class: `my-position card pos-${positionIndex(me.position_id)}`, "aria-label": gettext("Your position") },
    h("p", { class: "eyebrow" }, interpolate(gettext("You are %(name)s · your position"), { name: me.display_name }, true)),
    h("p", { class: "my-position-name" }, pos.name),
    h("p", { class: "my-position-summary" }, pos.summary));
}

function renderChoice() {
  const snap = state.snap;
  const cap = snap.room.choice_cap;
  const section = h("section", { class: "card choice", "aria-labelledby": "choice-h" },
    h("h2", { id: "choice-h" }, gettext("Choose the position you will argue")),
    cap ? h("p", { class: "help" }, interpolate(gettext("At most %(cap)s per position."), { cap }, true)) : null);
  const list = h("div", { class: "choice-grid" });
  for (const pos of snap.scenario.positions) {
    const count = snap.members.filter((m) => m.position_id === pos.id && !m.removed).length;
    const full = cap && count >= cap;
    list.append(h("button", {
      type: "button",
      class: `button choice-button pos-${positionIndex(pos.id)}`,
      disabled: full || snap.me.muted ? true : null,
      onclick: () => socket.send({ type: "position.choose", position_id: pos.id }),
    }, h("strong", {}, pos.name), h("span", { class: "muted" }, choiceCount(count, cap, full))));
  }
  section.append(list);
  return section;
}

// Under each position's button: "full", "2 of 3 chosen" (with a cap) or "2 chosen".
function choiceCount(count, cap, full) {
  // Translators: a position members may choose is full (its cap is reached).
  if (full) return gettext("full");
  if (cap) return interpolate(gettext("%(count)s of %(cap)s chosen"), { count, cap }, true);
  return interpolate(gettext("%(count)s chosen"), { count }, true);
}

function renderLobby() {
  const members = state.snap.members;
  return h("section", { class: "card", "aria-labelledby": "lobby-h" },
    h("h2", { id: "lobby-h" }, interpolate(gettext("In the room (%(count)s)"), { count: members.length }, true)),
    h("ul", { class: "chip-list" }, members.map((m) => memberChip(m))));
}

function renderMyEditors() {
  const snap = state.snap;
  const positionId = snap.me.position_id;
  const section = h("section", { class: "card my-case", "aria-labelledby": "my-case-h" },
    h("h2", { id: "my-case-h" }, gettext("Your case")));
  for (let slot = 1; slot <= snap.scenario.argument_slots; slot += 1) {
    section.append(modules.editors.makeEditor(draftTarget(positionId, "argument", slot), {
      id: `arg-${slot}`,
      label: interpolate(gettext("Argument %(slot)s"), { slot }, true),
      hint: gettext("Specific, not general: why does it matter for this model, far ahead of the state of the art?"),
      kind: "argument",
      slot,
      positionId,
      max: config.maxDraftChars,
    }));
  }
  for (let slot = 1; slot <= snap.scenario.risk_slots; slot += 1) {
    section.append(modules.editors.makeEditor(draftTarget(positionId, "risk", slot), {
      id: `risk-${slot}`,
      label: gettext("A risk of our own position we cannot easily refute"),
      hint: gettext("Be honest: what is the strongest cost of the option you are defending?"),
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
    h("h2", { id: "team-h" }, gettext("Your team")));
  if (!mates.length) {
    section.append(h("p", { class: "muted" }, gettext("No teammates yet: you argue this position on your own.")));
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
        : h("p", { class: "muted" }, gettext("Nothing written yet."))));
  }
  return section;
}

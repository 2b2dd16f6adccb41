// A group room's member view: their position, the warm-up, choosing a position, the lobby, their
// editors (editors.js) and their team's drafts in drafting, the cases (cases.js) and
// review-member.js's parts afterwards. Loaded by room.js for members of group rooms only; room.js
// owns the socket, the state and the render loop and hands this module its helpers once, in
// init().

import { h } from "./dom.js";
import { citationList } from "./citations.js";

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
  lobby: "Waiting for the facilitator to start. You will be given a position to argue.",
  drafting:
    "Write three specific arguments for your position, tied to this model being far ahead of anything released so far, and one risk of your own position you cannot easily refute.",
  review: "Read every position's case side by side. Which arguments are strongest?",
  recommendation: "The chair is writing the committee's recommendation. Watch it take shape.",
  closed: "The committee has decided. The full record is below.",
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
    app.append(h("p", { class: "notice", role: "status" }, "The facilitator has muted you: you can read everything, but not write for now."));
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

function renderMyEditors() {
  const snap = state.snap;
  const positionId = snap.me.position_id;
  const section = h("section", { class: "card my-case", "aria-labelledby": "my-case-h" },
    h("h2", { id: "my-case-h" }, "Your case"));
  for (let slot = 1; slot <= snap.scenario.argument_slots; slot += 1) {
    section.append(modules.editors.makeEditor(draftTarget(positionId, "argument", slot), {
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
    section.append(modules.editors.makeEditor(draftTarget(positionId, "risk", slot), {
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

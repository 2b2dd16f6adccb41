// The solo learner's guided stepper: warm-up, each position's arguments in turn (the other
// positions' drafts hidden unless the learner asks to see them), each position's risk, the
// recommendation (the learner is the chair), then research. A balance check shows the thinner
// side. Drafts go through room.js's outbox (editors.js) exactly as in group rooms.
// room.js loads this module (and room.html links solo.css) in solo rooms only.

import { h, words } from "./dom.js";
import { gettext, ngettext, interpolate } from "./i18n.js";

const DRAFTING_STEPS = new Set(["warmup", "args", "risk"]);
let showOthers = false;
let copyBound = false;

function stepKey(roomId) {
  return `quorum:solo-step:${roomId}`;
}

export function soloSteps(snap) {
  const steps = [];
  const named = (format, p) => interpolate(format, { position: p.short_name }, true);
  if (snap.warmup) steps.push({ id: "warmup", kind: "warmup", label: gettext("Warm-up check") });
  for (const p of snap.scenario.positions) steps.push({ id: `args:${p.id}`, kind: "args", position: p, label: named(gettext("Arguments: %(position)s"), p) });
  for (const p of snap.scenario.positions) steps.push({ id: `risk:${p.id}`, kind: "risk", position: p, label: named(gettext("Risk: %(position)s"), p) });
  steps.push({ id: "recommendation", kind: "recommendation", label: gettext("Recommendation") });
  steps.push({ id: "research", kind: "research", label: gettext("Research") });
  return steps;
}

function currentStep(ctx, steps) {
  const snap = ctx.state.snap;
  let saved = null;
  try {
    saved = localStorage.getItem(stepKey(snap.room.id));
  } catch (err) {
    saved = null;
  }
  let step = steps.find((s) => s.id === saved);
  const inRecommendation = snap.room.phase === "recommendation";
  // Another device may have moved the phase: follow it.
  if (step && DRAFTING_STEPS.has(step.kind) === inRecommendation) step = null;
  if (!step) {
    if (inRecommendation) step = steps.find((s) => s.kind === "recommendation");
    else if (snap.warmup && !(snap.warmup_attempts || []).length) step = steps[0];
    else step = steps.find((s) => s.kind === "args" && filled(ctx, s.position.id, "argument") < snap.scenario.argument_slots)
      || steps.find((s) => s.kind === "risk" && filled(ctx, s.position.id, "risk") < snap.scenario.risk_slots)
      || steps.find((s) => s.kind === "args");
  }
  return step;
}

function remember(snap, step) {
  try {
    localStorage.setItem(stepKey(snap.room.id), step.id);
  } catch (err) {
    // storage disabled: the step is worked out again from the room's state
  }
}

function textOf(ctx, positionId, kind, slot) {
  const target = ctx.draftTarget(positionId, kind, slot);
  const item = ctx.serverItem(target);
  return ctx.editorValue(target, item ? item.text : "");
}

function filled(ctx, positionId, kind) {
  const slots = kind === "argument" ? ctx.state.snap.scenario.argument_slots : ctx.state.snap.scenario.risk_slots;
  let count = 0;
  for (let slot = 1; slot <= slots; slot += 1) if (textOf(ctx, positionId, kind, slot).trim()) count += 1;
  return count;
}

export function balance(ctx) {
  const snap = ctx.state.snap;
  const rows = snap.scenario.positions.map((p) => {
    let wordCount = 0;
    let empty = 0;
    for (const [kind, slots] of [["argument", snap.scenario.argument_slots], ["risk", snap.scenario.risk_slots]]) {
      for (let slot = 1; slot <= slots; slot += 1) {
        const text = textOf(ctx, p.id, kind, slot);
        wordCount += words(text);
        if (!text.trim()) empty += 1;
      }
    }
    return { position: p, words: wordCount, empty };
  });
  const thinnest = [...rows].sort((a, b) => b.empty - a.empty || a.words - b.words)[0];
  const fullest = [...rows].sort((a, b) => a.empty - b.empty || b.words - a.words)[0];
  const even = thinnest.empty === fullest.empty && Math.abs(thinnest.words - fullest.words) <= 10;
  return { rows, thinnest: even ? null : thinnest, fullest };
}

function renderBalance(ctx) {
  const { rows, thinnest } = balance(ctx);
  const max = Math.max(1, ...rows.map((r) => r.words));
  const section = h("aside", { class: "card solo-balance", "aria-labelledby": "balance-h" },
    h("h2", { id: "balance-h" }, gettext("Balance check")),
    h("p", { class: "help", id: "balance-summary" }, thinnest ? thinnerSide(thinnest) : gettext("The sides are about even.")));
  section.append(h("ul", { class: "plain balance-rows" }, rows.map((r) => h("li", {
    class: `balance-row pos-${ctx.positionIndex(r.position.id)}${thinnest && r.position.id === thinnest.position.id ? " thinner" : ""}`,
    dataset: { position: r.position.id },
  },
  h("span", { class: "balance-name" }, r.position.short_name,
    thinnest && r.position.id === thinnest.position.id ? h("span", { class: "badge warn" }, gettext("thinner")) : null),
  // Translators: a side's figures in the balance check, e.g. "120 words · 1 empty" (empty slots).
  h("span", { class: "balance-figures" }, interpolate(gettext("%(words)s words · %(empty)s empty"), { words: r.words, empty: r.empty }, true)),
  h("progress", { max, value: r.words, "aria-label": interpolate(gettext("%(position)s: %(words)s words"), { position: r.position.short_name, words: r.words }, true) })))));
  return section;
}

// "API-only is the thinner side: 1 empty slot, 40 words."
function thinnerSide({ position, empty, words: count }) {
  const format = ngettext(
    "%(position)s is the thinner side: %(empty)s empty slot, %(words)s words.",
    "%(position)s is the thinner side: %(empty)s empty slots, %(words)s words.",
    empty,
  );
  return interpolate(format, { position: position.short_name, empty, words: count }, true);
}

function renderNav(ctx, steps, step) {
  const snap = ctx.state.snap;
  const index = steps.indexOf(step);
  return h("nav", { class: "solo-steps", "aria-label": gettext("Steps") },
    h("ol", {}, steps.map((s, i) => h("li", { class: s === step ? "current" : "" },
      h("button", {
        type: "button",
        class: "step-button",
        id: `step-${s.id.replace(":", "-")}`,
        "aria-current": s === step ? "step" : null,
        disabled: snap.room.phase === "closed" ? true : null,
        onclick: () => go(ctx, s),
      }, h("span", { class: "step-number" }, `${i + 1}`), " ", s.label)))),
    h("p", { class: "solo-step-count" }, interpolate(gettext("Step %(number)s of %(count)s"), { number: index + 1, count: steps.length }, true)));
}

function go(ctx, step) {
  const snap = ctx.state.snap;
  const wantPhase = DRAFTING_STEPS.has(step.kind) ? "drafting" : "recommendation";
  if (snap.room.phase !== wantPhase) {
    if (!ctx.socket.isOpen()) {
      ctx.showError(gettext("You are offline: your text is kept on this device. Move on once the connection is back."));
      return;
    }
    ctx.flush(); // drafts go out before the step change (one socket: the server keeps the order)
    ctx.socket.send({ type: "solo.step", to: wantPhase });
  }
  remember(snap, step);
  ctx.announce(interpolate(gettext("Step: %(step)s"), { step: step.label }, true));
  ctx.render();
  const heading = document.getElementById("solo-step-h");
  if (heading) heading.focus({ preventScroll: false });
}

function renderOthers(ctx, position, kind) {
  const snap = ctx.state.snap;
  const others = snap.scenario.positions.filter((p) => p.id !== position.id);
  const toggle = h("button", {
    type: "button",
    class: "button small secondary",
    id: "solo-show-others",
    "aria-expanded": showOthers ? "true" : "false",
    "aria-controls": "solo-others",
    onclick: () => {
      showOthers = !showOthers;
      ctx.render();
    },
  }, showOthers ? gettext("Hide the other positions") : gettext("Look at the other positions"));
  const section = h("section", { class: "card solo-others", "aria-label": gettext("Other positions") },
    h("p", { class: "help" }, gettext("Write this side on its own terms first; look at the others only if you need to.")),
    toggle);
  if (showOthers) {
    const list = h("div", { id: "solo-others" });
    for (const p of others) {
      const slots = kind === "argument" ? snap.scenario.argument_slots : snap.scenario.risk_slots;
      const texts = [];
      for (let slot = 1; slot <= slots; slot += 1) {
        const text = textOf(ctx, p.id, kind, slot);
        if (text.trim()) texts.push(text);
      }
      list.append(h("article", { class: `mate pos-${ctx.positionIndex(p.id)}` },
        h("h3", {}, p.name),
        texts.length ? h("ul", { class: "draft-list" }, texts.map((t) => h("li", {}, h("span", { class: "draft-text" }, t))))
          : h("p", { class: "muted" }, gettext("Nothing written yet."))));
    }
    section.append(list);
  }
  return section;
}

function renderWriting(ctx, step) {
  const snap = ctx.state.snap;
  const p = step.position;
  const kind = step.kind === "args" ? "argument" : "risk";
  const slots = kind === "argument" ? snap.scenario.argument_slots : snap.scenario.risk_slots;
  const section = h("section", { class: `card my-case pos-${ctx.positionIndex(p.id)}`, "aria-labelledby": "solo-step-h" },
    h("h2", { id: "solo-step-h", tabindex: "-1" }, interpolate(kind === "argument" ? gettext("Arguments for: %(position)s") : gettext("A risk of: %(position)s"), { position: p.name }, true)),
    h("p", { class: "my-position-summary" }, p.summary));
  if (snap.room.phase !== "drafting") {
    section.append(h("p", { class: "notice", role: "status" }, gettext("Opening the drafts again…")));
  }
  for (let slot = 1; slot <= slots; slot += 1) {
    section.append(ctx.modules.editors.makeEditor(ctx.draftTarget(p.id, kind, slot), {
      id: `solo-${kind}-${p.id}-${slot}`,
      label: kind === "argument" ? interpolate(gettext("Argument %(slot)s"), { slot }, true) : gettext("A risk or cost of this position that is hard to refute"),
      hint: kind === "argument"
        ? gettext("Specific, not general: why does it matter for this model, far ahead of the state of the art?")
        : gettext("Argue against yourself honestly: what is the strongest cost of this option?"),
      kind,
      slot,
      positionId: p.id,
      max: ctx.config.maxDraftChars,
    }));
  }
  return [section, renderOthers(ctx, p, kind)];
}

// The research board (research.js) renders into #research-root, which room.html puts after the
// app. A solo room shows it only in the research step and in the finished view: the same node
// (research.js keeps a reference to it) is moved into the step's slot, and back out of sight
// on the other steps.
let researchBoard = null;
let researchHome = null;

function placeResearch(slot) {
  if (!researchBoard) {
    researchBoard = document.getElementById("research-root");
    if (!researchBoard) return;
    researchHome = document.createComment(" research board ");
    researchBoard.before(researchHome);
  }
  researchBoard.hidden = !slot;
  if (slot) slot.replaceChildren(researchBoard);
  else researchHome.after(researchBoard);
}

function researchSlot() {
  const slot = h("div", { id: "research-board", class: "research-board-slot" });
  placeResearch(slot);
  return slot;
}

function renderResearch(ctx) {
  return h("section", { class: "card solo-research", "aria-labelledby": "solo-step-h" },
    h("h2", { id: "solo-step-h", tabindex: "-1" }, gettext("Research: what have real labs done?")),
    h("p", {}, gettext("Look up the release policies frontier labs adopted over the last two years. Is the trend toward more open or more closed releases, and what does that say about how the field is settling this tension?")),
    researchSlot(),
    h("p", { class: "actions" },
      h("button", {
        type: "button",
        class: "button primary",
        id: "solo-finish",
        onclick: () => {
          if (!ctx.socket.isOpen()) {
            ctx.showError(gettext("You are offline: finish once the connection is back."));
            return;
          }
          ctx.flush();
          ctx.socket.send({ type: "solo.step", to: "closed" });
        },
      }, gettext("Finish and see my record"))));
}

function renderFinished(ctx) {
  return [
    h("section", { class: "card solo-done", "aria-labelledby": "solo-done-h" },
      h("h2", { id: "solo-done-h" }, gettext("Finished: your committee has decided")),
      h("p", { class: "actions" },
        h("a", { class: "button primary", href: ctx.config.recordUrl }, gettext("Open the printable record")),
        h("a", { class: "button secondary", href: ctx.config.exportUrl, download: "" }, gettext("Download the record (.md)")),
        h("a", { class: "button secondary", href: ctx.config.exportJsonUrl, download: "" }, gettext("Download the record (.json)")))),
    ctx.renderRecommendationView(),
    ctx.modules.cases.renderColumns(),
    researchSlot(),
  ];
}

export function renderSolo(ctx) {
  const snap = ctx.state.snap;
  const app = ctx.app;
  bindCopy();
  ctx.renderConflicts();
  if (snap.room.phase === "closed") {
    app.append(...renderFinished(ctx));
    return;
  }
  const steps = soloSteps(snap);
  const step = currentStep(ctx, steps);
  remember(snap, step); // stay on this step while events arrive
  const index = steps.indexOf(step);
  const nav = renderNav(ctx, steps, step);
  app.append(nav);
  keepCurrentStepInView(nav);
  const main = h("div", { class: "solo-main" });
  if (step.kind !== "research") placeResearch(null);
  if (step.kind === "warmup") {
    // warmup.js: room.js loads it for a solo room in drafting with a warm-up (the only time this step shows).
    main.append(h("h2", { id: "solo-step-h", tabindex: "-1", class: "visually-hidden" }, gettext("Warm-up check")), ctx.modules.warmup.renderWarmup(ctx));
  } else if (step.kind === "args" || step.kind === "risk") {
    main.append(...renderWriting(ctx, step));
  } else if (step.kind === "recommendation") {
    main.append(h("h2", { id: "solo-step-h", tabindex: "-1", class: "visually-hidden" }, gettext("Recommendation")));
    if (snap.room.phase === "recommendation") main.append(ctx.renderRecommendationEditor());
    else main.append(h("p", { class: "notice", role: "status" }, gettext("Opening the recommendation…")));
    main.append(h("details", { class: "card" }, h("summary", {}, gettext("Read all your cases side by side")), ctx.modules.cases.renderColumns()));
  } else {
    main.append(renderResearch(ctx));
  }
  const prev = steps[index - 1];
  const next = steps[index + 1];
  main.append(h("p", { class: "actions solo-prev-next" },
    prev ? h("button", { type: "button", class: "button secondary", id: "solo-prev", onclick: () => go(ctx, prev) }, `← ${prev.label}`) : null,
    next ? h("button", { type: "button", class: "button primary", id: "solo-next", onclick: () => go(ctx, next) }, `${next.label} →`) : null));
  app.append(h("div", { class: "solo-grid" }, main, renderBalance(ctx)));
}

function keepCurrentStepInView(nav) {
  // Phones scroll the steps sideways; every render rebuilds them, so put the current one in view
  // (the list scrolls, never the page).
  const list = nav.querySelector("ol");
  const current = nav.querySelector(".current");
  if (!list || !current || list.scrollWidth <= list.clientWidth) return;
  const offset = current.getBoundingClientRect().left - list.getBoundingClientRect().left;
  list.scrollLeft += offset - 16;
}

function bindCopy() {
  if (copyBound) return;
  copyBound = true;
  const button = document.getElementById("solo-link-copy");
  if (!button) return;
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = gettext("Copied");
    } catch (err) {
      input.select();
    }
  });
}

export function soloHint(phase) {
  return {
    drafting: gettext("Work through the steps: every position's arguments, then each one's risk."),
    recommendation: gettext("Decide as the committee's chair, then look at what real labs did."),
    closed: gettext("You have finished. Your record is below."),
  }[phase] || "";
}

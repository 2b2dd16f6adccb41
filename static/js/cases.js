// Every position's case side by side, as members and solo learners read it: from the review on
// in tabs on a phone and with each draft's review badges, rebuttals and questions (and a
// member's buttons, from review-member.js). room.js loads it for members of group rooms from the
// review on and for solo learners (who may look at their cases while drafting); facilitators
// never download it (their console has its own board).

import { h } from "./dom.js";
import { citationList } from "./citations.js";
import { gettext, ngettext, interpolate } from "./i18n.js";

let activeTab = 0; // the position shown on a phone

let state, config, modules, queueRender, positionIndex, memberName, draftOrder, draftBadges;

export function init(ctx) {
  ({ state, config, modules, queueRender, positionIndex, memberName, draftOrder, draftBadges } = ctx);
}

export function renderColumns() {
  const snap = state.snap;
  const wrapper = h("section", { class: "columns-wrap", "aria-labelledby": "cases-h" },
    h("h2", { id: "cases-h" }, gettext("The positions' cases")));
  // Tabs on a phone from the review on (with review.css); a solo learner peeking at the cases
  // before leaving drafting sees them in a column, inside a closed <details>.
  const current = casesForRound(snap.room.round);
  wrapper.append(modules.review ? withTabs(current) : current);
  for (let round = snap.room.round - 1; round >= 1; round -= 1) {
    wrapper.append(h("details", { class: "earlier-round" },
      h("summary", {}, interpolate(gettext("Round %(round)s (before switching sides)"), { round }, true)), casesForRound(round)));
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
      h("p", { class: "muted" }, team.length ? interpolate(gettext("Team: %(names)s"), { names: team.join(", ") }, true) : gettext("No team")),
      h("h4", {}, gettext("Arguments")),
      args.length ? h("ol", { class: "case-list" }, args.map(caseEntry)) : h("p", { class: "muted" }, gettext("No arguments written.")),
      h("h4", {}, gettext("Risk they accept")),
      risks.length ? h("ul", { class: "case-list risks" }, risks.map(caseEntry)) : h("p", { class: "muted" }, gettext("No risk named."))));
  }
  return columns;
}

function caseEntry(d) {
  return h("li", {},
    h("p", { class: "draft-text" }, d.text),
    citationList(state.snap.cards, d.citations, config.briefingUrl),
    h("p", { class: "author" }, `— ${memberName(d.author_id)} `, draftBadges(d)),
    draftTools(d));
}

// The positions as tabs (review.css shows one at a time on a phone, every one side by side on a
// wide screen).
function withTabs(columns) {
  const panels = [...columns.children];
  if (panels.length < 2) return columns;
  activeTab = Math.min(activeTab, panels.length - 1);
  const tabs = h("div", { class: "review-tabs", role: "tablist", "aria-label": gettext("Positions") });
  panels.forEach((panel, index) => {
    const id = `case-panel-${index}`;
    panel.id = id;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", `case-tab-${index}`);
    panel.classList.toggle("active", index === activeTab);
    const position = state.snap.scenario.positions[index];
    const title = panel.querySelector(".column-title");
    tabs.append(h("button", {
      type: "button",
      role: "tab",
      id: `case-tab-${index}`,
      class: `tab pos-${index}`,
      "aria-controls": id,
      "aria-selected": index === activeTab ? "true" : "false",
      tabindex: index === activeTab ? "0" : "-1",
      onclick: () => { activeTab = index; queueRender(); },
      onkeydown: (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        activeTab = (index + step + panels.length) % panels.length;
        queueRender();
        requestAnimationFrame(() => document.getElementById(`case-tab-${activeTab}`)?.focus());
      },
    }, position ? position.short_name : title ? title.textContent : interpolate(gettext("Position %(number)s"), { number: index + 1 }, true)));
  });
  return h("div", { class: "tabbed-cases" }, tabs, columns);
}

// ----- each draft's review badges, rebuttals and questions ------------------------------------

function draftTools(draft) {
  const s = state.snap;
  const phase = s.room.phase;
  if (phase === "lobby" || phase === "drafting") return null;
  const review = s.review;
  const parts = [];
  const current = (draft.round || 1) === s.room.round;
  const theCase = current ? modules.review.caseOf(draft.position_id) : null;
  if (theCase && theCase.decided_by !== "all") {
    const inCase = theCase.selected.includes(draft.id);
    const votes = theCase.votes[String(draft.id)] || 0;
    parts.push(h("span", { class: `badge ${inCase ? "in-case" : "not-selected"}` }, inCase ? gettext("In the case") : gettext("Not selected")));
    if (theCase.decided_by === "team" && votes) {
      parts.push(h("span", { class: "muted small" }, ` ${interpolate(ngettext("%(count)s team vote", "%(count)s team votes", votes), { count: votes }, true)}`));
    }
  }
  const marks = review.marks.filter((m) => m.draft_id === draft.id).length;
  // Translators: a badge on an argument; the number of members who marked it their strongest.
  if (marks) parts.push(h("span", { class: "badge strong" }, interpolate(gettext("★ strongest for %(count)s"), { count: marks }, true)));
  // A member's buttons and their open rebuttal or question form (review-member.js).
  const member = modules.reviewMember;
  const comments = review.comments.filter((c) => c.draft_id === draft.id);
  const unsent = member ? member.postsOn(draft.id) : []; // this member's, not stored yet
  return h("div", { class: "review-tools" },
    parts.length ? h("p", { class: "review-badges" }, parts) : null,
    member ? member.draftActions(draft, theCase, current) : null,
    comments.length || unsent.length
      ? h("ul", { class: "comment-list", "aria-label": gettext("Rebuttals and questions") }, comments.map((c) =>
        h("li", { class: `comment ${c.kind}` },
          h("span", { class: "comment-kind" }, c.kind === "rebuttal" ? gettext("Rebuttal") : gettext("Question")),
          ` ${memberName(c.author_id)}: `, c.text)), unsent)
      : null);
}

// The review as the facilitator runs it (issue 5): the vote's turnout and closing it, choosing
// the drafts of teams with more drafts than slots, the chairs, sign-off, and finalizing the
// record. room.js loads it, next to review.js, for facilitators from the review on; members never
// download it. console.js draws these sections (facilitatorSections, finalizeButton).

import { h } from "./dom.js";
import { gettext, interpolate } from "./i18n.js";

let ctx = null; // room.js's helpers; ctx.modules.review is review.js, loaded with this module

export function init(context) {
  ctx = context;
}

const snap = () => ctx.state.snap;
const review = () => snap().review;
const shared = () => ctx.modules.review;
const send = (message) => shared().send(message);

// ----- the facilitator's sections ----------------------------------------------------------------

export function facilitatorSections() {
  const s = snap();
  const phase = s.room.phase;
  const out = [];
  if (phase === "review") {
    const vote = review().vote;
    if (vote.closed) out.push(shared().voteResults());
    else {
      const t = vote.turnout || { voted: 0, eligible: 0 };
      out.push(h("section", { class: "card vote-admin", "aria-labelledby": "vote-admin-h" },
        h("h2", { id: "vote-admin-h" }, gettext("The vote")),
        h("p", { id: "turnout", "aria-live": "polite" }, interpolate(gettext("%(voted)s of %(eligible)s members have voted. Counts stay hidden until you close the vote."), t, true)),
        h("button", {
          type: "button", class: "button", id: "close-vote",
          onclick: () => {
            if (window.confirm(gettext("Close the vote? Everyone will see the results and nobody can vote any more."))) send({ type: "vote.close" });
          },
        }, gettext("Close the vote and show the results"))));
    }
    const curating = s.scenario.positions.map((p) => curationPanel(p)).filter(Boolean);
    if (curating.length) {
      out.push(h("section", { class: "card curation", "aria-labelledby": "curation-h" },
        h("h2", { id: "curation-h" }, gettext("Teams with more drafts than slots")),
        h("p", { class: "help" }, gettext("Each team votes for the arguments and the risk that make its case. You can choose for them; the other drafts stay in the record, marked not selected.")),
        curating));
    }
    const count = review().comments.length;
    out.push(h("section", { class: "card" }, h("h2", {}, gettext("The debate")), h("p", {}, interpolate(gettext("%(count)s rebuttals and questions so far."), { count }, true)),
      h("a", { class: "button secondary", href: ctx.config.recordUrl }, gettext("Open the full record"))));
  } else if (phase === "recommendation") {
    out.push(shared().voteResults(), chairsPanel(), shared().signoffSummary());
  } else if (phase === "closed") {
    out.push(shared().recommendationDetails(), shared().signoffSummary(), shared().voteResults(), shared().recordLinks());
  }
  return out.filter(Boolean);
}

function curationPanel(position) {
  const theCase = shared().caseOf(position.id);
  if (!theCase || theCase.decided_by === "all") return null;
  const s = snap();
  const drafts = s.drafts.filter((d) => d.position_id === position.id && (d.round || 1) === s.room.round && !d.hidden && d.text && d.text.trim());
  const boxes = drafts.map((d) => h("li", {},
    h("input", { type: "checkbox", id: `pick-${d.id}`, value: d.id, checked: theCase.selected.includes(d.id) }),
    " ",
    h("label", { for: `pick-${d.id}` }, h("strong", {}, d.kind === "risk" ? gettext("Risk:") : gettext("Argument:"), " "), d.text, h("span", { class: "muted" }, ` — ${ctx.memberName(d.author_id)}`))));
  const list = h("ul", { class: "pick-list" }, boxes);
  return h("fieldset", { class: `pick pos-${ctx.positionIndex(position.id)}` },
    h("legend", {}, interpolate(theCase.decided_by === "facilitator" ? gettext("%(position)s (your choice)") : gettext("%(position)s (team vote)"), { position: position.name }, true)),
    list,
    h("p", { class: "actions" },
      h("button", {
        type: "button", class: "button small primary",
        onclick: () => {
          const ids = [...list.querySelectorAll("input:checked")].map((el) => Number(el.value));
          send({ type: "case.pick", position_id: position.id, draft_ids: ids });
        },
      }, gettext("Use this selection")),
      theCase.decided_by === "facilitator"
        ? h("button", { type: "button", class: "button small secondary", onclick: () => send({ type: "case.pick", position_id: position.id, draft_ids: [] }) }, gettext("Let the team decide"))
        : null));
}

function chairsPanel() {
  const members = snap().members.filter((m) => !m.removed);
  return h("section", { class: "card chairs", "aria-labelledby": "chairs-h" },
    h("h2", { id: "chairs-h" }, gettext("Chairs")),
    h("p", { class: "help" }, gettext("Chairs edit the recommendation with you. Everyone else signs it off or records a dissent.")),
    h("ul", { class: "pick-list" }, members.map((m) => h("li", {},
      h("input", {
        type: "checkbox", id: `chair-${m.id}`, checked: m.is_chair,
        onchange: (event) => send({ type: "chair.set", member_id: m.id, chair: event.target.checked }),
      }), " ", h("label", { for: `chair-${m.id}` }, m.display_name)))));
}

export function finalizeButton() {
  const rec = snap().recommendation;
  const ready = rec.decision_id && rec.rationale.trim() && rec.revisit_condition.trim();
  return h("p", { class: "actions finalize" },
    h("button", {
      type: "button", class: "button primary", id: "finalize", disabled: !ready,
      onclick: () => {
        if (window.confirm(gettext("Finalize the record? Every text is frozen as it is now, the room closes, and a read-only share link is created."))) {
          send({ type: "recommendation.finalize" });
        }
      },
    }, gettext("Finalize the record")),
    ready ? null : h("span", { class: "muted" }, " ", gettext("The decision, the rationale and the revisit condition are required.")));
}

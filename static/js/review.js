// The review's shared parts (issue 5): its events, the vote's results, sign-off, the
// recommendation builder and the record links. What only one role does lives in
// review-member.js (marking, case votes, rebuttals and questions, the vote form, signing off)
// and review-console.js (closing the vote, curation, chairs, finalizing); room.js loads the one
// for the page's role next to this one. The cases side by side (tabs on a phone, each draft's
// review badges) are cases.js's, as only members and solo learners see them. room.js owns the
// socket, the state and the render loop; this module draws these parts of the room and applies
// their events. User text only ever becomes text nodes (dom.js).

import { h } from "./dom.js";
import { gettext, interpolate } from "./i18n.js";

let ctx = null; // room.js's helpers

export function init(context) {
  ctx = context;
}

const snap = () => ctx.state.snap;
const review = () => snap().review;

// Sends a click's message (a mark, a vote): true if it went out. Offline it is not kept (the
// button or form stays as it was, to press again); rebuttals and questions go through ctx.post.
export function send(message) {
  if (ctx.socket.send(message)) return true;
  ctx.announce(gettext("Offline: this was not sent. Try again when connected."));
  return false;
}

// ----- events ------------------------------------------------------------------------------------

export function applyEvent(s, event) {
  const r = s.review;
  switch (event.type) {
    case "comment.added":
      if (!r.comments.some((c) => c.id === event.comment.id)) r.comments.push(event.comment);
      break;
    case "strongest.marked": {
      const m = event.mark;
      r.marks = r.marks.filter((x) => !(x.member_id === m.member_id && x.position_id === m.position_id));
      r.marks.push(m);
      break;
    }
    case "case.updated":
      r.cases = r.cases.filter((c) => c.position_id !== event.case.position_id);
      r.cases.push(event.case);
      break;
    case "vote.cast":
      if (event.mine) r.vote.mine = event.mine;
      if (event.turnout) r.vote.turnout = event.turnout;
      break;
    case "vote.closed":
      r.vote.closed = true;
      r.vote.results = event.results;
      ctx.announce(gettext("The vote is closed: the results are shown."));
      break;
    case "member.chair": {
      const member = s.members.find((m) => m.id === event.member_id);
      if (member) member.is_chair = event.is_chair;
      break;
    }
    case "signoff.updated":
      r.signoffs = r.signoffs.filter((x) => x.member_id !== event.signoff.member_id);
      r.signoffs.push(event.signoff);
      break;
    default:
      return false;
  }
  return true;
}

// ----- a position's case: the drafts chosen for it ----------------------------------------------

export function caseOf(positionId) {
  return review().cases.find((c) => c.position_id === positionId) || null;
}

// ----- the vote's results ------------------------------------------------------------------------

export function voteResults() {
  const results = review().vote.results;
  if (!results) return null;
  const total = results.total;
  const leaders = results.leaders.map((id) => ctx.positionName(id));
  return h("section", { class: "card vote-results", "aria-labelledby": "results-h" },
    h("h2", { id: "results-h" }, gettext("The committee's vote")),
    h("ul", { class: "bars" }, results.counts.map((c) => {
      const fill = h("span", { class: `bar-fill pos-${ctx.positionIndex(c.position_id)}` });
      fill.style.width = `${total ? Math.round((100 * c.count) / total) : 0}%`;
      return h("li", { class: `bar-row${results.leaders.includes(c.position_id) ? " leader" : ""}` },
        h("span", { class: "bar-label" }, ctx.positionName(c.position_id)),
        h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        h("span", { class: "bar-count" }, interpolate(gettext("%(count)s of %(total)s"), { count: c.count, total }, true)));
    })),
    h("p", { class: "vote-outcome" }, voteOutcome(total, results.tie, leaders)),
    results.reasons.length
      ? h("details", {}, h("summary", {}, interpolate(gettext("Reasons given (%(count)s)"), { count: results.reasons.length }, true)),
        h("ul", {}, results.reasons.map((r) => h("li", {}, `${ctx.memberName(r.member_id)} (${ctx.positionName(r.position_id)}): `, r.reason))))
      : null);
}

function voteOutcome(total, tie, leaders) {
  if (!total) return gettext("Nobody voted.");
  // Translators: the tied positions, joined by " and ".
  if (tie) return interpolate(gettext("Tie: %(positions)s"), { positions: leaders.join(gettext(" and ")) }, true);
  return interpolate(gettext("Most votes: %(position)s"), { position: leaders[0] }, true);
}

export function signoffSummary() {
  const list = review().signoffs;
  return h("section", { class: "card", "aria-labelledby": "signoffs-h" },
    h("h2", { id: "signoffs-h" }, interpolate(gettext("Sign-off (%(count)s of %(members)s)"), { count: list.length, members: snap().members.filter((m) => !m.removed).length }, true)),
    signoffList(list));
}

export function signoffList(list) {
  if (!list.length) return h("p", { class: "muted" }, gettext("Nobody has signed off yet."));
  const version = snap().recommendation.version;
  return h("ul", { class: "signoff-list", "aria-live": "polite" }, list.map((s) => h("li", { class: s.stance },
    h("strong", {}, ctx.memberName(s.member_id)),
    // Translators: "Ana dissents: <sentence>", "Ana signs off".
    " ", s.stance === "dissent" ? gettext("dissents:") : gettext("signs off"),
    s.stance === "dissent" ? [" ", s.text] : "",
    s.rec_version < version
      ? h("span", { class: "muted" }, " ", interpolate(gettext("(on version %(version)s; the text has changed since)"), { version: s.rec_version }, true))
      : null)));
}

// ----- the recommendation: citations and risk, shown and edited ----------------------------------

function draftById(id) {
  return snap().drafts.find((d) => d.id === id) || null;
}

function quoted(draft) {
  return h("span", { class: "cited" },
    h("q", {}, draft.text),
    h("span", { class: "muted" }, ` — ${ctx.positionName(draft.position_id)}, ${ctx.memberName(draft.author_id)}`));
}

export function recommendationDetails() {
  const rec = snap().recommendation;
  const cited = rec.citation_ids.map(draftById).filter(Boolean);
  const risk = rec.risk_draft_id ? draftById(rec.risk_draft_id) : null;
  if (!cited.length && !risk && !rec.risk_text) return null;
  return h("section", { class: "card rec-details", "aria-labelledby": "rec-details-h" },
    h("h2", { id: "rec-details-h" }, gettext("What the rationale rests on")),
    cited.length ? h("div", {}, h("h3", {}, gettext("Arguments cited")), h("ol", { class: "citations" }, cited.map((d) => h("li", {}, quoted(d))))) : null,
    risk || rec.risk_text
      ? h("div", {}, h("h3", {}, gettext("The risk we accept")), risk ? h("p", {}, quoted(risk)) : null, rec.risk_text ? h("p", { class: "draft-text" }, rec.risk_text) : null)
      : null);
}

export function builderFields() {
  const s = snap();
  const readable = s.drafts.filter((d) => !d.hidden && d.text && d.text.trim());
  const args = readable.filter((d) => d.kind === "argument");
  const risks = readable.filter((d) => d.kind === "risk");
  return h("div", { class: "builder" },
    h("fieldset", { class: "cite-list" },
      h("legend", {}, gettext("Arguments the rationale cites")),
      h("p", { class: "help" }, gettext("Pick the arguments from the record that carried the decision.")),
      s.scenario.positions.map((p) => {
        const mine = args.filter((d) => d.position_id === p.id);
        if (!mine.length) return null;
        return h("div", { class: `cite-group pos-${ctx.positionIndex(p.id)}` },
          h("h3", {}, p.name),
          h("ul", { class: "pick-list" }, mine.map((d) => h("li", {},
            h("input", { type: "checkbox", name: "cite", id: `cite-${d.id}`, value: d.id }), " ",
            h("label", { for: `cite-${d.id}` }, d.text, h("span", { class: "muted" }, ` — ${ctx.memberName(d.author_id)}`))))));
      })),
    h("div", { class: "field" },
      h("label", { for: "rec-risk-draft" }, gettext("The risk of this choice the committee accepts")),
      h("select", { id: "rec-risk-draft" },
        h("option", { value: "" }, gettext("— write it below —")),
        risks.map((d) => h("option", { value: d.id }, `${ctx.positionName(d.position_id)}: ${d.text.slice(0, 90)}`))),
      h("label", { for: "rec-risk-text" }, gettext("In the committee's words (optional with a risk picked above)")),
      h("textarea", { id: "rec-risk-text", rows: 2, maxlength: ctx.config.maxRecommendationChars })));
}

export function builderPayload(form) {
  const select = form.querySelector("#rec-risk-draft");
  if (!select) return {};
  return {
    citation_ids: [...form.querySelectorAll("input[name=cite]:checked")].map((el) => Number(el.value)),
    risk_draft_id: select.value ? Number(select.value) : null,
    risk_text: form.querySelector("#rec-risk-text").value,
  };
}

export function syncBuilder(form, current) {
  const select = form.querySelector("#rec-risk-draft");
  if (!select) return;
  const cited = new Set(current.citation_ids || []);
  for (const box of form.querySelectorAll("input[name=cite]")) box.checked = cited.has(Number(box.value));
  if (document.activeElement !== select) select.value = current.risk_draft_id ? String(current.risk_draft_id) : "";
  const text = form.querySelector("#rec-risk-text");
  if (document.activeElement !== text) text.value = current.risk_text || "";
}

// ----- the record: links and the share link ------------------------------------------------------

export function recordLinks() {
  const c = ctx.config;
  const share = review().share_path;
  return h("section", { class: "card record-links", "aria-labelledby": "record-h" },
    h("h2", { id: "record-h" }, gettext("The committee record")),
    h("p", { class: "actions" },
      h("a", { class: "button primary", href: c.recordUrl, id: "record-page" }, gettext("Printable record")),
      h("a", { class: "button", href: c.exportUrl, download: "" }, gettext("Download the record (.md)")),
      h("a", { class: "button", href: c.exportJsonUrl, download: "", id: "record-json" }, gettext("JSON"))),
    share
      ? h("div", { class: "field" },
        h("label", { for: "share-link" }, gettext("Read-only share link (no login needed)")),
        h("input", { type: "text", id: "share-link", readonly: true, value: new URL(share, window.location.origin).href }))
      : null);
}

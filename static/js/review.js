// Review, team curation, the vote, the recommendation builder, sign-off and the record links
// (issue 5). room.js owns the socket, the state and the render loop; this module draws these
// parts of the room and applies their events. User text only ever becomes text nodes (dom.js).

import { h, newClientId } from "./dom.js";

let ctx = null; // { state, socket, config, announce, queueRender, positionName, positionIndex, memberName }
const ui = {
  openForm: null, // { draftId, kind }: the rebuttal/question form that is open
  activeTab: 0, // the position shown on a phone
  voteChoice: null, // the position picked in the vote form before it is sent
};

export function init(context) {
  ctx = context;
}

const snap = () => ctx.state.snap;
const review = () => snap().review;
const me = () => snap().me;
const socket = () => ctx.socket;

function send(message) {
  if (!socket().send(message)) ctx.announce("Offline: this was not sent. Try again when connected.");
}

function myMember() {
  return snap().members.find((m) => m.id === me().member_id) || null;
}

export function isChair() {
  const member = myMember();
  return me().role === "facilitator" || Boolean(member && member.is_chair);
}

// ----- events ----------------------------------------------------------------------------------

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
      ctx.announce("The vote is closed: the results are shown.");
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

// ----- positions side by side: tabs on a phone ---------------------------------------------------

export function withTabs(columns) {
  const panels = [...columns.children];
  if (panels.length < 2) return columns;
  ui.activeTab = Math.min(ui.activeTab, panels.length - 1);
  const tabs = h("div", { class: "review-tabs", role: "tablist", "aria-label": "Positions" });
  panels.forEach((panel, index) => {
    const id = `case-panel-${index}`;
    panel.id = id;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", `case-tab-${index}`);
    panel.classList.toggle("active", index === ui.activeTab);
    const position = snap().scenario.positions[index];
    const title = panel.querySelector(".column-title");
    tabs.append(h("button", {
      type: "button",
      role: "tab",
      id: `case-tab-${index}`,
      class: `tab pos-${index}`,
      "aria-controls": id,
      "aria-selected": index === ui.activeTab ? "true" : "false",
      tabindex: index === ui.activeTab ? "0" : "-1",
      onclick: () => { ui.activeTab = index; ctx.queueRender(); },
      onkeydown: (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        ui.activeTab = (index + step + panels.length) % panels.length;
        ctx.queueRender();
        requestAnimationFrame(() => document.getElementById(`case-tab-${ui.activeTab}`)?.focus());
      },
    }, position ? position.short_name : title ? title.textContent : `Position ${index + 1}`));
  });
  return h("div", { class: "tabbed-cases" }, tabs, columns);
}

// ----- one draft in the review: curation, strongest mark, rebuttals and questions ----------------

function caseOf(positionId) {
  return review().cases.find((c) => c.position_id === positionId) || null;
}

export function draftTools(draft) {
  const s = snap();
  const phase = s.room.phase;
  if (phase === "lobby" || phase === "drafting") return null;
  const parts = [];
  const current = (draft.round || 1) === s.room.round;
  const theCase = current ? caseOf(draft.position_id) : null;
  if (theCase && theCase.decided_by !== "all") {
    const inCase = theCase.selected.includes(draft.id);
    const votes = theCase.votes[String(draft.id)] || 0;
    parts.push(h("span", { class: `badge ${inCase ? "in-case" : "not-selected"}` }, inCase ? "In the case" : "Not selected"));
    if (theCase.decided_by === "team" && votes) parts.push(h("span", { class: "muted small" }, ` ${votes} team vote${votes === 1 ? "" : "s"}`));
  }
  const marks = review().marks.filter((m) => m.draft_id === draft.id).length;
  if (marks) parts.push(h("span", { class: "badge strong" }, `★ strongest for ${marks}`));
  const actions = [];
  const member = me().role === "member" && myMember() && !me().muted;
  if (phase === "review" && member && current) {
    if (draft.kind === "argument") {
      const mine = review().marks.find((m) => m.member_id === me().member_id && m.position_id === draft.position_id);
      const pressed = Boolean(mine && mine.draft_id === draft.id);
      actions.push(h("button", {
        type: "button", class: "button small", "aria-pressed": pressed ? "true" : "false",
        onclick: () => send({ type: "strongest.mark", draft_id: draft.id }),
      }, pressed ? "★ Your strongest" : "Mark strongest"));
    }
    if (draft.position_id === me().position_id && theCase && theCase.decided_by === "team") {
      const chosen = review().my_case_votes.includes(draft.id);
      actions.push(h("button", {
        type: "button", class: "button small", "aria-pressed": chosen ? "true" : "false",
        onclick: () => {
          send({ type: "case.vote", draft_id: draft.id, chosen: !chosen });
          const list = review().my_case_votes;
          review().my_case_votes = chosen ? list.filter((id) => id !== draft.id) : [...list, draft.id];
          ctx.queueRender();
        },
      }, chosen ? "Chosen for our case" : "Choose for our case"));
    }
    if (draft.position_id !== me().position_id) {
      for (const [kind, label] of [["rebuttal", "Rebut"], ["question", "Ask"]]) {
        actions.push(h("button", {
          type: "button", class: "button small secondary",
          "aria-expanded": ui.openForm && ui.openForm.draftId === draft.id && ui.openForm.kind === kind ? "true" : "false",
          onclick: () => {
            const same = ui.openForm && ui.openForm.draftId === draft.id && ui.openForm.kind === kind;
            ui.openForm = same ? null : { draftId: draft.id, kind };
            ctx.queueRender();
            if (!same) requestAnimationFrame(() => document.getElementById(`comment-${draft.id}`)?.focus());
          },
        }, label));
      }
    }
  }
  const comments = review().comments.filter((c) => c.draft_id === draft.id);
  return h("div", { class: "review-tools" },
    parts.length ? h("p", { class: "review-badges" }, parts) : null,
    actions.length ? h("p", { class: "review-actions" }, actions) : null,
    ui.openForm && ui.openForm.draftId === draft.id ? commentForm(draft) : null,
    comments.length
      ? h("ul", { class: "comment-list", "aria-label": "Rebuttals and questions" }, comments.map((c) =>
        h("li", { class: `comment ${c.kind}` },
          h("span", { class: "comment-kind" }, c.kind === "rebuttal" ? "Rebuttal" : "Question"),
          ` ${ctx.memberName(c.author_id)}: `, c.text)))
      : null);
}

function commentForm(draft) {
  const kind = ui.openForm.kind;
  const id = `comment-${draft.id}`;
  return h("form", {
    class: "comment-form",
    onsubmit: (event) => {
      event.preventDefault();
      const input = document.getElementById(id);
      const text = input.value.trim();
      if (!text) return;
      send({ type: "comment.add", client_id: newClientId(), draft_id: draft.id, kind, text });
      input.value = "";
      ui.openForm = null;
      ctx.queueRender();
    },
  },
  h("label", { for: id }, kind === "rebuttal" ? "Your rebuttal of this argument" : "Your question to this position"),
  h("input", { type: "text", id, maxlength: 1000, required: true, autocomplete: "off" }),
  h("button", { type: "submit", class: "button small primary" }, "Post"));
}

// ----- the vote ----------------------------------------------------------------------------------

export function voteResults() {
  const results = review().vote.results;
  if (!results) return null;
  const total = results.total;
  const leaders = results.leaders.map((id) => ctx.positionName(id));
  return h("section", { class: "card vote-results", "aria-labelledby": "results-h" },
    h("h2", { id: "results-h" }, "The committee's vote"),
    h("ul", { class: "bars" }, results.counts.map((c) => {
      const fill = h("span", { class: `bar-fill pos-${ctx.positionIndex(c.position_id)}` });
      fill.style.width = `${total ? Math.round((100 * c.count) / total) : 0}%`;
      return h("li", { class: `bar-row${results.leaders.includes(c.position_id) ? " leader" : ""}` },
        h("span", { class: "bar-label" }, ctx.positionName(c.position_id)),
        h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        h("span", { class: "bar-count" }, `${c.count} of ${total}`));
    })),
    h("p", { class: "vote-outcome" },
      !total ? "Nobody voted." : results.tie ? `Tie: ${leaders.join(" and ")}` : `Most votes: ${leaders[0]}`),
    results.reasons.length
      ? h("details", {}, h("summary", {}, `Reasons given (${results.reasons.length})`),
        h("ul", {}, results.reasons.map((r) => h("li", {}, `${ctx.memberName(r.member_id)} (${ctx.positionName(r.position_id)}): `, r.reason))))
      : null);
}

function voteForm() {
  const s = snap();
  const mine = review().vote.mine;
  const choice = ui.voteChoice ?? (mine ? mine.position_id : null);
  const form = h("form", {
    class: "card vote-form",
    "aria-labelledby": "vote-h",
    onsubmit: (event) => {
      event.preventDefault();
      if (choice === null) return;
      const reason = document.getElementById("vote-reason").value.trim();
      send({ type: "vote.cast", position_id: choice, reason });
      review().vote.mine = { position_id: choice, reason };
      ui.voteChoice = null;
      ctx.announce("Your vote is recorded.");
      ctx.queueRender();
    },
  },
  h("h2", { id: "vote-h" }, "Your vote: what should the committee decide?"),
  h("p", { class: "help" }, "Results stay hidden from everyone until the facilitator closes the vote. You can change your vote until then."),
  h("fieldset", {}, h("legend", { class: "visually-hidden" }, "Decision"),
    s.scenario.positions.map((p) => h("label", { class: `choice pos-${ctx.positionIndex(p.id)}` },
      h("input", {
        type: "radio", name: "vote", value: p.id, id: `vote-${p.id}`, checked: choice === p.id,
        onchange: () => { ui.voteChoice = p.id; ctx.queueRender(); },
      }), p.name))),
  h("div", { class: "field" },
    h("label", { for: "vote-reason" }, "Your reason (optional, one sentence)"),
    h("input", { type: "text", id: "vote-reason", maxlength: 300, value: mine ? mine.reason : "" })),
  h("p", { class: "actions" },
    h("button", { type: "submit", class: "button primary", id: "vote-submit", disabled: choice === null || me().muted }, mine ? "Change my vote" : "Vote"),
    mine ? h("span", { class: "muted", id: "my-vote" }, ` You voted: ${ctx.positionName(mine.position_id)}`) : null));
  return form;
}

// ----- member sections ----------------------------------------------------------------------------

export function memberSections(where) {
  // The vote comes after the cases (read them first); the recommendation before them.
  const s = snap();
  const phase = s.room.phase;
  const out = [];
  if (phase === "review") {
    if (where === "after") out.push(review().vote.closed ? voteResults() : voteForm());
  } else if (where === "after") {
    return out;
  } else if (phase === "recommendation") {
    out.push(recommendationDetails(), signoffPanel(), voteResults());
  } else if (phase === "closed") {
    out.push(recommendationDetails(), signoffSummary(), voteResults(), recordLinks());
  }
  return out.filter(Boolean);
}

// ----- facilitator sections -----------------------------------------------------------------------

export function facilitatorSections() {
  const s = snap();
  const phase = s.room.phase;
  const out = [];
  if (phase === "review") {
    const vote = review().vote;
    if (vote.closed) out.push(voteResults());
    else {
      const t = vote.turnout || { voted: 0, eligible: 0 };
      out.push(h("section", { class: "card vote-admin", "aria-labelledby": "vote-admin-h" },
        h("h2", { id: "vote-admin-h" }, "The vote"),
        h("p", { id: "turnout", "aria-live": "polite" }, `${t.voted} of ${t.eligible} members have voted. Counts stay hidden until you close the vote.`),
        h("button", {
          type: "button", class: "button", id: "close-vote",
          onclick: () => {
            if (window.confirm("Close the vote? Everyone will see the results and nobody can vote any more.")) send({ type: "vote.close" });
          },
        }, "Close the vote and show the results")));
    }
    const curating = s.scenario.positions.map((p) => curationPanel(p)).filter(Boolean);
    if (curating.length) {
      out.push(h("section", { class: "card curation", "aria-labelledby": "curation-h" },
        h("h2", { id: "curation-h" }, "Teams with more drafts than slots"),
        h("p", { class: "help" }, "Each team votes for the arguments and the risk that make its case. You can choose for them; the other drafts stay in the record, marked not selected."),
        curating));
    }
    out.push(h("section", { class: "card" }, h("h2", {}, "The debate"), h("p", {}, `${review().comments.length} rebuttals and questions so far.`),
      h("a", { class: "button secondary", href: ctx.config.recordUrl }, "Open the full record")));
  } else if (phase === "recommendation") {
    out.push(voteResults(), chairsPanel(), signoffSummary());
  } else if (phase === "closed") {
    out.push(recommendationDetails(), signoffSummary(), voteResults(), recordLinks());
  }
  return out.filter(Boolean);
}

function curationPanel(position) {
  const theCase = caseOf(position.id);
  if (!theCase || theCase.decided_by === "all") return null;
  const s = snap();
  const drafts = s.drafts.filter((d) => d.position_id === position.id && (d.round || 1) === s.room.round && !d.hidden && d.text && d.text.trim());
  const boxes = drafts.map((d) => h("li", {},
    h("input", { type: "checkbox", id: `pick-${d.id}`, value: d.id, checked: theCase.selected.includes(d.id) }),
    " ",
    h("label", { for: `pick-${d.id}` }, h("strong", {}, d.kind === "risk" ? "Risk: " : "Argument: "), d.text, h("span", { class: "muted" }, ` — ${ctx.memberName(d.author_id)}`))));
  const list = h("ul", { class: "pick-list" }, boxes);
  return h("fieldset", { class: `pick pos-${ctx.positionIndex(position.id)}` },
    h("legend", {}, `${position.name} (${theCase.decided_by === "facilitator" ? "your choice" : "team vote"})`),
    list,
    h("p", { class: "actions" },
      h("button", {
        type: "button", class: "button small primary",
        onclick: () => {
          const ids = [...list.querySelectorAll("input:checked")].map((el) => Number(el.value));
          send({ type: "case.pick", position_id: position.id, draft_ids: ids });
        },
      }, "Use this selection"),
      theCase.decided_by === "facilitator"
        ? h("button", { type: "button", class: "button small secondary", onclick: () => send({ type: "case.pick", position_id: position.id, draft_ids: [] }) }, "Let the team decide")
        : null));
}

function chairsPanel() {
  const members = snap().members.filter((m) => !m.removed);
  return h("section", { class: "card chairs", "aria-labelledby": "chairs-h" },
    h("h2", { id: "chairs-h" }, "Chairs"),
    h("p", { class: "help" }, "Chairs edit the recommendation with you. Everyone else signs it off or records a dissent."),
    h("ul", { class: "pick-list" }, members.map((m) => h("li", {},
      h("input", {
        type: "checkbox", id: `chair-${m.id}`, checked: m.is_chair,
        onchange: (event) => send({ type: "chair.set", member_id: m.id, chair: event.target.checked }),
      }), " ", h("label", { for: `chair-${m.id}` }, m.display_name)))));
}

function signoffSummary() {
  const list = review().signoffs;
  return h("section", { class: "card", "aria-labelledby": "signoffs-h" },
    h("h2", { id: "signoffs-h" }, `Sign-off (${list.length} of ${snap().members.filter((m) => !m.removed).length})`),
    signoffList(list));
}

function signoffList(list) {
  if (!list.length) return h("p", { class: "muted" }, "Nobody has signed off yet.");
  const version = snap().recommendation.version;
  return h("ul", { class: "signoff-list", "aria-live": "polite" }, list.map((s) => h("li", { class: s.stance },
    h("strong", {}, ctx.memberName(s.member_id)),
    s.stance === "dissent" ? " dissents: " : " signs off",
    s.stance === "dissent" ? s.text : "",
    s.rec_version < version ? h("span", { class: "muted" }, ` (on version ${s.rec_version}; the text has changed since)`) : null)));
}

function signoffPanel() {
  const rec = snap().recommendation;
  if (!rec.version || me().role !== "member") return null;
  const mine = review().signoffs.find((s) => s.member_id === me().member_id);
  return h("section", { class: "card signoff", "aria-labelledby": "signoff-h" },
    h("h2", { id: "signoff-h" }, "Sign it off, or record your dissent"),
    mine ? h("p", { id: "my-signoff" }, mine.stance === "dissent" ? `You dissent: ${mine.text}` : "You signed it off.") : null,
    h("p", { class: "actions" },
      h("button", { type: "button", class: "button primary", id: "sign-off", disabled: me().muted, onclick: () => send({ type: "signoff.record", stance: "sign" }) }, "Sign off")),
    h("form", {
      class: "dissent-form",
      onsubmit: (event) => {
        event.preventDefault();
        const text = document.getElementById("dissent-text").value.trim();
        if (text) send({ type: "signoff.record", stance: "dissent", text });
      },
    },
    h("label", { for: "dissent-text" }, "Or dissent, in one sentence"),
    h("input", { type: "text", id: "dissent-text", maxlength: 300, required: true }),
    h("button", { type: "submit", class: "button secondary", disabled: me().muted }, "Record my dissent")),
    signoffList(review().signoffs));
}

// ----- the recommendation: citations and risk, shown and edited -----------------------------------

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
    h("h2", { id: "rec-details-h" }, "What the rationale rests on"),
    cited.length ? h("div", {}, h("h3", {}, "Arguments cited"), h("ol", { class: "citations" }, cited.map((d) => h("li", {}, quoted(d))))) : null,
    risk || rec.risk_text
      ? h("div", {}, h("h3", {}, "The risk we accept"), risk ? h("p", {}, quoted(risk)) : null, rec.risk_text ? h("p", { class: "draft-text" }, rec.risk_text) : null)
      : null);
}

export function builderFields() {
  const s = snap();
  const readable = s.drafts.filter((d) => !d.hidden && d.text && d.text.trim());
  const args = readable.filter((d) => d.kind === "argument");
  const risks = readable.filter((d) => d.kind === "risk");
  return h("div", { class: "builder" },
    h("fieldset", { class: "cite-list" },
      h("legend", {}, "Arguments the rationale cites"),
      h("p", { class: "help" }, "Pick the arguments from the record that carried the decision."),
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
      h("label", { for: "rec-risk-draft" }, "The risk of this choice the committee accepts"),
      h("select", { id: "rec-risk-draft" },
        h("option", { value: "" }, "— write it below —"),
        risks.map((d) => h("option", { value: d.id }, `${ctx.positionName(d.position_id)}: ${d.text.slice(0, 90)}`))),
      h("label", { for: "rec-risk-text" }, "In the committee's words (optional with a risk picked above)"),
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

export function finalizeButton() {
  if (me().role !== "facilitator") return null;
  const rec = snap().recommendation;
  const ready = rec.decision_id && rec.rationale.trim() && rec.revisit_condition.trim();
  return h("p", { class: "actions finalize" },
    h("button", {
      type: "button", class: "button primary", id: "finalize", disabled: !ready,
      onclick: () => {
        if (window.confirm("Finalize the record? Every text is frozen as it is now, the room closes, and a read-only share link is created.")) {
          send({ type: "recommendation.finalize" });
        }
      },
    }, "Finalize the record"),
    ready ? null : h("span", { class: "muted" }, " The decision, the rationale and the revisit condition are required."));
}

// ----- the record: links and the share link ------------------------------------------------------

function recordLinks() {
  const c = ctx.config;
  const share = review().share_path;
  return h("section", { class: "card record-links", "aria-labelledby": "record-h" },
    h("h2", { id: "record-h" }, "The committee record"),
    h("p", { class: "actions" },
      h("a", { class: "button primary", href: c.recordUrl, id: "record-page" }, "Printable record"),
      h("a", { class: "button", href: c.exportUrl, download: "" }, "Download the record (.md)"),
      h("a", { class: "button", href: c.exportJsonUrl, download: "", id: "record-json" }, "JSON")),
    share
      ? h("div", { class: "field" },
        h("label", { for: "share-link" }, "Read-only share link (no login needed)"),
        h("input", { type: "text", id: "share-link", readonly: true, value: new URL(share, window.location.origin).href }))
      : null);
}

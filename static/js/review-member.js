// The review as a member of a group room does it (issue 5): marking the strongest argument,
// choosing the drafts that make the team's case, rebuttals and questions, the vote, and signing
// the recommendation off (or dissenting). room.js loads it, next to review.js, for members of
// group rooms from the review on; facilitators and solo learners never download it. cases.js
// draws the cases and asks this module for each draft's buttons (draftActions).

import { h, newClientId } from "./dom.js";
import { gettext, ngettext, interpolate } from "./i18n.js";

let ctx = null; // room.js's helpers; ctx.modules.review is review.js, loaded with this module
const ui = {
  openForm: null, // { draftId, kind }: the rebuttal/question form that is open
  voteChoice: null, // the position picked in the vote form before it is sent
};

export function init(context) {
  ctx = context;
}

const snap = () => ctx.state.snap;
const review = () => snap().review;
const me = () => snap().me;
const shared = () => ctx.modules.review;
const send = (message) => shared().send(message);

function myMember() {
  return snap().members.find((m) => m.id === me().member_id) || null;
}

// A chair edits the recommendation (member.js shows them the editor).
export function isChair() {
  const member = myMember();
  return Boolean(member && member.is_chair);
}

// ----- one draft in the review: a member's buttons and the open form -----------------------------

// `theCase`: the draft's position's case (null for an earlier round's draft); `current`: the draft
// belongs to this round.
export function draftActions(draft, theCase, current) {
  const actions = [];
  const member = myMember() && !me().muted;
  if (snap().room.phase === "review" && member && current) {
    if (draft.kind === "argument") {
      const mine = review().marks.find((m) => m.member_id === me().member_id && m.position_id === draft.position_id);
      const pressed = Boolean(mine && mine.draft_id === draft.id);
      actions.push(h("button", {
        type: "button", class: "button small", "aria-pressed": pressed ? "true" : "false",
        onclick: () => send({ type: "strongest.mark", draft_id: draft.id }),
      }, pressed ? gettext("★ Your strongest") : gettext("Mark strongest")));
    }
    if (draft.position_id === me().position_id && theCase && theCase.decided_by === "team") {
      const chosen = review().my_case_votes.includes(draft.id);
      actions.push(h("button", {
        type: "button", class: "button small", "aria-pressed": chosen ? "true" : "false",
        onclick: () => {
          if (!send({ type: "case.vote", draft_id: draft.id, chosen: !chosen })) return;
          const list = review().my_case_votes;
          review().my_case_votes = chosen ? list.filter((id) => id !== draft.id) : [...list, draft.id];
          ctx.queueRender();
        },
      }, chosen ? gettext("Chosen for our case") : gettext("Choose for our case")));
    }
    if (draft.position_id !== me().position_id) {
      for (const [kind, label] of [["rebuttal", gettext("Rebut")], ["question", gettext("Ask")]]) {
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
  return [
    actions.length ? h("p", { class: "review-actions" }, actions) : null,
    ui.openForm && ui.openForm.draftId === draft.id ? commentForm(draft) : null,
  ];
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
      // Kept on this device until the server has it (room.js's posts), so closing the form
      // loses nothing even offline.
      const sent = ctx.post({ type: "comment.add", client_id: newClientId(), draft_id: draft.id, kind, text });
      if (!sent && !ctx.socket.isOpen()) ctx.announce(gettext("Offline: kept on this device, and posted when the connection is back."));
      input.value = "";
      ui.openForm = null;
      ctx.queueRender();
    },
  },
  h("label", { for: id }, kind === "rebuttal" ? gettext("Your rebuttal of this argument") : gettext("Your question to this position")),
  h("input", { type: "text", id, maxlength: 1000, required: true, autocomplete: "off" }),
  h("button", { type: "submit", class: "button small primary" }, gettext("Post")));
}

// This member's rebuttals and questions on `draftId` that the server does not have yet: on their
// way, or kept on this device while offline. cases.js lists them under the room's.
export function postsOn(draftId) {
  return ctx.posts.values()
    .filter((m) => m.type === "comment.add" && m.draft_id === draftId && !m.refused)
    .map((m) => h("li", { class: `comment ${m.kind} unsent` },
      h("span", { class: "comment-kind" }, m.kind === "rebuttal" ? gettext("Rebuttal") : gettext("Question")),
      ` ${myMember() ? myMember().display_name : gettext("You")}: `, m.text,
      h("span", { class: "muted small" }, " ", ctx.socket.isOpen() ? gettext("(posting…)") : gettext("(kept on this device: posted when you are back online)"))));
}

// Posts the server refused for good (the review ended, the draft was hidden, …): the words stay
// on screen, with the reason, until their author dismisses them.
function refusedPosts() {
  const refused = ctx.posts.values().filter((m) => m.type === "comment.add" && m.refused);
  if (!refused.length) return null;
  return h("section", { class: "card notice", id: "refused-posts", "aria-labelledby": "refused-posts-h" },
    // Translators: the heading over rebuttals and questions the room refused: "Not posted" for
    // one, "3 not posted" for more.
    h("h2", { id: "refused-posts-h" }, interpolate(ngettext("Not posted", "%(count)s not posted", refused.length), { count: refused.length }, true)),
    h("p", { class: "help" }, gettext("The room did not take these. Copy the words if you want them, then dismiss.")),
    h("ul", { class: "comment-list" }, refused.map((m) =>
      h("li", { class: `comment ${m.kind}` },
        h("span", { class: "comment-kind" }, m.kind === "rebuttal" ? gettext("Rebuttal") : gettext("Question")), ` ${m.text}`,
        h("p", { class: "muted small" }, m.refused),
        h("button", {
          type: "button", class: "button small secondary",
          onclick: () => {
            ctx.posts.remove(m.client_id);
            ctx.queueRender();
          },
        }, gettext("Dismiss"))))));
}

// ----- the vote ----------------------------------------------------------------------------------

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
      if (!send({ type: "vote.cast", position_id: choice, reason })) return; // the form keeps both
      review().vote.mine = { position_id: choice, reason };
      ui.voteChoice = null;
      ctx.announce(gettext("Your vote is recorded."));
      ctx.queueRender();
    },
  },
  h("h2", { id: "vote-h" }, gettext("Your vote: what should the committee decide?")),
  h("p", { class: "help" }, gettext("Results stay hidden from everyone until the facilitator closes the vote. You can change your vote until then.")),
  h("fieldset", {}, h("legend", { class: "visually-hidden" }, gettext("Decision")),
    s.scenario.positions.map((p) => h("label", { class: `choice pos-${ctx.positionIndex(p.id)}` },
      h("input", {
        type: "radio", name: "vote", value: p.id, id: `vote-${p.id}`, checked: choice === p.id,
        onchange: () => { ui.voteChoice = p.id; ctx.queueRender(); },
      }), p.name))),
  h("div", { class: "field" },
    h("label", { for: "vote-reason" }, gettext("Your reason (optional, one sentence)")),
    h("input", { type: "text", id: "vote-reason", maxlength: 300, value: mine ? mine.reason : "" })),
  h("p", { class: "actions" },
    h("button", { type: "submit", class: "button primary", id: "vote-submit", disabled: choice === null || me().muted }, mine ? gettext("Change my vote") : gettext("Vote")),
    mine ? h("span", { class: "muted", id: "my-vote" }, " ", interpolate(gettext("You voted: %(position)s"), { position: ctx.positionName(mine.position_id) }, true)) : null));
  return form;
}

// ----- what a member sees around the cases: the vote, sign-off, the record -----------------------

export function memberSections(where) {
  // The vote comes after the cases (read them first); the recommendation before them.
  const s = snap();
  const phase = s.room.phase;
  const out = where === "before" ? [refusedPosts()] : [];
  if (phase === "review") {
    if (where === "after") out.push(review().vote.closed ? shared().voteResults() : voteForm());
  } else if (where === "after") {
    return out;
  } else if (phase === "recommendation") {
    out.push(shared().recommendationDetails(), signoffPanel(), shared().voteResults());
  } else if (phase === "closed") {
    out.push(shared().recommendationDetails(), shared().signoffSummary(), shared().voteResults(), shared().recordLinks());
  }
  return out.filter(Boolean);
}

function signoffPanel() {
  const rec = snap().recommendation;
  if (!rec.version) return null;
  const mine = review().signoffs.find((s) => s.member_id === me().member_id);
  return h("section", { class: "card signoff", "aria-labelledby": "signoff-h" },
    h("h2", { id: "signoff-h" }, gettext("Sign it off, or record your dissent")),
    mine ? h("p", { id: "my-signoff" }, mine.stance === "dissent" ? interpolate(gettext("You dissent: %(text)s"), { text: mine.text }, true) : gettext("You signed it off.")) : null,
    h("p", { class: "actions" },
      h("button", { type: "button", class: "button primary", id: "sign-off", disabled: me().muted, onclick: () => send({ type: "signoff.record", stance: "sign" }) }, gettext("Sign off"))),
    h("form", {
      class: "dissent-form",
      onsubmit: (event) => {
        event.preventDefault();
        const text = document.getElementById("dissent-text").value.trim();
        if (text) send({ type: "signoff.record", stance: "dissent", text });
      },
    },
    h("label", { for: "dissent-text" }, gettext("Or dissent, in one sentence")),
    h("input", { type: "text", id: "dissent-text", maxlength: 300, required: true }),
    h("button", { type: "submit", class: "button secondary", disabled: me().muted }, gettext("Record my dissent"))),
    shared().signoffList(review().signoffs));
}

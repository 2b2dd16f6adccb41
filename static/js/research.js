// The research board (issue 6): notes on real labs' release policies, a timeline by date and
// approach, and each member's judgement of the trend with the room's tally. Shared by the whole
// room and live over the room socket (docs/protocol.md, "Research board"). room.js owns the
// socket and hands this module the snapshot, the research events, acks and errors.
// User text only ever becomes text nodes (dom.js); links are http(s) only.

import { h, clear, newClientId } from "./dom.js";
import { KeptMessages } from "./outbox.js";
import { gettext, interpolate } from "./i18n.js";

// Translators: how a lab released a model.
export const APPROACHES = {
  open_weights: gettext("Open weights"),
  api_only: gettext("API only"),
  restricted: gettext("Restricted"),
  staged: gettext("Staged"),
  other: gettext("Other"),
};
// Translators: the trend in how labs release models.
const TRENDS = { more_open: gettext("More open"), more_closed: gettext("More closed"), mixed: gettext("Mixed") };
const MONTHS = [
  gettext("January"), gettext("February"), gettext("March"), gettext("April"), gettext("May"), gettext("June"),
  gettext("July"), gettext("August"), gettext("September"), gettext("October"), gettext("November"), gettext("December"),
];
const SAFE_URL = /^https?:\/\/\S+$/i;

// One line for the facilitator's activity list, or null for other events.
export function describeResearchEvent(event, memberName) {
  switch (event.type) {
    case "research.note.updated": {
      const { organisation, author_id: id } = event.note;
      const format = event.note.by_facilitator ? gettext("Research note: %(organisation)s") : gettext("Research note: %(organisation)s (%(name)s)");
      return interpolate(format, { organisation, name: memberName(id) }, true);
    }
    case "research.note.deleted": return gettext("Research note deleted");
    case "research.judgement.updated": {
      const trend = TRENDS[event.judgement.trend] || event.judgement.trend;
      return interpolate(gettext("%(name)s judged the trend: %(trend)s"), { name: memberName(event.judgement.member_id), trend }, true);
    }
    default: return null;
  }
}

export function createResearch({ socket, config, announce }) {
  const root = document.getElementById("research-root");
  const identity = config.memberId ? `m${config.memberId}` : `f${config.userId}`;
  const storeKey = `quorum:research:${config.roomId}:${identity}`;
  let snap = null;
  let editing = null; // the note being edited: { id, version }
  let formError = "";
  let judgeError = "";
  const pending = new KeptMessages(storeKey); // messages not yet acknowledged (outbox.js)

  function send(message) {
    pending.add(message);
    socket.send(message);
    render();
  }

  function flush() {
    if (!snap) return;
    const research = snap.research;
    for (const message of pending.values()) {
      const clientId = message.client_id;
      const applied =
        message.type === "research.note.save"
          ? research.notes.some((n) => n.created_client_id === clientId || n.last_client_id === clientId)
          : research.judgements.some((j) => j.last_client_id === clientId);
      if (applied) pending.remove(clientId);
      else socket.send(message);
    }
  }

  // ---- state from the room socket ---------------------------------------------------------

  function onSnapshot(snapshot) {
    snap = snapshot;
    if (!root) return;
    flush();
    render();
  }

  function applyEvent(event) {
    if (!snap || !event.type.startsWith("research.")) return false;
    const research = snap.research;
    if (event.type === "research.note.updated") {
      const index = research.notes.findIndex((n) => n.id === event.note.id);
      if (index === -1) {
        research.notes.push(event.note);
        announce(interpolate(gettext("New research note: %(organisation)s"), { organisation: event.note.organisation }, true));
      } else if (research.notes[index].version <= event.note.version) research.notes[index] = event.note;
    } else if (event.type === "research.note.deleted") {
      research.notes = research.notes.filter((n) => n.id !== event.note_id);
      if (editing && editing.id === event.note_id) editing = null;
    } else if (event.type === "research.judgement.updated") {
      const index = research.judgements.findIndex((j) => j.member_id === event.judgement.member_id);
      if (index === -1) research.judgements.push(event.judgement);
      else research.judgements[index] = event.judgement;
      research.tally = event.tally;
    }
    render();
    return true;
  }

  function handleAck(ack) {
    const message = pending.get(ack.client_id);
    if (!message) return false;
    pending.remove(ack.client_id);
    if (message.type === "research.note.save") {
      if (form && form.dataset.clientId === ack.client_id) {
        form.reset();
        delete form.dataset.clientId;
        editing = null;
        formError = "";
        announce(message.note_id ? gettext("Note saved") : gettext("Note added to the research board"));
      }
    } else {
      judgeError = "";
      announce(gettext("Your judgement is saved"));
    }
    render();
    return true;
  }

  function handleError(error) {
    const message = error.client_id ? pending.get(error.client_id) : null;
    if (!message) return false;
    if (["not_saved", "rate_limited", "server_error"].includes(error.code)) {
      setTimeout(() => socket.isOpen() && socket.send(message), 3000); // kept and sent again
      return true;
    }
    pending.remove(error.client_id);
    // Refused: the words stay in the form so nothing is lost.
    if (message.type === "research.note.save" && error.code === "conflict" && error.current && editing) {
      // Someone else saved this note meanwhile: their version is on the board; sending again
      // replaces it with the words still in the form.
      editing.version = error.current.version;
      formError = gettext("Someone else changed this note meanwhile (see the board). Save again to replace it with your version, or cancel.");
    } else if (message.type === "research.note.save") formError = error.message;
    else judgeError = error.message;
    render();
    return true;
  }

  // ---- rendering --------------------------------------------------------------------------

  function memberName(id) {
    const m = snap.members.find((member) => member.id === id);
    return m ? m.display_name : "—";
  }

  function mayEdit(note) {
    if (snap.me.role === "facilitator") return true;
    return note.author_id !== null && note.author_id === snap.me.member_id;
  }

  function closed() {
    return snap.room.phase === "closed";
  }

  let form = null;

  function noteForm() {
    if (!form) {
      const year = new Date().getFullYear();
      form = h("form", { class: "research-form", "aria-labelledby": "research-form-h", novalidate: true },
        h("h3", { id: "research-form-h" }, gettext("Add a release you found")),
        h("div", { class: "research-fields" },
          field("research-org", gettext("Organisation"), h("input", { id: "research-org", name: "organisation", type: "text", maxlength: 120, required: true, autocomplete: "off" })),
          field("research-month", gettext("Month"), h("select", { id: "research-month", name: "month", required: true },
            MONTHS.map((name, i) => h("option", { value: i + 1 }, name)))),
          field("research-year", gettext("Year"), h("input", { id: "research-year", name: "year", type: "number", min: 2000, max: year + 1, value: year, required: true, inputmode: "numeric" })),
          field("research-approach", gettext("Release approach"), h("select", { id: "research-approach", name: "approach", required: true },
            Object.entries(APPROACHES).map(([value, label]) => h("option", { value }, label))))),
        field("research-summary", gettext("One-sentence summary"), h("input", { id: "research-summary", name: "summary", type: "text", maxlength: 300, required: true, autocomplete: "off" })),
        field("research-url", gettext("Source (web address)"), h("input", { id: "research-url", name: "source_url", type: "url", maxlength: 500, required: true, placeholder: "https://", autocomplete: "off" }),
          gettext("Link to the lab's announcement or a news report: http:// or https:// only.")),
        h("p", { class: "form-error", role: "alert", id: "research-form-error" }),
        h("p", { class: "actions" },
          h("button", { type: "submit", class: "button primary", id: "research-submit" }, gettext("Add note")),
          h("button", { type: "button", class: "button secondary", id: "research-cancel", hidden: true, onclick: cancelEdit }, gettext("Cancel editing"))));
      form.elements.year.defaultValue = String(year); // what form.reset() goes back to
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const clientId = newClientId();
        form.dataset.clientId = clientId;
        formError = "";
        send({
          type: "research.note.save",
          client_id: clientId,
          note_id: editing ? editing.id : null,
          base_version: editing ? editing.version : 0,
          organisation: String(data.get("organisation") || ""),
          year: Number(data.get("year")) || 0,
          month: Number(data.get("month")) || 0,
          approach: String(data.get("approach") || ""),
          summary: String(data.get("summary") || ""),
          source_url: String(data.get("source_url") || "").trim(),
        });
      });
    }
    form.querySelector("#research-form-h").textContent = editing ? gettext("Edit the note") : gettext("Add a release you found");
    form.querySelector("#research-submit").textContent = editing ? gettext("Save changes") : gettext("Add note");
    form.querySelector("#research-cancel").hidden = !editing;
    form.querySelector("#research-form-error").textContent = formError;
    const waiting = form.dataset.clientId && pending.has(form.dataset.clientId);
    form.querySelector("#research-submit").disabled = Boolean(waiting);
    return form;
  }

  function field(id, label, control, hint) {
    if (hint) control.setAttribute("aria-describedby", `${id}-hint`);
    return h("div", { class: "field" }, h("label", { for: id }, label), hint ? h("p", { class: "help", id: `${id}-hint` }, hint) : null, control);
  }

  function startEdit(note) {
    editing = { id: note.id, version: note.version };
    const f = noteForm();
    f.elements.organisation.value = note.organisation;
    f.elements.month.value = String(note.month);
    f.elements.year.value = String(note.year);
    f.elements.approach.value = note.approach;
    f.elements.summary.value = note.summary;
    f.elements.source_url.value = note.source_url;
    render();
    f.elements.organisation.focus();
  }

  function cancelEdit() {
    editing = null;
    form.reset();
    formError = "";
    render();
  }

  function sourceLink(note) {
    if (!SAFE_URL.test(note.source_url)) return h("span", { class: "muted" }, gettext("(source not a web link)"));
    let host = note.source_url;
    try {
      host = new URL(note.source_url).host;
    } catch (err) {
      // shown as given
    }
    return h("a", { href: note.source_url, rel: "noopener noreferrer nofollow", target: "_blank" },
      interpolate(gettext("Source: %(host)s"), { host }, true), h("span", { class: "visually-hidden" }, " ", gettext("(opens in a new tab)")));
  }

  function dateLabel(note) {
    return `${MONTHS[note.month - 1] || "?"} ${note.year}`;
  }

  function sortedNotes() {
    return [...snap.research.notes].sort((a, b) => a.year - b.year || a.month - b.month || a.organisation.localeCompare(b.organisation) || a.id - b.id);
  }

  function noteList(notes) {
    if (!notes.length) return h("p", { class: "empty" }, gettext("No notes yet. Add the first release you found."));
    return h("ul", { class: "research-notes" }, notes.map((note) => h("li", { class: `research-note approach-${note.approach}` },
      h("p", { class: "note-head" },
        h("strong", {}, note.organisation), " · ", h("time", { datetime: `${note.year}-${String(note.month).padStart(2, "0")}` }, dateLabel(note)), " ",
        h("span", { class: `approach-chip approach-${note.approach}` }, APPROACHES[note.approach] || note.approach)),
      h("p", { class: "note-summary" }, note.summary),
      h("p", { class: "note-foot muted" }, sourceLink(note), " · ",
        note.by_facilitator ? gettext("by a facilitator") : interpolate(gettext("by %(name)s"), { name: memberName(note.author_id) }, true)),
      mayEdit(note) && !closed()
        ? h("p", { class: "draft-actions" },
          h("button", { type: "button", class: "button small secondary", onclick: () => startEdit(note) }, gettext("Edit"), noteOn(note)),
          h("button", {
            type: "button",
            class: "button small secondary",
            onclick: () => {
              const question = interpolate(gettext("Delete the note on %(organisation)s?"), { organisation: note.organisation }, true);
              if (window.confirm(question)) socket.send({ type: "research.note.delete", note_id: note.id });
            },
          }, gettext("Delete"), noteOn(note)))
        : null)));
  }

  function noteOn(note) {
    // Translators: read after "Edit" or "Delete" by screen readers: "Edit note on Example Lab".
    return h("span", { class: "visually-hidden" }, " ", interpolate(gettext("note on %(organisation)s"), note, true));
  }

  function timeline(notes) {
    if (!notes.length) return null;
    const months = [];
    for (const note of notes) {
      const key = `${note.year}-${note.month}`;
      let row = months[months.length - 1];
      if (!row || row.key !== key) {
        row = { key, label: dateLabel(note), notes: [] };
        months.push(row);
      }
      row.notes.push(note);
    }
    const years = [...new Set(notes.map((n) => n.year))];
    return h("section", { class: "research-timeline", "aria-labelledby": "timeline-h" },
      h("h3", { id: "timeline-h" }, gettext("Timeline")),
      h("ol", { class: "timeline" }, months.map((row) => h("li", { class: "timeline-row" },
        h("span", { class: "timeline-date" }, row.label),
        h("ul", { class: "timeline-notes" }, row.notes.map((n) => h("li", { class: `approach-chip approach-${n.approach}` },
          h("strong", {}, n.organisation), ` · ${APPROACHES[n.approach] || n.approach}`)))))),
      h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": gettext("Releases per year and approach") }, h("table", { class: "approach-table" },
        h("caption", {}, gettext("Releases per year and approach")),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, gettext("Year")), Object.values(APPROACHES).map((label) => h("th", { scope: "col" }, label)))),
        h("tbody", {}, years.map((year) => h("tr", {},
          h("th", { scope: "row" }, String(year)),
          Object.keys(APPROACHES).map((a) => h("td", {}, String(notes.filter((n) => n.year === year && n.approach === a).length)))))))));
  }

  let judgeForm = null;

  function judgement() {
    const research = snap.research;
    const tally = research.tally;
    const section = h("section", { class: "research-trend", "aria-labelledby": "trend-h" },
      h("h3", { id: "trend-h" }, gettext("Is the trend toward more open or more closed release?")));
    const total = tally.total || 0;
    section.append(h("ul", { class: "tally", "aria-label": gettext("Tally of judgements") }, Object.entries(TRENDS).map(([value, label]) =>
      h("li", { class: `tally-row trend-${value}` },
        h("span", { class: "tally-label" }, label),
        h("span", { class: "tally-bar", "aria-hidden": "true" }, h("span", { class: "tally-fill", dataset: { share: String(total ? Math.round((100 * tally[value]) / total) : 0) } })),
        h("span", { class: "tally-count" }, interpolate(gettext("%(count)s of %(total)s"), { count: tally[value], total }, true))))));
    for (const fill of section.querySelectorAll(".tally-fill")) fill.style.width = `${fill.dataset.share}%`;
    if (snap.me.role === "member" && !closed()) section.append(judgementForm());
    if (research.judgements.length) {
      section.append(h("ul", { class: "judgements" }, research.judgements.map((j) => h("li", {},
        h("strong", {}, memberName(j.member_id)), `: ${TRENDS[j.trend] || j.trend} — `, h("span", { class: "draft-text" }, j.reason)))));
    }
    return section;
  }

  function judgementForm() {
    const mine = snap.research.judgements.find((j) => j.member_id === snap.me.member_id);
    if (!judgeForm) {
      judgeForm = h("form", { class: "judge-form", novalidate: true },
        h("fieldset", {},
          h("legend", {}, gettext("Your judgement")),
          Object.entries(TRENDS).map(([value, label]) => h("label", { class: "check-inline" },
            h("input", { type: "radio", name: "trend", value, id: `trend-${value}` }), label))),
        h("div", { class: "field" },
          h("label", { for: "trend-reason" }, gettext("Your reason")),
          h("textarea", { id: "trend-reason", name: "reason", rows: 2, maxlength: 500 })),
        h("p", { class: "form-error", role: "alert", id: "trend-error" }),
        h("button", { type: "submit", class: "button", id: "trend-submit" }, gettext("Save my judgement")));
      judgeForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const data = new FormData(judgeForm);
        judgeError = "";
        send({ type: "research.judge", client_id: newClientId(), trend: String(data.get("trend") || ""), reason: String(data.get("reason") || "") });
      });
      if (mine) {
        const radio = judgeForm.querySelector(`#trend-${mine.trend}`);
        if (radio) radio.checked = true;
        judgeForm.elements.reason.value = mine.reason;
      }
    }
    judgeForm.querySelector("#trend-error").textContent = judgeError;
    return judgeForm;
  }

  function render() {
    if (!root || !snap) return;
    const notes = sortedNotes();
    const hadFocus = root.contains(document.activeElement) ? document.activeElement : null;
    clear(root);
    root.append(
      h("h2", { id: "research-h" }, gettext("Research: what real labs did")),
      h("p", { class: "help" }, gettext("Find releases of frontier models from the past two years: who released what, when, and how. Everyone in the room sees the board live.")),
      h("div", { class: "research-grid" },
        h("div", {}, closed() ? null : noteForm(), noteList(notes)),
        h("div", {}, timeline(notes), judgement())));
    if (hadFocus && root.contains(hadFocus) && document.activeElement !== hadFocus) hadFocus.focus({ preventScroll: true });
  }

  return { onSnapshot, applyEvent, handleAck, handleError, flush };
}

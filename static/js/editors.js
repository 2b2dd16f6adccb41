// A member's or solo learner's draft slots: the editor of each (its text, word count, cited
// cards, badges and feedback). room.js loads it for members of group rooms in drafting and for
// solo learners; facilitators never download it. The changes go through room.js's outbox
// (queueChange), and room.js keeps the textareas (ctx.editors) across renders so focus and undo
// survive and a conflict can put the saved text back.

import { h, words } from "./dom.js";
import { citationPicker } from "./citations.js";
import { gettext, interpolate } from "./i18n.js";

const TYPING_SEND_EVERY_MS = 2000;
let typingSentAt = 0;

let state, socket, outbox, editors, queueChange, serverItem, editorValue, draftBadges, feedbackList;

export function init(ctx) {
  ({ state, socket, outbox, editors, queueChange, serverItem, editorValue, draftBadges, feedbackList } = ctx);
}

export function makeEditor(target, { id, label, hint, kind, slot, positionId, max }) {
  let area = editors.get(target);
  const item = serverItem(target);
  const value = editorValue(target, item ? item.text : "");
  if (!area) {
    area = h("textarea", { id, rows: 4, maxlength: max, "aria-describedby": `${id}-hint ${id}-count` });
    area.addEventListener("input", () => {
      queueChange(target, { type: "draft.save", kind, slot, position_id: positionId, text: area.value, citations: currentCitations(target) });
      maybeTyping();
      const counter = document.getElementById(`${id}-count`);
      if (counter) counter.textContent = countText(area.value, max);
    });
    editors.set(target, area);
    area.value = value;
  } else if (document.activeElement !== area && area.value !== value) {
    area.value = value;
  } else if (!outbox.get(target) && area.value !== value) {
    area.value = value; // changed elsewhere and nothing of ours pending
  }
  const room = state.snap.room;
  const blocked = state.snap.me.muted || room.editing_locked || (item && item.hidden);
  area.readOnly = Boolean(blocked);
  return h("div", { class: "field editor" },
    h("label", { for: id }, label, item ? draftBadges(item) : null),
    h("p", { class: "help", id: `${id}-hint` }, hint),
    area,
    h("p", { class: "counter", id: `${id}-count` }, countText(area.value, max)),
    citationPicker({
      cards: state.snap.cards,
      selected: currentCitations(target),
      id: `${id}-cite`,
      disabled: blocked,
      onChange: (ids) => queueChange(target, { type: "draft.save", kind, slot, position_id: positionId, text: area.value, citations: ids }),
    }),
    item ? feedbackList(item) : null);
}

function currentCitations(target) {
  const entry = outbox.get(target);
  const pending = entry && (entry.next || entry.payload);
  if (pending && pending.citations) return pending.citations;
  const item = serverItem(target);
  return (item && item.citations) || [];
}

function maybeTyping() {
  const now = Date.now();
  if (now - typingSentAt > TYPING_SEND_EVERY_MS && socket.isOpen()) {
    typingSentAt = now;
    socket.send({ type: "typing" });
  }
}

function countText(text, max) {
  // Translators: under a draft editor, e.g. "12 words · 80/1000 characters".
  return interpolate(gettext("%(words)s words · %(length)s/%(max)s characters"), { words: words(text), length: text.length, max }, true);
}

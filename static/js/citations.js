// Evidence card citations (issue 6): a picker under each draft editor and the list of cited
// cards shown with a draft. Card texts are ours; still, everything becomes text nodes (dom.js).

import { h } from "./dom.js";
import { gettext, interpolate } from "./i18n.js";

const openPickers = new Set(); // ids of pickers the user opened (kept across re-renders)

export function sameIds(a, b) {
  if (a === undefined || b === undefined) return true; // unknown: not part of this change
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function citationPicker({ cards, selected, id, disabled, onChange }) {
  if (!cards || !cards.length) return null;
  const chosen = new Set(selected || []);
  const details = h("details", { class: "citation-picker", id, open: openPickers.has(id) },
    h("summary", {}, interpolate(gettext("Cite evidence cards (%(count)s chosen)"), { count: chosen.size }, true)));
  details.addEventListener("toggle", () => {
    if (details.open) openPickers.add(id);
    else openPickers.delete(id);
  });
  const list = h("ul", { class: "citation-options" });
  for (const card of cards) {
    const boxId = `${id}-card-${card.id}`;
    list.append(h("li", {},
      h("input", {
        type: "checkbox",
        id: boxId,
        checked: chosen.has(card.id),
        disabled: disabled ? true : null,
        onchange: (event) => {
          if (event.target.checked) chosen.add(card.id);
          else chosen.delete(card.id);
          onChange([...chosen].sort((a, b) => a - b));
        },
      }),
      h("label", { for: boxId }, h("strong", {}, card.title), h("span", { class: "muted" }, ` — ${card.body}`))));
  }
  details.append(list);
  return details;
}

export function citationList(cards, ids, briefingUrl) {
  if (!ids || !ids.length || !cards) return null;
  const cited = cards.filter((c) => ids.includes(c.id));
  if (!cited.length) return null;
  return h("p", { class: "citations" },
    h("span", { class: "citations-label" }, gettext("Cites:"), " "),
    cited.map((card, i) => [
      i ? ", " : null,
      briefingUrl ? h("a", { href: `${briefingUrl}#card-${card.id}`, class: "citation" }, card.title) : h("span", { class: "citation" }, card.title),
    ]));
}

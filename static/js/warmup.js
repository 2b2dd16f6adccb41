// The warm-up check: match each argument to the reason it supports, with select menus (keyboard
// and pointer alike). The server scores each try (the answers never reach the browser before);
// members see feedback on their latest try, facilitators see the class's results live.

import { h } from "./dom.js";
import { gettext, interpolate } from "./i18n.js";

let form = null; // kept across renders so choices and focus survive live updates
let resultEl = null;
let lastAnnounced = null;

function latestOf(attempts, memberId) {
  const mine = attempts.filter((a) => a.member_id === memberId);
  return mine.length ? mine[mine.length - 1] : null;
}

export function renderWarmup(ctx) {
  const snap = ctx.state.snap;
  const warmup = snap.warmup;
  if (!warmup) return null;
  const latest = latestOf(snap.warmup_attempts || [], snap.me.member_id);
  const open = ["lobby", "drafting"].includes(snap.room.phase);
  if (!form) {
    form = h("form", {
      class: "warmup-form",
      onsubmit: (event) => {
        event.preventDefault();
        submit(ctx);
      },
    });
    form.append(h("p", { class: "help", id: "warmup-intro" }, warmup.intro));
    warmup.items.forEach((item, index) => {
      const id = `warmup-${item.key}`;
      form.append(h("div", { class: "field warmup-item", dataset: { item: item.key } },
        h("label", { for: id }, h("span", { class: "warmup-number" }, `${index + 1}. `), item.text),
        h("select", { id, name: item.key, "aria-describedby": `${id}-result` },
          h("option", { value: "" }, gettext("Choose the reason it supports…")),
          warmup.reasons.map((r) => h("option", { value: r.key }, r.text))),
        h("p", { class: "warmup-result", id: `${id}-result` })));
    });
    resultEl = h("p", { class: "warmup-score", id: "warmup-score", role: "status", "aria-live": "polite" });
    form.append(h("p", { class: "actions" },
      h("button", { type: "submit", class: "button primary", id: "warmup-submit" }, gettext("Check my answers"))), resultEl);
    if (latest) {
      for (const [key, value] of Object.entries(latest.answers)) {
        const select = form.querySelector(`select[name="${key}"]`);
        if (select) select.value = value;
      }
    }
  }
  for (const el of form.querySelectorAll("select, button")) el.disabled = !open;
  showFeedback(latest);
  const perfect = latest && latest.score === latest.total;
  return h("details", { class: "card warmup", open: perfect ? null : true, "aria-labelledby": "warmup-h" },
    h("summary", { id: "warmup-h" }, gettext("Warm-up check"),
      latest ? ` — ${interpolate(gettext("latest: %(score)s of %(total)s"), { score: latest.score, total: latest.total }, true)}` : ""),
    form);
}

function showFeedback(latest) {
  for (const row of form.querySelectorAll(".warmup-item")) {
    const key = row.dataset.item;
    const out = row.querySelector(".warmup-result");
    row.classList.remove("right", "wrong");
    if (!latest || !(key in latest.results)) {
      out.textContent = "";
      continue;
    }
    const right = latest.results[key];
    row.classList.add(right ? "right" : "wrong");
    out.textContent = right
      ? interpolate(gettext("✓ Right. %(explanation)s"), { explanation: latest.explanations[key] || "" }, true)
      : gettext("✗ Not this one: think about which position the argument helps, and why. Try another reason.");
  }
  if (!latest) {
    resultEl.textContent = "";
    return;
  }
  const values = { score: latest.score, total: latest.total };
  const text = latest.score === latest.total
    ? interpolate(gettext("%(score)s of %(total)s: all matched. Well done."), values, true)
    : interpolate(gettext("%(score)s of %(total)s matched. Change the ones marked ✗ and check again."), values, true);
  if (resultEl.textContent !== text || lastAnnounced !== latest.id) {
    resultEl.textContent = text;
    lastAnnounced = latest.id;
  }
}

function submit(ctx) {
  const answers = {};
  let missing = 0;
  for (const select of form.querySelectorAll("select")) {
    if (select.value) answers[select.name] = select.value;
    else missing += 1;
  }
  if (missing) {
    resultEl.textContent = interpolate(gettext("Choose a reason for every argument (%(count)s left)."), { count: missing }, true);
    return;
  }
  if (!ctx.socket.isOpen()) {
    resultEl.textContent = gettext("Offline: your choices are kept here; check again when the connection is back.");
    return;
  }
  ctx.socket.send({ type: "warmup.submit", client_id: ctx.newClientId(), answers });
  resultEl.textContent = gettext("Checking…");
}

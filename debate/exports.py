"""The room's record as a document a teacher can hand in. User text is escaped for each format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from .models import Phase

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>#|~!])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])", re.MULTILINE)


def md_escape(text: str) -> str:
    """Escape user text so Markdown renders it literally: no links, emphasis, headings, lists or
    raw HTML can be smuggled into the record."""
    # A lone CR also ends a line in Markdown: normalise it so the line-start escapes apply.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # Escape the marker's punctuation (1\. rather than \1.): a backslash before a digit is no
    # escape in Markdown and would be printed in the record.
    return _MD_LINE_START.sub(lambda m: f"{m.group(1)}{m.group(2)[:-1]}\\{m.group(2)[-1]}", text)


def _block(text: str) -> str:
    """User text as a Markdown block: escaped, with line breaks kept."""
    return "  \n".join(md_escape(line) for line in text.strip().split("\n"))


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") + " UTC" if value else ""


def _draft_lines(draft: dict[str, Any], number: int | None) -> list[str]:
    lead = f"{number}. " if number is not None else ""
    indent = " " * len(lead)
    body = _block(draft["text"]).replace("\n", f"\n{indent}")
    byline = f"— {md_escape(draft['author'])}"
    if draft.get("cited_cards"):
        byline += " · cites: " + "; ".join(md_escape(title) for title in draft["cited_cards"])
    if not draft.get("selected", True):
        byline += " · _not selected for the case_"
    if draft.get("strongest_marks"):
        byline += f" · marked strongest by {draft['strongest_marks']}"
    if draft.get("needs_source"):
        byline += " · _needs a source_"
    if draft.get("hidden"):
        byline += " · _hidden by the facilitator_"
    lines = [f"{lead}{body}  ", f"{indent}{byline}", ""]
    for comment in draft.get("comments", []):
        label = "Rebuttal" if comment["kind"] == "rebuttal" else "Question"
        text = _block(comment["text"]).replace("\n", f"\n{indent}  ")
        lines += [f"{indent}- **{label}** by {md_escape(comment['author'])}: {text}"]
    if draft.get("comments"):
        lines.append("")
    return lines


def _md_header(data: dict[str, Any]) -> list[str]:
    room, scenario = data["room"], data["scenario"]
    stamp = (
        f"Finalized: {_when(data['finalized_at'])} (frozen record)"
        if data.get("finalized_at")
        else f"Exported: {timezone.now():%Y-%m-%d %H:%M} UTC"
    )
    return [
        f"# {md_escape(room['title'])}",
        "",
        f"Scenario: **{md_escape(scenario['title'])}**  ",
        f"Room code: {md_escape(room['code'])}  ",
        f"Phase: {Phase(room['phase']).label}  ",
        stamp,
        "",
        "## The decision",
        "",
        _block(scenario["question"]),
        "",
    ]


def _md_positions(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    several = data["room"]["rounds"] > 1
    for position in data["positions"]:
        names = ", ".join(md_escape(n) for n in position["team"]) or "no members"
        lines += [
            f"## {md_escape(position['name'])}",
            "",
            f"{'Team now' if several else 'Team'}: {names}",
            "",
        ]
        for rnd in position["rounds"]:
            prefix = f"Round {rnd['round']}: " if several else ""
            lines += [f"### {prefix}Arguments", ""]
            if not rnd["arguments"]:
                lines += ["_No arguments written._", ""]
            for number, draft in enumerate(rnd["arguments"], start=1):
                lines += _draft_lines(draft, number)
            lines += [f"### {prefix}Risk of our own position", ""]
            if not rnd["risks"]:
                lines += ["_No risk named._", ""]
            for draft in rnd["risks"]:
                lines += _draft_lines(draft, None)
    if data["room"].get("unassigned"):
        names = ", ".join(md_escape(n) for n in data["room"]["unassigned"])
        lines += [f"Members without a position: {names}", ""]
    return lines


def _md_vote(data: dict[str, Any]) -> list[str]:
    vote = data["vote"]
    if vote is None:  # solo rooms have no vote
        return []
    lines = ["## The committee's vote", ""]
    if not vote["closed"]:
        return [*lines, "_The vote is not closed; results stay hidden until it is._", ""]
    for count in vote["counts"]:
        lines.append(f"- {md_escape(count['position'])}: {count['count']} of {vote['total']}")
    lines.append("")
    if vote["tie"]:
        leaders = " and ".join(md_escape(name) for name in vote["leaders"])
        lines += [f"**Tie:** {leaders}", ""]
    elif vote["leaders"]:
        lines += [f"**Most votes:** {md_escape(vote['leaders'][0])}", ""]
    if vote["reasons"]:
        lines += ["Reasons given:", ""]
        for reason in vote["reasons"]:
            who = f"{md_escape(reason['voter'])} ({md_escape(reason['position'])})"
            lines.append(f"- {who}: {_block(reason['reason'])}")
        lines.append("")
    return lines


def _md_recommendation(data: dict[str, Any]) -> list[str]:
    rec = data["recommendation"]
    months = data["scenario"]["revisit_months"]
    lines = ["## Committee recommendation", ""]
    if rec is None or not (rec["decision"] or rec["rationale"].strip()):
        return [*lines, "_No recommendation recorded yet._", ""]
    decision = md_escape(rec["decision"]["name"]) if rec["decision"] else "_not chosen_"
    lines += [
        f"**Decision:** {decision}",
        "",
        "**Rationale**",
        "",
        _block(rec["rationale"]) or "_none_",
        "",
    ]
    if rec["citations"]:
        lines += ["**Arguments cited**", ""]
        for number, cited in enumerate(rec["citations"], start=1):
            source = f"{md_escape(cited['position'])}, {md_escape(cited['author'])}"
            body = _block(cited["text"]).replace("\n", "\n   ")
            lines += [f"{number}. {body}  ", f"   — {source}", ""]
    risk = rec["risk"]
    if risk["draft"] or risk["text"].strip():
        lines += ["**The risk we accept**", ""]
        if risk["draft"]:
            source = f"{md_escape(risk['draft']['position'])}, {md_escape(risk['draft']['author'])}"
            lines += [_block(risk["draft"]["text"]) + "  ", f"— {source}", ""]
        if risk["text"].strip():
            lines += [_block(risk["text"]), ""]
    lines += [
        f"**We will revisit this decision {months} months after release if:**",
        "",
        _block(rec["revisit_condition"]) or "_none_",
        "",
    ]
    if rec["chairs"]:
        lines += [f"Chairs: {', '.join(md_escape(n) for n in rec['chairs'])}", ""]
    return lines


def _md_signoffs(data: dict[str, Any]) -> list[str]:
    if not data["signoffs"]:
        return []
    lines = ["## Sign-off", ""]
    for s in data["signoffs"]:
        if s["stance"] == "dissent":
            lines.append(f"- {md_escape(s['member'])} dissents: {_block(s['text'])}")
        else:
            note = f": {_block(s['text'])}" if s["text"] else ""
            lines.append(f"- {md_escape(s['member'])} signs off (version {s['rec_version']}){note}")
    return [*lines, ""]


def _md_link(url: str) -> str:
    """A source address as an autolink, only for http(s) addresses (the services check this
    too); anything else is printed as escaped text."""
    if re.fullmatch(r"https?://[^\s<>]+", url):
        return f"<{url}>"
    return md_escape(url)


def _md_research(data: dict[str, Any]) -> list[str]:
    """The research board: the notes by month, the timeline by month and approach, the trend
    tally and each member's judgement. Nothing when the room did no research."""
    research = data["research"]
    if not research:
        return []
    lines = ["## Research: release policies of real labs", ""]
    if not research["notes"]:
        lines += ["_No research notes._", ""]
    month = None
    for note in research["notes"]:
        if note["when"] != month:
            if month is not None:
                lines.append("")
            month = note["when"]
            lines += [f"### {md_escape(month)}", ""]
        lines += [
            f"- **{md_escape(note['organisation'])}** ({md_escape(note['approach_label'])}): "
            f"{md_escape(note['summary'])}  ",
            f"  Source: {_md_link(note['source_url'])} · {md_escape(note['author'])}",
        ]
    if research["notes"]:
        lines.append("")
    if research["timeline"]:
        labels = [md_escape(a["label"]) for a in research["approaches"]]
        lines += [
            "### Timeline by month and approach",
            "",
            "| Month | " + " | ".join(labels) + " |",
            "|" + " --- |" * (len(labels) + 1),
        ]
        for row in research["timeline"]:
            counts = " | ".join(str(c) for c in row["counts"])
            lines.append(f"| {md_escape(row['label'])} | {counts} |")
        lines.append("")
    tally = research["tally"]
    lines += ["### The trend, as members judged it", ""]
    lines += [f"- {md_escape(c['label'])}: {c['count']}" for c in tally["counts"]]
    lines += [f"- Judgements: {tally['total']}", ""]
    for judgement in research["judgements"]:
        lines.append(
            f"- {md_escape(judgement['member'])}: {md_escape(judgement['trend_label'])} — "
            f"{_block(judgement['reason'])}"
        )
    if research["judgements"]:
        lines.append("")
    return lines


def _md_warmup(data: dict[str, Any]) -> list[str]:
    """The warm-up check's results (facilitators and solo learners only)."""
    warmup = data["warmup"]
    if not warmup:
        return []
    lines = ["## Warm-up check", "", "Per argument, at each member's latest try:", ""]
    for number, item in enumerate(warmup["items"], start=1):
        lines.append(f"{number}. {md_escape(item['text'])} — {item['right']} of {item['of']} right")
    lines += ["", "| Member | Latest | Best | Tries |", "| --- | --- | --- | --- |"]
    for row in warmup["members"]:
        total = row["total"]
        lines.append(
            f"| {md_escape(row['member'])} | {row['latest']}/{total} | {row['best']}/{total} "
            f"| {row['tries']} |"
        )
    return [*lines, ""]


# Renderers of the record's sections (selectors.RECORD_SECTIONS), in order; "room" and
# "scenario" make the header. A new section adds one entry here.
MARKDOWN_SECTIONS: list[tuple[str, Callable[[dict[str, Any]], list[str]]]] = [
    ("scenario", _md_header),
    ("positions", _md_positions),
    ("vote", _md_vote),
    ("recommendation", _md_recommendation),
    ("signoffs", _md_signoffs),
    ("research", _md_research),
    ("warmup", _md_warmup),
]


def record_markdown(*, data: dict[str, Any]) -> str:
    """The record (selectors.record_data, or the frozen copy) as Markdown, user text escaped."""
    lines: list[str] = []
    for key, render in MARKDOWN_SECTIONS:
        if key in data:
            lines += render(data)
    return "\n".join(lines).rstrip() + "\n"


def record_json(*, data: dict[str, Any]) -> str:
    """The record as JSON (docs/record-json.md). json.dumps escapes what JSON needs; "<", ">"
    and "&" are escaped too, so the file is also safe to embed in a page."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def bar_percent(count: int, total: int) -> int:
    return round(100 * count / total) if total else 0

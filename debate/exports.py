"""The room's record as a document a teacher can hand in. User text is escaped for each format."""

from __future__ import annotations

import re

from django.utils import timezone

from .models import DraftKind, ReleaseApproach, Trend
from .selectors import ResearchRecord, RoomRecord

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


def _byline(record: RoomRecord, draft) -> str:
    line = f"— {md_escape(record.name(draft.author_id))}"
    cited = list(draft.citations.all())
    if cited:
        line += " · cites: " + "; ".join(md_escape(card.title) for card in cited)
    if draft.needs_source:
        line += " · _needs a source_"
    if draft.hidden:
        line += " · _hidden by the facilitator_"
    return line


def _case_lines(record: RoomRecord, drafts: list, prefix: str) -> list[str]:
    arguments = [d for d in drafts if d.kind == DraftKind.ARGUMENT]
    risks = [d for d in drafts if d.kind == DraftKind.RISK]
    lines = [f"### {prefix}Arguments", ""]
    if not arguments:
        lines += ["_No arguments written._", ""]
    for number, draft in enumerate(arguments, start=1):
        body = _block(draft.text).replace("\n", "\n   ")
        lines += [f"{number}. {body}  ", f"   {_byline(record, draft)}", ""]
    lines += [f"### {prefix}Risk of our own position", ""]
    if not risks:
        lines += ["_No risk named._", ""]
    for draft in risks:
        lines += [_block(draft.text) + "  ", _byline(record, draft), ""]
    return lines


def record_markdown(*, record: RoomRecord, research: ResearchRecord | None = None) -> str:
    room = record.room
    scenario = room.scenario
    lines: list[str] = [
        f"# {md_escape(room.title)}",
        "",
        f"Scenario: **{md_escape(scenario.title)}**  ",
        f"Room code: {room.code}  ",
        f"Phase: {room.get_phase_display()}  ",
        f"Exported: {timezone.now():%Y-%m-%d %H:%M} UTC",
        "",
        "## The decision",
        "",
        _block(scenario.question),
        "",
    ]
    rounds = list(range(1, room.round + 1))
    for position in record.positions:
        members = record.members_by_position.get(position.pk, [])
        if room.is_solo:  # the learner argued every position
            members = [m for group in record.members_by_position.values() for m in group]
        names = ", ".join(md_escape(record.name(m.pk)) for m in members) or "no members"
        team_label = "Team now" if len(rounds) > 1 else "Team"
        lines += [f"## {md_escape(position.name)}", "", f"{team_label}: {names}", ""]
        for round_number in rounds:
            drafts = [
                d for d in record.drafts_by_position.get(position.pk, []) if d.round == round_number
            ]
            prefix = f"Round {round_number}: " if len(rounds) > 1 else ""
            lines += _case_lines(record, drafts, prefix)
    unassigned = record.members_by_position.get(None, [])
    if unassigned:
        names = ", ".join(md_escape(record.name(m.pk)) for m in unassigned)
        lines += [f"Members without a position: {names}", ""]
    lines += ["## Committee recommendation", ""]
    rec = record.recommendation
    if rec is None or not (rec.decision_id or rec.rationale.strip()):
        lines += ["_No recommendation recorded yet._", ""]
    else:
        decision = md_escape(rec.decision.name) if rec.decision else "_not chosen_"
        lines += [
            f"**Decision:** {decision}",
            "",
            "**Rationale**",
            "",
            _block(rec.rationale) or "_none_",
            "",
            f"**We will revisit this decision {scenario.revisit_months} months after release if:**",
            "",
            _block(rec.revisit_condition) or "_none_",
            "",
        ]
    if research is not None:
        lines += research_markdown_lines(research)
    return "\n".join(lines).rstrip() + "\n"


def warmup_markdown(*, summary: dict, names: dict[int, str]) -> str:
    """The warm-up check's results (selectors.warmup_summary) as a record section; empty when
    nobody tried it."""
    if not summary["members"]:
        return ""
    lines = ["", "## Warm-up check", "", "Per argument, at each member's latest try:", ""]
    for number, item in enumerate(summary["items"], start=1):
        lines.append(f"{number}. {md_escape(item['text'])} — {item['right']} of {item['of']} right")
    lines += ["", "| Member | Latest | Best | Tries |", "| --- | --- | --- | --- |"]
    for row in summary["members"]:
        name = md_escape(names.get(row["member_id"], "—"))
        total = row["total"]
        lines.append(
            f"| {name} | {row['latest']}/{total} | {row['best']}/{total} | {row['tries']} |"
        )
    return "\n".join(lines) + "\n"


def _md_link(url: str) -> str:
    """A source address as an autolink, only for http(s) addresses (the services check this
    too); anything else is printed as escaped text."""
    if re.fullmatch(r"https?://[^\s<>]+", url):
        return f"<{url}>"
    return md_escape(url)


def research_markdown_lines(research: ResearchRecord) -> list[str]:
    """The research section: the notes by date, the timeline by approach, the trend tally and
    each member's judgement."""
    approaches = dict(ReleaseApproach.choices)
    trends = dict(Trend.choices)
    lines = ["## Research: release policies of real labs", ""]
    if not research.notes:
        lines += ["_No research notes._", ""]
    for row in research.timeline:
        lines += [f"### {row['label']}", ""]
        for note in row["notes"]:
            lines += [
                f"- **{md_escape(note.organisation)}** ({approaches.get(note.approach, '?')}): "
                f"{md_escape(note.summary)}  ",
                f"  Source: {_md_link(note.source_url)} · {md_escape(research.author(note))}",
            ]
        lines.append("")
    if research.timeline:
        years = sorted({row["year"] for row in research.timeline})
        header = "| Year | " + " | ".join(str(label) for label in approaches.values()) + " |"
        lines += ["### Timeline by approach", "", header]
        lines.append("|" + " --- |" * (len(approaches) + 1))
        for year in years:
            counts = [
                sum(1 for n in research.notes if n.year == year and n.approach == key)
                for key in approaches
            ]
            lines.append(f"| {year} | " + " | ".join(str(c) for c in counts) + " |")
        lines.append("")
    tally = research.tally
    lines += ["### The trend, as members judged it", ""]
    lines += [f"- {label}: {tally.get(key, 0)}" for key, label in trends.items()]
    lines += [f"- Judgements: {tally.get('total', 0)}", ""]
    for judgement in research.judgements:
        lines += [
            f"- {md_escape(research.name(judgement.member_id))}: "
            f"{trends.get(judgement.trend, '?')} — {md_escape(judgement.reason)}"
        ]
    if research.judgements:
        lines.append("")
    return lines

"""Template helpers for Quorum's own texts."""

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def briefing_html(text: str) -> SafeString:
    """Our scenario texts as HTML: blank lines separate paragraphs, lines starting with "- " form a
    list. Every piece of text is escaped first; only the <p>/<ul>/<li> structure is ours."""
    blocks = [b.strip() for b in (text or "").replace("\r\n", "\n").split("\n\n") if b.strip()]
    parts: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        if all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{escape(line[2:])}</li>" for line in lines)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(f"<p>{'<br>'.join(escape(line) for line in lines)}</p>")
    return mark_safe("".join(parts))  # noqa: S308 - every text part is escaped above

"""Downloads of the classroom app: participation reports as CSV, a class's records as a ZIP.

CSV files open correctly in spreadsheet programs: UTF-8 with a byte order mark (Excel reads
UTF-8 only with it), CRLF line ends, and every text cell that a spreadsheet would take for a
formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from debate import exports as debate_exports
from debate import selectors as debate_selectors

from .models import ClassGroup
from .selectors import ClassReport, Report, class_report, roster

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def csv_safe(value: Any) -> Any:
    """A cell as a spreadsheet will show it literally. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(str(h)) for h in header])
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue()


def room_report_csv(*, report: Report) -> str:
    header = [_("Name"), _("On the class roster")] + [str(c.label) for c in report.columns]
    rows = (
        [row.name, _("yes") if row.student_id else _("no")]
        + [row.values.get(c.key, 0) for c in report.columns]
        for row in report.rows
    )
    return csv_text(header, rows)


def class_report_csv(*, report: ClassReport) -> str:
    """One row per student (or guest) per room: sums and pivots are the spreadsheet's job."""
    columns = report.by_room.columns
    header = [_("Name"), _("Room"), _("Date"), _("On the class roster")] + [
        str(c.label) for c in columns
    ]
    rows = (
        [
            row.name,
            row.room.title if row.room else "",
            f"{row.room.created_at:%Y-%m-%d}" if row.room else "",
            _("no") if row.guest else _("yes"),
        ]
        + [row.values.get(c.key, 0) for c in columns]
        for row in report.by_room.rows
    )
    return csv_text(header, rows)


def roster_csv(*, classgroup: ClassGroup) -> str:
    header = [_("Name"), _("Joined"), _("Has an account"), _("Rooms attended")]
    rows = (
        [s.display_name, f"{s.joined_at:%Y-%m-%d}", _("yes") if s.has_account else _("no"),
         s.rooms_attended]
        for s in roster(classgroup=classgroup)
    )  # fmt: skip
    return csv_text(header, rows)


def class_archive_zip(*, classgroup: ClassGroup) -> bytes:
    """Everything the class holds: each room's record (Markdown), the roster and the
    participation report (CSV)."""
    buffer = io.BytesIO()
    stem = slugify(classgroup.name) or "class"
    report = class_report(classgroup=classgroup)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for room in report.rooms:
            # The class's facilitators read the facilitators' record (frozen once finalized).
            viewer = debate_selectors.Viewer(room=room, member=None, is_facilitator=True)
            data = debate_selectors.record_for(viewer=viewer, room=room)
            name = f"{stem}/rooms/{room.created_at:%Y-%m-%d}-{room.code.lower()}-{room.pk}.md"
            archive.writestr(name, debate_exports.record_markdown(data=data))
        archive.writestr(f"{stem}/roster.csv", roster_csv(classgroup=classgroup))
        archive.writestr(f"{stem}/participation.csv", class_report_csv(report=report))
        archive.writestr(
            f"{stem}/README.txt",
            _("Exported from Quorum on %(when)s UTC: %(rooms)d rooms.")
            % {"when": f"{timezone.now():%Y-%m-%d %H:%M}", "rooms": len(report.rooms)}
            + "\n",
        )
    return buffer.getvalue()

"""Participation report columns. A column is one definition here, computed by one query over a
set of members (so the report's query count does not grow with the number of members).

To add a column (rebuttals, votes, research notes, …), append a `Column` whose `compute` takes
the members queryset and returns {member id: number} from one aggregate query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from debate.models import (
    Comment,
    CommentKind,
    Draft,
    DraftKind,
    Feedback,
    Member,
    ResearchNote,
    Vote,
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str | Promise
    help: str | Promise
    compute: Callable[[QuerySet[Member]], dict[int, int]]


def _count_by_author(queryset) -> dict[int, int]:
    return dict(queryset.values("author_id").annotate(n=Count("id")).values_list("author_id", "n"))


def _written(members: QuerySet[Member]):
    """Drafts with text, by these members (every round, hidden ones included)."""
    return Draft.objects.filter(author__in=members).exclude(text="")


def drafts_count(members: QuerySet[Member]) -> dict[int, int]:
    return _count_by_author(_written(members))


def risks_count(members: QuerySet[Member]) -> dict[int, int]:
    return _count_by_author(_written(members).filter(kind=DraftKind.RISK))


def words_count(members: QuerySet[Member]) -> dict[int, int]:
    """Words written: one query; texts are split in Python (word boundaries are not portable
    SQL between SQLite and PostgreSQL)."""
    totals: dict[int, int] = {}
    for author_id, text in _written(members).values_list("author_id", "text").iterator():
        totals[author_id] = totals.get(author_id, 0) + len(text.split())
    return totals


def feedback_count(members: QuerySet[Member]) -> dict[int, int]:
    """Facilitator notes received on the member's drafts."""
    return dict(
        Feedback.objects.filter(draft__author__in=members)
        .values("draft__author_id")
        .annotate(n=Count("id"))
        .values_list("draft__author_id", "n")
    )


def rebuttals_count(members: QuerySet[Member]) -> dict[int, int]:
    return _count_by_author(Comment.objects.filter(author__in=members, kind=CommentKind.REBUTTAL))


def questions_count(members: QuerySet[Member]) -> dict[int, int]:
    return _count_by_author(Comment.objects.filter(author__in=members, kind=CommentKind.QUESTION))


def votes_count(members: QuerySet[Member]) -> dict[int, int]:
    """Votes cast in the committee vote (one per member and room at most)."""
    return dict(
        Vote.objects.filter(member__in=members)
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )


def research_notes_count(members: QuerySet[Member]) -> dict[int, int]:
    """Research notes the member wrote (those a facilitator wrote count for nobody)."""
    return _count_by_author(ResearchNote.objects.filter(author__in=members))


COLUMNS: list[Column] = [
    Column("drafts", _("Drafts"), _("Argument and risk slots with text"), drafts_count),
    Column("words", _("Words"), _("Words written in drafts"), words_count),
    Column("risks", _("Risks named"), _("Risks of their own position"), risks_count),
    Column("feedback", _("Feedback"), _("Facilitator notes received"), feedback_count),
    Column("rebuttals", _("Rebuttals"), _("Rebuttals written in the review"), rebuttals_count),
    Column("questions", _("Questions"), _("Questions asked in the review"), questions_count),
    Column("votes", _("Votes"), _("Votes cast in the committee vote"), votes_count),
    Column(
        "research",
        _("Research notes"),
        _("Notes added to the research board"),
        research_notes_count,
    ),
]

"""Close and archive rooms with no activity for QUORUM_ARCHIVE_AFTER_DAYS days.

Run it daily from cron or a systemd timer (docs/deploy.md). It is idempotent."""

from django.core.management.base import BaseCommand, CommandError

from debate import services
from debate.errors import DomainError


class Command(BaseCommand):
    help = "Close and archive rooms that have had no activity for a number of days."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Inactivity in days (default: the QUORUM_ARCHIVE_AFTER_DAYS setting).",
        )

    def handle(self, *args, days=None, **options):
        try:
            archived = services.rooms_archive_stale(days=days)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"archived {len(archived)} room(s)")

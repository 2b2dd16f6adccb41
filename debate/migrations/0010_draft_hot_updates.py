"""A typing save rewrites its draft row in place (issue 8): no index on Draft.seq, and room on
each page for the new version of a row.

An index on a column an UPDATE changes makes PostgreSQL write a new entry in every index of the
table for every update (no heap-only tuple), so each save touched eight pages; after each
checkpoint the first touch of each page also writes the whole page to the WAL. The room's
highest draft number is read through the room index instead (a room has at most a few hundred
drafts). fillfactor 70 leaves each page 30 % free, so the new version fits beside the old one.
The setting applies to pages written from now on; SQLite has neither."""

from django.db import migrations


def leave_room_for_updates(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE debate_draft SET (fillfactor = 70)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE debate_draft RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("debate", "0009_perf"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="draft", name="draft_room_seq"),
        migrations.RunPython(leave_room_for_updates, fill_pages),
    ]

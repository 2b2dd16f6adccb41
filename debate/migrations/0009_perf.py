"""The room's sequence number off the room row for draft saves (issue 8): a save writes its
number on the draft (Draft.seq), and Room.seq is the greater of Room.event_seq and the drafts'.
"""

from django.db import migrations, models




class Migration(migrations.Migration):
    dependencies = [
        ("debate", "0008_room_class_member_student"),
    ]

    operations = [
        migrations.RenameField(model_name="room", old_name="seq", new_name="event_seq"),
        migrations.AddField(
            model_name="draft",
            name="seq",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="draft",
            index=models.Index(fields=["room", "seq"], name="draft_room_seq"),
        ),
    ]

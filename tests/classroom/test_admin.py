"""The operator's admin: lists, search and filters work; secrets never show; what would break
invariants is read-only or refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from classroom import services
from classroom.models import ClassGroup, Student
from debate import services as debate_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    admin = get_user_model().objects.create_superuser(username="operator", password="x-Op-123456")
    client.force_login(admin)
    return client


def test_admin_lists_search_and_filters(operator, klass, class_room):
    creds = services.student_join(code=klass.code, display_name="Ana")
    debate_services.member_join(code=class_room.code, display_name="", student=creds.student)
    pages = [
        reverse("admin:classroom_classgroup_changelist") + "?q=ethics",
        reverse("admin:classroom_classgroup_changelist") + f"?q={klass.code}",
        reverse("admin:classroom_student_changelist") + f"?classgroup__id__exact={klass.pk}",
        reverse("admin:classroom_student_changelist") + "?q=ana",
        reverse("admin:debate_room_changelist") + "?archived_at__isempty=1&q=ethics",
        reverse("admin:debate_member_changelist") + "?student__isempty=0",
        reverse("admin:classroom_classgroup_change", args=[klass.pk]),
        reverse("admin:classroom_student_change", args=[creds.student.pk]),
    ]
    for url in pages:
        response = operator.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert creds.student.pin_hash not in html and creds.student.rejoin_token_hash not in html
    assert "Ana" in operator.get(pages[3]).content.decode()
    assert class_room.title in operator.get(pages[4]).content.decode()


def test_admin_refuses_what_would_break_invariants(operator, klass):
    creds = services.student_join(code=klass.code, display_name="Ana")
    assert operator.get(reverse("admin:classroom_classgroup_add")).status_code == 403
    assert operator.get(reverse("admin:classroom_student_add")).status_code == 403
    delete = reverse("admin:classroom_classgroup_delete", args=[klass.pk])
    assert operator.post(delete, {"post": "yes"}).status_code == 403
    # The code and owner are read-only: a posted change leaves them as they were.
    change = reverse("admin:classroom_classgroup_change", args=[klass.pk])
    inline = {
        "students-TOTAL_FORMS": "1",
        "students-INITIAL_FORMS": "1",
        "students-MIN_NUM_FORMS": "0",
        "students-MAX_NUM_FORMS": "1000",
        "students-0-id": str(creds.student.pk),
        "students-0-classgroup": str(klass.pk),
    }
    response = operator.post(change, {"name": "Renamed", "code": "HACKED", **inline})
    assert response.status_code == 302, response.content.decode()[-2000:]
    klass.refresh_from_db()
    assert klass.name == "Renamed" and klass.code != "HACKED"
    student_change = reverse("admin:classroom_student_change", args=[creds.student.pk])
    operator.post(student_change, {"display_name": "Changed"})
    assert Student.objects.get().display_name == "Ana"
    assert ClassGroup.objects.count() == 1

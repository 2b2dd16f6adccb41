"""Class pages through the real URL conf: facilitators' classes, reports, exports and deletion;
students joining once and being recognised; isolation between facilitators (404, not 403)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from classroom import services
from classroom.models import ClassGroup, Student
from debate import services as debate_services
from debate.models import Member, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(client, facilitator):
    client.force_login(facilitator)
    return client


@pytest.fixture
def rival(other_facilitator):
    client = Client()
    client.force_login(other_facilitator)
    return client


def student_client(klass, name="Ana") -> tuple[Client, Student]:
    client = Client()
    response = client.post(
        reverse("classroom:student_join"), {"code": klass.code, "display_name": name}
    )
    assert response.status_code == 302
    return client, Student.objects.get(classgroup=klass, display_name=name)


def counts():
    return (
        ClassGroup.objects.count(),
        Student.objects.count(),
        Room.objects.count(),
        Member.objects.count(),
    )


# --- facilitators ---------------------------------------------------------------------------


def test_create_class_and_see_it_everywhere(teacher, scenario):
    response = teacher.post(reverse("classroom:classes"), {"name": "Year 11 <b>Ethics</b>"})
    klass = ClassGroup.objects.get()
    assert response["Location"] == reverse("classroom:class_detail", args=[klass.pk])
    page = teacher.get(response["Location"]).content.decode()
    assert klass.code in page
    assert "Year 11 &lt;b&gt;Ethics&lt;/b&gt;" in page and "<b>Ethics" not in page
    dashboard = teacher.get(reverse("debate:home") + f"?class={klass.pk}").content.decode()
    assert "My classes" in dashboard and "Year 11 &lt;b&gt;" in dashboard
    assert re.search(rf'<option value="{klass.pk}" selected>', dashboard)
    created = teacher.post(
        reverse("debate:room_create"),
        {"scenario": scenario.pk, "title": "Week 1", "classgroup": klass.pk},
    )
    assert created.status_code == 302
    room = Room.objects.get()
    assert room.classgroup == klass
    assert (
        "Week 1" in teacher.get(reverse("classroom:class_detail", args=[klass.pk])).content.decode()
    )


def test_empty_class_name_is_refused(teacher):
    response = teacher.post(reverse("classroom:classes"), {"name": "  "})
    assert response.status_code == 400
    assert not ClassGroup.objects.exists()


def test_room_create_with_someone_elses_class(rival, scenario, klass):
    before = counts()
    response = rival.post(
        reverse("debate:room_create"), {"scenario": scenario.pk, "classgroup": klass.pk}
    )
    assert response.status_code == 302  # back to the dashboard with an error: not a choice
    assert counts() == before


def test_class_page_lists_rooms_past_and_present(teacher, klass, class_room, scenario, facilitator):
    past = debate_services.room_create(
        owner=facilitator, scenario=scenario, title="Old debate", classgroup=klass
    )
    Room.objects.filter(pk=past.pk).update(phase="closed")
    page = teacher.get(reverse("classroom:class_detail", args=[klass.pk])).content.decode()
    open_part, past_part = page.split("Past rooms")
    assert "Week 1" in open_part and "Old debate" in past_part


def test_reports_and_downloads(teacher, klass, class_room):
    client, _ana = student_client(klass)
    client.post(reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk]))
    page = teacher.get(reverse("classroom:class_report", args=[klass.pk]))
    assert page.status_code == 200 and "Ana" in page.content.decode()
    assert 'class="bar bar-' in page.content.decode()
    csv_response = teacher.get(reverse("classroom:class_report_csv", args=[klass.pk]))
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in csv_response["Content-Disposition"]
    room_csv = teacher.get(reverse("classroom:room_report_csv", args=[class_room.pk]))
    assert b"Ana" in room_csv.content
    assert teacher.get(reverse("classroom:room_report", args=[class_room.pk])).status_code == 200
    archive = teacher.get(reverse("classroom:class_export", args=[klass.pk]))
    assert archive["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert any(n.endswith("roster.csv") for n in names)
    assert any(n.endswith("participation.csv") for n in names)
    assert any(f"{class_room.code.lower()}-{class_room.pk}.md" in n for n in names)


def test_delete_room_after_confirmation(teacher, class_room):
    url = reverse("classroom:room_delete", args=[class_room.pk])
    assert "is still open" in teacher.get(url).content.decode()
    before = counts()
    teacher.post(url, {"confirm": "yes"})  # still open: refused
    assert counts() == before
    Room.objects.filter(pk=class_room.pk).update(phase="closed")
    page = teacher.get(url).content.decode()
    assert reverse("debate:room_export_md", args=[class_room.pk]) in page
    teacher.post(url, {})  # not confirmed
    assert counts() == before
    response = teacher.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert not Room.objects.filter(pk=class_room.pk).exists()


def test_delete_class_after_confirmation(teacher, klass, class_room):
    url = reverse("classroom:class_delete", args=[klass.pk])
    student_client(klass)
    assert reverse("classroom:class_export", args=[klass.pk]) in teacher.get(url).content.decode()
    before = counts()
    teacher.post(url, {"confirm": "yes"})  # a room is open
    assert counts() == before
    Room.objects.filter(pk=class_room.pk).update(phase="closed")
    teacher.post(url, {"confirm": "no"})
    assert counts() == before
    assert teacher.post(url, {"confirm": "yes"})["Location"] == reverse("classroom:classes")
    assert counts() == (0, 0, 0, 0)


def test_delete_needs_csrf(facilitator, klass, class_room):
    Room.objects.filter(pk=class_room.pk).update(phase="closed")
    client = Client(enforce_csrf_checks=True)
    client.force_login(facilitator)
    before = counts()
    for url in (
        reverse("classroom:class_delete", args=[klass.pk]),
        reverse("classroom:room_delete", args=[class_room.pk]),
    ):
        assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert counts() == before


def test_reset_shows_new_secrets_once(teacher, klass):
    _client, ana = student_client(klass)
    old_hash = ana.pin_hash
    response = teacher.post(reverse("classroom:class_student_reset", args=[klass.pk, ana.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    pin = re.search(r'class="secret-pin"[^>]*>(\d{6})<', response.content.decode()).group(1)
    ana.refresh_from_db()
    assert ana.pin_hash != old_hash
    assert services.student_rejoin_by_pin(code=klass.code, display_name="Ana", pin=pin)


# --- isolation: another facilitator gets 404 on everything ---------------------------------


def facilitator_urls(klass, room, student):
    return [
        ("get", reverse("classroom:class_detail", args=[klass.pk])),
        ("get", reverse("classroom:class_report", args=[klass.pk])),
        ("get", reverse("classroom:class_report_csv", args=[klass.pk])),
        ("get", reverse("classroom:class_export", args=[klass.pk])),
        ("get", reverse("classroom:class_delete", args=[klass.pk])),
        ("post", reverse("classroom:class_delete", args=[klass.pk])),
        ("post", reverse("classroom:class_coowner_add", args=[klass.pk])),
        ("post", reverse("classroom:class_student_reset", args=[klass.pk, student.pk])),
        ("get", reverse("classroom:class_student_remove", args=[klass.pk, student.pk])),
        ("post", reverse("classroom:class_student_remove", args=[klass.pk, student.pk])),
        ("get", reverse("classroom:room_report", args=[room.pk])),
        ("get", reverse("classroom:room_report_csv", args=[room.pk])),
        ("get", reverse("classroom:room_delete", args=[room.pk])),
        ("post", reverse("classroom:room_delete", args=[room.pk])),
        ("get", reverse("debate:room_present", args=[room.pk])),
        ("get", reverse("debate:room_export_md", args=[room.pk])),
    ]


def test_other_facilitator_gets_404_everywhere(rival, other_facilitator, klass, class_room):
    Room.objects.filter(pk=class_room.pk).update(phase="closed")
    _client, ana = student_client(klass)
    before = counts(), list(Student.objects.values_list("pin_hash", flat=True))
    for method, url in facilitator_urls(klass, class_room, ana):
        data = {"confirm": "yes", "username": other_facilitator.username}
        response = getattr(rival, method)(url, data) if method == "post" else rival.get(url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert (counts(), list(Student.objects.values_list("pin_hash", flat=True))) == before
    assert not klass.coowners.exists()
    # Their own pages do not list it either.
    assert klass.code not in rival.get(reverse("classroom:classes")).content.decode()
    assert klass.code not in rival.get(reverse("debate:home")).content.decode()
    assert class_room.title not in rival.get(reverse("debate:home")).content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, klass, class_room):
    _client, ana = student_client(klass)
    for method, url in facilitator_urls(klass, class_room, ana)[:14]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_student_cannot_see_facilitator_pages(klass, class_room):
    client, _ana = student_client(klass)
    client.post(reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk]))
    assert client.get(reverse("classroom:room_report", args=[class_room.pk])).status_code == 302


def test_coowner_sees_the_class(teacher, rival, klass, other_facilitator, class_room):
    teacher.post(
        reverse("classroom:class_coowner_add", args=[klass.pk]),
        {"username": other_facilitator.username},
    )
    assert rival.get(reverse("classroom:class_detail", args=[klass.pk])).status_code == 200
    assert rival.get(reverse("classroom:room_report", args=[class_room.pk])).status_code == 200


# --- students -------------------------------------------------------------------------------


def test_student_joins_once_and_sees_secrets_once(klass):
    client, _ana = student_client(klass)
    home = reverse("classroom:student_home", args=[klass.pk])
    first = client.get(home)
    assert first["Cache-Control"] == "no-store"
    html = first.content.decode()
    pin = re.search(r'class="secret-pin"[^>]*>(\d{6})<', html).group(1)
    link = re.search(r'class="secret-link"><a href="([^"]+)"', html).group(1)
    assert "/class/rejoin/" in link
    assert 'class="secret-pin"' not in client.get(home).content.decode()  # shown once
    assert services.student_rejoin_by_pin(code=klass.code, display_name="Ana", pin=pin)
    # Another device: the link asks first (GET), then signs in (POST).
    other = Client()
    path = link.split("testserver", 1)[1]
    assert other.get(home).status_code == 302
    assert other.get(path).status_code == 200
    assert other.get(home).status_code == 302  # a GET signs nobody in
    assert other.post(path)["Location"] == home
    assert other.get(home).status_code == 200


def test_student_is_recognised_in_the_class_rooms(klass, class_room, scenario, facilitator):
    client, ana = student_client(klass)
    week2 = debate_services.room_create(
        owner=facilitator, scenario=scenario, title="Week 2", classgroup=klass
    )
    # The one-click way, from the class page.
    response = client.post(reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk]))
    assert response["Location"] == reverse("debate:room", args=[class_room.pk])
    assert client.get(response["Location"]).status_code == 200
    # The room code way: the name is filled in, and an empty or different name is ignored.
    page = client.get(reverse("debate:join_code", args=[week2.code])).content.decode()
    assert 'value="Ana"' in page and "you join as Ana" in page and "readonly" in page
    response = client.post(reverse("debate:join"), {"code": week2.code, "display_name": ""})
    assert response["Location"] == reverse("debate:room", args=[week2.pk])
    members = Member.objects.filter(student=ana).order_by("room_id")
    assert [(m.room_id, m.display_name) for m in members] == [
        (class_room.pk, "Ana"),
        (week2.pk, "Ana"),
    ]
    # Twice: the same member.
    client.post(reverse("classroom:student_room_enter", args=[klass.pk, week2.pk]))
    assert Member.objects.filter(student=ana).count() == 2


def test_enter_refusals(klass, class_room, scenario, facilitator, other_facilitator):
    client, _ana = student_client(klass)
    theirs = services.classgroup_create(owner=other_facilitator, name="Theirs")
    their_room = debate_services.room_create(
        owner=other_facilitator, scenario=scenario, classgroup=theirs
    )
    before = counts()
    # Another class's room through my class, or through theirs (not my class).
    for klass_id, room_id in ((klass.pk, their_room.pk), (theirs.pk, their_room.pk)):
        url = reverse("classroom:student_room_enter", args=[klass_id, room_id])
        assert client.post(url).status_code == 404
    assert (
        client.get(
            reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk])
        ).status_code
        == 405
    )
    Room.objects.filter(pk=class_room.pk).update(phase="closed")
    client.post(reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk]))
    assert counts() == before
    # Nobody in the session: 404.
    assert (
        Client()
        .post(reverse("classroom:student_room_enter", args=[klass.pk, class_room.pk]))
        .status_code
        == 404
    )


def test_pin_rejoin_page_throttles(klass):
    _client, _ana = student_client(klass)
    client = Client()
    url = reverse("classroom:rejoin_pin")
    for _ in range(services.MAX_FAILED_ATTEMPTS):
        response = client.post(url, {"code": klass.code, "display_name": "Ana", "pin": "abcdef"})
        assert response.status_code == 400
    response = client.post(url, {"code": klass.code, "display_name": "Ana", "pin": "abcdef"})
    assert "Too many wrong tries" in response.content.decode()


def test_student_account_and_signin(klass):
    client, ana = student_client(klass)
    response = client.post(
        reverse("classroom:student_account", args=[klass.pk]),
        {"username": "ana.l", "password": "Orbit-Lantern-77"},
    )
    assert response.status_code == 302
    ana.refresh_from_db()
    assert ana.username == "ana.l"
    other = Client()
    response = other.post(
        reverse("classroom:student_signin"), {"username": "ANA.L", "password": "Orbit-Lantern-77"}
    )
    assert response["Location"] == reverse("classroom:student_home", args=[klass.pk])
    bad = Client().post(
        reverse("classroom:student_signin"), {"username": "ana.l", "password": "nope-nope-1"}
    )
    assert bad.status_code == 400


def test_account_form_needs_a_session_student(klass):
    before = counts()
    response = Client().post(
        reverse("classroom:student_account", args=[klass.pk]),
        {"username": "ana.l", "password": "Orbit-Lantern-77"},
    )
    assert response.status_code == 404
    assert counts() == before


def test_class_join_refusals(klass):
    client = Client()
    client.post(reverse("classroom:student_join"), {"code": klass.code, "display_name": "Ana"})
    before = counts()
    for data in (
        {"code": "NOPE99", "display_name": "Bo"},
        {"code": klass.code, "display_name": ""},
        {"code": klass.code, "display_name": "x" * 41},
        {"code": klass.code, "display_name": "ana"},
    ):
        assert Client().post(reverse("classroom:student_join"), data).status_code == 400
    assert counts() == before


def test_remove_student_asks_first(teacher, klass):
    _client, ana = student_client(klass)
    url = reverse("classroom:class_student_remove", args=[klass.pk, ana.pk])
    page = teacher.get(url)
    assert page.status_code == 200 and "Take Ana off the roster?" in page.content.decode()
    assert Student.objects.filter(pk=ana.pk).exists()
    assert teacher.post(url)["Location"] == reverse("classroom:class_detail", args=[klass.pk])
    assert not Student.objects.filter(pk=ana.pk).exists()
    assert teacher.get(url).status_code == 404  # twice: gone

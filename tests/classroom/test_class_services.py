"""Classes, rosters and students' credentials: the services, each refusal changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from classroom import services
from classroom.models import ClassGroup, Student
from debate import services as debate_services
from debate.errors import Conflict, Forbidden, Invalid, NotFound, WrongPhase
from debate.models import Member, Room

pytestmark = pytest.mark.django_db


def state():
    """Everything a refused write must leave as it was."""
    return (
        list(ClassGroup.objects.values_list("pk", "name", "code", "owner_id").order_by("pk")),
        list(ClassGroup.coowners.through.objects.values_list("pk", flat=True).order_by("pk")),
        list(
            Student.objects.values_list(
                "pk", "display_name", "username", "password", "rejoin_token_hash", "pin_hash"
            ).order_by("pk")
        ),
        list(Member.objects.values_list("pk", "room_id", "student_id").order_by("pk")),
        list(Room.objects.values_list("pk", "phase", "classgroup_id").order_by("pk")),
    )


# --- classes --------------------------------------------------------------------------------


def test_class_create_gives_a_code(facilitator):
    klass = services.classgroup_create(owner=facilitator, name="  Year 11   Ethics ")
    assert klass.name == "Year 11 Ethics"
    assert len(klass.code) == 6
    assert klass.owner == facilitator


@pytest.mark.parametrize("name", ["", "   ", None, 12, "x" * 121])
def test_class_create_refuses_bad_names(facilitator, name):
    before = state()
    with pytest.raises(Invalid):
        services.classgroup_create(owner=facilitator, name=name)
    assert state() == before


def test_coowner_add_and_refusals(klass, facilitator, other_facilitator):
    services.classgroup_coowner_add(classgroup_id=klass.pk, actor=facilitator, username="MR.OKAFOR")
    assert list(klass.coowners.all()) == [other_facilitator]
    before = state()
    with pytest.raises(Conflict) as twice:
        services.classgroup_coowner_add(
            classgroup_id=klass.pk, actor=facilitator, username="mr.okafor"
        )
    assert twice.value.code == "already_coowner"
    with pytest.raises(NotFound):
        services.classgroup_coowner_add(
            classgroup_id=klass.pk, actor=facilitator, username="nobody"
        )
    stranger = get_user_model().objects.create_user(username="stranger", password="x-Pass-99")
    with pytest.raises(NotFound):  # not "forbidden": the class is not revealed
        services.classgroup_coowner_add(classgroup_id=klass.pk, actor=stranger, username="stranger")
    assert state() == before


def test_coowner_runs_the_class_rooms(class_room, klass, facilitator, other_facilitator):
    from debate import selectors

    assert not selectors.room_is_facilitator(room=class_room, user=other_facilitator)
    services.classgroup_coowner_add(
        classgroup_id=klass.pk, actor=facilitator, username=other_facilitator.username
    )
    assert selectors.room_is_facilitator(room=class_room, user=other_facilitator)
    assert class_room in selectors.rooms_for_facilitator(user=other_facilitator)


def test_room_create_in_someone_elses_class_is_refused(scenario, klass, other_facilitator):
    before = state()
    with pytest.raises(NotFound):
        debate_services.room_create(owner=other_facilitator, scenario=scenario, classgroup=klass)
    assert state() == before


# --- students -------------------------------------------------------------------------------


def test_student_join_stores_only_hashes(klass):
    creds = services.student_join(code=klass.code.lower(), display_name=" Ana  Lima ")
    student = Student.objects.get()
    assert student.display_name == "Ana Lima"
    assert len(creds.pin) == 6 and creds.pin.isdigit()
    assert creds.token not in student.rejoin_token_hash
    assert student.rejoin_token_hash == services.token_hash(creds.token)
    assert creds.pin not in student.pin_hash
    assert services.student_rejoin_by_token(token=creds.token) == student


@pytest.mark.parametrize(
    ("code", "name", "error", "err_code"),
    [
        ("WRONG1", "Ana", NotFound, "not_found"),
        (None, "Ana", NotFound, "not_found"),
        ("{code}", "", Invalid, "required"),
        ("{code}", "x" * 41, Invalid, "too_long"),
        ("{code}", ["Ana"], Invalid, "required"),
        ("{code}", "ANA", Conflict, "name_taken"),
    ],
)
def test_student_join_refusals(klass, code, name, error, err_code):
    services.student_join(code=klass.code, display_name="Ana")
    before = state()
    with pytest.raises(error) as exc:
        services.student_join(
            code=code.format(code=klass.code) if isinstance(code, str) else code, display_name=name
        )
    assert exc.value.code == err_code
    assert state() == before


def test_rejoin_by_pin_and_throttle(klass):
    creds = services.student_join(code=klass.code, display_name="Ben")
    student = services.student_rejoin_by_pin(code=klass.code, display_name="ben", pin=creds.pin)
    assert student.pk == creds.student.pk
    wrong = "000000" if creds.pin != "000000" else "111111"
    for _ in range(services.MAX_FAILED_ATTEMPTS):
        with pytest.raises(Invalid) as exc:
            services.student_rejoin_by_pin(code=klass.code, display_name="Ben", pin=wrong)
        assert exc.value.code == "wrong_secret"
    # Locked now: even the right PIN is refused until the lock runs out.
    with pytest.raises(Forbidden) as locked:
        services.student_rejoin_by_pin(code=klass.code, display_name="Ben", pin=creds.pin)
    assert locked.value.code == "locked"
    Student.objects.filter(pk=student.pk).update(
        locked_until=Student.objects.get(pk=student.pk).locked_until - timedelta(hours=1)
    )
    assert services.student_rejoin_by_pin(code=klass.code, display_name="Ben", pin=creds.pin)
    assert Student.objects.get(pk=student.pk).failed_attempts == 0


@pytest.mark.parametrize("pin", ["", None, 123456, "12 34"])
def test_rejoin_by_pin_malformed(klass, pin):
    services.student_join(code=klass.code, display_name="Ben")
    with pytest.raises(Invalid):
        services.student_rejoin_by_pin(code=klass.code, display_name="Ben", pin=pin)


def test_rejoin_by_pin_unknown_student(klass):
    with pytest.raises(NotFound):
        services.student_rejoin_by_pin(code=klass.code, display_name="Nobody", pin="123456")


@pytest.mark.parametrize("token", ["", None, "short", "x" * 100, "y" * 32])
def test_rejoin_by_bad_token(klass, token):
    services.student_join(code=klass.code, display_name="Ben")
    with pytest.raises(NotFound) as exc:
        services.student_rejoin_by_token(token=token)
    assert exc.value.code == "bad_link"


def test_facilitator_resets_credentials(klass, facilitator):
    old = services.student_join(code=klass.code, display_name="Cy")
    new = services.student_credentials_reset(
        classgroup_id=klass.pk, actor=facilitator, student_id=old.student.pk
    )
    with pytest.raises(NotFound):
        services.student_rejoin_by_token(token=old.token)
    assert services.student_rejoin_by_token(token=new.token).pk == old.student.pk
    with pytest.raises(Invalid):
        services.student_rejoin_by_pin(code=klass.code, display_name="Cy", pin=old.pin)
    assert services.student_rejoin_by_pin(code=klass.code, display_name="Cy", pin=new.pin)


def test_reset_refusals(klass, facilitator, other_facilitator):
    creds = services.student_join(code=klass.code, display_name="Cy")
    theirs = services.classgroup_create(owner=other_facilitator, name="Their class")
    stranger = services.student_join(code=theirs.code, display_name="Zed")
    before = state()
    with pytest.raises(NotFound):  # another facilitator
        services.student_credentials_reset(
            classgroup_id=klass.pk, actor=other_facilitator, student_id=creds.student.pk
        )
    with pytest.raises(NotFound):  # a student of another class, through my class
        services.student_credentials_reset(
            classgroup_id=klass.pk, actor=facilitator, student_id=stranger.student.pk
        )
    with pytest.raises(NotFound):  # malformed id
        services.student_credentials_reset(
            classgroup_id=klass.pk, actor=facilitator, student_id="1"
        )
    assert state() == before


def test_student_account(klass):
    creds = services.student_join(code=klass.code, display_name="Dee")
    services.student_account_set(
        student_id=creds.student.pk, username="Dee.K", password="Orbit-Lantern-77"
    )
    student = services.student_login(username="dee.k", password="Orbit-Lantern-77")
    assert student.pk == creds.student.pk
    assert Student.objects.get(pk=student.pk).password != "Orbit-Lantern-77"
    with pytest.raises(Invalid):
        services.student_login(username="dee.k", password="wrong-password")
    with pytest.raises(Invalid):
        services.student_login(username="nobody", password="Orbit-Lantern-77")


@pytest.mark.parametrize(
    ("username", "password", "err_code"),
    [
        ("ab", "Orbit-Lantern-77", "invalid"),
        ("has space", "Orbit-Lantern-77", "invalid"),
        ("ok.name", "123", "weak_password"),
        ("taken", "Orbit-Lantern-77", "username_taken"),
        (None, "Orbit-Lantern-77", "invalid"),
    ],
)
def test_student_account_refusals(klass, username, password, err_code):
    first = services.student_join(code=klass.code, display_name="Eve")
    services.student_account_set(
        student_id=first.student.pk, username="taken", password="Orbit-Lantern-77"
    )
    creds = services.student_join(code=klass.code, display_name="Fay")
    before = state()
    with pytest.raises((Invalid, Conflict)) as exc:
        services.student_account_set(
            student_id=creds.student.pk, username=username, password=password
        )
    assert exc.value.code == err_code
    assert state() == before


def test_student_remove_keeps_contributions(klass, class_room, facilitator):
    creds = services.student_join(code=klass.code, display_name="Gus")
    member = debate_services.member_join(
        code=class_room.code, display_name="", student=creds.student
    )
    services.student_remove(classgroup_id=klass.pk, actor=facilitator, student_id=creds.student.pk)
    member.refresh_from_db()
    assert member.student_id is None and member.display_name == "Gus"


# --- rooms recognise students ---------------------------------------------------------------


def test_member_join_links_the_student_once(klass, class_room):
    creds = services.student_join(code=klass.code, display_name="Hana")
    member = debate_services.member_join(
        code=class_room.code, display_name="typed something else", student=creds.student
    )
    assert member.display_name == "Hana" and member.student_id == creds.student.pk
    again = debate_services.member_join(
        code=class_room.code, display_name="", student=creds.student
    )
    assert again.pk == member.pk
    assert Member.objects.filter(room=class_room).count() == 1


def test_member_join_student_of_another_class_is_refused(scenario, facilitator, klass, class_room):
    other = services.classgroup_create(owner=facilitator, name="Other class")
    creds = services.student_join(code=other.code, display_name="Ivo")
    before = state()
    with pytest.raises(Forbidden) as exc:
        debate_services.member_join(code=class_room.code, display_name="", student=creds.student)
    assert exc.value.code == "other_class"
    assert state() == before


def test_member_join_student_name_taken_by_a_guest(klass, class_room):
    debate_services.member_join(code=class_room.code, display_name="Jo")
    creds = services.student_join(code=klass.code, display_name="Jo")
    before = state()
    with pytest.raises(Conflict):
        debate_services.member_join(code=class_room.code, display_name="", student=creds.student)
    assert state() == before


# --- retention ------------------------------------------------------------------------------


def close_room(room, actor):
    Room.objects.filter(pk=room.pk).update(phase="closed")


def test_class_delete_takes_everything(klass, class_room, facilitator, scenario):
    creds = services.student_join(code=klass.code, display_name="Kai")
    debate_services.member_join(code=class_room.code, display_name="", student=creds.student)
    elsewhere = debate_services.room_create(owner=facilitator, scenario=scenario)
    before = state()
    with pytest.raises(Conflict) as exc:  # an open room
        services.classgroup_delete(classgroup_id=klass.pk, actor=facilitator)
    assert exc.value.code == "rooms_open"
    assert state() == before
    close_room(class_room, facilitator)
    assert services.classgroup_delete(classgroup_id=klass.pk, actor=facilitator) == 1
    with pytest.raises(NotFound):  # twice
        services.classgroup_delete(classgroup_id=klass.pk, actor=facilitator)
    assert not ClassGroup.objects.exists()
    assert not Student.objects.exists()
    assert list(Room.objects.all()) == [elsewhere]
    assert not Member.objects.exists()


def test_class_delete_by_another_facilitator(klass, class_room, other_facilitator):
    close_room(class_room, None)
    before = state()
    with pytest.raises(NotFound):
        services.classgroup_delete(classgroup_id=klass.pk, actor=other_facilitator)
    assert state() == before


def test_room_delete(class_room, facilitator, other_facilitator):
    before = state()
    with pytest.raises(WrongPhase):
        debate_services.room_delete(room_id=class_room.pk, actor=facilitator)
    close_room(class_room, facilitator)
    before = state()
    with pytest.raises(NotFound):
        debate_services.room_delete(room_id=class_room.pk, actor=other_facilitator)
    with pytest.raises(NotFound):
        debate_services.room_delete(room_id="1", actor=facilitator)
    assert state() == before
    debate_services.room_delete(room_id=class_room.pk, actor=facilitator)
    assert not Room.objects.filter(pk=class_room.pk).exists()
    with pytest.raises(NotFound):  # twice
        debate_services.room_delete(room_id=class_room.pk, actor=facilitator)


def test_deleting_a_facilitator_account_takes_their_class_and_rooms(klass, class_room, facilitator):
    services.student_join(code=klass.code, display_name="Lou")
    facilitator.delete()
    assert not ClassGroup.objects.exists()
    assert not Room.objects.exists()
    assert not Student.objects.exists()

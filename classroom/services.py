"""Writes of the classroom app: accounts, classes, rosters, students' credentials, retention.

Plain functions with keyword-only arguments, one transaction each. Each checks first (the class
is the actor's, the student is on that class's roster, the input is well formed), then changes.
Errors are debate.errors types with stable codes; another facilitator's class is "not found".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from debate.errors import Conflict, Forbidden, Invalid, NotFound

from . import selectors
from .codes import join_code_generate, join_code_normalize
from .models import ClassGroup, Student

User = AbstractBaseUser | AnonymousUser

CLASS_NAME_MAX = 120
DISPLAY_NAME_MAX = 40
USERNAME_MIN, USERNAME_MAX = 3, 40
PIN_DIGITS = 6
# Guessing a PIN or a student's password: this many failures lock the student for a while.
MAX_FAILED_ATTEMPTS = 5
LOCK_DURATION = timedelta(minutes=15)


def facilitator_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create a facilitator account. The form has already run Django's password validators."""
    with transaction.atomic():
        return get_user_model().objects.create_user(username=username, password=password)


# --- helpers --------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """What a student needs to come back on another device. Shown once; only hashes are kept."""

    student: Student
    token: str
    pin: str


def _new_credentials(student: Student) -> Credentials:
    token = secrets.token_urlsafe(24)
    pin = f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"
    student.rejoin_token_hash = token_hash(token)
    student.pin_hash = make_password(pin)
    student.failed_attempts = 0
    student.locked_until = None
    return Credentials(student=student, token=token, pin=pin)


def _clean_name(value: Any, *, field: str, max_chars: int, label: str) -> str:
    name = " ".join(value.split()) if isinstance(value, str) else ""
    if not name:
        raise Invalid(_("Please enter %(what)s.") % {"what": label}, code="required", field=field)
    if len(name) > max_chars:
        raise Invalid(
            _("%(what)s can be at most %(limit)d characters.")
            % {"what": label.capitalize(), "limit": max_chars},
            code="too_long",
            field=field,
        )
    return name


def _class_for_actor(classgroup_id: Any, actor: User, *, lock: bool = False) -> ClassGroup:
    """The class if `actor` owns or co-owns it; otherwise NotFound, exactly as if it did not
    exist (other facilitators' classes are not revealed)."""
    classgroup = selectors.classgroup_for_facilitator(classgroup_id=classgroup_id, user=actor)
    if classgroup is None:
        raise NotFound(_("This class does not exist."))
    if lock:
        classgroup = ClassGroup.objects.select_for_update().get(pk=classgroup.pk)
    return classgroup


def _student_in_class(classgroup: ClassGroup, student_id: Any) -> Student:
    if not isinstance(student_id, int) or isinstance(student_id, bool):
        raise NotFound(_("This student is not on the class's roster."), field="student_id")
    student = Student.objects.filter(pk=student_id, classgroup=classgroup).first()
    if student is None:
        raise NotFound(_("This student is not on the class's roster."), field="student_id")
    return student


# --- classes --------------------------------------------------------------------------------


def classgroup_create(*, owner: AbstractBaseUser, name: Any) -> ClassGroup:
    if not (owner and owner.is_authenticated):
        raise Forbidden(_("Sign in as a facilitator to create a class."))
    clean = _clean_name(name, field="name", max_chars=CLASS_NAME_MAX, label=_("a class name"))
    for _attempt in range(20):
        try:
            with transaction.atomic():
                return ClassGroup.objects.create(owner=owner, name=clean, code=join_code_generate())
        except IntegrityError:
            continue  # the code is taken by another class; draw again
    raise Conflict(_("Could not find a free class code; please try again."))


def classgroup_coowner_add(*, classgroup_id: Any, actor: User, username: Any) -> ClassGroup:
    """Give another facilitator account the same powers over the class and its rooms."""
    with transaction.atomic():
        classgroup = _class_for_actor(classgroup_id, actor, lock=True)
        if not isinstance(username, str) or not username.strip():
            raise Invalid(_("Give the facilitator's username."), field="username")
        user = get_user_model().objects.filter(username__iexact=username.strip()).first()
        if user is None:
            raise NotFound(_("No facilitator account has that username."), field="username")
        if user.pk == classgroup.owner_id or classgroup.coowners.filter(pk=user.pk).exists():
            raise Conflict(
                _("%(name)s already runs this class.") % {"name": user.get_username()},
                code="already_coowner",
                field="username",
            )
        classgroup.coowners.add(user)
    return classgroup


def classgroup_delete(*, classgroup_id: Any, actor: User) -> int:
    """Delete a class with its roster and every room of it (members, drafts, everything).
    Open rooms must be closed first, so nobody is writing into what disappears. Returns the
    number of rooms deleted."""
    from debate.models import Phase, Room

    with transaction.atomic():
        classgroup = _class_for_actor(classgroup_id, actor, lock=True)
        rooms = Room.objects.filter(classgroup=classgroup)
        if rooms.exclude(phase=Phase.CLOSED).exists():
            raise Conflict(
                _("Close the class's open rooms first; then the class can be deleted."),
                code="rooms_open",
            )
        count = rooms.count()
        rooms.delete()
        classgroup.delete()
    return count


# --- students -------------------------------------------------------------------------------


def student_join(*, code: Any, display_name: Any) -> Credentials:
    """Put a new student on the roster of the class with this code. Returns the student with a
    rejoin token and PIN to show once."""
    name = _clean_name(
        display_name, field="display_name", max_chars=DISPLAY_NAME_MAX, label=_("your name")
    )
    normalized = join_code_normalize(code if isinstance(code, str) else "")
    classgroup = ClassGroup.objects.filter(code=normalized).first() if normalized else None
    if classgroup is None:
        raise NotFound(
            _("No class has the code %(code)s. Check it with your teacher.")
            % {"code": normalized or "…"},
            field="code",
        )
    with transaction.atomic():
        classgroup = ClassGroup.objects.select_for_update().get(pk=classgroup.pk)
        # Compared in Python: SQLite's lower() folds ASCII letters only.
        taken = {n.lower() for n in classgroup.students.values_list("display_name", flat=True)}
        if name.lower() in taken:
            raise Conflict(
                _(
                    "“%(name)s” is already on this class's roster. If that is you, come back "
                    "with your rejoin link or PIN; otherwise choose another name."
                )
                % {"name": name},
                code="name_taken",
                field="display_name",
            )
        student = Student(classgroup=classgroup, display_name=name)
        credentials = _new_credentials(student)
        try:
            with transaction.atomic():
                student.save()
        except IntegrityError:  # the same name, joined at the same moment
            raise Conflict(
                _("“%(name)s” is already on this class's roster; choose another name.")
                % {"name": name},
                code="name_taken",
                field="display_name",
            ) from None
    return credentials


def student_rejoin_by_token(*, token: Any) -> Student:
    if not isinstance(token, str) or not (16 <= len(token) <= 64):
        raise NotFound(_("This rejoin link is not valid (any more)."), code="bad_link")
    student = (
        Student.objects.select_related("classgroup")
        .filter(rejoin_token_hash=token_hash(token))
        .first()
    )
    if student is None:
        raise NotFound(_("This rejoin link is not valid (any more)."), code="bad_link")
    return student


def _check_throttled(student: Student, secret_ok) -> Student:
    """Check a guessed secret against `student`, counting failures. The failure count is
    committed even though the caller sees an error."""
    now = timezone.now()
    if student.locked_until and student.locked_until > now:
        raise Forbidden(
            _("Too many wrong tries. Wait a few minutes, or ask your teacher for a new PIN."),
            code="locked",
        )
    if secret_ok(student):
        if student.failed_attempts or student.locked_until:
            Student.objects.filter(pk=student.pk).update(failed_attempts=0, locked_until=None)
        return student
    with transaction.atomic():
        Student.objects.filter(pk=student.pk).update(failed_attempts=F("failed_attempts") + 1)
        student.refresh_from_db(fields=["failed_attempts"])
        if student.failed_attempts >= MAX_FAILED_ATTEMPTS:
            Student.objects.filter(pk=student.pk).update(
                failed_attempts=0, locked_until=now + LOCK_DURATION
            )
    raise Invalid(_("That is not right. Check it and try again."), code="wrong_secret")


def student_rejoin_by_pin(*, code: Any, display_name: Any, pin: Any) -> Student:
    """A student on another device: class code, display name and PIN. Guesses are throttled."""
    name = _clean_name(
        display_name, field="display_name", max_chars=DISPLAY_NAME_MAX, label=_("your name")
    )
    normalized = join_code_normalize(code if isinstance(code, str) else "")
    candidates = Student.objects.select_related("classgroup").filter(
        classgroup__code=normalized, display_name__iexact=name
    )
    student = next((s for s in candidates if s.display_name.lower() == name.lower()), None)
    if student is None or not student.pin_hash:
        raise NotFound(
            _("No student of that class has this name. Check the class code and your name."),
            code="no_student",
        )
    pin_text = "".join(pin.split()) if isinstance(pin, str) else ""
    return _check_throttled(
        student, lambda s: bool(pin_text) and check_password(pin_text, s.pin_hash)
    )


def student_credentials_reset(*, classgroup_id: Any, actor: User, student_id: Any) -> Credentials:
    """The facilitator gives a student a new rejoin link and PIN (the old ones stop working)."""
    with transaction.atomic():
        classgroup = _class_for_actor(classgroup_id, actor, lock=True)
        student = _student_in_class(classgroup, student_id)
        credentials = _new_credentials(student)
        student.save(
            update_fields=["rejoin_token_hash", "pin_hash", "failed_attempts", "locked_until"]
        )
    return credentials


def student_remove(*, classgroup_id: Any, actor: User, student_id: Any) -> None:
    """Take a student off the roster. What they wrote in rooms stays, under their room name."""
    with transaction.atomic():
        classgroup = _class_for_actor(classgroup_id, actor, lock=True)
        _student_in_class(classgroup, student_id).delete()


def student_account_set(*, student_id: int, username: Any, password: Any) -> Student:
    """An older student chooses a username and password (checked by Django's validators)."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid(_("Give a username and a password."), field="username")
    clean = username.strip().lower()
    if not (USERNAME_MIN <= len(clean) <= USERNAME_MAX) or not all(
        ch.isalnum() or ch in "._-" for ch in clean
    ):
        raise Invalid(
            _("Usernames have %(min)d to %(max)d letters, digits, dots, dashes or underscores.")
            % {"min": USERNAME_MIN, "max": USERNAME_MAX},
            field="username",
        )
    try:
        password_validation.validate_password(password)
    except ValidationError as exc:
        raise Invalid(" ".join(exc.messages), code="weak_password", field="password") from None
    with transaction.atomic():
        student = Student.objects.select_for_update().filter(pk=student_id).first()
        if student is None:
            raise NotFound(_("This student is not on any roster."))
        if Student.objects.filter(username=clean).exclude(pk=student.pk).exists():
            raise Conflict(
                _("That username is taken; choose another."),
                code="username_taken",
                field="username",
            )
        student.username = clean
        student.password = make_password(password)
        try:
            with transaction.atomic():
                student.save(update_fields=["username", "password"])
        except IntegrityError:
            raise Conflict(
                _("That username is taken; choose another."),
                code="username_taken",
                field="username",
            ) from None
    return student


def student_login(*, username: Any, password: Any) -> Student:
    """A student with an account signs in. Wrong passwords are throttled like PINs."""
    clean = username.strip().lower() if isinstance(username, str) else ""
    student = (
        Student.objects.select_related("classgroup").filter(username=clean).first()
        if clean
        else None
    )
    if student is None or not student.password:
        raise Invalid(_("That is not right. Check it and try again."), code="wrong_secret")
    secret = password if isinstance(password, str) else ""
    return _check_throttled(student, lambda s: bool(secret) and check_password(secret, s.password))

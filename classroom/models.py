"""Classes, their owners and their students. Every write goes through classroom.services.

A class gathers the rooms a teacher runs with the same group over a term. Students join a class
once with its code and a display name; afterwards the class's rooms recognise them. Personal data
is kept to a display name (an optional username and password for older students).
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class ClassGroup(models.Model):
    """A class: owned by one facilitator, with co-owners who have the same powers."""

    name = models.CharField(_("name"), max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classes_owned"
    )
    coowners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="classes_coowned"
    )
    # Students join the class with this code (rooms have codes of their own).
    code = models.CharField(max_length=8, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("class")
        verbose_name_plural = _("classes")

    def __str__(self) -> str:
        return self.name


class Student(models.Model):
    """One student on a class roster. Secrets are stored as hashes only."""

    classgroup = models.ForeignKey(ClassGroup, on_delete=models.CASCADE, related_name="students")
    display_name = models.CharField(_("display name"), max_length=40)
    # Optional account for older students: a username (stored lower case) and a password hash.
    username = models.CharField(max_length=40, null=True, blank=True, unique=True)
    password = models.CharField(max_length=128, blank=True)
    # The personal rejoin link carries a random token; only its SHA-256 is kept.
    rejoin_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # The PIN (typed with the class code and the display name), hashed like a password.
    pin_hash = models.CharField(max_length=128, blank=True)
    # Throttling of PIN and password guesses.
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["classgroup", "display_name", "id"]
        constraints = [
            models.UniqueConstraint(
                "classgroup", Lower("display_name"), name="student_name_unique_in_class"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def has_account(self) -> bool:
        return bool(self.username)

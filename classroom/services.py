"""Writes of the classroom app."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction


def facilitator_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create a facilitator account. The form has already run Django's password validators."""
    with transaction.atomic():
        return get_user_model().objects.create_user(username=username, password=password)

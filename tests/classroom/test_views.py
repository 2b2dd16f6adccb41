"""Facilitator accounts: sign up (with Django's password validators), sign in, sign out."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db

User = get_user_model()
STRONG = "Quorum-debates-2026!"


def signup(client, username="ms.rivera", password=STRONG, password2=None):
    return client.post(
        reverse("signup"),
        {"username": username, "password1": password, "password2": password2 or password},
    )


def test_signup_page(client):
    response = client.get(reverse("signup"))
    assert response.status_code == 200
    assert b'name="password1"' in response.content


def test_signup_creates_an_account_and_signs_in(client):
    response = signup(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:home")
    user = User.objects.get(username="ms.rivera")
    assert user.check_password(STRONG)
    assert not user.is_staff
    assert int(client.session["_auth_user_id"]) == user.pk
    # The dashboard is what a signed-in facilitator sees.
    assert client.get(reverse("debate:home")).templates[0].name == "debate/dashboard.html"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password", "This password is too common."),
        ("12345678", "This password is entirely numeric."),
        ("Xy7!", "This password is too short."),
        ("ms.rivera1", "The password is too similar to the username."),
    ],
)
def test_signup_rejects_weak_passwords(client, password, message):
    response = signup(client, password=password)
    assert response.status_code == 200
    assert not User.objects.exists()
    assert any(message in error for error in response.context["form"].errors["password2"])
    assert message in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_signup_rejects_mismatched_passwords_and_taken_usernames(client):
    assert signup(client, password2=STRONG + "x").status_code == 200
    assert not User.objects.exists()
    User.objects.create_user(username="ms.rivera", password=STRONG)
    response = signup(client)
    assert response.status_code == 200
    assert "username" in response.context["form"].errors
    assert User.objects.count() == 1


def test_signup_when_signed_in_goes_home(client):
    user = User.objects.create_user(username="ms.rivera", password=STRONG)
    client.force_login(user)
    response = client.get(reverse("signup"))
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:home")


def test_login_and_logout(client):
    User.objects.create_user(username="ms.rivera", password=STRONG)
    assert client.get(reverse("login")).status_code == 200

    wrong = client.post(reverse("login"), {"username": "ms.rivera", "password": "nope"})
    assert wrong.status_code == 200
    assert wrong.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("login"), {"username": "ms.rivera", "password": STRONG})
    assert response.status_code == 302
    assert response["Location"] == reverse("debate:home")
    assert "_auth_user_id" in client.session

    # Sign out is a POST (a GET could be triggered by any link or image on another site).
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("debate:home")).templates[0].name == "debate/home.html"


def test_login_page_when_signed_in_redirects(client):
    client.force_login(User.objects.create_user(username="ms.rivera", password=STRONG))
    assert client.get(reverse("login")).status_code == 302

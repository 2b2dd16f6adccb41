"""Web security: CSRF on every form, the socket's Origin check, production settings (Secure
cookies, HSTS, HTTPS redirect, `check --deploy`), and login throttling."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from classroom import throttle
from tests.conftest import Socket
from tests.security.conftest import PASSWORD, World, full_state, state_diff

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[2]

# ---- CSRF --------------------------------------------------------------------------------------


# Every form that posts: (URL name, args, who posts, data). test_every_form_template_has_a_token
# finds the forms in the templates; this table is what is posted without a token.
def _join_data(w):
    return {"code": w.room.code, "display_name": "Eve"}


def _owner_login(w):
    return {"username": "owner", "password": PASSWORD}


FORMS = {
    "debate:join": (lambda w: [], "anonymous", _join_data),
    "debate:join_code": (lambda w: [w.room.code], "anonymous", _join_data),
    "debate:room_create": (
        lambda w: [], "facilitator", lambda w: {"scenario": w.room.scenario_id, "title": "X"}
    ),
    "login": (lambda w: [], "anonymous", _owner_login),
    "signup": (
        lambda w: [],
        "anonymous",
        lambda w: {"username": "newbie", "password1": "Zq!8-long", "password2": "Zq!8-long"},
    ),
    "logout": (lambda w: [], "facilitator", lambda w: {}),
    "admin:login": (lambda w: [], "anonymous", _owner_login),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FORMS))
def test_post_without_csrf_token_is_refused(name, world: World):
    args, role, data = FORMS[name]
    client = world.client(role, enforce_csrf_checks=True)
    before = full_state()
    session_before = dict(client.session.items())
    response = client.post(reverse(name, args=args(world)), data(world))
    assert response.status_code == 403, (name, response.status_code)
    assert full_state() == before, state_diff(before, full_state())
    assert dict(client.session.items()) == session_before  # not joined, not signed in or out
    assert b"Traceback" not in response.content


def test_post_with_the_token_works(world: World):
    """The same client, with the token from the form, is let through (the test above is not
    refusing everything)."""
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("debate:join_code", args=[world.room.code]))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    response = client.post(
        reverse("debate:join"),
        {"code": world.room.code, "display_name": "Eve", "csrfmiddlewaretoken": token.decode()},
    )
    assert response.status_code == 302


def test_every_form_template_has_a_token():
    templates = list((BASE_DIR / "templates").rglob("*.html"))
    assert templates
    for path in templates:
        text = path.read_text()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, flags=re.S | re.I):
            if re.search(r'method="post"', form, flags=re.I):
                assert "{% csrf_token %}" in form, f"a POST form without a token in {path}"


# ---- the socket's Origin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "null",
        "",
    ],
)
async def test_socket_refuses_a_foreign_origin(origin, world_async):
    world, cookie = world_async
    sock = Socket(world.room.pk, cookie, origin=origin)
    connected = await sock.connect()
    assert connected is False
    member = world.members["member"]
    await member.arefresh_from_db()
    assert member.open_sockets == 0  # never counted as present


async def test_socket_accepts_its_own_origin(world_async):
    world, cookie = world_async
    sock = Socket(world.room.pk, cookie, origin="http://localhost")
    assert await sock.connect()
    await sock.close()


@pytest.fixture
def world_async(world):
    return world, world.cookie("member")


# ---- production settings -----------------------------------------------------------------------


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "DJANGO_"))
    }
    env.update(
        PRODUCTION="1",
        BEHIND_TLS_PROXY="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="quorum.example.org",
        CSRF_TRUSTED_ORIGINS="https://quorum.example.org",
        QUORUM_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)
    return env


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    env.pop("SECRET_KEY")
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
    "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY",
    "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SAMESITE")}))
"""


def settings_in(env: dict[str, str]) -> dict:
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_are_secure(tmp_path):
    values = settings_in(production_env(tmp_path))
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_plain_http_lan_keeps_cookies_usable(tmp_path):
    """A classroom LAN over plain HTTP (docs/deploy.md): Secure cookies would never be sent."""
    env = production_env(tmp_path)
    for name in ("PRODUCTION", "BEHIND_TLS_PROXY"):
        env.pop(name)
    values = settings_in(env)
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_SSL_REDIRECT"] is False


@override_settings(
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_SSL_REDIRECT=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)
def test_https_responses_carry_hsts_and_http_is_redirected(world: World):
    client = Client()
    plain = client.get(reverse("debate:home"))
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    assert client.get(reverse("healthz")).status_code == 200  # probes over HTTP still answered
    secure = client.get(reverse("debate:join"), secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert secure.cookies["csrftoken"]["secure"]
    assert "Content-Security-Policy" in secure


# ---- login throttling --------------------------------------------------------------------------

LIMIT = 5


@pytest.fixture
def teacher(db):
    user = get_user_model().objects.create_user(username="t.lovelace", password=PASSWORD)
    for address in ("127.0.0.1", "10.0.0.9"):
        throttle.login_reset(username="t.lovelace", address=address)
    yield user
    for address in ("127.0.0.1", "10.0.0.9"):
        throttle.login_reset(username="t.lovelace", address=address)


def login(client: Client, password: str, address: str = "127.0.0.1", username="t.lovelace"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


@override_settings(LOGIN_THROTTLE={"ATTEMPTS": LIMIT, "ATTEMPTS_PER_ADDRESS": 30,
                                   "WINDOW_SECONDS": 900})  # fmt: skip
def test_login_is_throttled_after_failed_attempts(teacher, monkeypatch):
    client = Client()
    for _ in range(LIMIT):
        response = login(client, "wrong-password")
        assert response.status_code == 200
        assert "do not match" in response.content.decode()
    # Blocked now, even with the right password, and told so kindly.
    response = login(client, PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many attempts to sign in. Please wait 15 minutes and try again." in body
    assert "_auth_user_id" not in client.session
    # Another address is not blocked for this username.
    assert login(Client(), PASSWORD, address="10.0.0.9").status_code == 302
    # When the window has passed, the right password works again.
    real_time = throttle.time.time
    monkeypatch.setattr(throttle.time, "time", lambda: real_time() + 901)
    assert login(client, PASSWORD).status_code == 302


@override_settings(LOGIN_THROTTLE={"ATTEMPTS": LIMIT, "ATTEMPTS_PER_ADDRESS": 30,
                                   "WINDOW_SECONDS": 900})  # fmt: skip
def test_a_successful_login_clears_the_count(teacher):
    client = Client()
    for _ in range(LIMIT - 1):
        login(client, "wrong-password")
    assert login(client, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(LIMIT - 1):
        assert login(client, "wrong-password").status_code == 200
    assert login(client, PASSWORD).status_code == 302


@override_settings(LOGIN_THROTTLE={"ATTEMPTS": LIMIT, "ATTEMPTS_PER_ADDRESS": 8,
                                   "WINDOW_SECONDS": 900})  # fmt: skip
def test_one_address_cannot_spray_many_usernames(teacher):
    client = Client()
    address = "10.0.0.9"
    for index in range(8):
        throttle.login_reset(username=f"guess{index}", address=address)
    for index in range(8):
        assert login(client, "x", address=address, username=f"guess{index}").status_code == 200
    assert login(client, PASSWORD, address=address).status_code == 429


def test_throttle_settings_exist():
    assert settings.LOGIN_THROTTLE["ATTEMPTS"] >= 3
    assert settings.LOGIN_THROTTLE["WINDOW_SECONDS"] >= 60

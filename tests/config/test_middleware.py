"""config.middleware: every page carries a Content-Security-Policy without inline script."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/join/", "/accounts/login/", "/accounts/signup/"])
def test_pages_forbid_inline_script_and_foreign_origins(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy


def test_pages_have_no_inline_script(client, facilitator, room):
    client.force_login(facilitator)
    pages = ["/", f"/rooms/{room.pk}/", f"/rooms/{room.pk}/present/"]
    scripts = 0
    for path in pages:
        body = client.get(path).content.decode()
        # json_script blocks carry data and are not executed; the rest loads from /static/.
        for chunk in body.split("<script")[1:]:
            head = chunk.split(">", 1)[0]
            assert 'type="application/json"' in head or "src=" in head, (path, head)
            scripts += 1
    assert scripts >= 4  # the room and projector pages each have a config block and a module


@override_settings(CONTENT_SECURITY_POLICY="")
def test_an_empty_policy_turns_the_header_off(client):
    assert "Content-Security-Policy" not in client.get("/").headers

"""User-facing strings are marked for translation: in the templates listed here (the others are
checked as their features settle), and LocaleMiddleware chooses among settings.LANGUAGES."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

BASE_DIR = Path(__file__).resolve().parents[2]
TEMPLATES = BASE_DIR / "templates"

# Templates whose every visible string must be marked. Add a template here once it is.
CHECKED = [
    "base.html",
    "403.html",
    "404.html",
    "500.html",
    "debate/home.html",
    "debate/join.html",
    "debate/_join_form.html",
    "debate/dashboard.html",
    "debate/present.html",
    "registration/login.html",
    "registration/signup.html",
]
# Words that are not translated: the product's name.
UNTRANSLATED = {"Quorum"}
ATTRIBUTES = ("aria-label", "title", "alt", "placeholder", "aria-description")


def unmarked_text(source: str) -> list[str]:
    """Visible text and labelling attributes left after removing what is marked or computed."""
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", " ", source, flags=re.S)
    # Blocks that fill in class names, not words.
    text = re.sub(r"{%\s*block \w+_class\s*%}.*?{%\s*endblock\s*%}", " ", text, flags=re.S)
    text = re.sub(r"{#.*?#}", " ", text, flags=re.S)
    text = re.sub(r"{{.*?}}", " ", text, flags=re.S)
    text = re.sub(r"{%.*?%}", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    found = []
    for name in ATTRIBUTES:
        for value in re.findall(rf'{name}="([^"]*)"', text):
            if re.search(r"[A-Za-z]", value):
                found.append(f'{name}="{value}"')
    visible = re.sub(r"<[^>]*>", " ", text)
    for word in re.findall(r"[A-Za-z][A-Za-z'\u2019]*", visible):
        if word not in UNTRANSLATED:
            found.append(word)
    return found


@pytest.mark.parametrize("name", CHECKED)
def test_template_strings_are_marked(name):
    source = (TEMPLATES / name).read_text()
    assert unmarked_text(source) == [], f"unmarked text in templates/{name}"


def test_the_check_finds_unmarked_text():
    assert unmarked_text('<p>Hello <a aria-label="Go">{% translate "x" %}</a></p>') == [
        'aria-label="Go"',
        "Hello",
    ]


def test_locale_middleware_and_languages():
    assert "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE
    index = settings.MIDDLEWARE.index
    assert (
        index("django.contrib.sessions.middleware.SessionMiddleware")
        < index("django.middleware.locale.LocaleMiddleware")
        < index("django.middleware.common.CommonMiddleware")
    )
    assert settings.USE_I18N
    assert settings.LANGUAGE_CODE in dict(settings.LANGUAGES)


@pytest.mark.django_db
def test_pages_declare_their_language():
    response = Client(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8").get(reverse("debate:home"))
    assert '<html lang="en">' in response.content.decode()
    assert response["Content-Language"] == "en"

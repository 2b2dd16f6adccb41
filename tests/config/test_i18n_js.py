"""The scripts' texts are marked for translation (static/js/i18n.js): `makemessages -d djangojs`
extracts every marked string, no label or dialog gets bare text, the JavaScript catalog is served
at /jsi18n/, and only pages in another language than English load it."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

BASE = Path(__file__).resolve().parents[2]
SCRIPTS = BASE / "static" / "js"
I18N = SCRIPTS / "i18n.js"
LITERAL = r'"(?:[^"\\]|\\.)*"'
# gettext("…") and ngettext("…", "…", n): the literal arguments makemessages extracts.
MARKED = re.compile(rf"\b(n?gettext)\(\s*({LITERAL})(?:\s*,\s*({LITERAL}))?")
TWO_LANGUAGES = [("en", "English"), ("fr", "French")]


def scripts() -> list[Path]:
    return sorted(path for path in SCRIPTS.glob("*.js") if path != I18N)


def marked_in_sources() -> tuple[set[str], set[tuple[str, str]]]:
    singles: set[str] = set()
    plurals: set[tuple[str, str]] = set()
    for path in scripts():
        for name, first, second in MARKED.findall(path.read_text()):
            if name == "gettext":
                singles.add(json.loads(first))
            else:
                plurals.add((json.loads(first), json.loads(second)))
    return singles, plurals


def read_po(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The msgids of a .po file (with their plurals), its header left out."""
    entries: list[dict[str, str]] = []
    entry: dict[str, str] = {}
    key = None
    for line in [*path.read_text().splitlines(), ""]:
        if not line.strip():
            if entry:
                entries.append(entry)
            entry, key = {}, None
        elif line.startswith(("msgid", "msgstr", "msgctxt")):
            key, _, value = line.partition(" ")
            entry[key] = ast.literal_eval(value)
        elif line.startswith('"') and key:
            entry[key] += ast.literal_eval(line)
    singles = {e["msgid"] for e in entries if e.get("msgid") and "msgid_plural" not in e}
    plurals = {(e["msgid"], e["msgid_plural"]) for e in entries if "msgid_plural" in e}
    return singles, plurals


# ---- extraction ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> tuple[set[str], set[tuple[str, str]]]:
    """makemessages -d djangojs -l fr over static/, into a temporary locale directory."""
    if not shutil.which("xgettext"):
        pytest.skip("makemessages needs GNU gettext (xgettext), which is not installed")
    locale = tmp_path_factory.mktemp("i18n") / "locale"
    with pytest.MonkeyPatch.context() as patch, override_settings(LOCALE_PATHS=[locale]):
        patch.chdir(BASE / "static")  # the scripts only: not tests/, bench/ or .venv/
        call_command("makemessages", domain="djangojs", locale=["fr"], verbosity=0)
    return read_po(locale / "fr" / "LC_MESSAGES" / "djangojs.po")


def test_makemessages_extracts_strings_of_every_module(extracted):
    singles, plurals = extracted
    for text in [
        "Saved",  # room.js: the save status
        "Offline — reconnecting…",
        "The positions' cases",  # cases.js
        "Cites:",  # citations.js
        "Pause",  # console.js
        "Your team",  # member.js
        "Add a release you found",  # research.js
        "Close the vote and show the results",  # review-console.js
        "Mark strongest",  # review-member.js
        "The committee's vote",  # review.js
        "Balance check",  # solo.js
        "Check my answers",  # warmup.js
        "%(name)s joined",  # a name filled in by interpolate
    ]:
        assert text in singles, text
    assert ("Not posted", "%(count)s not posted") in plurals
    assert (
        "Offline — %(count)s change kept on this device",
        "Offline — %(count)s changes kept on this device",
    ) in plurals
    assert ("%(count)s team vote", "%(count)s team votes") in plurals


def test_makemessages_extracts_every_marked_string(extracted):
    # xgettext's JavaScript parser loses its way on some syntax and then skips the rest of a
    # file: every literal given to gettext or ngettext in the sources must reach the catalogue.
    singles, plurals = marked_in_sources()
    assert len(singles) + len(plurals) > 250
    found_singles, found_plurals = extracted
    assert singles - found_singles == set()
    assert plurals - found_plurals == set()


# ---- what the sources may not do -----------------------------------------------------------

# A text starting with a capital, or two words: not a class name, an id or a URL.
WORDY = r"""(?=[^"`]*(?:\b[A-Z][a-z]|[A-Za-z]\s+[A-Za-z]))"""
UNMARKED = {
    "a labelling attribute": re.compile(
        rf"""(?:"aria-label"|\btitle|\bplaceholder|\balt)\s*:\s*["`]{WORDY}"""
    ),
    "a dialog": re.compile(rf"""\b(?:confirm|alert|prompt)\(\s*["`]{WORDY}"""),
    "an announcement or error": re.compile(rf"""\b(?:announce|showError)\(\s*["`]{WORDY}"""),
    "a text assigned to an element": re.compile(rf"""\.textContent\s*=\s*["`]{WORDY}"""),
}


def unmarked(source: str) -> list[str]:
    return [
        f"{what}: {match.group(0)}"
        for what, pattern in UNMARKED.items()
        for match in pattern.finditer(source)
    ]


@pytest.mark.parametrize("path", scripts(), ids=lambda path: path.name)
def test_no_bare_text_in_labels_dialogs_or_announcements(path):
    assert unmarked(path.read_text()) == []


def test_the_bare_text_check_finds_bare_text():
    source = """h("input", { placeholder: "e.g. Five minutes" }); window.confirm(`Remove ${n}?`);
    announce("Posted."); el.textContent = "Copied"; h("a", { title: gettext("Slots written") });
    h("input", { placeholder: "https://" }); h("div", { "aria-label": gettext("Phases") });"""
    assert [line.split(":")[0] for line in unmarked(source)] == [
        "a labelling attribute",
        "a dialog",
        "an announcement or error",
        "a text assigned to an element",
    ]


@pytest.mark.parametrize("path", scripts(), ids=lambda path: path.name)
def test_gettext_is_given_literals(path):
    # makemessages sees only literal strings; a variable or a template literal would not be
    # extracted (interpolate fills the values in after translation).
    calls = re.findall(r"\bn?gettext\(\s*[^\s\"]", path.read_text())
    assert calls == []


# ---- the catalog and the pages that load it ------------------------------------------------


def test_the_catalog_is_javascript_and_cached(client):
    response = client.get(reverse("javascript-catalog"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"django.gettext = function" in response.content
    assert "max-age=86400" in response["Cache-Control"]
    again = client.get(
        reverse("javascript-catalog"), HTTP_IF_MODIFIED_SINCE=response["Last-Modified"]
    )
    assert again.status_code == 304


def test_an_english_page_loads_no_catalog(client, facilitator, room):
    client.force_login(facilitator)
    for path in [reverse("debate:room", args=[room.pk]), "/"]:
        body = client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert reverse("javascript-catalog") not in body, path
        assert '<html lang="en">' in body


@override_settings(LANGUAGES=TWO_LANGUAGES)
def test_a_page_in_another_language_loads_the_catalog_first(client, facilitator, room):
    client.force_login(facilitator)
    body = client.get(
        reverse("debate:room", args=[room.pk]), HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert '<html lang="fr">' in body
    catalog = body.index(f'<script src="{reverse("javascript-catalog")}"></script>')
    assert catalog < body.index('<script type="module"')


# ---- static/js/i18n.js with and without the catalog (in Node.js) ---------------------------

NODE_SCRIPT = """
import { readFileSync } from "node:fs";
import vm from "node:vm";
const [catalog, module] = process.argv.slice(2);
if (catalog) vm.runInThisContext(readFileSync(catalog, "utf8"));  // as the <script> would
const { gettext, ngettext, interpolate } = await import(module);
const kept = (n) => interpolate(ngettext(
  "Offline — %(count)s change kept on this device",
  "Offline — %(count)s changes kept on this device", n), { count: n }, true);
console.log(JSON.stringify({
  saved: gettext("Saved"),
  unknown: gettext("Not in any catalogue"),
  kept: [0, 1, 2].map(kept),
  positional: interpolate("%s of %s", [2, 3]),
  named: interpolate("%(name)s joined", { name: "Ana %(x)s %s" }, true),
}));
"""


def run_in_node(tmp_path: Path, catalog: str | None) -> dict:
    node = shutil.which("node")
    if not node:
        pytest.skip("Node.js is not installed")
    script = tmp_path / "check.mjs"
    script.write_text(NODE_SCRIPT)
    module = tmp_path / "i18n.mjs"  # an ES module to any Node.js, whatever package.json says
    shutil.copyfile(I18N, module)
    argv = [node, str(script), "", module.as_uri()]
    if catalog is not None:
        (tmp_path / "catalog.js").write_text(catalog)
        argv[2] = str(tmp_path / "catalog.js")
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)  # noqa: S603
    return json.loads(out.stdout)


def test_without_the_catalog_the_english_source_text_is_shown(tmp_path):
    assert run_in_node(tmp_path, None) == {
        "saved": "Saved",
        "unknown": "Not in any catalogue",
        "kept": [
            "Offline — 0 changes kept on this device",
            "Offline — 1 change kept on this device",
            "Offline — 2 changes kept on this device",
        ],
        "positional": "2 of 3",
        "named": "Ana %(x)s %s joined",
    }


FRENCH_PO = r"""msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Language: fr\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\n"

msgid "Saved"
msgstr "Enregistré"

msgid "Offline — %(count)s change kept on this device"
msgid_plural "Offline — %(count)s changes kept on this device"
msgstr[0] "Hors ligne — %(count)s modification gardée sur cet appareil"
msgstr[1] "Hors ligne — %(count)s modifications gardées sur cet appareil"
"""


def test_with_the_catalog_its_translations_and_plural_rule_are_used(client, tmp_path):
    if not shutil.which("msgfmt"):
        pytest.skip("compiling a catalogue needs GNU gettext (msgfmt), which is not installed")
    messages = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "djangojs.po").write_text(FRENCH_PO)
    subprocess.run(  # noqa: S603
        ["msgfmt", "-o", str(messages / "djangojs.mo"), str(messages / "djangojs.po")],  # noqa: S607
        check=True,
    )
    with override_settings(LANGUAGES=TWO_LANGUAGES, LOCALE_PATHS=[tmp_path / "locale"]):
        # A query string of its own: a catalog cached by an earlier test is not this one.
        url = f"{reverse('javascript-catalog')}?test={tmp_path.name}"
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    result = run_in_node(tmp_path, response.content.decode())
    assert result["saved"] == "Enregistré"
    assert result["unknown"] == "Not in any catalogue"
    assert result["kept"] == [  # French counts 0 as singular
        "Hors ligne — 0 modification gardée sur cet appareil",
        "Hors ligne — 1 modification gardée sur cet appareil",
        "Hors ligne — 2 modifications gardées sur cet appareil",
    ]
    assert result["positional"] == "2 of 3"
    assert result["named"] == "Ana %(x)s %s joined"

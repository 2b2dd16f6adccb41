"""Every user text is escaped where it is shown: pages, live updates (the socket carries data and
the browser makes text nodes of it: no innerHTML in static/js), and the Markdown record.

User texts: display names, drafts, feedback, announcements, room titles, the recommendation.
Payloads: a script, HTML with an event handler, a closing </script> (to break out of a
json_script block), and Markdown links/images/headings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from debate import services
from debate.exports import md_escape
from debate.models import Draft, Member, Phase
from tests.conftest import Socket
from tests.security.conftest import World, build_world

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[2]

SCRIPT = "<script>alert('x')</script>"
HANDLER = '<img src="x" onerror="alert(1)">'
BREAKOUT = "</script><script>alert(2)</script>"
MD_LINK = "[click me](javascript:alert(3))"
MD_IMAGE = "![pixel](https://tracker.example/p.png)"
MD_HEADING = "# Not a heading\n- not a list\n1. not a list"
HTML_PAYLOADS = [SCRIPT, HANDLER, BREAKOUT]
RAW_MARKERS = ["<script>alert", '<img src="x"', "</script><script>", 'onerror="alert']


def hostile_world(scenario) -> World:
    """A room whose every user text is hostile."""
    world = build_world(scenario)
    room = world.room
    room.title = f"Period {SCRIPT} {MD_LINK}"[:120]
    room.save(update_fields=["title"])  # test setup (the form keeps titles as typed)
    for index, (role, payload) in enumerate(
        [("member", SCRIPT), ("muted", HANDLER), ("target", f"{MD_LINK}")]
    ):
        Member.objects.filter(pk=world.members[role].pk).update(
            display_name=f"{payload[:36]}{index}"
        )
    services.member_mute(
        room_id=room.pk, actor=world.owner, member_id=world.members["muted"].pk, muted=False
    )
    world.advance_to(Phase.DRAFTING)
    services.draft_save(
        room_id=room.pk,
        actor=AnonymousUser(),
        member_id=world.members["member"].pk,
        client_id="hostile-1",
        text=f"{SCRIPT} {HANDLER} {BREAKOUT}\n{MD_HEADING}\n{MD_LINK} {MD_IMAGE}",
        base_version=0,
        kind="argument",
        slot=1,
    )
    draft = Draft.objects.get(room=room)
    services.feedback_add(
        room_id=room.pk, actor=world.owner, draft_id=draft.pk, text=f"{HANDLER} {MD_LINK}"
    )
    services.announcement_set(room_id=room.pk, actor=world.owner, text=f"{BREAKOUT} {MD_IMAGE}")
    for member in world.members.values():
        member.refresh_from_db()
    room.refresh_from_db()
    return world


def assert_no_raw_html(body: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in body, f"{marker!r} unescaped in {where}"


# ---- pages -------------------------------------------------------------------------------------

# (URL name, role): pages that show user text, server-rendered or in the page's JSON.
PAGES = [
    ("debate:home", "facilitator"),  # the dashboard lists room titles
    ("debate:room", "facilitator"),
    ("debate:room", "member"),
    ("debate:room_present", "facilitator"),
]


@pytest.mark.parametrize(("name", "role"), PAGES)
def test_pages_escape_user_text(name, role, scenario):
    world = hostile_world(scenario)
    args = [] if name == "debate:home" else [world.room.pk]
    response = world.client(role).get(reverse(name, args=args))
    assert response.status_code == 200
    body = response.content.decode()
    assert_no_raw_html(body, name)
    # The title is shown, escaped (not dropped).
    assert "Period &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body


def test_join_error_page_escapes_what_was_typed(world):
    response = world.client("anonymous").post(
        reverse("debate:join"), {"code": SCRIPT[:12], "display_name": HANDLER[:40]}
    )
    assert response.status_code == 400
    assert_no_raw_html(response.content.decode(), "the join form")


def test_403_page_escapes_its_message(scenario):
    world = hostile_world(scenario)
    response = world.client("removed").get(reverse("debate:room", args=[world.room.pk]))
    assert response.status_code == 403
    assert_no_raw_html(response.content.decode(), "403")


# ---- live updates ------------------------------------------------------------------------------


async def test_socket_carries_user_text_as_data(scenario):
    """The snapshot and events carry the text exactly as typed, inside JSON strings: the browser
    (static/js, see test_no_html_sinks_in_static_js) turns them into text nodes."""
    from asgiref.sync import sync_to_async

    world = await sync_to_async(hostile_world)(scenario)
    sock = Socket(world.room.pk, await sync_to_async(world.cookie)("facilitator"))
    assert await sock.connect()
    try:
        snapshot = await sock.sync()
        texts = json.dumps(snapshot)
        assert json.dumps(SCRIPT)[1:-1] in texts  # unchanged, as data
        await sock.send({"type": "room.announce", "text": SCRIPT})
        event = await sock.recv_until("room.settings")
        assert SCRIPT in json.dumps(event, ensure_ascii=False) or SCRIPT in str(event)
    finally:
        await sock.close()


# Ways to turn a string into markup in the browser. Only dom.js's text-node helpers may build
# the DOM; a new use of any of these must be justified here.
HTML_SINKS = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|"
    r"createContextualFragment|DOMParser|srcdoc|\.setHTMLUnsafe\b"
)
ALLOWED_SINKS: dict[str, int] = {}  # path relative to static/js -> number of uses allowed


def test_no_html_sinks_in_static_js():
    found: dict[str, list[str]] = {}
    for path in sorted((BASE_DIR / "static" / "js").rglob("*.js")):
        text = path.read_text()
        # Comments may mention innerHTML (dom.js does, to say it is never used).
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        code = re.sub(r"(^|[^:\\])//.*$", r"\1", code, flags=re.M)
        hits = [m.group(0) for m in HTML_SINKS.finditer(code)]
        relative = str(path.relative_to(BASE_DIR / "static" / "js"))
        if len(hits) > ALLOWED_SINKS.get(relative, 0):
            found[relative] = hits
    assert not found, f"HTML sinks in static/js (use dom.js's h() and text nodes): {found}"


def test_templates_mark_nothing_safe_but_known_html():
    """`|safe` and autoescape off only where the HTML is ours: the QR code SVG (segno) and the
    password rules (Django's own help text)."""
    allowed = {"qr_svg|safe", "field.help_text|safe"}
    for path in (BASE_DIR / "templates").rglob("*.html"):
        text = path.read_text()
        assert "{% autoescape off" not in text, path
        for use in re.findall(r"[\w.]+\|safe", text):
            assert use in allowed, f"{use} in {path}"


# ---- the Markdown record -----------------------------------------------------------------------


def test_markdown_record_escapes_user_text(scenario):
    world = hostile_world(scenario)
    world.advance_to(Phase.CLOSED)
    response = world.client("facilitator").get(
        reverse("debate:room_export_md", args=[world.room.pk])
    )
    assert response.status_code == 200
    record = response.content.decode()
    # In Markdown a backslash makes "<" a literal character: no "<" from user text stands bare.
    bare = re.findall(r"(?<!\\)<(?:script|img|/script)", record)
    assert not bare, bare
    # Links and images are inert: every bracket from user text is escaped.
    assert "](javascript:" not in record.replace("\\](javascript:", "")
    assert "\\[click me\\](javascript:alert(3))" in record
    assert "\\!\\[pixel\\](https://tracker.example/p.png)" in record
    # User text cannot start a heading or a list.
    assert "\n# Not a heading" not in record
    assert "\\# Not a heading" in record
    assert "\n- not a list" not in record
    # Names and the title are escaped too.
    assert "\\<script\\>alert('x')\\</script\\>" in record


@pytest.mark.parametrize("payload", [*HTML_PAYLOADS, MD_LINK, MD_IMAGE, MD_HEADING, "a\r# b"])
def test_md_escape(payload):
    escaped = md_escape(payload)
    assert "<" not in escaped.replace("\\<", "")
    assert "[" not in escaped.replace("\\[", "")
    for line in escaped.split("\n"):
        assert not re.match(r"\s*(#|-|\+|\d+\.)\s", line), line

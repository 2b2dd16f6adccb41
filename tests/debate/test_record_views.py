"""Issue 5: the record's three exports (Markdown, JSON, the printable page) and the share link,
who may open them, the frozen record, and user text escaped in every format."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from classroom.identity import SESSION_KEY
from debate import selectors, services
from debate.models import Draft, Recommendation
from tests.conftest import join
from tests.debate.conftest import API, OPEN, RESTRICTED, advance, build_teams

ANON = AnonymousUser()
SCRIPT = "<script>alert(1)</script>"
LINK = "[x](javascript:alert(1))"
HTML = '<img src=x onerror="alert(1)">'
HOSTILE = f"{SCRIPT} {LINK} {HTML} & **bold**"


@pytest.fixture
def fac_client(facilitator) -> Client:
    client = Client()
    client.force_login(facilitator)
    return client


def member_client(room, member) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = {str(room.pk): member.pk}
    session.save()
    return client


def save(room, member, text, *, kind="argument", slot=1):
    return services.draft_save(
        room_id=room.pk,
        actor=ANON,
        member_id=member.pk,
        client_id=f"{member.pk}-{kind}-{slot}",
        text=text,
        base_version=0,
        kind=kind,
        slot=slot,
    ).id


@pytest.fixture
def hostile(room, facilitator):
    """A room taken to the recommendation with hostile text in every field members own."""
    t = build_teams(room, facilitator)
    evil = join(room, SCRIPT)
    advance(room, facilitator, "drafting")
    evil.refresh_from_db()
    m = t.members
    ids = {
        "evil": save(room, evil, HOSTILE),
        "ana": save(room, m["Ana"], f"Ana argues {LINK}"),
        "cy": save(room, m["Cy"], f"Cy argues {HTML}"),
        "dee_risk": save(room, m["Dee"], f"Dee risk {SCRIPT}", kind="risk"),
    }
    advance(room, facilitator, "review")
    services.comment_add(
        room_id=room.pk,
        member_id=m["Cy"].pk,
        client_id="c",
        draft_id=ids["ana"],
        kind="rebuttal",
        text=f"Rebuttal {SCRIPT} {LINK}",
    )
    services.vote_cast(
        room_id=room.pk, member_id=m["Ana"].pk, position_id=t.pos(API).pk, reason=f"Reason {HTML}"
    )
    services.vote_cast(room_id=room.pk, member_id=m["Cy"].pk, position_id=t.pos(RESTRICTED).pk)
    advance(room, facilitator, "recommendation")
    services.recommendation_build(
        room_id=room.pk,
        actor=facilitator,
        client_id="r",
        base_version=0,
        decision_id=t.pos(RESTRICTED).pk,
        rationale=f"Rationale {HOSTILE}",
        revisit_condition=f"Revisit {LINK}",
        citation_ids=[ids["cy"], ids["ana"]],
        risk_draft_id=ids["dee_risk"],
        risk_text=f"Risk {SCRIPT}",
    )
    services.signoff_record(
        room_id=room.pk, member_id=m["Ben"].pk, stance="dissent", text=f"Dissent {SCRIPT}"
    )
    t.ids = ids
    t.evil = evil
    return t


def test_exports_for_the_facilitator_before_finalize(fac_client, hostile):
    room = hostile.room
    md = fac_client.get(reverse("debate:room_export_md", args=[room.pk]))
    assert md.status_code == 200
    body = md.content.decode()
    assert not re.search(r"(?<!\\)[<\[]", body), "every < and [ is escaped"
    assert "\\[x\\](javascript:alert(1))" in body
    assert "\\<script\\>alert(1)\\</script\\>" in body
    assert "\\*\\*bold\\*\\*" in body
    assert "## The committee's vote" in body and "- Restricted open-weight release: 1 of 2" in body
    assert "**Tie:** API-only (closed) release and Restricted open-weight release" in body
    assert "**Arguments cited**" in body and "**The risk we accept**" in body
    assert "dissents: Dissent \\<script\\>" in body

    response = fac_client.get(reverse("debate:room_export_json", args=[room.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].endswith('-record.json"')
    raw = response.content.decode()
    assert "<" not in raw and ">" not in raw  # escaped as \u003c / \u003e
    data = json.loads(raw)
    assert (data["schema"], data["version"], data["audience"]) == (
        "quorum.record",
        1,
        "facilitator",
    )
    assert data["recommendation"]["rationale"] == f"Rationale {HOSTILE}"  # text kept exactly
    assert [c["author"] for c in data["recommendation"]["citations"]] == ["Ana", "Cy"]
    assert data["vote"]["tie"] is True

    page = fac_client.get(reverse("debate:room_record", args=[room.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    memo = html[html.index('<article class="memo"') :]
    assert "<script>alert" not in memo and "<img src=x" not in memo
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in memo
    assert "[x](javascript:alert(1))" in memo  # plain text in HTML, never a link
    assert 'href="javascript' not in memo
    assert "Draft record, not finalized" in memo


def test_members_get_the_record_once_closed_and_strangers_never(hostile):
    room = hostile.room
    cy = member_client(room, hostile.members["Cy"])
    stranger = Client()
    urls = [
        reverse(name, args=[room.pk])
        for name in ("debate:room_export_md", "debate:room_export_json", "debate:room_record")
    ]
    for url in urls:
        assert cy.get(url).status_code == 404  # not closed yet
        assert stranger.get(url).status_code == 404
    services.recommendation_finalize(room_id=room.pk, actor=hostile.facilitator)
    for url in urls:
        assert cy.get(url).status_code == 200
        assert stranger.get(url).status_code == 404


def test_finalized_exports_are_frozen_and_shared(fac_client, hostile):
    room = hostile.room
    rec = services.recommendation_finalize(room_id=room.pk, actor=hostile.facilitator)
    # Changed behind the services' back after finalize: the exports do not follow.
    Draft.objects.filter(pk=hostile.ids["cy"]).update(text="Changed later")
    Recommendation.objects.filter(pk=rec.pk).update(rationale="Changed later")
    for name in ("debate:room_export_md", "debate:room_export_json", "debate:room_record"):
        body = fac_client.get(reverse(name, args=[room.pk])).content.decode()
        assert "Changed later" not in body, name
    share = Client().get(selectors.share_path(rec))
    assert share.status_code == 200
    assert share["X-Robots-Tag"] == "noindex"
    html = share.content.decode()
    assert "Rationale" in html and "Finalized" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "Download JSON" not in html  # read-only: no links into the room
    assert Client().get(reverse("debate:record_shared", args=["nope" * 10])).status_code == 404


def test_share_link_of_an_anonymous_room_shows_code_names(scenario, facilitator):
    room = services.room_create(owner=facilitator, scenario=scenario, anonymous=True)
    zelda = join(room, "Zelda Realname")
    advance(room, facilitator, "drafting")
    zelda.refresh_from_db()
    save(room, zelda, "Vetted access first.")
    advance(room, facilitator, "review", "recommendation")
    services.recommendation_build(
        room_id=room.pk,
        actor=facilitator,
        client_id="r",
        base_version=0,
        decision_id=zelda.position_id,
        rationale="Why",
        revisit_condition="When",
    )
    rec = services.recommendation_finalize(room_id=room.pk, actor=facilitator)
    html = Client().get(selectors.share_path(rec)).content.decode()
    assert "Realname" not in html and zelda.code_name in html
    own = member_client(room, zelda).get(reverse("debate:room_export_md", args=[room.pk]))
    assert "Zelda Realname" in own.content.decode()  # her own name is hers to see
    fac = Client()
    fac.force_login(facilitator)
    assert (
        "Zelda Realname" in fac.get(reverse("debate:room_record", args=[room.pk])).content.decode()
    )


def test_the_vote_stays_out_of_the_record_until_closed(fac_client, room, facilitator):
    t = build_teams(room, facilitator)
    advance(room, facilitator, "drafting", "review")
    services.vote_cast(room_id=room.pk, member_id=t.members["Ana"].pk, position_id=t.pos(OPEN).pk)
    data = json.loads(fac_client.get(reverse("debate:room_export_json", args=[room.pk])).content)
    assert data["vote"] == {"closed": False}
    page = fac_client.get(reverse("debate:room_record", args=[room.pk])).content.decode()
    assert "results stay hidden" in page

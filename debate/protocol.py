"""Inbound socket messages (client -> server): their schemas, validation and error codes.

docs/protocol.md is the reference for both directions. Every inbound message is a JSON object with
a `type`; this module checks its shape and field types before anything else looks at it. Checks
that need the database (ids inside the room, versions, phase, role) belong to the services.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

# Close codes (documented in docs/protocol.md).
CLOSE_NOT_PARTICIPANT = 4401  # no member identity for this room in this session
CLOSE_FORBIDDEN = 4403  # the member was removed from the room
CLOSE_ROOM_NOT_FOUND = 4404
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455 "message too big"
CLOSE_TOO_MANY_ERRORS = 4429  # kept flooding after rate-limit errors

# Error codes sent in {"type": "error"} messages, besides the services' own codes.
ERR_MALFORMED = "malformed"  # not JSON, not an object, no string `type`
ERR_UNKNOWN_TYPE = "unknown_type"
ERR_INVALID = "invalid"  # a field is missing or has the wrong type
ERR_RATE_LIMITED = "rate_limited"
ERR_NOT_SAVED = "not_saved"  # the server could not save (database unavailable); resend later
ERR_SERVER = "server_error"

_INT = (int,)
_STR = (str,)
_OPTIONAL_INT = (int, type(None))
_OPTIONAL_STR = (str, type(None))
_BOOL = (bool,)
_OPTIONAL_BOOL = (bool, type(None))
_LIST = (list,)
_OBJECT = (dict,)
_OPTIONAL_LIST = (list, type(None))


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    required: bool = True


SCHEMAS: dict[str, dict[str, Field]] = {
    "ping": {},
    "sync": {"last_seq": Field(_OPTIONAL_INT, required=False)},
    "draft.save": {
        "client_id": Field(_STR),
        "text": Field(_STR),
        "base_version": Field(_INT),
        "kind": Field(_OPTIONAL_STR, required=False),
        "slot": Field(_OPTIONAL_INT, required=False),
        "draft_id": Field(_OPTIONAL_INT, required=False),
        "position_id": Field(_OPTIONAL_INT, required=False),
        "citations": Field(_OPTIONAL_LIST, required=False),
    },
    "phase.advance": {"to": Field(_STR)},
    "positions.assign": {},
    "member.move": {"member_id": Field(_INT), "position_id": Field(_INT)},
    "typing": {},
    "position.choose": {"position_id": Field(_INT)},
    "timer.expired": {"phase": Field(_STR)},
    # facilitators only (the services check the role)
    "member.mute": {"member_id": Field(_INT), "muted": Field(_BOOL)},
    "member.remove": {"member_id": Field(_INT)},
    "member.readmit": {"member_id": Field(_INT)},
    "draft.moderate": {
        "draft_id": Field(_INT),
        "hidden": Field(_OPTIONAL_BOOL, required=False),
        "needs_source": Field(_OPTIONAL_BOOL, required=False),
    },
    "draft.feedback": {"draft_id": Field(_INT), "text": Field(_STR)},
    "room.lock": {"locked": Field(_BOOL)},
    "room.announce": {"text": Field(_STR)},
    "room.configure": {
        "assignment_method": Field(_STR),
        "choice_cap": Field(_OPTIONAL_INT, required=False),
    },
    "timer.control": {
        "action": Field(_STR),
        "seconds": Field(_OPTIONAL_INT, required=False),
        "auto_advance": Field(_OPTIONAL_BOOL, required=False),
    },
    "round.switch": {},
    "facilitator.add": {"username": Field(_STR)},
    "recommendation.save": {
        "client_id": Field(_STR),
        "decision_id": Field(_OPTIONAL_INT),
        "rationale": Field(_STR),
        "revisit_condition": Field(_STR),
        "base_version": Field(_INT),
        # the recommendation builder (issue 5); absent: kept as stored
        "citation_ids": Field(_LIST, required=False),
        "risk_draft_id": Field(_OPTIONAL_INT, required=False),
        "risk_text": Field(_OPTIONAL_STR, required=False),
    },
    # the warm-up check (members) and the solo learner's steps
    "warmup.submit": {"client_id": Field(_STR), "answers": Field(_OBJECT)},
    "solo.step": {"to": Field(_STR)},
    # the research board (members and facilitators; the services check who may edit what)
    "research.note.save": {
        "client_id": Field(_STR),
        "note_id": Field(_OPTIONAL_INT, required=False),
        "base_version": Field(_INT),
        "organisation": Field(_STR),
        "year": Field(_INT),
        "month": Field(_INT),
        "approach": Field(_STR),
        "summary": Field(_STR),
        "source_url": Field(_STR),
    },
    "research.note.delete": {"note_id": Field(_INT)},
    "research.judge": {"client_id": Field(_STR), "trend": Field(_STR), "reason": Field(_STR)},
    # review, curation, vote, sign-off, finalize (issue 5)
    "comment.add": {
        "client_id": Field(_STR),
        "draft_id": Field(_INT),
        "kind": Field(_STR),
        "text": Field(_STR),
    },
    "strongest.mark": {"draft_id": Field(_INT)},
    "case.vote": {"draft_id": Field(_INT), "chosen": Field(_BOOL)},
    "case.pick": {"position_id": Field(_INT), "draft_ids": Field(_LIST)},
    "vote.cast": {"position_id": Field(_INT), "reason": Field(_STR, required=False)},
    "vote.close": {},
    "chair.set": {"member_id": Field(_INT), "chair": Field(_BOOL)},
    "signoff.record": {"stance": Field(_STR), "text": Field(_STR, required=False)},
    "recommendation.finalize": {},
}


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


def parse(text: str) -> dict[str, Any]:
    """Decode and validate one inbound message. Returns the message with only known fields."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ERR_MALFORMED, _("The message is not valid JSON.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(ERR_MALFORMED, _("A message must be a JSON object with a string type."))
    kind = data["type"]
    schema = SCHEMAS.get(kind)
    if schema is None:
        received = kind[:40] if _encodable(kind[:40]) else "?"
        raise ProtocolError(ERR_UNKNOWN_TYPE, _("Unknown message type."), received_type=received)
    clean: dict[str, Any] = {"type": kind}
    client_id = data.get("client_id")
    echo = {**_echo(client_id), "request_type": kind}
    for name, field in schema.items():
        if name not in data:
            if field.required:
                raise ProtocolError(
                    ERR_INVALID,
                    _("Field %(name)r is required.") % {"name": name},
                    field=name,
                    **echo,
                )
            continue
        value = data[name]
        # bool is an int subclass in Python; JSON true/false is never a valid number here.
        wrong_bool = isinstance(value, bool) and bool not in field.types
        if wrong_bool or not isinstance(value, field.types):
            raise ProtocolError(
                ERR_INVALID,
                _("Field %(name)r has the wrong type.") % {"name": name},
                field=name,
                **echo,
            )
        if isinstance(value, str):
            # NUL cannot be stored in PostgreSQL text; drafts already dropped it (services).
            value = value.replace("\x00", "")
        if isinstance(value, str) and not _encodable(value):
            # JSON may escape lone surrogates ("\\ud800"); no database can store them.
            raise ProtocolError(
                ERR_INVALID,
                _("Field %(name)r is not valid text.") % {"name": name},
                field=name,
                **echo,
            )
        clean[name] = value
    return clean


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _echo(client_id: Any) -> dict[str, Any]:
    if isinstance(client_id, str) and len(client_id) <= 64 and _encodable(client_id):
        return {"client_id": client_id}
    return {}

"""A participant's identity: which member of which room this browser session is.

Members have no account. Their Django session (stored server-side; the cookie holds only its random
key) carries a map room id -> member id, so a reload or a new tab keeps them the same member.
Sockets read the same session (channels' SessionMiddlewareStack; consumers._admit).

Students of a class are remembered the same way: a map class id -> student id, so every room of
the class recognises them without their retyping a name.
"""

from collections.abc import MutableMapping
from typing import Any

SESSION_KEY = "quorum.members"
STUDENTS_SESSION_KEY = "quorum.students"


def member_remember(*, session: MutableMapping[str, Any], room_id: int, member_id: int) -> None:
    members = dict(session.get(SESSION_KEY, {}))
    members[str(room_id)] = member_id
    session[SESSION_KEY] = members


def member_id_for(*, session: MutableMapping[str, Any] | None, room_id: int) -> int | None:
    if not session:
        return None
    value = session.get(SESSION_KEY, {}).get(str(room_id))
    return value if isinstance(value, int) else None


def student_remember(
    *, session: MutableMapping[str, Any], classgroup_id: int, student_id: int
) -> None:
    students = dict(session.get(STUDENTS_SESSION_KEY, {}))
    students[str(classgroup_id)] = student_id
    session[STUDENTS_SESSION_KEY] = students


def student_id_for(*, session: MutableMapping[str, Any] | None, classgroup_id: int) -> int | None:
    if not session:
        return None
    value = session.get(STUDENTS_SESSION_KEY, {}).get(str(classgroup_id))
    return value if isinstance(value, int) else None


def student_ids(*, session: MutableMapping[str, Any] | None) -> dict[int, int]:
    """Every class this session is a student of: class id -> student id."""
    if not session:
        return {}
    raw = session.get(STUDENTS_SESSION_KEY, {})
    return {int(k): v for k, v in raw.items() if isinstance(v, int) and k.isdigit()}

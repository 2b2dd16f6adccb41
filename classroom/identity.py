"""A participant's identity: which member of which room this browser session is.

Members have no account. Their Django session (stored server-side; the cookie holds only its random
key) carries a map room id -> member id, so a reload or a new tab keeps them the same member.
Sockets read the same session (channels' SessionMiddlewareStack), and the signed-in user from it
with session_user (debate.consumers._admit).

Students of a class are remembered the same way: a map class id -> student id, so every room of
the class recognises them without their retyping a name.
"""

from collections.abc import MutableMapping
from itertools import chain
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare

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


def session_user(session: Any) -> Any:
    """The signed-in user of a socket's session, or AnonymousUser. Accepted as a page accepts it:
    the session names a user and a configured backend, and its hash matches the user's current
    password hash (or, while a secret key is being rotated, one made with a fallback key). The
    socket never writes the session: a stale one is refused here and signed out (or moved to the
    new key) by the next page the browser loads, which can set the cookie."""
    if session is None:
        return AnonymousUser()
    try:
        user_id = session[auth.SESSION_KEY]
        backend_path = session[auth.BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user_model = auth.get_user_model()
    user = auth.load_backend(backend_path).get_user(user_model._meta.pk.to_python(user_id))
    if user is None:
        return AnonymousUser()
    stored = session.get(auth.HASH_SESSION_KEY) or ""
    # The fallback keys' hashes are computed only when the current one does not match.
    hashes = chain([user.get_session_auth_hash()], user.get_session_auth_fallback_hash())
    if stored and any(constant_time_compare(stored, h) for h in hashes):
        return user
    return AnonymousUser()

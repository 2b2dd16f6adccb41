"""A participant's identity: which member of which room this browser session is.

Members have no account. Their Django session (stored server-side; the cookie holds only its random
key) carries a map room id -> member id, so a reload or a new tab keeps them the same member.
Sockets read the same session through AuthMiddlewareStack.
"""

from collections.abc import MutableMapping
from typing import Any

SESSION_KEY = "quorum.members"


def member_remember(*, session: MutableMapping[str, Any], room_id: int, member_id: int) -> None:
    members = dict(session.get(SESSION_KEY, {}))
    members[str(room_id)] = member_id
    session[SESSION_KEY] = members


def member_id_for(*, session: MutableMapping[str, Any] | None, room_id: int) -> int | None:
    if not session:
        return None
    value = session.get(SESSION_KEY, {}).get(str(room_id))
    return value if isinstance(value, int) else None

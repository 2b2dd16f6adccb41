"""Join codes: short, read aloud and typed on phones, so no look-alike characters."""

import secrets

# No 0/O, 1/I/L, and no U/V pair confusion on projectors.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
JOIN_CODE_LENGTH = 6


def join_code_generate() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def join_code_normalize(raw: str) -> str:
    """What a person typed -> the canonical code (case, spaces and dashes forgiven)."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())

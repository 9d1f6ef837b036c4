"""Ingest keys and claim codes: made here, stored hashed, compared by hash."""

from __future__ import annotations

import secrets

from monitors.crypto import hash_key as hash_key  # where the devices' code has it from
from monitors.crypto import new_key

INGEST_KEY_PREFIX = "gro_"
SHOWN_PREFIX_LENGTH = 12
# No 0/O, 1/I/L: read off a label and typed by a person.
CLAIM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CLAIM_GROUPS, CLAIM_GROUP_LENGTH = 3, 4


def new_ingest_key() -> tuple[str, str, str]:
    """(key, prefix shown to people, SHA-256 hex digest stored)."""
    return new_key(INGEST_KEY_PREFIX, SHOWN_PREFIX_LENGTH)


def new_claim_code() -> str:
    groups = (
        "".join(secrets.choice(CLAIM_ALPHABET) for _ in range(CLAIM_GROUP_LENGTH))
        for _ in range(CLAIM_GROUPS)
    )
    return "-".join(groups)


def normalize_claim_code(text: str) -> str:
    """What a person typed, as stored: upper case, groups joined by dashes."""
    compact = "".join(c for c in text.upper() if c.isalnum())
    size = CLAIM_GROUP_LENGTH
    return "-".join(compact[i : i + size] for i in range(0, len(compact), size))

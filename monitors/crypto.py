"""Encryption at rest for credentials (InfluxDB passwords and tokens, webhook secrets).

Fernet keys come from ``settings.FIELD_ENCRYPTION_KEYS``: the first encrypts, every key
decrypts, so a key is rotated by putting a new one first.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be url-safe base64 32-byte Fernet keys"
        ) from exc


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS (key removed?)"
        ) from exc


def hash_key(key: str) -> str:
    """What is stored of a key (ingest, push) and compared: its SHA-256 hex digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str, shown: int = 12) -> tuple[str, str, str]:
    """A random key: (the key, shown once; its first ``shown`` characters, kept to tell keys
    apart; ``hash_key`` of it, stored)."""
    key = prefix + secrets.token_urlsafe(32)
    return key, key[:shown], hash_key(key)

"""Password hashing and login tokens.

Passwords (the 32-hex MD5 that CIM v1 clients send) are stored with scrypt, a slow salted KDF;
tokens are 256 random bits, stored only as their SHA-256 so a database leak yields no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

_SCHEME = "scrypt"


def name_key(name: str) -> str:
    """The form user names are compared, looked up, stored unique and throttled by: NFKC
    casefolded (the Unicode "NFKC_Casefold" recipe, idempotent), so that ``Alice``, ``ALICE``,
    fullwidth or long-s (``\u017f``) spellings are one name everywhere.  Computed in this one
    place: registration, login, the login throttle, the storage key and the admin command."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def hash_password(secret: str, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """Return a self-describing hash ``scrypt$n$r$p$salt$hash`` of ``secret``.  CPU-heavy: call it
    off the reactor thread."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32)
    return "$".join(
        (_SCHEME, str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    )


def verify_password(secret: str, encoded: str) -> bool:
    """True when ``secret`` matches ``encoded``; False for any malformed or empty hash."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != _SCHEME:
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        digest = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=n_, r=r_, p=p_, maxmem=256 * n_ * r_ * p_, dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


def new_token() -> str:
    """A fresh login token: 256 bits from the OS's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()

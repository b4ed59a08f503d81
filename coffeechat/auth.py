"""Password hashing and login tokens.

Passwords (the 32-hex MD5 that CIM v1 clients send) are stored with scrypt, a slow salted KDF;
tokens are 256 random bits, stored only as their SHA-256 so a database leak yields no usable token.
Accounts imported from the original server (``coffeechat import coffeechat-v1``) keep its verifier,
``cimv1$salt$md5hex(md5hex(P) + salt)``, until their first login re-hashes it with scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

_SCHEME = "scrypt"
_LEGACY_CIM_V1 = "cimv1"
# The scrypt a legacy check also runs, so that its timing tells nothing about the account.
_LEGACY_DECOY = (b"coffeechat-legacy-decoy", 2**14, 8, 1)


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


def legacy_cim_v1_hash(salt: str, digest: str) -> str:
    """The stored form of the original server's verifier (``user_pwd_salt``, ``user_pwd_hash``)."""
    return "$".join((_LEGACY_CIM_V1, salt, digest.lower()))


def is_legacy_hash(encoded: str) -> bool:
    """True for an imported verifier that the next successful login replaces with scrypt."""
    return encoded.startswith(_LEGACY_CIM_V1 + "$")


def _verify_legacy(secret: str, encoded: str) -> bool:
    decoy, n, r, p = _LEGACY_DECOY
    hashlib.scrypt(secret.encode(), salt=decoy, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32)
    parts = encoded.split("$")
    if len(parts) != 3 or not parts[1] or len(parts[2]) != 32:
        return False
    inner = hashlib.md5(secret.encode()).hexdigest()
    digest = hashlib.md5((inner + parts[1]).encode()).hexdigest()
    return hmac.compare_digest(digest, parts[2])


def verify_password(secret: str, encoded: str) -> bool:
    """True when ``secret`` matches ``encoded`` (scrypt, or an imported CIM v1 verifier); False
    for any malformed or empty hash."""
    if is_legacy_hash(encoded):
        return _verify_legacy(secret, encoded)
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

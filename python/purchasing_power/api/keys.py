"""API keys: created once, stored only as a salted hash, checked in constant time.

A key reads ``ppk_<key_id>_<secret>``: ``key_id`` (public, 8 hex digits) finds the
stored record, ``secret`` (256 random bits) proves the caller holds the key. The store
keeps ``sha256(salt || secret)`` with a random salt per key, never the key. A slow
password hash (scrypt, argon2) protects low-entropy secrets from guessing; a 256-bit
secret cannot be guessed, and a slow hash would cost tens of milliseconds on every
request, so a salted SHA-256 is the right tool here (as for GitHub's and Stripe's keys).

The store is one JSON file (``$PURCHASING_POWER_API_KEYS``; by default
``purchasing-power/api_keys.json`` under the user's config folder), written atomically
and readable by its owner only. The server reloads it when it changes, so a revoked key
stops working within a poll interval, without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

KEYS_FILE_ENV = "PURCHASING_POWER_API_KEYS"
SCOPES = ("scores", "reasons", "history", "model", "metrics", "health")
KEY_PREFIX = "ppk"
_KEY = re.compile(r"ppk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# compared against when the key id is unknown, so that a miss takes as long as a hit
_DUMMY = (bytes(16), bytes(32))


def default_keys_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$PURCHASING_POWER_API_KEYS``, else ``api_keys.json`` in the user's config folder."""
    environ = os.environ if environ is None else environ
    if environ.get(KEYS_FILE_ENV):
        return Path(environ[KEYS_FILE_ENV])
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "purchasing-power" / "api_keys.json"


@dataclass(frozen=True)
class ApiKey:
    """One stored key: who it is for, what it may read, and its rate limit."""

    name: str
    key_id: str
    salt: str  # hex
    secret_hash: str  # hex sha256(salt || secret)
    scopes: tuple[str, ...]
    created_at: str
    rate_per_second: float | None = None  # None: the server's default
    burst: int | None = None
    revoked_at: str | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @cached_property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes)

    @cached_property
    def hash_material(self) -> tuple[bytes, bytes]:
        """The salt and the stored hash as bytes, decoded once per key, not per request."""
        return bytes.fromhex(self.salt), bytes.fromhex(self.secret_hash)


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``token`` is shown once and stored nowhere."""

    record: ApiKey
    token: str


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from ``"scores,reasons"`` or a list; unknown ones are an error."""
    names = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}, not {text!r}")
    return scopes


def read_keys(path: Path) -> dict[str, ApiKey]:
    """The keys in the file at ``path`` by ``key_id``; none if there is no file."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    keys = {}
    for item in data.get("keys", []):
        record = ApiKey(**{**item, "scopes": tuple(item["scopes"])})
        keys[record.key_id] = record
    return keys


def _write_keys(path: Path, keys: Iterable[ApiKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    payload = {"keys": [{**asdict(key), "scopes": list(key.scopes)} for key in keys]}
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(payload, file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, path)


def add_key(
    path: Path,
    *,
    name: str,
    scopes: Iterable[str],
    rate_per_second: float | None = None,
    burst: int | None = None,
) -> NewKey:
    """Create a key named ``name``: store its salted hash, return the key (once)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"a key name is 1-64 letters, digits, '.', '_' or '-', not {name!r}")
    if rate_per_second is not None and rate_per_second <= 0:
        raise ValueError("the rate must be positive")
    if burst is not None and burst < 1:
        raise ValueError("the burst must be at least 1")
    keys = read_keys(path)
    if any(key.name == name and not key.is_revoked for key in keys.values()):
        raise ValueError(f"a key named {name!r} exists: revoke it first or pick another name")
    key_id = secrets.token_hex(4)
    while key_id in keys:
        key_id = secrets.token_hex(4)
    secret, salt = secrets.token_urlsafe(32), secrets.token_bytes(16)
    record = ApiKey(
        name=name,
        key_id=key_id,
        salt=salt.hex(),
        secret_hash=_digest(salt, secret).hex(),
        scopes=parse_scopes(list(scopes)),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        rate_per_second=rate_per_second,
        burst=burst,
    )
    _write_keys(path, [*keys.values(), record])
    return NewKey(record=record, token=f"{KEY_PREFIX}_{key_id}_{secret}")


def revoke_key(path: Path, *, name: str) -> ApiKey:
    """Mark the live key named ``name`` revoked (kept in the file, for the record)."""
    keys = read_keys(path)
    live = [key for key in keys.values() if key.name == name and not key.is_revoked]
    if not live:
        raise ValueError(f"no live key named {name!r} in {path}")
    revoked = replace(live[0], revoked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    keys[revoked.key_id] = revoked
    _write_keys(path, keys.values())
    return revoked


def verify(keys: Mapping[str, ApiKey], token: str) -> ApiKey | None:
    """The live key ``token`` is, or None. The secret is compared in constant time, and an
    unknown key id is compared against a dummy, so that timing tells nothing."""
    match = _KEY.fullmatch(token)
    key_id, secret = match.groups() if match else ("", token)
    record = keys.get(key_id)
    salt, expected = record.hash_material if record else _DUMMY
    is_equal = hmac.compare_digest(_digest(salt, secret), expected)
    if record is None or not is_equal or record.is_revoked:
        return None
    return record

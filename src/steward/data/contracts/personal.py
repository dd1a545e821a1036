"""Personal-data columns: dropped, or stored as a keyed hash, at the door.

A contract column marked ``personal: drop`` is removed from what the event log stores; one marked
``personal: hash`` is stored as ``HMAC-SHA256(secret, value)`` in lowercase hex. The model still
scores the raw record: only what is logged changes. The key is the workspace's own secret
(:func:`workspace_secret`, 32 random bytes in ``.steward/personal.key``, mode 0600), so a hash
cannot be reversed by hashing guesses offline without that file; the same value always gives the
same hash within a workspace, so hashed columns can still be counted, joined and profiled.

A value is hashed as text: a string as it is (UTF-8), any other value as its JSON text
(``42``, ``true``, ``3.5``); a null stays null.

Example::

    >>> secret = bytes(32)
    >>> protect_record({"email": "a@b.c", "ssn": "123", "age": 4},
    ...                {"email": "hash", "ssn": "drop"}, secret)["email"][:12]
    '3bf5eec5fed3'
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from steward.data.contracts.syntax import Personal
from steward.data.contracts.violations import Violation
from steward.errors import ConfigError

__all__ = [
    "REDACTED",
    "SECRET_FILE",
    "hash_value",
    "protect_record",
    "protect_table",
    "protect_violations",
    "workspace_secret",
]

#: The secret's file name in the store directory (``.steward/``).
SECRET_FILE: Final = "personal.key"
#: What a violation in a personal column shows instead of the value.
REDACTED: Final = "(personal data, not shown)"
_SECRET_BYTES: Final = 32


def workspace_secret(directory: Path) -> bytes:
    """The workspace's hashing key, read from ``directory/personal.key``; made on first use.

    The file holds 32 random bytes and is created with mode 0600. Two processes that create it
    at once agree: each writes its own file and links it into place, and the first link wins.

    Example::

        >>> len(workspace_secret(Path(".steward")))  # doctest: +SKIP
        32
    """
    path = directory / SECRET_FILE
    if not path.exists():
        _create_secret(directory, path)
    secret = path.read_bytes()
    if len(secret) < _SECRET_BYTES:
        raise ConfigError(
            f"the personal-data key '{path}' holds {len(secret)} bytes, fewer than "
            f"{_SECRET_BYTES}; restore it from a backup (a new key would change every hash)"
        )
    return secret


def _create_secret(directory: Path, path: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    draft = directory / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, secrets.token_bytes(_SECRET_BYTES))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(draft, path)  # atomic, and refuses to replace a key another process made
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def hash_value(secret: bytes, value: Any) -> str | None:
    """``HMAC-SHA256(secret, value as text)`` in lowercase hex; None stays None.

    Example::

        >>> hash_value(bytes(32), "a@b.c")[:12]
        '3bf5eec5fed3'
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return hmac.new(secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def protect_record(
    record: Mapping[str, Any], personal: Mapping[str, Personal], secret: bytes
) -> dict[str, Any]:
    """A copy of ``record`` as it may be stored: ``drop`` columns left out, ``hash`` ones hashed."""
    if not personal:
        return dict(record)
    protected = {}
    for name, value in record.items():
        mode = personal.get(name)
        if mode is None:
            protected[name] = value
        elif mode == "hash":
            protected[name] = hash_value(secret, value)
    return protected


def protect_table(table: pa.Table, personal: Mapping[str, Personal], secret: bytes) -> pa.Table:
    """``table`` (one column per input) as it may be stored, as :func:`protect_record` does."""
    for name, mode in personal.items():
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        if mode == "drop":
            table = table.remove_column(index)
            continue
        hashed = [hash_value(secret, value) for value in table.column(index).to_pylist()]
        table = table.set_column(index, name, pa.array(hashed, pa.string()))
    return table


def protect_violations(
    violations: Iterable[Violation], personal: Mapping[str, Any]
) -> list[Violation]:
    """The violations with the example value of each personal column replaced by ``REDACTED``."""
    return [
        dataclasses.replace(violation, example=REDACTED)
        if violation.column in personal and violation.example is not None
        else violation
        for violation in violations
    ]

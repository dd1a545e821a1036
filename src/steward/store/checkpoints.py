"""Signed checkpoints: the audit log's tree head, signed with Ed25519 and kept outside the database.

A checkpoint follows C2SP ``tlog-checkpoint`` (c2sp.org/tlog-checkpoint): three lines, the log's
origin, the tree size in decimal and the base64 root hash, each ending in a newline. It is signed as
a C2SP ``signed-note`` (c2sp.org/signed-note): the text, a blank line, then one line per signature,
``— <key name> <base64(key ID || Ed25519 signature)>``, where the key ID is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || public key)``. Keys are written in the encodings of Go's
``golang.org/x/mod/sumdb/note``: ``<name>+<key ID hex>+<base64(0x01 || public key)>`` for the
verifier key, and the same behind ``PRIVATE+KEY+`` with the 32-byte seed for the signer key, so
that Go's ``note.Open`` and other C2SP tools read both.

Files live in a directory the caller names (the workspace's ``.steward/``): the signer key
(``audit-signing.key``, mode 0600, made on first use), the verifier key beside it
(``audit-signing.pub``), and the checkpoints, appended one signed note after another
(``audit-checkpoints.txt``).

>>> signer = SignerKey.generate("example.com/log")
>>> note = sign_note(Checkpoint("example.com/log", 0, bytes(32)).text(), signer)
>>> Checkpoint.parse(open_note(note, signer.verifier)).size
0
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from steward.errors import InvalidInputError

_log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILE",
    "KEY_FILE",
    "MAX_SIGNATURES",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "SignerKey",
    "VerifierKey",
    "append_note",
    "key_id",
    "load_signer",
    "open_note",
    "post_note",
    "read_notes",
    "read_verifier_key",
    "sign_note",
    "split_notes",
]

KEY_FILE = "audit-signing.key"
PUBLIC_KEY_FILE = "audit-signing.pub"
CHECKPOINT_FILE = "audit-checkpoints.txt"

_ED25519 = b"\x01"  # the signed-note signature type of Ed25519
_SIGNATURE_PREFIX = "— "  # em dash, space
#: A note with more signatures is refused (the spec asks verifiers to accept at least 16).
MAX_SIGNATURES = 100


def _is_valid_name(name: str) -> bool:
    """A key name: non-empty, no Unicode space, no plus (signed-note, "Format")."""
    return bool(name) and "+" not in name and not any(char.isspace() for char in name)


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``, the signed-note Ed25519 key ID."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes

    def text(self) -> str:
        """The note text: origin, size, base64 root, each line ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's note text; extension lines are allowed and ignored."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(line == "" for line in lines[:-1]):
            raise InvalidInputError(
                "a checkpoint is at least three non-empty lines ending in a newline "
                f"(origin, tree size, root hash); got {text[:200]!r}"
            )
        origin, size, root = lines[0], lines[1], lines[2]
        if not size.isascii() or not size.isdigit() or (size.startswith("0") and size != "0"):
            raise InvalidInputError(
                f"checkpoint {origin!r}: tree size {size!r} is not a decimal number without "
                "leading zeroes"
            )
        try:
            root_hash = _b64decode(root)
        except (binascii.Error, ValueError):
            root_hash = b""
        if len(root_hash) != 32:
            raise InvalidInputError(
                f"checkpoint {origin!r}: root hash {root!r} is not the base64 of 32 bytes"
            )
        return cls(origin, int(size), root_hash)


@dataclass(frozen=True)
class VerifierKey:
    """A public key with its name: what a third party needs to check a checkpoint."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        """``<name>+<key ID hex>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read an encoded verifier key (as written to ``audit-signing.pub``)."""
        text = text.strip()
        parts = text.split("+", 2)
        try:
            name, id_hex, encoded = parts
            key = _b64decode(encoded)
            given_id = bytes.fromhex(id_hex)
        except (ValueError, binascii.Error):
            name, key, given_id = "", b"", b""
        if not _is_valid_name(name) or len(given_id) != 4 or key[:1] != _ED25519 or len(key) != 33:
            raise InvalidInputError(
                f"{text[:120]!r} is not an Ed25519 verifier key "
                "(<name>+<8 hex digits>+<base64 of 0x01 and 32 key bytes>)"
            )
        verifier = cls(name, key[1:])
        if verifier.key_id != given_id:
            raise InvalidInputError(
                f"verifier key {name!r}: its key ID {id_hex} does not match its name and key "
                f"(expected {verifier.key_id.hex()})"
            )
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A private Ed25519 key with its name. Its ``repr`` leaves the key out."""

    name: str
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> SignerKey:
        if not _is_valid_name(name):
            raise InvalidInputError(f"key name {name!r} must be non-empty, without spaces or '+'")
        return cls(name, secrets.token_bytes(32))

    @property
    def verifier(self) -> VerifierKey:
        public = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return VerifierKey(self.name, public)

    def encode(self) -> str:
        """``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>``."""
        encoded = base64.b64encode(_ED25519 + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> SignerKey:
        parts = text.strip().split("+", 4)
        try:
            private, key, name, id_hex, encoded = parts
            seed = _b64decode(encoded)
            given_id = bytes.fromhex(id_hex)
        except (ValueError, binascii.Error):
            private, key, name, seed, given_id = "", "", "", b"", b""
        valid = (private, key) == ("PRIVATE", "KEY") and _is_valid_name(name)
        if not valid or seed[:1] != _ED25519 or len(seed) != 33:
            raise InvalidInputError(
                "the signer key is not PRIVATE+KEY+<name>+<8 hex digits>+<base64 of 0x01 and "
                "a 32-byte seed>; restore the key file from a backup"
            )
        signer = cls(name, seed[1:])
        if signer.verifier.key_id != given_id:
            raise InvalidInputError(
                f"signer key {name!r}: its key ID {id_hex} does not match its name and key"
            )
        return signer

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def sign_note(text: str, signer: SignerKey) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n"):
        raise InvalidInputError(f"a note's text must end in a newline; got {text[-40:]!r}")
    _check_characters(text)
    signature = signer.verifier.key_id + signer.sign(text.encode())
    return f"{text}\n{_SIGNATURE_PREFIX}{signer.name} {base64.b64encode(signature).decode()}\n"


def _check_characters(note: str) -> None:
    if any(ord(char) < 0x20 and char != "\n" for char in note):
        raise InvalidInputError("a signed note must not hold control characters but newline")


def open_note(note: str, verifier: VerifierKey) -> str:
    """The text of ``note`` once a signature by ``verifier`` checks out (c2sp.org/signed-note).

    Signatures by other keys (another name or key ID) are ignored; a signature by this key that
    fails rejects the whole note, and so does a note with no signature by this key.
    """
    _check_characters(note)
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise InvalidInputError("malformed note: no blank line before the signatures")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if not lines or lines == [""] or len(lines) > MAX_SIGNATURES:
        raise InvalidInputError(f"malformed note: {len(lines)} signature lines")
    verified = False
    for line in lines:
        name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
        try:
            signature = _b64decode(encoded)
        except (binascii.Error, ValueError):
            signature = b""
        if not line.startswith(_SIGNATURE_PREFIX) or not _is_valid_name(name) or len(signature) < 5:
            raise InvalidInputError(f"malformed signature line {line[:120]!r}")
        if name != verifier.name or signature[:4] != verifier.key_id:
            continue  # another key's signature: ignored, as the spec says
        if not verifier.verify(text.encode(), signature[4:]):
            raise InvalidInputError(
                f"the signature by {name} ({verifier.key_id.hex()}) does not verify: the note "
                "was altered or signed with another key"
            )
        verified = True
    if not verified:
        raise InvalidInputError(
            f"the note has no signature by {verifier.name} ({verifier.key_id.hex()})"
        )
    return text


def split_notes(content: str) -> list[str]:
    """The signed notes in a file that holds several, one after another (blank lines between
    notes are allowed). Text left without signatures comes back as is, to fail ``open_note``."""
    notes: list[str] = []
    text: list[str] = []
    signatures: list[str] = []
    in_signatures = False
    for line in content.split("\n"):
        if in_signatures and line.startswith(_SIGNATURE_PREFIX):
            signatures.append(line)
        elif in_signatures and signatures:
            notes.append("\n".join(text) + "\n\n" + "\n".join(signatures) + "\n")
            text, signatures, in_signatures = ([line] if line else []), [], False
        elif in_signatures:  # a blank line inside the text
            text += ["", line] if line else [""]
            in_signatures = not line
        elif line:
            text.append(line)
        elif text:
            in_signatures = True
    if signatures:
        notes.append("\n".join(text) + "\n\n" + "\n".join(signatures) + "\n")
    elif text:
        notes.append("\n".join(text) + "\n")
    return notes


def load_signer(directory: Path, origin: str | None = None) -> SignerKey:
    """The signer key in ``directory``, made on first use (mode 0600, named ``origin`` or a new
    ``steward.invalid/audit/<random>``); the verifier key is (re)written beside it."""
    path = directory / KEY_FILE
    if not path.exists():
        name = origin or f"steward.invalid/audit/{secrets.token_hex(8)}"
        _create_exclusively(path, SignerKey.generate(name).encode() + "\n")
    try:
        signer = SignerKey.parse(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a signer key; restore it from a backup") from None
    public = directory / PUBLIC_KEY_FILE
    encoded = signer.verifier.encode() + "\n"
    if not public.exists() or public.read_text(encoding="utf-8") != encoded:
        public.write_text(encoded, encoding="utf-8")
    return signer


def _create_exclusively(path: Path, content: str) -> None:
    """Write ``path`` (mode 0600) unless it exists: two processes starting at once keep one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(scratch, path)  # atomic, and fails if another process made the key first
    except FileExistsError:
        pass
    finally:
        scratch.unlink(missing_ok=True)


def read_verifier_key(path: Path) -> VerifierKey:
    """The verifier key written in ``path`` (e.g. a copy of ``audit-signing.pub``)."""
    try:
        return VerifierKey.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"cannot read the verifier key {path}: {error}") from None


def append_note(path: Path, note: str) -> None:
    """Append one signed note and a blank line in a single write (``O_APPEND``), then fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (note + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.write(descriptor, data[written:])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_notes(path: Path) -> list[str]:
    """The signed notes in a checkpoint file, in the order they were appended."""
    try:
        return split_notes(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"cannot read the checkpoint file {path}: {error}") from None


def post_note(url: str, note: str, *, attempts: int = 3, timeout: float = 5.0) -> bool:
    """POST a signed note to ``url`` (``text/plain``), a copy kept where a rewrite of this host's
    database and files does not reach; a few tries, then a warning. True if it was accepted."""
    last = ""
    for attempt in range(attempts):
        try:
            answer = httpx.post(
                url,
                content=note.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=timeout,
            )
            if answer.status_code < 300:
                return True
            last = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            last = str(error) or type(error).__name__
        time.sleep(0.5 * 2**attempt)
    _log.warning("audit checkpoint not sent to %s after %d tries: %s", url, attempts, last)
    return False

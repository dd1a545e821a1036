"""The audit log's Merkle tree, its signed checkpoints, and tampering that only they catch.

Roots and inclusion proofs are checked against pymerkle (whose default hashing is RFC 9162's: 0x00
leaf and 0x01 node prefixes, the largest-power-of-two split); consistency proofs against RFC 9162
§2.1.4.1 written out here as the RFC states it, because pymerkle lays out its consistency paths
otherwise. Signed notes are checked against the published example of Go's
``golang.org/x/mod/sumdb/note``, and every attack on SQLite and on the real PostgreSQL.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import logging
import os
import random
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pymerkle
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from steward import Steward
from steward.cli import cli
from steward.errors import ConflictError, InvalidInputError
from steward.store import AuditRow, audit
from steward.store.checkpoints import (
    CHECKPOINT_FILE,
    KEY_FILE,
    PUBLIC_KEY_FILE,
    Checkpoint,
    SignerKey,
    VerifierKey,
    load_signer,
    open_note,
    post_note,
    read_notes,
    read_verifier_key,
    sign_note,
    split_notes,
)
from steward.store.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The Merkle tree against pymerkle

DATA = [f"entry {i}".encode() for i in range(1000)]


@pytest.fixture(scope="module")
def reference() -> pymerkle.InmemoryTree:
    """pymerkle's tree of the 1,000 entries; its default (security on) is RFC 9162's hashing."""
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    tree.append_entries(DATA)
    return tree


@pytest.fixture(scope="module")
def ours() -> MerkleTree:
    return MerkleTree([leaf_hash(data) for data in DATA])


@functools.cache
def rfc_mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) of RFC 9162 §2.1.1 as written there, recursive, over ``DATA``."""
    if end - start == 1:
        return hashlib.sha256(b"\x00" + DATA[start]).digest()
    k = 1
    while k * 2 < end - start:  # the largest power of two smaller than the width
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(start, start + k) + rfc_mth(start + k, end)).digest()


def rfc_subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) of RFC 9162 §2.1.4.1 as written there."""
    if m == end - start:
        return [] if complete else [rfc_mth(start, end)]
    k = 1
    while k * 2 < end - start:
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, start, start + k, complete), rfc_mth(start + k, end)]
    return [*rfc_subproof(m - k, start + k, end, False), rfc_mth(start, start + k)]


def positions(seed: int) -> Iterator[tuple[int, int]]:
    """(position, tree size) pairs worth checking for trees of 1 to 1,000 leaves: every position up
    to 40 leaves, then the ends, the middle, the largest power of two below n and three at random."""
    rng = random.Random(seed)
    for n in range(1, 1001):
        if n <= 40:
            yield from ((position, n) for position in range(1, n + 1))
            continue
        picks = {1, n, max(1, n // 2), 1 << (n.bit_length() - 1)}
        picks.update(rng.randint(1, n) for _ in range(3))
        yield from ((position, n) for position in sorted(picks))


def test_roots_match_pymerkle_for_every_size_from_1_to_1000(
    reference: pymerkle.InmemoryTree, ours: MerkleTree
) -> None:
    hashes = [leaf_hash(data) for data in DATA]
    for n in range(1, 1001):
        assert ours.root(n) == reference.get_root(n) == rfc_mth(0, n), n
    for n in (1, 2, 3, 255, 256, 257, 999):
        assert root_hash(hashes[:n]) == reference.get_root(n)
    assert root_hash([]) == EMPTY_ROOT == reference.get_root(0)


def test_inclusion_proofs_match_pymerkle_and_verify(
    reference: pymerkle.InmemoryTree, ours: MerkleTree
) -> None:
    for index, n in positions(9162):
        path = ours.inclusion_proof(index - 1, n)
        assert path == reference.prove_inclusion(index, n).path[1:], (index, n)
        assert verify_inclusion(ours.leaf(index - 1), index - 1, n, path, ours.root(n))


def test_consistency_proofs_match_rfc_9162_as_written_and_verify(
    reference: pymerkle.InmemoryTree, ours: MerkleTree
) -> None:
    for m, n in positions(6962):
        path = ours.consistency_proof(m, n)
        assert path == rfc_subproof(m, 0, n, True), (m, n)
        assert verify_consistency(m, n, ours.root(m), ours.root(n), path)
        # pymerkle lays its consistency path out otherwise (it goes right where the old size
        # meets a split, RFC 9162 left), so only its verdict on our roots is compared.
        theirs = reference.prove_consistency(m, n)
        pymerkle.verify_consistency(ours.root(m), ours.root(n), theirs)


def test_proofs_fail_for_another_leaf_root_size_or_path(ours: MerkleTree) -> None:
    n, index, m = 777, 300, 500
    path, root = ours.inclusion_proof(index, n), ours.root(n)
    assert verify_inclusion(ours.leaf(index), index, n, path, root)
    assert not verify_inclusion(ours.leaf(index + 1), index, n, path, root)
    assert not verify_inclusion(ours.leaf(index), index + 1, n, path, root)
    assert not verify_inclusion(ours.leaf(index), index, 512, path, root)  # a tree of other shape
    assert not verify_inclusion(ours.leaf(index), index, n, path, ours.root(n - 1))
    assert not verify_inclusion(ours.leaf(index), index, n, path[:-1], root)
    assert not verify_inclusion(ours.leaf(index), index, n, [*path, path[0]], root)
    flipped = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
    assert not verify_inclusion(ours.leaf(index), index, n, flipped, root)

    proof = ours.consistency_proof(m, n)
    assert verify_consistency(m, n, ours.root(m), root, proof)
    assert not verify_consistency(m, n, ours.root(m - 1), root, proof)
    assert not verify_consistency(m, n, ours.root(m), ours.root(n - 1), proof)
    assert not verify_consistency(m + 1, n, ours.root(m), root, proof)
    assert not verify_consistency(m, n, ours.root(m), root, proof[:-1])
    assert not verify_consistency(n, m, root, ours.root(m), proof)
    # The trivial cases: a tree with itself, and the empty tree with any.
    assert verify_consistency(n, n, root, root, [])
    assert not verify_consistency(n, n, root, ours.root(m), [])
    assert verify_consistency(0, n, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, n, ours.root(1), root, [])


def test_a_tree_of_one_hundred_thousand_leaves_proves_any_checkpoint() -> None:
    tree = MerkleTree([leaf_hash(str(i).encode()) for i in range(100_000)])
    root = tree.root()
    for m in (1, 99_999, 65_536, 31_337):
        assert verify_consistency(m, 100_000, tree.root(m), root, tree.consistency_proof(m))
    assert len(tree.inclusion_proof(54_321)) == 17  # ceil(log2(100,000)) siblings


# Signed notes and checkpoints

# The example of golang.org/x/mod/sumdb/note (its package documentation): a signer key, the text,
# and the note Go's note.Sign writes. Ed25519 signatures are deterministic, so ours must match.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_COSIGNATURE = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_signed_notes_match_go_sumdb_note_byte_for_byte() -> None:
    signer = SignerKey.parse(GO_SIGNER)
    assert signer.encode() == GO_SIGNER
    assert signer.verifier.encode() == GO_VERIFIER
    assert VerifierKey.parse(GO_VERIFIER) == signer.verifier
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert open_note(GO_NOTE, VerifierKey.parse(GO_VERIFIER)) == GO_TEXT
    # A second signature by a key we do not know is ignored, as the spec says.
    assert open_note(GO_NOTE + GO_COSIGNATURE, VerifierKey.parse(GO_VERIFIER)) == GO_TEXT
    assert "PeterNeumann" in repr(signer) and "AYEK" not in repr(signer)


def test_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_type_and_key() -> None:
    verifier = VerifierKey.parse(GO_VERIFIER)
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.public_key).digest()
    assert verifier.key_id == digest[:4] == bytes.fromhex("c74f20a3")


@pytest.fixture
def signed(tmp_path: Path) -> tuple[str, VerifierKey]:
    """A checkpoint signed with a key made in ``tmp_path``, and the verifier key read back from
    the public key file alone."""
    signer = load_signer(tmp_path)
    checkpoint = Checkpoint(signer.name, 1234, hashlib.sha256(b"root").digest())
    return sign_note(checkpoint.text(), signer), read_verifier_key(tmp_path / PUBLIC_KEY_FILE)


def test_a_checkpoint_verifies_with_the_public_key_alone(
    signed: tuple[str, VerifierKey], tmp_path: Path
) -> None:
    note, verifier = signed
    lines = note.split("\n")
    assert lines[0] == verifier.name and lines[1] == "1234"
    assert base64.b64decode(lines[2]) == hashlib.sha256(b"root").digest()
    assert lines[3] == "" and lines[4].startswith(f"— {verifier.name} ")
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    assert (checkpoint.origin, checkpoint.size) == (verifier.name, 1234)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_signer(tmp_path).verifier == verifier  # made once, then read


def test_an_altered_body_or_signature_or_another_key_fails(
    signed: tuple[str, VerifierKey], tmp_path: Path
) -> None:
    note, verifier = signed
    with pytest.raises(InvalidInputError, match="does not verify"):
        open_note(note.replace("\n1234\n", "\n1235\n"), verifier)
    text, signature_line = note.rsplit("\n\n", 1)
    name, encoded = signature_line.removeprefix("— ").split()
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01
    altered = f"{text}\n\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(InvalidInputError, match="does not verify"):
        open_note(altered, verifier)
    # A forger with another key under the same name: their key ID is not ours.
    forger = SignerKey.generate(verifier.name)
    forged = sign_note(Checkpoint.parse(text + "\n").text(), forger)
    with pytest.raises(InvalidInputError, match="no signature by"):
        open_note(forged, verifier)
    # ... and one who copies our key ID onto their signature is checked, and fails.
    stolen_id = forged.replace(*_ids(forged, verifier))
    with pytest.raises(InvalidInputError, match="does not verify"):
        open_note(stolen_id, verifier)


def _ids(note: str, verifier: VerifierKey) -> tuple[str, str]:
    encoded = note.rsplit(" ", 1)[1].strip()
    raw = base64.b64decode(encoded)
    return encoded, base64.b64encode(verifier.key_id + raw[4:]).decode()


@pytest.mark.parametrize(
    "text",
    [
        "example.com/log\n012\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "example.com/log\n12\nAAAA\n",  # not 32 bytes
        "example.com/log\n12\n",  # two lines
        "example.com/log\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # no final newline
        "example.com/log\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        Checkpoint.parse(text)


def test_a_file_of_notes_splits_back_into_each_note() -> None:
    second = GO_NOTE + GO_COSIGNATURE
    assert split_notes(GO_NOTE + "\n" + second + "\n") == [GO_NOTE, second]
    assert split_notes(GO_NOTE + second) == [GO_NOTE, second]


# The audit log in a workspace, on SQLite and PostgreSQL


def fill(workspace: Steward, n: int) -> None:
    """Append ``n`` entries, one transaction each, as Steward's own writes do."""
    for i in range(n):
        with workspace.store.write() as session:
            audit.record(
                session, actor="ana", action="test.step", target=f"t{i}", details={"step": i}
            )


def entries(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(AuditRow.__table__).order_by(AuditRow.id)))


def rechain(engine: Engine) -> None:
    """What an attacker who read the docs does after an edit: recompute every chain hash."""
    previous = "0" * 64
    for row in entries(engine):
        body = json.dumps(
            {
                "at": row.at.isoformat(),
                "actor": row.actor,
                "action": row.action,
                "target": row.target,
                "details": row.details,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        digest = hashlib.sha256((previous + body).encode()).hexdigest()
        with engine.begin() as connection:
            connection.execute(
                update(AuditRow)
                .where(AuditRow.id == row.id)
                .values(prev_hash=previous, hash=digest)
            )
        previous = digest


def edit(engine: Engine) -> None:
    row = entries(engine)[10]
    with engine.begin() as connection:
        connection.execute(update(AuditRow).where(AuditRow.id == row.id).values(actor="mallory"))
    rechain(engine)


def delete_one(engine: Engine) -> None:
    row = entries(engine)[10]
    with engine.begin() as connection:
        connection.execute(delete(AuditRow).where(AuditRow.id == row.id))
    rechain(engine)


def insert_one(engine: Engine) -> None:
    row = entries(engine)[10]
    with engine.begin() as connection:  # make room after row 10, then fill it
        connection.execute(update(AuditRow).where(AuditRow.id > row.id).values(id=-AuditRow.id))
        connection.execute(update(AuditRow).where(AuditRow.id < 0).values(id=1 - AuditRow.id))
        values = {**row._asdict(), "id": row.id + 1, "actor": "mallory", "hash": "x" * 64}
        connection.execute(insert(AuditRow).values(**values))
    rechain(engine)


def reorder_two(engine: Engine) -> None:
    rows = entries(engine)
    first, second = rows[10], rows[11]
    fields = ("at", "actor", "action", "target", "details")
    with engine.begin() as connection:
        for row, other in ((first, second), (second, first)):
            values = {name: getattr(other, name) for name in fields}
            connection.execute(update(AuditRow).where(AuditRow.id == row.id).values(**values))
    rechain(engine)


def truncate_five(engine: Engine) -> None:
    last_kept = entries(engine)[-6]
    with engine.begin() as connection:
        connection.execute(delete(AuditRow).where(AuditRow.id > last_kept.id))


def rewrite_tail(engine: Engine) -> None:
    """Replace the last ten entries with others and recompute every hash the database holds."""
    tail = entries(engine)[-10:]
    with engine.begin() as connection:
        for row in tail:
            connection.execute(
                update(AuditRow)
                .where(AuditRow.id == row.id)
                .values(actor="mallory", details={"step": -1})
            )
    rechain(engine)


ATTACKS: dict[str, Callable[[Engine], None]] = {
    "edit an entry": edit,
    "delete an entry": delete_one,
    "insert an entry": insert_one,
    "reorder two entries": reorder_two,
    "truncate the last five": truncate_five,
    "rewrite the tail": rewrite_tail,
}


@pytest.fixture
def published(workspace: Steward, tmp_path: Path) -> tuple[Path, Path]:
    """30 entries, a checkpoint, and a copy of it and of the verifier key kept elsewhere."""
    fill(workspace, 30)
    audit.checkpoint(workspace.store, workspace.settings.store_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in (CHECKPOINT_FILE, PUBLIC_KEY_FILE):
        shutil.copy(workspace.settings.store_dir / name, elsewhere / name)
    return elsewhere / CHECKPOINT_FILE, elsewhere / PUBLIC_KEY_FILE


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_after_a_checkpoint_is_caught_by_the_exported_checkpoint(
    workspace: Steward, published: tuple[Path, Path], attack: str
) -> None:
    exported, public_key = published
    assert workspace.verify_audit([exported], public_key).ok
    ATTACKS[attack](workspace.store.engine)
    # The attacker also removes the workspace's own checkpoints: only the exported copy is left.
    (workspace.settings.store_dir / CHECKPOINT_FILE).unlink()
    assert audit.verify(workspace.store).ok, "the hash chain alone is fooled by these attacks"

    check = workspace.verify_audit([exported], public_key)
    assert not check.ok
    assert check.checkpoint.startswith(f"checkpoint 1 in {exported}")
    assert check.message.startswith("broken: checkpoint 1 in")
    if attack in ("truncate the last five", "delete an entry"):
        assert "deleted or cut off the end" in check.reason and check.first_bad_id is None
    else:
        assert "no longer hash to its signed root" in check.reason
        assert check.first_bad_id is not None


def test_an_edit_after_the_latest_checkpoint_is_caught_by_the_hash_chain(
    workspace: Steward, published: tuple[Path, Path]
) -> None:
    fill(workspace, 5)
    last = entries(workspace.store.engine)[-1]
    with workspace.store.write() as session:
        session.execute(update(AuditRow).where(AuditRow.id == last.id).values(actor="mallory"))
    check = workspace.verify_audit([published[0]], published[1])
    assert (check.ok, check.first_bad_id) == (False, last.id)
    assert "edited" in check.reason


def test_a_tampered_log_is_neither_signed_nor_proved(
    workspace: Steward, published: tuple[Path, Path]
) -> None:
    rewrite_tail(workspace.store.engine)
    directory = workspace.settings.store_dir
    with pytest.raises(ConflictError, match="not signing"):
        audit.checkpoint(workspace.store, directory)
    with pytest.raises(ConflictError, match="steward audit verify"):
        audit.prove(workspace.store, directory, entries(workspace.store.engine)[0].id)
    assert len(read_notes(directory / CHECKPOINT_FILE)) == 1


def test_a_checkpoint_is_signed_when_the_log_reaches_every_hundredth_entry(
    workspace: Steward,
) -> None:
    path = workspace.settings.store_dir / CHECKPOINT_FILE
    fill(workspace, audit.CHECKPOINT_EVERY - len(entries(workspace.store.engine)) - 1)
    assert not path.exists()
    # The hundredth entry, rolled back: nothing is signed for it.
    with pytest.raises(RuntimeError), workspace.store.write() as session:
        audit.record(session, actor="ana", action="test.step", target="gone", details={})
        raise RuntimeError("the caller's transaction fails")
    assert not path.exists()
    fill(workspace, 2)
    verifier = read_verifier_key(workspace.settings.store_dir / PUBLIC_KEY_FILE)
    sizes = [Checkpoint.parse(open_note(note, verifier)).size for note in read_notes(path)]
    assert sizes == [audit.CHECKPOINT_EVERY]
    check = workspace.verify_audit()
    assert check.ok and (check.n_checkpoints, check.latest_size) == (1, audit.CHECKPOINT_EVERY)


def test_an_inclusion_proof_checks_with_the_public_key_alone(
    workspace: Steward, published: tuple[Path, Path]
) -> None:
    signed_size = len(entries(workspace.store.engine))
    fill(workspace, 3)  # newer than the checkpoint: proving one signs a new checkpoint
    rows = entries(workspace.store.engine)
    directory = workspace.settings.store_dir
    public_key = published[1].read_text()
    for row, size in ((rows[4], signed_size), (rows[-1], len(rows))):
        proof = audit.prove(workspace.store, directory, row.id)
        assert (proof["entry"]["id"], proof["tree_size"]) == (row.id, size)
        check = audit.verify_inclusion_proof(json.dumps(proof), public_key)
        assert check.ok, check.reason

    proof = audit.prove(workspace.store, directory, rows[4].id)
    altered = json.loads(json.dumps(proof))
    altered["entry"]["actor"] = "mallory"
    assert not audit.verify_inclusion_proof(json.dumps(altered), public_key).ok
    moved = {**proof, "leaf_index": proof["leaf_index"] + 1}
    assert not audit.verify_inclusion_proof(json.dumps(moved), public_key).ok
    other_key = SignerKey.generate("example.com/other").verifier.encode()
    refused = audit.verify_inclusion_proof(json.dumps(proof), other_key)
    assert not refused.ok and "no signature by" in refused.reason


def test_the_cli_verifies_proves_and_checkpoints(
    workspace: Steward, published: tuple[Path, Path]
) -> None:
    base = [
        "--workspace",
        str(workspace.settings.workspace),
        "--database-url",
        workspace.settings.database_url,
    ]
    n = len(entries(workspace.store.engine))
    runner = CliRunner()
    signed = runner.invoke(cli, [*base, "audit", "checkpoint"])
    assert signed.exit_code == 0 and f"checkpoint at size {n} " in signed.output, signed.output
    intact = runner.invoke(cli, [*base, "audit", "verify"])
    assert intact.exit_code == 0, intact.output
    expected = f"intact: {n} entries, consistent with 2 checkpoints (latest at size {n})"
    assert expected in intact.output
    row = entries(workspace.store.engine)[7]
    proved = runner.invoke(cli, [*base, "audit", "prove", str(row.id)])
    assert proved.exit_code == 0, proved.output
    assert audit.verify_inclusion_proof(proved.output, published[1].read_text()).ok
    missing = runner.invoke(cli, [*base, "audit", "prove", "999999"])
    assert missing.exit_code == 1 and "no audit entry with id 999999" in missing.output

    truncate_five(workspace.store.engine)
    exported, public_key = published
    options = ["--checkpoint", str(exported), "--public-key", str(public_key)]
    broken = runner.invoke(cli, [*base, "audit", "verify", *options])
    assert broken.exit_code == 1
    assert "broken: checkpoint 1 in" in broken.output and "cut off the end" in broken.output


def test_a_quiet_log_is_signed_once_an_interval_when_it_grew(workspace: Steward) -> None:
    directory = workspace.settings.store_dir
    fill(workspace, 3)
    first = audit.checkpoint_if_due(workspace.store, directory, timedelta(hours=1))
    assert first is not None and first.size == count_entries(workspace)
    # Within the interval, nothing; past it but with no new entry, nothing either.
    fill(workspace, 2)
    assert audit.checkpoint_if_due(workspace.store, directory, timedelta(hours=1)) is None
    path = directory / CHECKPOINT_FILE
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    second = audit.checkpoint_if_due(workspace.store, directory, timedelta(hours=1))
    assert second is not None and second.size == first.size + 2
    os.utime(path, (two_hours_ago, two_hours_ago))
    assert audit.checkpoint_if_due(workspace.store, directory, timedelta(hours=1)) is None
    assert workspace.verify_audit().ok


def count_entries(workspace: Steward) -> int:
    with workspace.store.read() as session:
        return len(session.scalars(select(AuditRow.id)).all())


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


def test_each_checkpoint_is_also_sent_to_the_webhook_and_verifies_there(
    workspace: Steward,
) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/checkpoints"
        directory = workspace.settings.store_dir
        audit.publish_checkpoints(workspace.store, directory, webhook=url)
        fill(workspace, 4)
        audit.checkpoint(workspace.store, directory)
    finally:
        receiver.shutdown()
        receiver.server_close()
    [sent] = _Receiver.received
    notes = read_notes(directory / CHECKPOINT_FILE)
    assert sent.decode() == notes[-1]
    # The copy elsewhere verifies with the public key alone.
    verifier = read_verifier_key(directory / PUBLIC_KEY_FILE)
    assert Checkpoint.parse(open_note(sent.decode(), verifier)).size == count_entries(workspace)


def test_an_unreachable_webhook_costs_a_warning_not_the_checkpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING):
        assert not post_note(f"http://127.0.0.1:{port}/", "note\n", attempts=1, timeout=1)
    assert "audit checkpoint not sent" in caplog.text

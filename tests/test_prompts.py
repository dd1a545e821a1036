"""The prompt registry: files registered by content, labels moved with history, rollback, approvals."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from steward.cli.main import cli
from steward.core import Steward
from steward.errors import ConfigError, ConflictError, ForbiddenError, InvalidInputError
from steward.llm import prompts
from steward.loop import promotion

CONFIG = """\
version: 1
systems:
  - name: support
    task: llm
    owner: support@example.com
    prompts:
      - name: answer
        file: prompts/answer.yaml
    protected_labels: [locked]
"""

PROMPT_V1 = """\
description: Answer a support question.
provider: echo
model: fake-model
parameters: {temperature: 0.2}
variables: [question, product]
messages:
  - role: system
    content: You answer questions about {{ product }}. Be brief.
  - role: user
    content: "{{ question }}"
"""

PROMPT_V2 = PROMPT_V1.replace("Be brief.", "Be brief and kind.")


def make_workspace(root: Path, database_url: str, prompt: str = PROMPT_V1) -> Steward:
    (root / "prompts").mkdir(parents=True)
    (root / "steward.yaml").write_text(CONFIG)
    (root / "prompts" / "answer.yaml").write_text(prompt)
    steward = Steward.open(root, database_url=database_url, user="alice")
    steward.init()
    return steward


@pytest.fixture
def steward(tmp_path: Path, database_url: str) -> Steward:
    workspace = make_workspace(tmp_path / "ws", database_url)
    yield workspace
    workspace.close()


def test_apply_registers_a_changed_file_once_identified_by_its_bytes(steward: Steward) -> None:
    first = steward.apply()
    assert first[0].prompts == ("answer v1",)
    assert steward.apply()[0].prompts == ()  # the same bytes register nothing

    path = steward.settings.workspace / "prompts" / "answer.yaml"
    path.write_text(PROMPT_V2)
    assert steward.apply()[0].prompts == ("answer v2",)
    version = prompts.get_prompt(steward.store, "support", "answer", 2)
    assert version.sha256 == hashlib.sha256(PROMPT_V2.encode()).hexdigest()
    assert version.source == PROMPT_V2
    assert version.parsed.render({"question": "Why?", "product": "Fiber"})[0]["content"] == (
        "You answer questions about Fiber. Be brief and kind."
    )
    # Going back to the first file's bytes finds version 1 again rather than a third version.
    path.write_text(PROMPT_V1)
    assert steward.apply()[0].prompts == ()
    assert [
        v.version for v in prompts.list_prompt_versions(steward.store, "support", "answer")
    ] == [
        1,
        2,
    ]


def test_the_git_commit_is_kept_with_the_version(steward: Steward) -> None:
    root = steward.settings.workspace
    git = ["git", "-c", "user.email=a@example.com", "-c", "user.name=a", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "steward.yaml", "prompts"], check=True)
    subprocess.run([*git, "commit", "-qm", "prompts"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    steward.apply()
    version = prompts.get_prompt(steward.store, "support", "answer", 1)
    assert version.code == {"commit": head, "dirty": False}


def test_a_broken_prompt_file_is_refused_before_anything_is_written(
    tmp_path: Path, database_url: str
) -> None:
    steward = make_workspace(tmp_path / "ws", database_url, PROMPT_V1.replace("[question, ", "["))
    with pytest.raises(ConfigError, match=r"answer.yaml: the template uses question"):
        steward.apply()
    assert steward.systems() == []  # not even the system was created
    (tmp_path / "ws" / "prompts" / "answer.yaml").write_text("template: hi\nmodle: x\n")
    with pytest.raises(ConfigError, match=r"modle: unknown key"):
        steward.apply()
    steward.close()


def test_prompts_belong_to_llm_systems_only(tmp_path: Path, database_url: str) -> None:
    steward = make_workspace(tmp_path / "ws", database_url)
    (tmp_path / "ws" / "steward.yaml").write_text(CONFIG.replace("task: llm", "task: binary"))
    with pytest.raises(ConfigError, match="only a system of task 'llm' has prompts"):
        steward.apply()
    steward.close()


def test_labels_move_with_history_and_roll_back_like_aliases(steward: Steward) -> None:
    steward.apply()
    (steward.settings.workspace / "prompts" / "answer.yaml").write_text(PROMPT_V2)
    steward.apply()
    store = steward.store
    prompts.move_label(store, "support", "answer", "production", 1, actor="alice")
    prompts.move_label(store, "support", "answer", "production", "v2", actor="alice", reason="kind")
    assert prompts.get_prompt(store, "support", "answer", "production").version == 2

    back = prompts.rollback_label(store, "support", "answer", actor="bob", reason="complaints")
    assert (back.from_version, back.to_version, back.action) == (2, 1, "rollback")
    assert prompts.get_prompt(store, "support", "answer", "production").labels == ("production",)
    with pytest.raises(ConflictError, match="no earlier holder than v1"):
        prompts.rollback_label(store, "support", "answer", actor="bob")

    history = prompts.label_history(store, "support", "answer")
    assert [(c.action, c.from_version, c.to_version, c.moved_by) for c in history] == [
        ("move", None, 1, "alice"),
        ("move", 1, 2, "alice"),
        ("rollback", 2, 1, "bob"),
    ]
    prompts.move_label(store, "support", "answer", "production", None, actor="alice")
    with pytest.raises(Exception, match="no version at label 'production'"):
        prompts.get_prompt(store, "support", "answer", "production")
    assert steward.verify_audit().ok


def test_the_diff_keeps_lines_apart_when_a_file_has_no_final_newline(steward: Steward) -> None:
    path = steward.settings.workspace / "prompts" / "answer.yaml"
    path.write_text("template: a\nvariables: []\ndescription: b")
    steward.apply()
    path.write_text("template: a\nvariables: []\ndescription: c")
    steward.apply()
    one, two = prompts.list_prompt_versions(steward.store, "support", "answer")
    lines = prompts.diff_prompt_versions(one, two).splitlines()
    assert "-description: b" in lines and "+description: c" in lines
    assert prompts.diff_prompt_versions(one, one) == ""


def test_label_names_and_unknown_prompts_get_clear_errors(steward: Steward) -> None:
    steward.apply()
    with pytest.raises(InvalidInputError, match="label 'Prod!' is not a valid name"):
        prompts.move_label(steward.store, "support", "answer", "Prod!", 1, actor="alice")
    with pytest.raises(Exception, match=r"has no prompt 'anwser' \(its prompts: answer\)"):
        prompts.get_prompt(steward.store, "support", "anwser", "production")
    with pytest.raises(Exception, match=r"has no version 9 \(versions are 1 to 1\)"):
        prompts.get_prompt(steward.store, "support", "answer", 9)


def test_a_protected_label_moves_only_through_another_persons_approval(steward: Steward) -> None:
    steward.apply()
    (steward.settings.workspace / "prompts" / "answer.yaml").write_text(PROMPT_V2)
    steward.apply()
    store = steward.store
    prompts.move_label(store, "support", "answer", "locked", 1, actor="alice")  # first set: free
    with pytest.raises(ForbiddenError, match="protected"):
        prompts.move_label(store, "support", "answer", "locked", 2, actor="alice")

    approval = prompts.request_label_move(store, "support", "answer", "locked", 2, actor="alice")
    with pytest.raises(ForbiddenError, match="another approver"):
        promotion.approve(steward, approval, "alice")
    decided = promotion.approve(steward, approval, "carol", note="read the diff")
    assert decided.state == "approved"
    assert prompts.get_prompt(store, "support", "answer", "locked").version == 2
    last = prompts.label_history(store, "support", "answer", "locked")[-1]
    assert last.moved_by == "carol" and "approval #" in last.reason
    # A rollback is the other way a protected label moves.
    prompts.rollback_label(store, "support", "answer", actor="alice", label="locked")
    assert prompts.get_prompt(store, "support", "answer", "locked").version == 1
    assert steward.verify_audit().ok


def test_cli_lists_shows_diffs_labels_and_rolls_back(steward: Steward) -> None:
    root = steward.settings.workspace
    runner = CliRunner()
    base = ["--workspace", str(root), "--database-url", steward.settings.database_url]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*base, "--user", "alice", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    assert "prompt    support: registered answer v1" in run("apply")
    (root / "prompts" / "answer.yaml").write_text(PROMPT_V2)
    assert "registered support answer v2" in run("prompts", "push")
    run("prompts", "label", "support", "answer", "production", "1")
    run("prompts", "label", "support", "answer", "production", "2", "--reason", "kinder")
    listing = run("prompts", "list", "support")
    assert "answer" in listing and "production=v2" in listing
    assert "Be brief and kind." in run("prompts", "show", "support", "answer")
    diff = run("prompts", "diff", "support", "answer", "1", "production")
    assert "-    content: You answer questions about {{ product }}. Be brief." in diff
    assert "+    content: You answer questions about {{ product }}. Be brief and kind." in diff
    assert "v2 -> v1" in run("rollback", "support", "--prompt", "answer")
    assert "rollback" in run("prompts", "history", "support", "answer")
    error = run("prompts", "label", "support", "answer", "production", "7", code=1)
    assert "has no version 7" in error


def test_the_version_is_the_hash_of_the_files_bytes(steward: Steward) -> None:
    path = steward.settings.workspace / "prompts" / "answer.yaml"
    data = PROMPT_V1.replace("\n", "\r\n").encode()  # saved on Windows: the bytes, not the text
    path.write_bytes(data)
    steward.apply()
    version = prompts.get_prompt(steward.store, "support", "answer", 1)
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    path.write_bytes(b"template: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"answer.yaml is not UTF-8 text \(byte 13\)"):
        steward.apply()

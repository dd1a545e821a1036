"""The house rules, read from the source with ``ast``: sizes, private names, and imports that ship.

The layers themselves are import-linter's job (``lint-imports`` in CI, contracts in
pyproject.toml); these are the rules it cannot express.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import steward

PACKAGE = Path(steward.__file__).parent
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 60


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        if "migrations" in relative.parts and "versions" in relative.parts:
            continue  # generated-style Alembic revisions
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        yield name, path, ast.parse(path.read_text(), filename=str(path))


MODULES = list(_modules())


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def test_the_package_is_walked() -> None:
    names = {name for name, _, _ in MODULES}
    assert {"steward.core", "steward.workspace.workspace", "steward.data.events"} <= names


def test_no_module_is_over_800_lines() -> None:
    long = {
        name: len(path.read_text().splitlines())
        for name, path, _ in MODULES
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these along a noun (at most {MAX_MODULE_LINES} lines): {long}"


def test_no_function_is_over_60_lines() -> None:
    long = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, _, tree in MODULES
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert long == {}, f"split these (at most {MAX_FUNCTION_LINES} lines each): {long}"


def test_no_module_imports_a_private_name_of_another() -> None:
    found = []
    for name, path, tree in MODULES:
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(name, node, is_package)
                if not source.startswith("steward"):
                    continue
                found += [
                    f"{name}: from {source} import {alias.name}"
                    for alias in node.names
                    if _is_private(alias.name)
                ]
                if any(_is_private(part) for part in source.split(".")[1:]) and not (
                    source.startswith("steward._util")
                ):
                    found.append(f"{name}: from {source} (a private module)")
    assert found == [], "make these public where they are defined, or move them:\n" + "\n".join(
        found
    )


def test_no_private_attribute_of_an_imported_steward_module_is_used() -> None:
    found = []
    for name, _, tree in MODULES:
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("steward")
            for alias in node.names
            if not alias.name[:1].isupper()  # modules are lower-case; classes are not modules
        }
        aliases |= {
            (alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.startswith("steward")
        }
        found += [
            f"{name}: {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ]
    assert found == [], "use a public name instead:\n" + "\n".join(found)


def test_no_import_of_a_shipped_module_is_guarded_by_import_error() -> None:
    """A guard around a module that always ships can swallow a real ImportError inside it."""
    found = []
    for name, _, tree in MODULES:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            caught = {
                ast.unparse(handler.type) for handler in node.handlers if handler.type is not None
            }
            if not caught & {"ImportError", "ModuleNotFoundError"}:
                continue
            guarded = [
                ast.unparse(inner)
                for statement in node.body
                for inner in ast.walk(statement)
                if isinstance(inner, ast.Import | ast.ImportFrom)
                and "steward" in ast.unparse(inner)
            ]
            found += [f"{name}: {line}" for line in guarded]
    assert found == [], "import these plainly:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from steward.data.drift import _sample_rows\n", 1),
        ("from steward.data.drift import compare\n", 0),
    ],
)
def test_the_private_name_check_finds_a_private_import(source: str, expected: int) -> None:
    """The checks above would pass on an empty walk; this shows they catch what they look for."""
    tree = ast.parse(source)
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom)
    hits = [alias.name for alias in node.names if _is_private(alias.name)]
    assert len(hits) == expected


def test_the_architecture_page_follows_a_prediction_through_real_modules_once_each() -> None:
    page = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    walk = page.split("## One prediction", 1)[1]
    steps = [line for line in walk.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    named = [module for line in steps for module in re.findall(r"`([a-z_/]+\.py)`", line)]
    assert len(steps) >= 30 and len(named) >= len(steps)
    assert [m for m in named if not (PACKAGE / m).is_file()] == []
    assert len(named) == len(set(named)), [m for m in named if named.count(m) > 1]

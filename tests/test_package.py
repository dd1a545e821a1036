"""The root package: ``from steward import Steward, Client`` works and ``__all__`` says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

import steward


def test_steward_and_client_import_from_the_root_package() -> None:
    from steward import Client, Steward
    from steward.client import Client as ClientClass
    from steward.core import Steward as StewardClass

    assert Steward is StewardClass
    assert Client is ClientClass
    assert {"Client", "Steward", "StewardError", "__version__"} <= set(steward.__all__)
    for name in steward.__all__:
        assert getattr(steward, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        steward.Nope  # noqa: B018


def test_importing_the_package_stays_light() -> None:
    """``Steward`` and ``Client`` load on first use, not with ``import steward``."""
    code = (
        "import sys, steward; "
        "print(any(name in sys.modules for name in ('steward.core', 'steward.client', 'httpx')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "False"

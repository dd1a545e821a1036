"""Steward keeps deployed models trustworthy: contracts, registry, delivery, monitoring, governance.

>>> from steward import Steward
>>> steward = Steward.open(".")  # doctest: +SKIP

``Steward`` is imported on first use, so that ``import steward.data.events`` in a worker or a crash-test
child does not pay for pandas, scikit-learn and SQLAlchemy.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from steward.errors import StewardError

if TYPE_CHECKING:
    from steward.core import Steward

__all__ = ["Steward", "StewardError", "__version__"]

try:
    __version__ = metadata.version("steward")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "Steward":
        from steward.core import Steward

        return Steward
    raise AttributeError(f"module 'steward' has no attribute {name!r}")

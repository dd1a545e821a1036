"""Steward keeps deployed models trustworthy: contracts, registry, delivery, monitoring, governance.

>>> from steward import Steward, Client
>>> steward = Steward.open(".")  # doctest: +SKIP
>>> client = Client("http://127.0.0.1:8000")  # doctest: +SKIP

``Steward`` and ``Client`` are imported on first use, so that ``import steward.data.events`` in a
worker or a crash-test child does not pay for pandas, scikit-learn, SQLAlchemy or httpx.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from steward.errors import StewardError

if TYPE_CHECKING:
    from steward.client import Client
    from steward.core import Steward

__all__ = ["Client", "Steward", "StewardError", "__version__"]

try:
    __version__ = metadata.version("steward")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"


def __getattr__(name: str) -> Any:
    """``Steward`` and ``Client``, imported the first time they are asked for."""
    if name == "Steward":
        from steward.core import Steward

        return Steward
    if name == "Client":
        from steward.client import Client

        return Client
    raise AttributeError(f"module 'steward' has no attribute {name!r}")

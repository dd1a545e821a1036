"""Steward keeps deployed models trustworthy: contracts, registry, delivery, monitoring, governance.

>>> from steward import Steward
>>> steward = Steward.open(".")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata

from steward.core import Steward
from steward.errors import StewardError

__all__ = ["Steward", "StewardError", "__version__"]

try:
    __version__ = metadata.version("steward")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

"""Every error Steward raises on purpose.

A message says what went wrong, with which value, and what to do next. The CLI prints it as one line and
exits non-zero; the HTTP API turns it into ``application/problem+json`` with ``status`` as the code.

::

    StewardError
    ├── ConfigError                 steward.yaml or a setting is invalid
    ├── InvalidInputError           a value the user passed is malformed (a file, a flag, a record)
    │   └── ContractViolationError  records break a data contract whose action is ``reject``
    ├── NotFoundError
    │   ├── UnknownSystemError
    │   ├── UnknownVersionError
    │   └── UnknownAliasError
    ├── UnauthenticatedError        no credential, or an unknown, expired or revoked one (HTTP 401)
    ├── ForbiddenError              the caller may not do this: role too low, or four eyes (HTTP 403)
    ├── ConflictError               the request contradicts what is stored (e.g. rolling back with no history)
    ├── ArtifactError
    │   ├── UnreadableArtifactError the file is missing, corrupt, or not the flavor it claims
    │   └── UnsafeArtifactError     loading it would run code the user has not chosen to trust
    ├── StoreError
    │   ├── DatabaseUnreachableError
    │   └── PromptUnavailableError  no prompt fresh enough: the server is unreachable or the label gone
    └── NotFittedError              a fitted object was used before ``fit``
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ConfigError",
    "ConflictError",
    "ContractViolationError",
    "DatabaseUnreachableError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFittedError",
    "NotFoundError",
    "PromptUnavailableError",
    "StewardError",
    "StoreError",
    "UnauthenticatedError",
    "UnknownAliasError",
    "UnknownSystemError",
    "UnknownVersionError",
    "UnreadableArtifactError",
    "UnsafeArtifactError",
]


class StewardError(Exception):
    """Base of every error Steward raises on purpose; ``str(error)`` is the whole user-facing message."""

    status: int = 500
    title: str = "Steward error"


class ConfigError(StewardError):
    status = 422
    title = "Invalid configuration"


class InvalidInputError(StewardError):
    status = 422
    title = "Invalid input"


class ContractViolationError(InvalidInputError):
    title = "Contract violation"

    def __init__(self, message: str, violations: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


class NotFoundError(StewardError):
    status = 404
    title = "Not found"


class UnknownSystemError(NotFoundError):
    title = "Unknown system"


class UnknownVersionError(NotFoundError):
    title = "Unknown model version"


class UnknownAliasError(NotFoundError):
    title = "Unknown alias"


class UnauthenticatedError(StewardError):
    """No credential, or one that is unknown, expired or revoked: sign in or send a token."""

    status = 401
    title = "Not signed in"


class ForbiddenError(StewardError):
    """The caller is known but may not do this (role too low, or a rule such as four eyes)."""

    status = 403
    title = "Not allowed"


class ConflictError(StewardError):
    status = 409
    title = "Conflict"


class ArtifactError(StewardError):
    status = 422
    title = "Artifact error"


class UnreadableArtifactError(ArtifactError):
    title = "Unreadable artifact"


class UnsafeArtifactError(ArtifactError):
    title = "Unsafe artifact"


class StoreError(StewardError):
    status = 503
    title = "Store error"


class DatabaseUnreachableError(StoreError):
    title = "Database unreachable"


class PromptUnavailableError(StoreError):
    """No copy of the prompt within the caller's staleness bound, and no fallback was given."""

    status = 503
    title = "Prompt unavailable"


class NotFittedError(StewardError, ValueError):
    status = 500
    title = "Not fitted"

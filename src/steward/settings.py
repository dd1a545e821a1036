"""Every setting Steward reads, declared once.

``SETTINGS`` is the single table: the CLI builds its global options from it, the environment variables
are ``STEWARD_<NAME>``, ``docs/settings.md`` lists it, and a test keeps the three in step.

>>> settings = Settings.load({"workspace": "/tmp/ws"}, environ={})
>>> settings.database_url
'sqlite:////tmp/ws/.steward/steward.db'
"""

from __future__ import annotations

import getpass
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from steward.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings"]


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type, default and the help text shown everywhere it appears."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return "STEWARD_" + self.name.upper()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any, source: str) -> Any:
        """Turn a raw value (text from the environment or the CLI) into the setting's type."""
        if not isinstance(raw, str) or self.type is str:
            return raw
        try:
            if self.type is bool:
                lowered = raw.strip().lower()
                if lowered in {"1", "true", "yes", "on"}:
                    return True
                if lowered in {"0", "false", "no", "off", ""}:
                    return False
                raise ValueError(raw)
            return self.type(raw)
        except ValueError:
            raise ConfigError(
                f"setting {self.name!r} from {source} expects {self.type.__name__}, got {raw!r}; "
                f"fix {self.env_var} or {self.option}"
            ) from None


SETTINGS: tuple[Setting, ...] = (
    Setting("workspace", str, ".", "Folder that holds steward.yaml and the .steward/ store."),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the metadata store, e.g. postgresql://user@host/db. "
        "Empty means SQLite at <workspace>/.steward/steward.db.",
    ),
    Setting(
        "artifacts_dir",
        str,
        "",
        "Folder for content-addressed model artifacts and reference samples. "
        "Empty means <workspace>/.steward/artifacts.",
    ),
    Setting(
        "artifacts_url",
        str,
        "",
        "Object storage for model artifacts and reference samples instead of artifacts_dir: "
        "s3://bucket/prefix, gs://bucket/prefix, abfs://container/prefix or file:///path "
        "(needs the extra steward[s3], steward[gcs] or steward[azure]). Files are opened from a "
        "verified local copy in <workspace>/.steward/artifact-cache. Credentials and endpoint "
        "come from the backend's own variables (AWS_ENDPOINT_URL for an S3-compatible server). "
        "Empty means artifacts_dir.",
    ),
    Setting(
        "events_dir",
        str,
        "",
        "Folder of the append-only event log (predictions, outcomes). "
        "Empty means <workspace>/.steward/events.",
    ),
    Setting(
        "events_url",
        str,
        "",
        "Object storage that holds the event log's Parquet files: s3://bucket/prefix, "
        "gs://bucket/prefix, abfs://container/prefix or file:///path (needs the extra "
        "steward[s3], steward[gcs] or steward[azure]). The write-ahead log stays in events_dir, "
        "which becomes a local copy kept in step with the store; several servers share the URL. "
        "Empty means the event log lives in events_dir alone.",
    ),
    Setting(
        "events_sync_seconds",
        float,
        2.0,
        "With events_url: how often each server lists the object store again, in the background, "
        "for files other servers rolled (0: every read lists it).",
    ),
    Setting(
        "events_backlog_mb",
        int,
        1024,
        "With events_url: while the object store cannot be reached, appends still go to the local "
        "write-ahead log until it holds this many MB waiting for upload; then they get 503.",
    ),
    Setting("user", str, "", "Name recorded as the author of changes. Empty means the login name."),
    Setting(
        "events_fsync",
        bool,
        True,
        "Fsync the event log before acknowledging, so acknowledged events survive a machine crash. "
        "Off, they still survive kill -9 of the server (the OS holds them), at lower latency.",
    ),
    Setting(
        "retention_days",
        int,
        180,
        "Days that logged predictions and outcomes are kept before retention deletes them.",
    ),
    Setting(
        "reference_sample_rows",
        int,
        5000,
        "Rows of training data kept with a model version as the reference for drift checks.",
    ),
    Setting(
        "loop_interval",
        int,
        60,
        "Seconds between two ticks of the loop that `steward serve` runs in the background "
        "(monitors when due, SLOs, alerts, notifications, playbooks). 0 turns it off.",
    ),
    Setting(
        "batch_max_records",
        int,
        64,
        "Most records `steward serve` gathers from concurrent predict requests into one model "
        "call (adaptive micro-batching; each request still gets exactly its own results). "
        "1 scores one request at a time.",
    ),
    Setting(
        "batch_max_wait_ms",
        float,
        2.0,
        "Longest, in milliseconds, the serving worker waits for more concurrent predict requests "
        "before calling the model; it waits only while requests arrive together, never for a "
        "lone caller. 0 never waits.",
    ),
    Setting(
        "serving_refresh_ms",
        float,
        250.0,
        "Milliseconds between two checks, by each `steward serve` process, whether a served "
        "system's aliases, suspension, contract or policy changed in the store (one small read "
        "for all systems); a change is read and its new versions loaded in the background. So "
        "an alias move or a suspension reaches every server within about this long.",
    ),
    Setting("smtp_host", str, "", "SMTP server for alert email. Empty means email is not sent."),
    Setting("smtp_port", int, 25, "Port of the SMTP server for alert email."),
    Setting("smtp_sender", str, "steward@localhost", "From address of alert email."),
    Setting(
        "audit_webhook",
        str,
        "",
        "URL that receives each signed audit checkpoint as it is signed (HTTP POST, text/plain), "
        "so a copy lives where a rewrite of this host does not reach. Empty means the file only.",
    ),
    Setting(
        "allowed_hosts",
        str,
        "",
        "Host names `steward serve` answers to, comma-separated (e.g. steward.example.com); "
        "other Host headers get 400. Empty means localhost, 127.0.0.1, ::1 and the --host given.",
    ),
    Setting(
        "oidc_issuer",
        str,
        "",
        "URL of the OpenID Connect identity provider the dashboard signs people in with, e.g. "
        "https://login.example.com/realms/staff (its /.well-known/openid-configuration is read). "
        "Empty means sign-in through an identity provider is off.",
    ),
    Setting(
        "oidc_client_id",
        str,
        "",
        "Client ID Steward was registered with at the identity provider (needed with oidc_issuer).",
    ),
    Setting(
        "oidc_client_secret",
        str,
        "",
        "Client secret Steward was registered with at the identity provider. Set it in the "
        "environment variable, not on the command line, where other users can read it in the "
        "process list. Empty means a public client (PKCE only).",
    ),
    Setting(
        "oidc_claim",
        str,
        "email",
        "The ID token's claim whose value is the name of the Steward identity a person signs in as "
        "(the identity must exist: `steward users add NAME --role ROLE`).",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings: command-line value, else ``STEWARD_*`` environment variable, else default."""

    workspace: Path
    database_url: str
    artifacts_dir: Path
    events_dir: Path
    user: str
    events_fsync: bool
    retention_days: int
    reference_sample_rows: int
    loop_interval: int = 60
    batch_max_records: int = 64
    batch_max_wait_ms: float = 2.0
    serving_refresh_ms: float = 250.0
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "steward@localhost"
    allowed_hosts: tuple[str, ...] = ()
    audit_webhook: str = ""
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)  # kept out of logs and tracebacks
    oidc_claim: str = "email"
    artifacts_url: str = ""
    events_url: str = ""
    events_sync_seconds: float = 2.0
    events_backlog_mb: int = 1024

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve every setting; ``overrides`` (e.g. CLI options) win over ``environ``."""
        environ = os.environ if environ is None else environ
        overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {sorted(unknown)}; known settings: {sorted(_BY_NAME)}"
            )
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.name in overrides:
                values[setting.name] = setting.parse(overrides[setting.name], setting.option)
            elif setting.env_var in environ:
                values[setting.name] = setting.parse(environ[setting.env_var], setting.env_var)
            else:
                values[setting.name] = setting.default
        return cls._resolve(values)

    @classmethod
    def _resolve(cls, values: dict[str, Any]) -> Settings:
        workspace = Path(values["workspace"]).expanduser().resolve()
        store = workspace / ".steward"
        for name in ("retention_days", "reference_sample_rows"):
            if values[name] < 1:
                raise ConfigError(f"setting {name!r} must be at least 1, got {values[name]}")
        if values["loop_interval"] < 0:
            raise ConfigError(
                f"setting 'loop_interval' must be 0 (off) or a number of seconds, "
                f"got {values['loop_interval']}"
            )
        if values["batch_max_records"] < 1 or values["batch_max_wait_ms"] < 0:
            raise ConfigError(
                "settings 'batch_max_records' must be at least 1 and 'batch_max_wait_ms' at "
                f"least 0, got {values['batch_max_records']} and {values['batch_max_wait_ms']}"
            )
        if not 0 < values["serving_refresh_ms"] <= 60_000:
            raise ConfigError(
                "setting 'serving_refresh_ms' must be more than 0 and at most 60000 (a minute), "
                f"got {values['serving_refresh_ms']}; the default, 250, suits most stores"
            )
        if values["events_sync_seconds"] < 0 or values["events_backlog_mb"] < 1:
            raise ConfigError(
                "settings 'events_sync_seconds' must be at least 0 and 'events_backlog_mb' at "
                f"least 1, got {values['events_sync_seconds']} and {values['events_backlog_mb']}"
            )
        if values["artifacts_dir"] and values["artifacts_url"].strip():
            raise ConfigError(
                f"settings 'artifacts_dir' ({values['artifacts_dir']!r}) and 'artifacts_url' "
                f"({values['artifacts_url']!r}) are both set; set one: the folder or the URL"
            )
        return cls(
            workspace=workspace,
            database_url=values["database_url"] or f"sqlite:///{store / 'steward.db'}",
            artifacts_dir=Path(values["artifacts_dir"] or store / "artifacts"),
            events_dir=Path(values["events_dir"] or store / "events"),
            user=values["user"] or _login_name(),
            events_fsync=values["events_fsync"],
            retention_days=values["retention_days"],
            reference_sample_rows=values["reference_sample_rows"],
            loop_interval=values["loop_interval"],
            batch_max_records=values["batch_max_records"],
            batch_max_wait_ms=float(values["batch_max_wait_ms"]),
            serving_refresh_ms=float(values["serving_refresh_ms"]),
            smtp_host=values["smtp_host"],
            smtp_port=values["smtp_port"],
            smtp_sender=values["smtp_sender"],
            audit_webhook=values["audit_webhook"],
            allowed_hosts=tuple(
                name.strip() for name in values["allowed_hosts"].split(",") if name.strip()
            ),
            oidc_issuer=_checked_issuer(values["oidc_issuer"].strip(), values["oidc_client_id"]),
            oidc_client_id=values["oidc_client_id"].strip(),
            oidc_client_secret=values["oidc_client_secret"],
            oidc_claim=_checked_claim(values["oidc_claim"]),
            artifacts_url=_checked_url("artifacts_url", values["artifacts_url"]),
            events_url=_checked_url("events_url", values["events_url"]),
            events_sync_seconds=float(values["events_sync_seconds"]),
            events_backlog_mb=values["events_backlog_mb"],
        )

    @property
    def store_dir(self) -> Path:
        return self.workspace / ".steward"

    @property
    def config_path(self) -> Path:
        return self.workspace / "steward.yaml"


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _checked_issuer(issuer: str, client_id: str) -> str:
    """The ``oidc_issuer`` setting: empty, or an https URL (http only on loopback, for tests)."""
    if not issuer:
        return ""
    parsed = urlsplit(issuer)
    local = parsed.scheme == "http" and parsed.hostname in _LOOPBACK
    if not (parsed.scheme == "https" or local) or not parsed.hostname:
        raise ConfigError(
            f"setting 'oidc_issuer' must be the identity provider's https URL, got {issuer!r}; "
            "fix STEWARD_OIDC_ISSUER or --oidc-issuer (plain http only on localhost)"
        )
    if parsed.query or parsed.fragment:
        raise ConfigError(
            f"setting 'oidc_issuer' must be a URL without query or fragment, got {issuer!r}; "
            "use the issuer URL the provider publishes"
        )
    if not client_id.strip():
        raise ConfigError(
            f"setting 'oidc_issuer' is {issuer!r} but 'oidc_client_id' is empty; set "
            "STEWARD_OIDC_CLIENT_ID to the client ID the identity provider gave Steward"
        )
    return issuer


#: URL scheme of ``artifacts_url`` and ``events_url`` -> (the fsspec backend's module, its extra).
_STORAGE_BACKENDS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "abfs": ("adlfs", "azure"),
    "az": ("adlfs", "azure"),
    "file": ("fsspec", ""),
}


def _checked_url(name: str, url: str) -> str:
    """A storage URL setting: empty, or a URL of a scheme whose backend is installed."""
    url = url.strip().rstrip("/")
    if not url:
        return ""
    parsed = urlsplit(url)
    where = f"fix {_BY_NAME[name].env_var} or {_BY_NAME[name].option}"
    if parsed.scheme not in _STORAGE_BACKENDS:
        raise ConfigError(
            f"setting {name!r} has an unknown scheme: {url!r}; use s3://bucket/prefix, "
            f"gs://bucket/prefix, abfs://container/prefix or file:///absolute/path ({where})"
        )
    if parsed.query or parsed.fragment:
        raise ConfigError(f"setting {name!r} must not have a query or fragment: {url!r}")
    if parsed.scheme == "file" and (parsed.netloc or not parsed.path.startswith("/")):
        raise ConfigError(
            f"setting {name!r} {url!r} is not an absolute file URL; write "
            f"file:///absolute/path, with three slashes ({where})"
        )
    if parsed.scheme != "file" and not parsed.netloc:
        raise ConfigError(
            f"setting {name!r} {url!r} names no bucket or container; write "
            f"{parsed.scheme}://bucket/prefix ({where})"
        )
    module, extra = _STORAGE_BACKENDS[parsed.scheme]
    for needed in dict.fromkeys(("fsspec", module)):
        if importlib.util.find_spec(needed) is None:
            install = (
                "pip install fsspec" if needed == "fsspec" else f"pip install 'steward[{extra}]'"
            )
            raise ConfigError(
                f"setting {name!r} is {url!r}, but its storage backend {needed!r} is not "
                f"installed; run: {install}"
            )
    return url


def _checked_claim(claim: str) -> str:
    if not claim.strip():
        raise ConfigError(
            "setting 'oidc_claim' is empty; name an ID token claim such as email or "
            "preferred_username (STEWARD_OIDC_CLAIM or --oidc-claim)"
        )
    return claim.strip()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
        return "unknown"

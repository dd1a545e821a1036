"""Event kinds, their Arrow schemas, and the checks and encoding an append applies to events.

``encode_kind`` validates the events of one kind and turns them into a record batch, stamping the
fields the log sets itself (``received_at``, ``writer``, ``sequence``). The constants here (the
deduplication keys, which kind keeps its last write, the write-ahead kind codes) are shared by
every other module of ``steward.data.events``.

Example::

    schema_for("outcome").names[:3]  # ['kind', 'system', 'id']
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from steward.errors import InvalidInputError

__all__ = [
    "ATTRIBUTES_KEY",
    "CALLER_FIELDS",
    "DEDUPE_KEYS",
    "EVENT_KINDS",
    "FIRST_WRITE_WINS",
    "FUTURE_TOLERANCE",
    "KINDS_BY_CODE",
    "KIND_CODES",
    "LAST_WRITE_WINS",
    "LLM_CALL_SCHEMA",
    "OUTCOME_SCHEMA",
    "PARTITION_COLUMNS",
    "PREDICTION_SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "SHADOW_SCHEMA",
    "STAMPED",
    "TIMESTAMP",
    "VIEW_NAMES",
    "check_attributes",
    "check_kind",
    "check_name",
    "encode_kind",
    "future_message",
    "schema_for",
    "utc",
]

#: The key of a prediction's logged ``inputs`` that holds the protected attributes passed beside
#: the record (``fairness.attributes``); the model never sees them. Records may not use it.
ATTRIBUTES_KEY: Final = "__attributes__"
#: How far after its receipt an event may be dated (clock skew): later is refused at the door.
FUTURE_TOLERANCE: Final = dt.timedelta(days=1)
#: The type of ``event_time`` and ``received_at``: microseconds, UTC.
TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

_ENVELOPE: Final = [
    pa.field("kind", pa.string(), nullable=False),
    pa.field("system", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("event_time", TIMESTAMP, nullable=False),
    pa.field("received_at", TIMESTAMP, nullable=False),
    pa.field("writer", pa.string(), nullable=False),
    pa.field("sequence", pa.int64(), nullable=False),
]

PREDICTION_SCHEMA: Final = pa.schema(
    [
        *_ENVELOPE,
        pa.field("entity_key", pa.string()),
        pa.field("model_version", pa.int64()),
        pa.field("inputs", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("output", pa.string()),
        pa.field("decision", pa.string()),
        pa.field("holdout", pa.bool_()),
        pa.field("intended_action", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("violations", pa.string()),
    ]
)
# A shadow score is a prediction by a model that does not serve: same fields, its own kind.
SHADOW_SCHEMA: Final = PREDICTION_SCHEMA
OUTCOME_SCHEMA: Final = pa.schema(
    [
        *_ENVELOPE,
        pa.field("prediction_id", pa.string()),
        pa.field("entity_key", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("value_text", pa.string()),
    ]
)
#: One call to an LLM, in the OpenTelemetry GenAI vocabulary (docs/llm.md): ``input_tokens``
#: include the cached ones, ``output_tokens`` the reasoning ones. ``cost`` is computed once, at
#: ingestion, with the prices valid at ``event_time``; ``price_source`` names the table and its
#: version; ``cost`` null with ``priced`` false is a call no price covers (unpriced, not free).
LLM_CALL_SCHEMA: Final = pa.schema(
    [
        *_ENVELOPE,
        pa.field("entity_key", pa.string()),  # whom the call was for, so erasure can find it
        pa.field("prompt", pa.string()),
        pa.field("prompt_version", pa.int64()),
        pa.field("provider", pa.string()),
        pa.field("operation", pa.string()),
        pa.field("request_model", pa.string()),
        pa.field("response_model", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("cache_read_tokens", pa.int64()),
        pa.field("cache_creation_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("reasoning_tokens", pa.int64()),
        pa.field("finish_reasons", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("error", pa.string()),
        pa.field("input_text", pa.string()),
        pa.field("output_text", pa.string()),
        pa.field("cost", pa.float64()),
        pa.field("priced", pa.bool_()),
        pa.field("price_source", pa.string()),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
    ]
)

EVENT_KINDS: Final = ("prediction", "shadow", "outcome", "llm_call")
#: The schema of each kind.
SCHEMAS: Final = {
    "prediction": PREDICTION_SCHEMA,
    "shadow": SHADOW_SCHEMA,
    "outcome": OUTCOME_SCHEMA,
    "llm_call": LLM_CALL_SCHEMA,
}
#: The write-ahead log stores (kind code, schema version) per batch so a later schema can still
#: read segments an older release wrote.
KIND_CODES: Final = {"prediction": 1, "shadow": 2, "outcome": 3, "llm_call": 4}
KINDS_BY_CODE: Final = {code: kind for kind, code in KIND_CODES.items()}
SCHEMA_VERSION: Final = 1
#: The fields the log stamps; a caller may not set them.
STAMPED: Final = frozenset({"received_at", "writer", "sequence"})
#: The fields a caller may set, per kind.
CALLER_FIELDS: Final = {kind: frozenset(schema.names) - STAMPED for kind, schema in SCHEMAS.items()}
_JSON_FIELDS: Final = frozenset({"inputs", "output", "violations", "finish_reasons"})
#: Columns the directory names carry; Parquet files leave them out (hive partitioning).
PARTITION_COLUMNS: Final = ("kind", "system")
#: Which rows are "the same event", and which copy a reader keeps (see docs/events.md).
DEDUPE_KEYS: Final = {
    "prediction": ("system", "id"),
    "shadow": ("system", "id", "model_version"),
    "outcome": ("system", "id"),
    "llm_call": ("system", "id"),
}
#: Kinds whose reader keeps the last copy received; the others keep the first.
LAST_WRITE_WINS: Final = frozenset({"outcome"})
#: Kinds whose reader keeps the first copy received.
FIRST_WRITE_WINS: Final = frozenset(EVENT_KINDS) - LAST_WRITE_WINS
_STRUCTS: Final = {kind: pa.struct(list(schema)) for kind, schema in SCHEMAS.items()}
_ROW_WISE_LIMIT: Final = 64
#: The view ``EventLog.query`` exposes for each kind.
VIEW_NAMES: Final = {
    "prediction": "predictions",
    "shadow": "shadows",
    "outcome": "outcomes",
    "llm_call": "llm_calls",
}

_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def schema_for(kind: str) -> pa.Schema:
    """Return the Arrow schema of one event kind, envelope first.

    Example::

        schema_for("outcome").names[:3]  # ['kind', 'system', 'id']
    """
    return SCHEMAS[check_kind(kind)]


def check_kind(kind: object) -> str:
    """Return ``kind`` if it is an event kind; raise InvalidInputError naming the kinds if not."""
    if kind not in SCHEMAS:
        raise InvalidInputError(
            f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}; set 'kind' to one of them"
        )
    return str(kind)


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it can name a directory (a system, a writer); raise if not."""
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise InvalidInputError(
            f"{what} {value!r} is not a valid name: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it becomes a directory name)"
        )
    return value


def utc(moment: dt.datetime, what: str) -> dt.datetime:
    """``moment`` in UTC; raise InvalidInputError if it is not a timezone-aware datetime."""
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise InvalidInputError(
            f"{what} {moment!r} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)"
        )
    return moment.astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Checking and encoding events


def _json_fallback(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=_json_fallback)


def _event_time(value: Any, received: dt.datetime) -> dt.datetime:
    if value is None:
        return received
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError("event_time must be a timezone-aware datetime or ISO-8601 text")
    if value > received + FUTURE_TOLERANCE:
        raise ValueError(future_message(received))
    return value


def future_message(received: dt.datetime) -> str:
    """Why an event time too far after its receipt is refused, and what to send instead."""
    return (
        f"is more than {FUTURE_TOLERANCE.days} day after it was received "
        f"({received:%Y-%m-%d %H:%M} UTC); an event cannot happen in the future, and one dated "
        "there would escape retention: send the time it happened (in UTC or with its offset)"
    )


def _describe(kind: str, index: int, event: Mapping[str, Any]) -> str:
    return f"{kind} #{index} of the append (id {event.get('id')!r})"


class _NameCache:
    """System names already checked, bounded against a stream of odd names; shared by threads."""

    def __init__(self, limit: int) -> None:
        self._names: set[object] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def check(self, value: object, what: str) -> None:
        """Raise as ``check_name`` does unless ``value`` was already found valid."""
        if value in self._names:
            return
        check_name(value, what)
        with self._lock:
            if len(self._names) < self._limit:
                self._names.add(value)


_VALID_SYSTEMS: Final = _NameCache(10_000)


def _check_event(kind: str, index: int, event: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = event.keys() - allowed
    if unknown:
        stamped = sorted(unknown & STAMPED)
        if stamped:
            raise InvalidInputError(
                f"{_describe(kind, index, event)} sets {stamped}, which the log stamps itself; "
                "leave them out (put the time of the event in 'event_time')"
            )
        raise InvalidInputError(
            f"{_describe(kind, index, event)} has unknown fields {sorted(unknown)}; "
            f"the fields of a {kind} are {sorted(allowed)}"
        )
    identifier = event.get("id")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInputError(
            f"{_describe(kind, index, event)}: 'id' must be a non-empty string; "
            "pass the prediction id (or the outcome id)"
        )
    system = event.get("system")
    if isinstance(system, str):
        _VALID_SYSTEMS.check(system, f"{_describe(kind, index, event)}: system")
    else:
        check_name(system, f"{_describe(kind, index, event)}: system")


def _column(kind: str, field: pa.Field, values: list[Any], events: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values, type=field.type)
    except (TypeError, ValueError, OverflowError, NotImplementedError):
        for index, value in enumerate(values):
            try:
                pa.array([value], type=field.type)
            except (TypeError, ValueError, OverflowError, NotImplementedError) as error:
                raise InvalidInputError(
                    f"{_describe(kind, index, events[index])}: field {field.name!r} expects "
                    f"{field.type}, got {value!r} ({type(value).__name__}); fix or omit it"
                ) from error
        raise


def encode_kind(
    kind: str, events: Sequence[Mapping[str, Any]], received_us: int, writer: str, first: int
) -> pa.RecordBatch:
    """Turn the events of one kind into a record batch, stamping the server-side fields.

    ``received_us`` is the receive time (µs since the epoch), ``first`` the sequence number of the
    first event. Raises InvalidInputError naming the event, the field and the value that do not fit.
    """
    schema = SCHEMAS[kind]
    allowed = CALLER_FIELDS[kind]
    received = dt.datetime.fromtimestamp(received_us / 1e6, dt.UTC)
    rows = []
    for index, event in enumerate(events):
        _check_event(kind, index, event, allowed)
        row = _normalized(kind, index, event, received)
        row.update(kind=kind, received_at=received_us, writer=writer, sequence=first + index)
        rows.append(row)
    if len(rows) <= _ROW_WISE_LIMIT:
        # One struct conversion beats a conversion per column for a few rows (about 3x for one).
        with contextlib.suppress(TypeError, ValueError, OverflowError, NotImplementedError):
            return pa.RecordBatch.from_struct_array(pa.array(rows, type=_STRUCTS[kind]))
    # Column by column: faster for many rows, and names the field and value that do not fit.
    columns = [
        _column(kind, field, [row.get(field.name) for row in rows], events) for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _normalized(
    kind: str, index: int, event: Mapping[str, Any], received: dt.datetime
) -> dict[str, Any]:
    """A copy with ``event_time`` resolved and the JSON fields turned into text."""
    row = dict(event)
    name = "event_time"
    try:
        row[name] = _event_time(event.get(name), received)
        for name in _JSON_FIELDS.intersection(event):
            row[name] = _json_text(event[name])
    except (TypeError, ValueError) as error:
        value = event.get(name)
        shown = value.isoformat() if isinstance(value, dt.datetime) else repr(value)
        raise InvalidInputError(
            f"{_describe(kind, index, event)}: field {name!r} got {shown}: {error}"
        ) from error
    return row


# ---------------------------------------------------------------------------------------------
# Protected attributes beside the record


def check_attributes(
    system: str,
    allowed: Sequence[str],
    attributes: Sequence[Any] | None,
    records: Sequence[Any] | int,
    where: str = "attributes[{index}]",
) -> list[dict[str, Any]] | None:
    """The protected attributes sent beside ``records`` (or that many), checked; None if none.

    Each item is an object (or null) whose names are among ``allowed`` (the system's
    ``fairness.attributes``) and whose values are text, numbers, booleans or null. A record may
    not hold the reserved key ``ATTRIBUTES_KEY`` itself. Raises InvalidInputError naming the item
    (``where``, formatted with its index), the unknown names or the value.

    Example::

        check_attributes("churn", ["sex"], [{"sex": "F"}], [{"age": 3}])  # [{'sex': 'F'}]
    """
    for index, record in enumerate([] if isinstance(records, int) else records):
        if isinstance(record, Mapping) and ATTRIBUTES_KEY in record:
            raise InvalidInputError(
                f"records[{index}] holds the reserved key {ATTRIBUTES_KEY!r}; send protected "
                "attributes beside the records, in 'attributes'"
            )
    if attributes is None:
        return None
    n_records = records if isinstance(records, int) else len(records)
    if len(attributes) != n_records:
        raise InvalidInputError(
            f"'attributes' has {len(attributes)} items for {n_records} records; send one object "
            "per record (null or {} where there are none)"
        )
    return [_checked_attributes(system, allowed, item, where.format(index=index))
            for index, item in enumerate(attributes)]  # fmt: skip


def _checked_attributes(
    system: str, allowed: Sequence[str], item: Any, where: str
) -> dict[str, Any]:
    if item is None:
        return {}
    if not isinstance(item, Mapping):
        raise InvalidInputError(
            f"{where} must be an object of attribute names and values, got {type(item).__name__}"
        )
    unknown = sorted(str(name) for name in item if name not in allowed)
    if unknown:
        declared = f"declared: {sorted(allowed)}" if allowed else "none are declared"
        raise InvalidInputError(
            f"{where} names attributes {unknown} that system {system!r} does not list under "
            f"fairness.attributes ({declared}); add them to steward.yaml or leave them out"
        )
    for name, value in item.items():
        plain = value is None or isinstance(value, str | bool | int)
        if not plain and not (isinstance(value, float) and value == value):
            raise InvalidInputError(
                f"{where}.{name} must be text, a number, a boolean or null, got "
                f"{type(value).__name__} {value!r:.60}"
            )
    return dict(item)

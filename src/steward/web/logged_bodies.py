"""The bodies ``predictions:log`` reads: JSON and Arrow IPC streams, into checked columns.

``read_json`` and ``read_arrow`` turn a request body into :class:`LoggedColumns`, checking each
envelope field a column at a time with the rules :class:`LoggedPrediction` declares; a bad value is
an ``InvalidInputError`` naming the record, the field and the value. The route is
``steward.web.routes.logging``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from steward._util.text import check_text, is_valid_text
from steward.data.contracts import Contract, Personal, protect_record, protect_table
from steward.data.events.bulk import json_objects, json_texts
from steward.data.events.schemas import ATTRIBUTES_KEY, TIMESTAMP
from steward.errors import InvalidInputError, StewardError

__all__ = [
    "ARROW_STREAM",
    "MAX_LOGGED",
    "FiniteFloat",
    "Key",
    "LogRequest",
    "LoggedColumns",
    "LoggedPrediction",
    "MalformedBodyError",
    "UnsupportedMediaTypeError",
    "protect_inputs",
    "read_arrow",
    "read_json",
    "shown",
    "valid_text",
]

#: The content type of an Arrow IPC stream body.
ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
#: The most predictions one request may log.
MAX_LOGGED: Final = 200_000

#: A number that is a number: NaN and infinities are refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=False)]
#: An id, an entity key or a decision: valid text of at most 200 characters.
Key = Annotated[str, Field(max_length=200), AfterValidator(lambda text: valid_text(text))]


def valid_text(text: str) -> str:
    """``text`` if it is valid Unicode (no lone surrogates), so it can be stored."""
    if not is_valid_text(text):
        raise ValueError("text that is not valid Unicode (a lone surrogate); send UTF-8")
    return text


class LoggedPrediction(BaseModel):
    """One prediction made elsewhere; every field but ``inputs`` may be left out.

    The route checks these rules column by column rather than building this model per record;
    the model documents them (OpenAPI) and serves clients that build requests in Python.
    """

    model_config = ConfigDict(extra="forbid")

    id: Key | None = None
    entity_key: Key | None = None
    event_time: datetime | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    score: FiniteFloat | None = None
    output: Any = None
    decision: Key | None = None
    holdout: bool = False
    model_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    latency_ms: FiniteFloat | None = Field(default=None, ge=0)
    #: Protected attributes (``fairness.attributes``) beside the inputs; the model never saw them.
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid_text(self) -> LoggedPrediction:
        check_text(self.inputs, "inputs")
        check_text(self.output, "output")
        return self


class LogRequest(BaseModel):
    """The JSON body: up to ``MAX_LOGGED`` predictions."""

    model_config = ConfigDict(extra="forbid")

    predictions: list[LoggedPrediction] = Field(min_length=1, max_length=MAX_LOGGED)


class MalformedBodyError(StewardError):
    """A body that cannot be read as the content type it claims."""

    status = 400
    title = "Malformed body"


class UnsupportedMediaTypeError(StewardError):
    """A body in a content type the route does not read."""

    status = 415
    title = "Unsupported media type"


@dataclass
class LoggedColumns:
    """A request's predictions as columns: the envelope as Arrow arrays, the inputs as a frame.

    ``ids`` holds None where the caller sent no id (one is derived from ``identities(rows)``:
    ``[entity_key, event_time as ISO text or None, inputs]`` per row); ``frame(contract)`` gives
    the inputs the contract checks, ``inputs_text`` the JSON text the log stores, ``inputs`` the
    inputs themselves (records or a table) and ``attributes`` the protected attributes sent
    beside them (None when no record has any).
    """

    n_rows: int
    ids: list[str | None]
    envelope: dict[str, pa.Array]
    inputs_text: pa.Array
    frame: Callable[[Contract], pa.Table | pd.DataFrame]
    identities: Callable[..., list[list[Any]]]
    inputs: list[dict[str, Any]] | pa.Table
    attributes: list[Any] | None = None


def protect_inputs(
    logged: LoggedColumns, personal: dict[str, Personal], secret: bytes
) -> LoggedColumns:
    """``logged`` with its personal-data columns hashed or dropped in what is stored, and in the
    inputs that derive an id (so a derived id does not carry a raw value either)."""
    if not personal:
        return logged
    if isinstance(logged.inputs, pa.Table):
        table = protect_table(logged.inputs, personal, secret)
        texts, inputs = json_objects(table), table
    else:
        records = [protect_record(item, personal, secret) for item in logged.inputs]
        texts, inputs = pa.array([_json_text(item) for item in records], pa.string()), records
    return dataclasses.replace(
        logged,
        inputs_text=texts,
        inputs=inputs,
        identities=functools.partial(logged.identities, source=inputs),
    )


def with_attributes(texts: pa.Array, attributes: list[dict[str, Any]]) -> pa.Array:
    """Each row's inputs JSON text with its protected attributes under ``ATTRIBUTES_KEY``."""
    joined = []
    for text, item in zip(texts.to_pylist(), attributes, strict=True):
        if item:
            extra = f"{json.dumps(ATTRIBUTES_KEY)}:{_json_text(item)}"
            text = "{" + extra + "}" if text.strip() == "{}" else text[:-1] + "," + extra + "}"
        joined.append(text)
    return pa.array(joined, pa.string())


def _invalid(row: int, column: str, problem: str, value: Any) -> InvalidInputError:
    """The error for one bad value: which record, which field or column, which value."""
    return InvalidInputError(
        f"predictions[{row}].{column}: {problem}, got {shown(value)}; fix or omit it"
    )


def shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# ---------------------------------------------------------------------------------------------
# JSON bodies: parsed once, validated a column at a time with the model's own field types

_KEY = Annotated[str, Field(max_length=200)]
_ADAPTERS: Final[dict[str, TypeAdapter[Any]]] = {
    "id": TypeAdapter(list[_KEY | None]),
    "entity_key": TypeAdapter(list[_KEY | None]),
    "event_time": TypeAdapter(list[datetime | None]),
    "inputs": TypeAdapter(list[dict[str, Any]]),
    "score": TypeAdapter(list[FiniteFloat | None]),
    "decision": TypeAdapter(list[_KEY | None]),
    "holdout": TypeAdapter(list[bool]),
    "model_version": TypeAdapter(list[Annotated[int, Field(ge=1, le=2**31 - 1)] | None]),
    "latency_ms": TypeAdapter(list[Annotated[float, Field(allow_inf_nan=False, ge=0)] | None]),
    "attributes": TypeAdapter(list[dict[str, Any] | None]),
}
_FIELDS: Final = frozenset(LoggedPrediction.model_fields)
_ARROW_TYPES: Final = {
    "entity_key": pa.string(),
    "score": pa.float64(),
    "decision": pa.string(),
    "holdout": pa.bool_(),
    "model_version": pa.int64(),
    "latency_ms": pa.float64(),
}
# orjson reads integers past 64 bits as floats; a body with a run of 19 digits goes to the stdlib.
_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER: Final = b"0" * 19
# Arrow reads an integer past 64 bits as a float too: a float this large may have been one.
_LONG_FLOAT: Final = 1e18


def read_json(body: bytes) -> LoggedColumns:
    """A JSON body's predictions as columns; 400 if it is not JSON, 422 naming a bad value.

    A body of plain, complete records is read by Arrow's JSON reader straight into columns
    (``_json_columns``); any other (a missing or null field, a type to coerce, a value to refuse)
    goes the exact way: parsed with orjson, each field checked as a column by the model's types.
    """
    fast = _json_columns(body)
    if fast is not None:
        return fast
    long_numbers = body.translate(_DIGITS).find(_LONG_NUMBER) >= 0
    document, exact = _parse_json(body, long_numbers)
    records = _records(document)
    values: dict[str, list[Any]] = {}
    errors: list[dict[str, Any]] = []
    for name, adapter in _ADAPTERS.items():
        default: Any = {} if name == "inputs" else False if name == "holdout" else None
        column = [record.get(name, default) for record in records]
        if _plain_column(name, column):
            values[name] = column
            continue
        try:
            values[name] = adapter.validate_python(column)
        except ValidationError as error:
            errors += [_column_error(name, item) for item in error.errors()[:20]]
    if errors:
        raise RequestValidationError(sorted(errors, key=lambda item: item["loc"][2])[:20])
    if not exact:  # the stdlib lets lone surrogates through; no store can encode them
        for row, record in enumerate(records):
            check_text(record, f"predictions[{row}]")
    dumps = _orjson_text if exact else _json_text
    envelope = {name: pa.array(values[name], kind) for name, kind in _ARROW_TYPES.items()}
    envelope["output"] = pa.array([dumps(record.get("output")) for record in records], pa.string())
    times = values["event_time"]
    if any(moment is not None for moment in times):
        envelope["event_time"] = pa.array(times, TIMESTAMP)
    inputs = values["inputs"]
    for row, item in enumerate(inputs):
        if ATTRIBUTES_KEY in item:
            raise _invalid(row, "inputs", f"the key {ATTRIBUTES_KEY!r} is reserved", item)

    def identities(rows: list[int], source: list[dict[str, Any]] = inputs) -> list[list[Any]]:
        return [
            [values["entity_key"][row], times[row] and times[row].isoformat(), source[row]]
            for row in rows
        ]

    texts = [dumps(item) for item in inputs]
    attributes = values["attributes"]
    return LoggedColumns(
        n_rows=len(records),
        ids=values["id"],
        envelope=envelope,
        inputs_text=pa.array(texts, pa.string()),
        frame=lambda contract: _inputs_frame(texts, inputs, contract),
        identities=identities,
        inputs=inputs,
        attributes=attributes if any(item is not None for item in attributes) else None,
    )


def _json_columns(body: bytes) -> LoggedColumns | None:
    """The predictions as columns read by Arrow, or None unless that reading is exact.

    Exact means what the model's validation would accept unchanged: every record an object of
    known fields, an ``id`` string in each, no null or missing value among the inputs (Arrow
    cannot tell a missing key from a null), inputs of text, numbers and booleans only (Arrow
    would read an ISO date in a text input as a timestamp), every field of its JSON type, and no
    float of 10**18 or more (Arrow reads an integer of 19 digits or more as a float, inexactly).
    """
    try:
        table = pa_json.read_json(
            io.BytesIO(body),
            pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
            pa_json.ParseOptions(newlines_in_values=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.column_names != ["predictions"] or table.num_rows != 1:
        return None
    listed = _combined(table.column(0))
    if (
        not pa.types.is_list(listed.type)
        or listed.null_count
        or not pa.types.is_struct(listed.type.value_type)
    ):
        return None
    records = listed.flatten()
    if not 1 <= len(records) <= MAX_LOGGED or records.null_count:
        return None
    fields = {
        field.name: column for field, column in zip(records.type, records.flatten(), strict=True)
    }
    if not _FIELDS.issuperset(fields) or "attributes" in fields or not _exact_json_fields(fields):
        return None
    try:
        return _table_columns(pa.table(fields))
    except InvalidInputError:
        return None  # the exact way names the record and the value


def _exact_json_fields(fields: dict[str, pa.Array]) -> bool:
    identifiers = fields.get("id")
    if identifiers is None or not pa.types.is_string(identifiers.type) or identifiers.null_count:
        return False
    if pc.any(pc.equal(pc.utf8_length(identifiers), 0)).as_py():
        return False
    holdout = fields.get("holdout")
    if holdout is not None and holdout.null_count:
        return False
    event_time = fields.get("event_time")
    if event_time is not None and not (
        pa.types.is_timestamp(event_time.type) or pa.types.is_null(event_time.type)
    ):
        return False
    output = fields.get("output")
    if output is not None and not _plain_type(output.type):
        return False
    inputs = fields.get("inputs")
    if inputs is not None and (not pa.types.is_struct(inputs.type) or inputs.null_count):
        return False
    columns = inputs.flatten() if inputs is not None else []
    if not all(
        _plain_type(column.type)
        and not pa.types.is_null(column.type)
        and not column.null_count
        and (not pa.types.is_floating(column.type) or pc.all(pc.is_finite(column)).as_py())
        for column in columns
    ):
        return False
    return not any(_long_floats(column) for column in [*fields.values(), *columns])


def _long_floats(column: pa.Array) -> bool:
    """Whether a float column holds a value of 10**18 or more (an integer Arrow read inexactly)."""
    if not pa.types.is_floating(column.type) or len(column) == column.null_count:
        return False
    largest = pc.max(pc.abs(column)).as_py()
    return largest is not None and not largest < _LONG_FLOAT  # NaN counts as long: exact way


def _plain_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_int64(kind)
        or pa.types.is_float64(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )


def _parse_json(body: bytes, long_numbers: bool) -> tuple[Any, bool]:
    """The document, and whether orjson read it (then every string is valid, every int exact)."""
    if not long_numbers:
        try:
            return orjson.loads(body), True
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity or a lone surrogate, which the stdlib reads: let it judge
    try:
        return json.loads(body), False
    except (ValueError, RecursionError) as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {error}"}]
        ) from None


def _records(document: Any) -> list[dict[str, Any]]:
    """The list of prediction objects, or a 422 naming what is wrong with the body's shape."""
    if not isinstance(document, dict):
        raise _shape_error(
            ("body",), "model_type", "Input should be an object {'predictions': [...]}"
        )
    extra = sorted(set(document) - {"predictions"})
    if extra:
        raise _shape_error(("body", extra[0]), "extra_forbidden", "Extra inputs are not permitted")
    records = document.get("predictions")
    where = ("body", "predictions")
    if not isinstance(records, list):
        problem = "Field required" if records is None else "Input should be a valid list"
        raise _shape_error(where, "missing" if records is None else "list_type", problem)
    if not 1 <= len(records) <= MAX_LOGGED:
        raise _shape_error(
            where,
            "too_short" if not records else "too_long",
            f"send between 1 and {MAX_LOGGED} predictions, got {len(records)}",
        )
    errors = []
    for row, record in enumerate(records):
        if type(record) is not dict:
            errors.append(_error((*where, row), "model_type", "Input should be an object", record))
        elif not _FIELDS.issuperset(record):
            field = sorted(set(record) - _FIELDS)[0]
            errors.append(
                _error(
                    (*where, row, field),
                    "extra_forbidden",
                    f"Extra inputs are not permitted; the fields are {sorted(_FIELDS)}",
                    record[field],
                )
            )
        if len(errors) >= 20:
            break
    if errors:
        raise RequestValidationError(errors)
    return records


def _plain_column(name: str, column: list[Any]) -> bool:
    """Whether a column needs no validation: all missing, or (inputs) all JSON objects."""
    if name == "inputs":
        return all(type(item) is dict for item in column)
    if name == "holdout":
        return all(item is False for item in column)
    return all(item is None for item in column)


def _column_error(name: str, item: Any) -> dict[str, Any]:
    row = int(item["loc"][0]) if item.get("loc") else 0
    return _error(("body", "predictions", row, name), item["type"], item["msg"], item.get("input"))


def _error(loc: tuple[Any, ...], kind: str, message: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": f"{message}, got {shown(value)}", "input": None}


def _shape_error(loc: tuple[Any, ...], kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message}])


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_text(value: Any) -> str:
    return json.dumps(value, default=str)


def _inputs_frame(
    texts: list[str], inputs: list[dict[str, Any]], contract: Contract
) -> pa.Table | pd.DataFrame:
    """The inputs as columns for the contract check.

    Arrow's JSON reader reads the rows' JSON text (already made for the log) in C++; the
    contract's text columns are read as text, not as the timestamps it would infer from ISO
    dates. A column of mixed types (a number here, text there) falls back to pandas objects.
    """
    text_columns = [
        pa.field(name, pa.string())
        for name, rule in contract.columns.items()
        if rule.type in ("string", "category")
    ]
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema(text_columns), unexpected_field_behavior="infer"
    )
    lines = "\n".join(texts).encode()
    try:
        table = pa_json.read_json(
            io.BytesIO(lines), pa_json.ReadOptions(block_size=len(lines) + 1), options
        )
        if table.num_rows == len(texts):
            return table
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    names = list(dict.fromkeys(name for item in inputs for name in item))
    return pd.DataFrame({name: [item.get(name) for item in inputs] for name in names})


# ---------------------------------------------------------------------------------------------
# Arrow bodies: one IPC stream, the envelope by column name, the inputs beside it or in a struct

_ENVELOPE: Final = (
    "id",
    "entity_key",
    "event_time",
    "score",
    "output",
    "decision",
    "holdout",
    "model_version",
    "latency_ms",
    "attributes",
)


def read_arrow(body: bytes) -> LoggedColumns:
    """An Arrow IPC stream's predictions as columns; 400 if it is not one, 422 naming a column."""
    try:
        with pa.ipc.open_stream(pa.py_buffer(body)) as reader:
            table = reader.read_all()
        table.validate(full=True)  # offsets and UTF-8: a crafted body must not reach the log
    except (pa.ArrowException, OSError, ValueError) as error:
        raise MalformedBodyError(
            f"the body is not a valid Arrow IPC stream ({error}); write one with "
            "pyarrow.ipc.new_stream(sink, table.schema), or send application/json"
        ) from None
    if not 1 <= table.num_rows <= MAX_LOGGED:
        raise InvalidInputError(
            f"the Arrow stream holds {table.num_rows} rows; send between 1 and {MAX_LOGGED} "
            "predictions"
        )
    names = table.column_names
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidInputError(
            f"the Arrow stream has columns {twice} more than once; name each once"
        )
    return _table_columns(table)


def _table_columns(table: pa.Table) -> LoggedColumns:
    """The predictions of a table with envelope columns and inputs (beside them or a struct)."""
    names = table.column_names
    inputs = _arrow_inputs(table)
    if ATTRIBUTES_KEY in inputs.column_names:
        raise InvalidInputError(
            f"input column {ATTRIBUTES_KEY!r} is reserved; send protected attributes as the "
            "struct column 'attributes'"
        )
    envelope = {
        name: _arrow_envelope(name, _combined(table.column(name)))
        for name in _ENVELOPE
        if name in names and name not in ("id", "output", "attributes")
    }
    ids: list[str | None] = (
        _arrow_strings("id", _combined(table.column("id"))).to_pylist()
        if "id" in names
        else [None] * table.num_rows
    )
    output = (
        json_texts(_combined(table.column("output")))
        if "output" in names
        else json_texts(pa.nulls(table.num_rows))
    )
    envelope["output"] = output
    if "holdout" not in envelope:  # as in JSON, a prediction is not held out unless it says so
        envelope["holdout"] = pa.array(np.zeros(table.num_rows, dtype=bool))

    def identities(rows: list[int], source: pa.Table = inputs) -> list[list[Any]]:
        keys = envelope.get("entity_key", pa.nulls(table.num_rows, pa.string())).take(rows)
        times = envelope.get("event_time", pa.nulls(table.num_rows, TIMESTAMP)).take(rows)
        values = source.take(rows).to_pylist()
        return [
            [key, moment and moment.isoformat(), value]
            for key, moment, value in zip(keys.to_pylist(), times.to_pylist(), values, strict=True)
        ]

    return LoggedColumns(
        n_rows=table.num_rows,
        ids=ids,
        envelope=envelope,
        inputs_text=json_objects(inputs),
        frame=lambda _: inputs,
        identities=identities,
        inputs=inputs,
        attributes=_arrow_attributes(table) if "attributes" in names else None,
    )


def _arrow_attributes(table: pa.Table) -> list[Any] | None:
    """The struct column ``attributes`` as one mapping (or None) per row."""
    column = _combined(table.column("attributes"))
    if pa.types.is_null(column.type):
        return None
    if not pa.types.is_struct(column.type):
        raise _wrong_type("attributes", column, "a struct of the protected attributes")
    return column.to_pylist()


def _arrow_inputs(table: pa.Table) -> pa.Table:
    others = [name for name in table.column_names if name not in _ENVELOPE]
    if "inputs" not in others:
        return table.select(others)
    column = _combined(table.column("inputs"))
    if not pa.types.is_struct(column.type):
        raise InvalidInputError(
            f"column 'inputs' is {column.type}; make it a struct of the input columns, or put "
            "the inputs beside the envelope columns, one column each"
        )
    beside = [name for name in others if name != "inputs"]
    if beside:
        raise InvalidInputError(
            f"columns {beside} are neither envelope columns ({', '.join(_ENVELOPE)}) nor in the "
            "struct column 'inputs'; move them into it"
        )
    if column.type.num_fields == 0:  # every row's inputs are {}
        return table.select([])
    return pa.Table.from_arrays(column.flatten(), names=[field.name for field in column.type])


def _combined(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


_ENVELOPE_TYPES: Final = {
    "entity_key": pa.string(),
    "decision": pa.string(),
    "event_time": TIMESTAMP,
    "holdout": pa.bool_(),
    "model_version": pa.int64(),
    "score": pa.float64(),
    "latency_ms": pa.float64(),
}


def _arrow_envelope(name: str, column: pa.Array) -> pa.Array:
    if pa.types.is_null(column.type):  # all null (pandas makes an all-None column this type)
        nulls = pa.nulls(len(column), _ENVELOPE_TYPES[name])
        return nulls.fill_null(False) if name == "holdout" else nulls
    if name in ("entity_key", "decision"):
        return _arrow_strings(name, column)
    if name == "event_time":
        return _arrow_times(column)
    if name == "holdout":
        if not pa.types.is_boolean(column.type):
            raise _wrong_type(name, column, "bool")
        return column.fill_null(False)
    if name == "model_version":
        numbers = _arrow_cast(name, column, pa.int64(), "an integer type", integer=True)
        _first_bad(
            name,
            column,
            pc.or_(pc.less(numbers, 1), pc.greater(numbers, 2**31 - 1)),
            "expects a version from 1 to 2147483647",
        )
        return numbers
    numbers = _arrow_cast(name, column, pa.float64(), "a number type", integer=False)
    _first_bad(name, column, pc.invert(pc.is_finite(numbers)), "expects a finite number")
    if name == "latency_ms":
        _first_bad(name, column, pc.less(numbers, 0), "expects a number >= 0")
    return numbers


def _arrow_strings(name: str, column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if not (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    ):
        raise _wrong_type(name, column, "string (utf8)")
    text = column.cast(pa.string())
    _first_bad(name, text, pc.greater(pc.utf8_length(text), 200), "expects at most 200 characters")
    return text


def _arrow_times(column: pa.Array) -> pa.Array:
    kind = column.type
    if not pa.types.is_timestamp(kind):
        raise _wrong_type("event_time", column, "timestamp (naive means UTC)")
    try:
        # Nanoseconds are cut to microseconds, the log's resolution.
        return column.cast(TIMESTAMP, safe=kind.unit != "ns")
    except pa.ArrowInvalid as error:
        raise InvalidInputError(f"column 'event_time' does not fit {TIMESTAMP}: {error}") from None


def _arrow_cast(
    name: str, column: pa.Array, target: pa.DataType, expected: str, *, integer: bool
) -> pa.Array:
    kind = column.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if not numeric:
        raise _wrong_type(name, column, expected)
    try:
        return column.cast(target)
    except pa.ArrowInvalid as error:
        detail = "whole numbers" if integer else "numbers"
        raise InvalidInputError(
            f"column {name!r} ({kind}) does not fit {target}: {error}; send {detail}"
        ) from None


def _first_bad(name: str, column: pa.Array, mask: pa.Array, problem: str) -> None:
    bad = pc.fill_null(mask, False)
    if pc.any(bad).as_py():
        row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise _invalid(row, name, problem, column[row].as_py())


def _wrong_type(name: str, column: pa.Array, expected: str) -> InvalidInputError:
    return InvalidInputError(
        f"column {name!r} of the Arrow stream is {column.type}; send it as {expected}"
    )

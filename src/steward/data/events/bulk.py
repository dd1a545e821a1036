"""The bulk path: events of one kind given as Arrow columns, checked and encoded column-wise.

``encode_table`` is what ``EventLog.append_table`` runs: the checks ``encode_kind`` applies to one
event at a time (known fields, a kind, a valid system name, a non-empty id, an event time), done
in whole-column passes, then the stamped fields added as columns. ``json_texts`` and
``json_objects`` turn Arrow columns into the JSON text the log stores for ``inputs`` and
``output``, vectorized, with no Python object per value: the text DuckDB's ``to_json`` writes,
built by Arrow's kernels for plain columns (text, integers, booleans, decimal floats) and by
DuckDB for the others.

Example::

    table = pa.table({"system": ["churn"] * 2, "id": ["p1", "p2"], "score": [0.2, 0.9]})
    batch = encode_table("prediction", table, received_us, "w1", first=0)
    json_objects(pa.table({"tenure": [3, None], "plan": ["a", 'b"c']})).to_pylist()
    # ['{"tenure":3,"plan":"a"}', '{"tenure":null,"plan":"b\\"c"}']
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Final

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from steward.data.events.schemas import (
    CALLER_FIELDS,
    FUTURE_TOLERANCE,
    SCHEMAS,
    STAMPED,
    TIMESTAMP,
    check_name,
    future_message,
)
from steward.errors import InvalidInputError

__all__ = ["encode_table", "json_objects", "json_texts"]

_JSON_FIELDS: Final = frozenset({"inputs", "output", "violations", "finish_reasons"})
_NULL: Final = pa.scalar("null")


def encode_table(
    kind: str, table: pa.Table | pa.RecordBatch, received_us: int, writer: str, first: int
) -> pa.RecordBatch:
    """The events of one kind, as columns, turned into one record batch of the kind's schema.

    Columns the caller leaves out are null (``event_time``: the receive time); the JSON fields
    (``inputs``, ``output``, ...) must already be JSON text. Raises InvalidInputError naming the
    column, the row and the value that do not fit.
    """
    schema, allowed = SCHEMAS[kind], CALLER_FIELDS[kind]
    names = list(table.column_names)
    _check_names(kind, names, allowed)
    n_rows = table.num_rows
    given = {name: _combined(table.column(name)) for name in names}
    columns: list[pa.Array] = []
    for field in schema:
        if field.name == "received_at":
            column: pa.Array = pa.array(np.full(n_rows, received_us, dtype="int64"), TIMESTAMP)
        elif field.name == "writer":
            column = pa.array([writer] * n_rows, pa.string())
        elif field.name == "sequence":
            column = pa.array(np.arange(first, first + n_rows, dtype="int64"))
        elif field.name == "kind":
            column = _kind_column(kind, given.get("kind"), n_rows)
        elif field.name in given:
            column = _cast(kind, field, given[field.name])
        else:
            column = pa.nulls(n_rows, field.type)
        if field.name == "event_time":
            column = column.fill_null(pa.scalar(received_us, TIMESTAMP))
        columns.append(column)
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    _check_envelope(kind, batch)
    _check_times(kind, batch, received_us)
    return batch


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _check_names(kind: str, names: list[str], allowed: frozenset[str]) -> None:
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise InvalidInputError(f"the {kind} columns name {twice} more than once; name each once")
    unknown = set(names) - allowed
    stamped = sorted(unknown & STAMPED)
    if stamped:
        raise InvalidInputError(
            f"the {kind} columns set {stamped}, which the log stamps itself; leave them out "
            "(put the time of the event in 'event_time')"
        )
    if unknown:
        raise InvalidInputError(
            f"the {kind} columns {sorted(unknown)} are not fields of a {kind}; "
            f"its fields are {sorted(allowed)}"
        )


def _kind_column(kind: str, given: pa.Array | None, n_rows: int) -> pa.Array:
    if given is not None:
        wrong = pc.invert(pc.fill_null(pc.equal(given.cast(pa.string()), kind), False))
        if pc.any(wrong).as_py():
            row = _first_true(wrong)
            raise InvalidInputError(
                f"row {row}: column 'kind' holds {given[row].as_py()!r}; this append takes "
                f"{kind} events only"
            )
    return pa.array([kind] * n_rows, pa.string())


def _cast(kind: str, field: pa.Field, values: pa.Array) -> pa.Array:
    if field.name in _JSON_FIELDS and not pa.types.is_string(values.type):
        raise InvalidInputError(
            f"column {field.name!r} of the {kind} events is {values.type}; it holds JSON text: "
            "encode it as strings (json_objects or json_texts)"
        )
    if values.type == field.type:
        return values
    try:
        return values.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
        raise InvalidInputError(
            f"column {field.name!r} of the {kind} events is {values.type}, which does not fit "
            f"{field.type}: {error}; send {field.type} values"
        ) from None


def _check_envelope(kind: str, batch: pa.RecordBatch) -> None:
    identifiers = batch.column("id")
    empty = pc.fill_null(pc.equal(pc.utf8_length(identifiers), 0), True)
    if pc.any(empty).as_py():
        row = _first_true(empty)
        raise InvalidInputError(
            f"{kind} row {row}: 'id' must be a non-empty string, got "
            f"{identifiers[row].as_py()!r}; pass the prediction id (or the outcome id)"
        )
    systems = batch.column("system")
    if systems.null_count:
        row = _first_true(systems.is_null())
        raise InvalidInputError(f"{kind} row {row}: 'system' is missing; name the system")
    for system in pc.unique(systems).to_pylist():
        check_name(system, f"{kind} events: system")


def _check_times(kind: str, batch: pa.RecordBatch, received_us: int) -> None:
    """Refuse an event dated more than ``FUTURE_TOLERANCE`` after it was received."""
    limit = received_us + FUTURE_TOLERANCE // dt.timedelta(microseconds=1)
    times = batch.column("event_time").cast(pa.int64())
    late = pc.fill_null(pc.greater(times, limit), False)
    if pc.any(late).as_py():
        row = _first_true(late)
        received = dt.datetime.fromtimestamp(received_us / 1e6, dt.UTC)
        raise InvalidInputError(
            f"{kind} row {row}: event_time {batch.column('event_time')[row].as_py().isoformat()} "
            + future_message(received)
        )


def _first_true(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


# ---------------------------------------------------------------------------------------------
# JSON text from Arrow columns


def json_objects(table: pa.Table | pa.RecordBatch) -> pa.Array:
    """One JSON object per row, ``{"column": value, ...}``, as a string array (never null).

    The text is DuckDB's ``to_json`` of the row; NaN and infinities become ``null``, as JSON has
    no such numbers. Columns of text that needs no escaping, integers, booleans and plain floats
    are written by Arrow's kernels and joined into objects (the same text, without DuckDB's
    pass over every value); any other column is written by DuckDB.

    Example::

        json_objects(pa.table({"tenure": [3, None]})).to_pylist()
        # ['{"tenure":3}', '{"tenure":null}']
    """
    if table.num_columns == 0:
        return pa.array(["{}"] * table.num_rows, pa.string())
    columns = [
        _finite_or_null(_combined(table.column(index))) for index in range(table.num_columns)
    ]
    if any(not name for name in table.column_names):  # DuckDB takes no empty key: the slow way
        return _python_json(table.column_names, columns)
    if not any(_needs_escaping(name) for name in table.column_names):
        return _joined_json(table.column_names, columns)
    rows = pa.table(columns, names=[f"c{index}" for index in range(len(columns))])
    # Positional names in the query, the real ones (quoted by DuckDB) in the JSON keys.
    keys = ", ".join(
        f"{_sql_text(name)} := c{index}" for index, name in enumerate(table.column_names)
    )
    return _to_json(rows, f"struct_pack({keys})")


def _joined_json(names: list[str], columns: list[pa.Array]) -> pa.Array:
    """The objects as one join of each column's JSON text between constant keys and quotes."""
    texts = [_value_texts(column) for column in columns]
    others = [index for index, text in enumerate(texts) if text is None]
    if others:  # one DuckDB pass writes every column Arrow's kernels do not
        rows = pa.table([columns[index] for index in others], names=[f"c{i}" for i in others])
        written = _to_json_columns(rows)
        for index, text in zip(others, written, strict=True):
            texts[index] = (text, False)
    parts: list[pa.Array | str] = []
    closing = ""  # the quote after the previous value, when its text is a string's inside
    for index, (name, item) in enumerate(zip(names, texts, strict=True)):
        assert item is not None
        text, quoted = item
        opening = '"' if quoted else ""
        parts += [f'{closing}{"," if index else "{"}"{name}":{opening}', text]
        closing = opening
    parts.append(closing + "}")
    return pc.binary_join_element_wise(*parts, "")


def _value_texts(values: pa.Array) -> tuple[pa.Array, bool] | None:
    """Each value's JSON text as DuckDB writes it, or (``quoted``) a string's text inside its
    quotes; None for a column Arrow's kernels would write otherwise (DuckDB writes it)."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _value_texts(values.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = values.cast(pa.string())
        if np.any(_ESCAPED[_value_bytes(text)]):
            return None
        if not text.null_count:
            return text, True
        return pc.binary_join_element_wise('"', text, '"', "").fill_null(_NULL), False
    if pa.types.is_integer(kind):
        return values.cast(pa.string()).fill_null(_NULL), False
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "true", "false").fill_null(_NULL), False
    if pa.types.is_float64(kind):
        text = values.cast(pa.string())
        # Arrow and DuckDB write exponents differently: a column with one goes to DuckDB.
        if np.any(_NOT_DECIMAL[_value_bytes(text)]):
            return None
        whole = pc.equal(values, pc.trunc(values))  # Arrow writes 97.0 as '97'
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
        return text.fill_null(_NULL), False
    return None


def _value_bytes(text: pa.Array) -> np.ndarray:
    """The bytes of a string array's values (any bytes under nulls included), without a copy."""
    data = text.buffers()[2]
    if data is None or not len(text):
        return np.zeros(0, np.uint8)
    offsets = np.frombuffer(text.buffers()[1], np.int32)
    first, last = offsets[text.offset], offsets[text.offset + len(text)]
    return np.frombuffer(data, np.uint8)[first:last]


def _byte_table(special: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(special)] = True
    return table


#: Bytes a JSON string must escape: control characters, the quote and the backslash.
_ESCAPED: Final = _byte_table(bytes(range(32)) + b'"\\')
#: Bytes other than those of a plain decimal number (digits, sign, point).
_NOT_DECIMAL: Final = ~_byte_table(b"0123456789-.")


def _needs_escaping(name: str) -> bool:
    return any(ord(character) < 32 or character in '"\\' for character in name)


def _python_json(names: list[str], columns: list[pa.Array]) -> pa.Array:
    """One JSON object per row, written by orjson: for keys DuckDB cannot name (the empty one)."""
    values = [column.to_pylist() for column in columns]
    return pa.array(
        [
            orjson.dumps(dict(zip(names, row, strict=True)), default=str).decode()
            for row in zip(*values, strict=True)
        ],
        pa.string(),
    )


def _to_json_columns(rows: pa.Table) -> list[pa.Array]:
    """Each value of each column of ``rows`` as JSON text (``null`` for nulls), in one query."""
    expressions = ", ".join(f"to_json({_sql_text(name)})::VARCHAR" for name in rows.column_names)
    cursor = _duckdb().cursor()
    try:
        cursor.register("logged_rows", rows)
        result = cursor.sql(f"SELECT {expressions} FROM logged_rows").to_arrow_table()
    finally:
        cursor.close()
    return [_combined(column).cast(pa.string()).fill_null(_NULL) for column in result.columns]


def _to_json(rows: pa.Table, expression: str) -> pa.Array:
    cursor = _duckdb().cursor()
    try:
        cursor.register("logged_rows", rows)
        result = cursor.sql(f"SELECT to_json({expression})::VARCHAR FROM logged_rows")
        texts = _combined(result.to_arrow_table().column(0))
    finally:
        cursor.close()
    return texts.cast(pa.string()).fill_null(_NULL)


def _finite_or_null(values: pa.Array) -> pa.Array:
    if pa.types.is_floating(values.type) and len(values):
        return pc.if_else(pc.is_finite(values), values, pa.scalar(None, values.type))
    return values


def _sql_text(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_CONNECTION: list[duckdb.DuckDBPyConnection] = []
_CONNECTION_LOCK: Final = threading.Lock()


def _duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process; each call takes its own cursor (thread-safe)."""
    with _CONNECTION_LOCK:
        if not _CONNECTION:
            _CONNECTION.append(duckdb.connect())
        return _CONNECTION[0]


def json_texts(values: pa.Array) -> pa.Array:
    """Each value of ``values`` as JSON text (``null`` for nulls, NaN and infinities).

    Example::

        json_texts(pa.array([1.5, None, float("nan")])).to_pylist()  # ['1.5', 'null', 'null']
    """
    if values.null_count == len(values):  # e.g. no output logged: no query needed
        return pa.array(np.full(len(values), "null", dtype=object), pa.string())
    return _to_json(pa.table([_finite_or_null(values)], names=["c0"]), "c0")

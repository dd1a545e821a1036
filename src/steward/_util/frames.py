"""Data frames in, Arrow (or pandas) out: the one reader of every frame Steward is handed.

Contracts, profiles and drift all take "a frame": a pandas DataFrame, a pyarrow Table or a polars
DataFrame. :func:`to_arrow_table` turns any of them into a pyarrow Table (polars, and anything else
offering the Arrow C stream interface, without importing polars); :func:`to_pandas_frame` turns any
of them into a pandas DataFrame for the code that works on pandas. Both raise
:class:`~steward.errors.InvalidInputError` naming the input and what to pass instead.

Example::

    >>> import pandas as pd
    >>> to_arrow_table(pd.DataFrame({"amount": [1.0, None]})).column("amount").null_count
    1
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from steward.errors import InvalidInputError

__all__ = ["to_arrow_table", "to_pandas_frame"]

# Nullable pandas dtypes keep an Arrow int column with nulls an int column (numpy makes floats).
_ARROW_TO_PANDAS: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def to_arrow_table(frame: object, what: str = "the data") -> pa.Table:
    """``frame`` as a pyarrow Table with one column per distinct name.

    A pyarrow Table is returned as it is; a pandas DataFrame is converted column by column (NaN
    and ``None`` become nulls, the index is dropped, names become text); polars DataFrames and
    other objects with ``__arrow_c_stream__`` go through the Arrow C stream interface, and objects
    with a ``to_arrow()`` method through it. ``what`` names the input in error messages.

    >>> import pandas as pd
    >>> to_arrow_table(pd.DataFrame({"plan": ["a", None]})).column_names
    ['plan']
    """
    if isinstance(frame, pa.Table):
        table = frame
    elif isinstance(frame, pd.DataFrame):
        table = _pandas_to_table(frame, what)
    elif hasattr(frame, "__arrow_c_stream__"):
        table = pa.table(frame)
    elif hasattr(frame, "to_arrow"):
        table = frame.to_arrow()
    else:
        raise InvalidInputError(
            f"cannot read {what}, got {type(frame).__name__}; pass a pandas DataFrame, a pyarrow "
            "Table or a polars DataFrame"
        )
    if len(set(table.column_names)) != table.num_columns:
        raise InvalidInputError(
            f"{what} repeats column names {table.column_names}; give each column one name"
        )
    return table


def to_pandas_frame(frame: object, what: str = "the data") -> pd.DataFrame:
    """``frame`` as a pandas DataFrame: a pandas frame as it is, anything else through Arrow.

    Arrow integer and boolean columns become pandas' nullable dtypes (``Int64``, ``boolean``), so
    a column with nulls keeps its type instead of turning into floats. Other inputs are read as by
    :func:`to_arrow_table`.

    >>> import pyarrow as pa
    >>> to_pandas_frame(pa.table({"tenure": [1, None]}))["tenure"].dtype
    Int64Dtype()
    """
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, pa.Table | pa.RecordBatch):
        return frame.to_pandas(types_mapper=_ARROW_TO_PANDAS.get)
    return to_pandas_frame(to_arrow_table(frame, what), what)


def _pandas_to_table(frame: pd.DataFrame, what: str) -> pa.Table:
    arrays, names = [], []
    for name, series in frame.items():
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidInputError(
                f"column {str(name)!r} of {what} mixes types ({error}); make it hold only "
                "numbers or only strings"
            ) from error
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)

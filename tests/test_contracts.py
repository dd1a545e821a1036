from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steward.data.contracts as contracts_module
from steward.data.contracts import (
    ColumnRule,
    Contract,
    check_batch,
    check_record,
    diff_contracts,
    infer_contract,
    raise_for_rejected,
    read_contract,
    read_table,
)
from steward.errors import ConfigError, ContractViolationError, InvalidInputError

TELCO = Path("/work/shared/data/telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv")
ID_PATTERN = "^[0-9]{4}-[A-Z]{5}$"

SPEC_YAML = """
contract:
  on_violation: reject
  columns:
    tenure: {type: int, min: 0, nullable: false}
    Contract: {type: category, categories: [Month-to-month, One year, Two year]}
    MonthlyCharges: {type: float, min: 0, max: 500}
    customerID: {type: string, pattern: "^[0-9]{4}-[A-Z]{5}$", on_violation: flag}
"""


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    if not TELCO.is_file():
        pytest.skip(f"Telco data not found at {TELCO}")
    return read_table(TELCO)


@pytest.fixture(scope="module")
def telco_contract(telco: pd.DataFrame) -> Contract:
    return infer_contract(telco, name="churn")


def found(report: Any) -> dict[tuple[str, str], Any]:
    return {(violation.column, violation.rule): violation for violation in report.violations}


def rules_per_row(report: Any) -> list[set[tuple[str, str]]]:
    rows: list[set[tuple[str, str]]] = [set() for _ in range(report.n_rows)]
    for violation in report.violations:
        for row in np.flatnonzero(violation.mask):
            rows[row].add((violation.column, violation.rule))
    return rows


# --------------------------------------------------------------------------------------------------
# Inference


def test_contract_inferred_from_telco_accepts_the_same_data(
    telco: pd.DataFrame, telco_contract: Contract
) -> None:
    report = check_batch(telco_contract, telco)

    assert report.ok, report.summary()
    assert report.n_rows == len(telco)
    assert not report.rejected_mask.any()


def test_infer_takes_types_ranges_and_categories_from_the_data(
    telco: pd.DataFrame, telco_contract: Contract
) -> None:
    columns = telco_contract.columns

    assert columns["tenure"] == ColumnRule(
        type="int", nullable=False, min=int(telco.tenure.min()), max=int(telco.tenure.max())
    )
    assert columns["MonthlyCharges"].type == "float"
    assert columns["MonthlyCharges"].min == telco.MonthlyCharges.min()
    assert columns["Contract"].categories == sorted(telco.Contract.unique())
    assert columns["customerID"] == ColumnRule(type="string", nullable=False)


def test_infer_reads_numeric_strings_with_blanks_as_nullable_float(
    telco: pd.DataFrame, telco_contract: Contract
) -> None:
    numbers = pd.to_numeric(telco.TotalCharges, errors="coerce")
    rule = telco_contract.columns["TotalCharges"]

    assert telco.TotalCharges.str.strip().eq("").sum() == numbers.isna().sum() > 0
    assert rule.type == "float"
    assert rule.nullable
    assert (rule.min, rule.max) == (numbers.min(), numbers.max())


def test_infer_makes_high_cardinality_strings_plain_strings() -> None:
    frame = pd.DataFrame({"code": [f"c{index}" for index in range(30)]})

    assert infer_contract(frame, max_categories=29).columns["code"].type == "string"
    assert infer_contract(frame, max_categories=30).columns["code"].type == "category"


def test_infer_accepts_arrow_tables_and_keeps_ints_with_nulls_as_ints() -> None:
    table = pa.table({"age": pa.array([3, None, 9], type=pa.int64()), "ok": [True, False, None]})

    contract = infer_contract(table)

    assert contract.columns["age"] == ColumnRule(type="int", nullable=True, min=3, max=9)
    assert contract.columns["ok"] == ColumnRule(type="bool", nullable=True)


def test_infer_refuses_a_column_of_mixed_types_naming_it() -> None:
    frame = pd.DataFrame({"mixed": [1, "a", 2.5]})

    with pytest.raises(InvalidInputError, match="column 'mixed'"):
        infer_contract(frame)


# --------------------------------------------------------------------------------------------------
# Batch checks on corrupted Telco data


@pytest.fixture(scope="module")
def corrupted(telco: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Telco with known damage, written to CSV and read back as a pipeline would see it."""
    frame = telco.astype(object)
    frame.loc[[7, 19, 4000], "tenure"] = -4
    frame.loc[[3, 50], "Contract"] = "Three year"
    frame.loc[[10, 11, 6000], "gender"] = None
    frame.loc[[2, 99], "MonthlyCharges"] = "unknown"
    frame.loc[[1, 5, 6], "SeniorCitizen"] = "abc"
    frame.loc[[6, 12], "customerID"] = "bad-id"
    path = tmp_path_factory.mktemp("corrupted") / "telco.csv"
    frame.to_csv(path, index=False)
    return read_table(path)


@pytest.fixture(scope="module")
def strict_contract(telco_contract: Contract) -> Contract:
    columns = dict(telco_contract.columns)
    columns["customerID"] = ColumnRule(
        type="string", nullable=False, pattern=ID_PATTERN, on_violation="flag"
    )
    return telco_contract.model_copy(update={"columns": columns})


def independent_masks(frame: pd.DataFrame, contract: Contract) -> dict[tuple[str, str], pd.Series]:
    """The damage as plain pandas sees it, without the contracts module."""
    rules = contract.columns
    tenure = pd.to_numeric(frame.tenure, errors="coerce")
    monthly = pd.to_numeric(frame.MonthlyCharges, errors="coerce")
    senior = pd.to_numeric(frame.SeniorCitizen, errors="coerce")
    return {
        ("tenure", "min"): tenure < rules["tenure"].min,
        ("Contract", "category"): ~frame.Contract.isin(rules["Contract"].categories or []),
        ("gender", "null"): frame.gender.isna(),
        ("MonthlyCharges", "type"): monthly.isna() & frame.MonthlyCharges.notna(),
        ("SeniorCitizen", "type"): senior.isna() & frame.SeniorCitizen.notna(),
        ("customerID", "pattern"): ~frame.customerID.str.contains(ID_PATTERN, regex=True),
    }


def test_check_batch_reports_every_violation_with_count_and_first_row(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    expected = independent_masks(corrupted, strict_contract)

    report = check_batch(strict_contract, corrupted)

    assert set(found(report)) == set(expected)
    for key, mask in expected.items():
        violation = found(report)[key]
        assert violation.count == mask.sum(), key
        assert violation.first_row == np.flatnonzero(mask.to_numpy())[0], key
        assert violation.mask.tolist() == mask.tolist(), key


def test_check_batch_masks_reject_only_rows_hit_by_reject_rules(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    expected = independent_masks(corrupted, strict_contract)
    flagged = expected.pop(("customerID", "pattern")).to_numpy()
    rejected = np.logical_or.reduce([mask.to_numpy() for mask in expected.values()])

    report = check_batch(strict_contract, corrupted)

    assert report.rejected_mask.tolist() == rejected.tolist()
    assert report.flagged_mask.tolist() == flagged.tolist()
    assert report.n_rejected == rejected.sum() < len(corrupted)


def test_check_batch_examples_are_the_offending_values(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    report = found(check_batch(strict_contract, corrupted))

    assert report[("tenure", "min")].example == corrupted.tenure.min()
    assert report[("SeniorCitizen", "type")].example == "abc"
    assert report[("gender", "null")].example is None


def test_violation_message_names_contract_column_rule_value_and_rows(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    tenure = pd.to_numeric(corrupted.tenure)
    bad = np.flatnonzero(tenure < 0)

    violation = found(check_batch(strict_contract, corrupted))[("tenure", "min")]

    assert violation.message == (
        f"contract 'churn' v1: column 'tenure' expects int >= 0, got {tenure.min()} "
        f"in {len(bad)} rows (first at row {bad[0]})"
    )


def test_check_batch_gives_the_same_report_for_arrow_and_pandas(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    from_pandas = check_batch(strict_contract, corrupted)
    from_arrow = check_batch(strict_contract, pa.Table.from_pandas(corrupted))

    assert from_arrow.violations == from_pandas.violations
    assert from_arrow.rejected_mask.tolist() == from_pandas.rejected_mask.tolist()


def test_report_renders_to_json_and_one_line(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    report = check_batch(strict_contract, corrupted)

    rendered = json.loads(json.dumps(report.to_dict()))
    line = report.summary()

    assert rendered["n_rejected"] == report.n_rejected
    assert [item["rule"] for item in rendered["violations"]] == [
        violation.rule for violation in report.violations
    ]
    assert "\n" not in line
    assert f"{report.n_rejected} rows rejected" in line


def test_missing_required_column_hits_every_row_but_optional_one_does_not() -> None:
    contract = Contract.from_dict(
        {"columns": {"age": {"type": "int"}, "plan": {"type": "string", "required": False}}}
    )
    frame = pd.DataFrame({"other": [1, 2, 3]})

    report = check_batch(contract, frame)

    assert [(v.column, v.rule, v.count) for v in report.violations] == [
        ("age", "missing_column", len(frame))
    ]
    assert report.rejected_mask.all()
    assert report.extra_columns == ("other",)


def test_extra_columns_are_info_unless_the_contract_rejects_them() -> None:
    allowing = Contract.from_dict({"columns": {"age": {"type": "int"}}})
    rejecting = allowing.model_copy(update={"extra_columns": "reject"})
    frame = pd.DataFrame({"age": [1, 2], "surprise": ["x", "y"]})

    allowed = check_batch(allowing, frame)
    rejected = check_batch(rejecting, frame)

    assert allowed.ok and allowed.extra_columns == ("surprise",)
    assert "surprise" in allowed.summary()
    assert [(v.column, v.rule) for v in rejected.violations] == [("surprise", "extra_column")]
    assert rejected.rejected_mask.all()
    assert [v.rule for v in check_record(rejecting, {"age": 1, "surprise": "x"})] == [
        "extra_column"
    ]


def test_check_batch_refuses_things_that_are_not_frames() -> None:
    contract = Contract.from_dict({"columns": {"age": {"type": "int"}}})

    with pytest.raises(InvalidInputError, match="got list"):
        check_batch(contract, [{"age": 1}])


# --------------------------------------------------------------------------------------------------
# Records


def test_check_record_finds_nothing_in_a_clean_telco_record(
    telco: pd.DataFrame, telco_contract: Contract
) -> None:
    assert check_record(telco_contract, telco.iloc[0].to_dict()) == []


def test_check_record_reports_each_broken_rule_with_the_value(telco_contract: Contract) -> None:
    record = {"tenure": "twelve", "gender": None, "Contract": "Lifetime"}

    violations = check_record(telco_contract, record)
    by_key = {(v.column, v.rule): v for v in violations}

    assert by_key[("tenure", "type")].example == "twelve"
    assert by_key[("gender", "null")].action == "reject"
    assert "got 'Lifetime'" in by_key[("Contract", "category")].message
    assert ("customerID", "missing_column") in by_key


def test_check_record_agrees_with_check_batch_on_every_corrupted_row(
    corrupted: pd.DataFrame, strict_contract: Contract
) -> None:
    sample = corrupted.iloc[:120]
    batch_rows = rules_per_row(check_batch(strict_contract, sample))

    for position, record in enumerate(sample.to_dict("records")):
        record_rules = {(v.column, v.rule) for v in check_record(strict_contract, record)}
        assert record_rules == batch_rows[position], position


def test_check_record_refuses_a_record_that_is_not_a_mapping(telco_contract: Contract) -> None:
    with pytest.raises(InvalidInputError, match="got list"):
        check_record(telco_contract, [1, 2])  # type: ignore[arg-type]


def test_raise_for_rejected_raises_on_reject_and_lets_flags_pass() -> None:
    contract = Contract.from_dict(
        {
            "columns": {
                "age": {"type": "int", "min": 0},
                "code": {"type": "string", "pattern": "^x", "on_violation": "flag"},
            }
        }
    )

    raise_for_rejected(check_record(contract, {"age": 3, "code": "y"}))
    with pytest.raises(ContractViolationError) as caught:
        raise_for_rejected(check_record(contract, {"age": -1, "code": "y"}))

    assert [item["rule"] for item in caught.value.violations] == ["min"]
    assert "got -1" in str(caught.value)


AGREEMENT_CONTRACT = Contract.from_dict(
    {
        "name": "agreement",
        "columns": {
            "count": {"type": "int", "min": -5, "max": 50, "nullable": False},
            "amount": {"type": "float", "min": 0.0, "max": 100.0},
            "active": {"type": "bool"},
            "plan": {"type": "category", "categories": ["a", "b"], "pattern": "^[a-c]$"},
            "code": {"type": "string", "pattern": "^[0-9]{2}-[A-Z]$", "nullable": False},
            "since": {"type": "datetime"},
        },
    }
)
NUMERIC_TEXT = st.sampled_from(
    [" 12", "1e3", "-7", "+4", "3.5", ".5", "5.", "abc", "", " ", "\t8\t", "nan", "inf", "1_000",
     "٣", "99999999999999999999", "-0", "1e999", "0x10"]
)  # fmt: skip
DATETIME_TEXT = st.sampled_from(
    ["2020-01-01", "2020-02-30", "2020-01-01T10:00:00", "2020-01-01 10:00:00.5+05:30",
     "2020-01-01T10:00Z", "2020-13-01", "01/02/2020", "", "  ", "2020-01-01T25:00", "1500-06-01",
     "2020-01-01T10:00:00.1234567", "tomorrow"]
)  # fmt: skip
SHORT_TEXT = st.one_of(st.sampled_from(["a", "b", "c", "d", "", "12-X", "1-X", "12-x"]), st.text())


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


COLUMN_VALUES: dict[str, list[st.SearchStrategy[Any]]] = {
    "count": [
        st.integers(-10, 60),
        nullable(st.integers(-10, 60)),
        nullable(st.floats(-10, 60).map(lambda number: round(number * 2) / 2)),
        nullable(st.one_of(NUMERIC_TEXT, st.integers(-10, 60).map(str))),
    ],
    "amount": [
        nullable(st.floats(allow_nan=True, allow_infinity=True)),
        nullable(st.integers(-10, 200)),
        nullable(NUMERIC_TEXT),
    ],
    "active": [
        nullable(st.booleans()),
        st.integers(-1, 2),
        nullable(st.sampled_from(["true", "FALSE", " 1", "0", "yes", "", "True "])),
    ],
    "plan": [nullable(SHORT_TEXT), st.integers(0, 3)],
    "code": [nullable(SHORT_TEXT), nullable(st.from_regex(r"[0-9]{2}-[A-Z]\n?", fullmatch=True))],
    "since": [nullable(DATETIME_TEXT), st.datetimes().map(pd.Timestamp)],
}


@st.composite
def frames_with_records(draw: st.DrawFn) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    n_rows = draw(st.integers(1, 12))
    columns = {}
    for column, choices in COLUMN_VALUES.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # sometimes the column is missing altogether
        values = draw(st.sampled_from(choices))
        columns[column] = draw(st.lists(values, min_size=n_rows, max_size=n_rows))
    records = [{column: values[row] for column, values in columns.items()} for row in range(n_rows)]
    return pd.DataFrame(columns, index=range(n_rows)), records


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames_with_records())
def test_check_record_agrees_with_check_batch_row_by_row(
    generated: tuple[pd.DataFrame, list[dict[str, Any]]],
) -> None:
    frame, records = generated
    batch_rows = rules_per_row(check_batch(AGREEMENT_CONTRACT, frame))

    for position, record in enumerate(records):
        record_rules = {(v.column, v.rule) for v in check_record(AGREEMENT_CONTRACT, record)}
        assert record_rules == batch_rows[position], (position, record, frame.dtypes.to_dict())


# --------------------------------------------------------------------------------------------------
# The YAML form


def test_yaml_form_round_trips_through_dict_and_yaml_text() -> None:
    written = yaml.safe_load(SPEC_YAML)["contract"]

    contract = Contract.from_dict(written, name="churn")
    reloaded = Contract.from_dict(yaml.safe_load(yaml.safe_dump(contract.to_dict())))

    assert reloaded == contract
    assert {key: value for key, value in contract.to_dict().items() if key in written} == written
    assert contract.action_for("customerID") == "flag"
    assert contract.action_for("tenure") == "reject"


def test_inferred_telco_contract_round_trips_through_yaml(telco_contract: Contract) -> None:
    text = yaml.safe_dump(telco_contract.to_dict())

    assert Contract.from_dict(yaml.safe_load(text)) == telco_contract


def test_unknown_column_key_error_names_the_key_and_the_allowed_keys() -> None:
    written = {"columns": {"tenure": {"type": "int", "minimum": 0}}}

    with pytest.raises(ConfigError) as caught:
        Contract.from_dict(written, name="churn")

    message = str(caught.value)
    assert "unknown key 'minimum' in column 'tenure'" in message
    assert all(key in message for key in ColumnRule.model_fields)
    assert message.startswith("contract 'churn' v1:")


def test_unknown_contract_key_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'on_violations'; allowed keys: columns"):
        Contract.from_dict({"on_violations": "flag", "columns": {}})


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"type": "int", "min": 5, "max": 1}, "min 5 is greater than max 1"),
        ({"type": "string", "min": 0}, "not 'string'"),
        ({"type": "int", "categories": ["a"]}, "set type: category"),
        ({"type": "string", "pattern": "(["}, "pattern '(['"),
        ({"type": "integer"}, "got 'integer'"),
        ({"type": "category", "categories": []}, "categories is empty"),
    ],
)
def test_invalid_column_rules_are_config_errors_naming_the_value(
    rule: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)) as caught:
        Contract.from_dict({"columns": {"x": rule}})

    assert "column 'x'" in str(caught.value)


def test_read_contract_reads_a_file_with_a_contract_key(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")

    contract = read_contract(path)

    assert contract == Contract.from_dict(yaml.safe_load(SPEC_YAML)["contract"])


def test_compiled_cache_leaves_equality_alone_and_follows_copies() -> None:
    contract = Contract.from_dict({"columns": {"age": {"type": "int", "min": 0}}})
    fresh = Contract.from_dict(contract.to_dict())
    compiled = contract.compiled()
    widened = contract.model_copy(update={"columns": {"age": ColumnRule(type="int")}})

    assert contract == fresh
    assert contract.compiled() is compiled
    assert check_record(widened, {"age": -1}) == []
    assert [v.rule for v in check_record(contract, {"age": -1})] == ["min"]


# --------------------------------------------------------------------------------------------------
# read_table


def test_read_table_reads_parquet_like_csv(telco: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "telco.parquet"
    telco.to_parquet(path)

    assert read_table(path).equals(telco)


@pytest.mark.parametrize(
    ("name", "content", "named"),
    [
        ("absent.csv", None, "does not exist"),
        ("data.xlsx", b"x", "unknown suffix '.xlsx'"),
        ("broken.parquet", b"not parquet at all", "as Parquet"),
        ("empty.csv", b"", "as CSV"),
    ],
)
def test_read_table_errors_say_what_is_wrong_with_the_file(
    tmp_path: Path, name: str, content: bytes | None, named: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(InvalidInputError, match=re.escape(named)) as caught:
        read_table(path)

    assert name in str(caught.value)


# --------------------------------------------------------------------------------------------------
# Diffs


BASE: dict[str, Any] = {
    "columns": {
        "tenure": {"type": "int", "min": 0, "max": 72, "nullable": False},
        "Contract": {"type": "category", "categories": ["Month-to-month", "One year"]},
        "note": {"type": "string", "required": False},
        "customerID": {"type": "string"},
    }
}


def changed(column: str, **fields: Any) -> dict[str, Any]:
    columns = {name: dict(rule) for name, rule in BASE["columns"].items()}
    columns[column].update(fields)
    columns[column] = {key: value for key, value in columns[column].items() if value is not None}
    return {"version": 2, "columns": columns}


@pytest.mark.parametrize(
    ("new", "field", "breaking"),
    [
        (changed("tenure", min=1), "min", True),
        (changed("tenure", min=-1), "min", False),
        (changed("tenure", max=60), "max", True),
        (changed("tenure", max=None), "max", False),
        (changed("tenure", nullable=True), "nullable", False),
        (changed("note", nullable=False), "nullable", True),
        (changed("note", required=True), "required", True),
        (changed("tenure", required=False), "required", False),
        (changed("Contract", categories=["Month-to-month"]), "categories", True),
        (changed("Contract", categories=["Month-to-month", "One year", "Two year"]), "categories",
         False),
        (changed("customerID", pattern=ID_PATTERN), "pattern", True),
        (changed("tenure", type="float"), "type", True),
        (changed("customerID", on_violation="flag"), "on_violation", False),
        ({**changed("tenure"), "on_violation": "flag"}, "on_violation", False),
        ({**changed("tenure"), "extra_columns": "reject"}, "extra_columns", True),
    ],
)  # fmt: skip
def test_diff_classifies_each_change(new: dict[str, Any], field: str, breaking: bool) -> None:
    diff = diff_contracts(Contract.from_dict(BASE), Contract.from_dict(new))

    assert {change.field for change in diff.changes} == {field}
    assert diff.breaking is breaking
    assert all(change.breaking is breaking for change in diff.changes)


def test_diff_classifies_added_and_removed_columns() -> None:
    old = Contract.from_dict(BASE)
    added_required = {**changed("tenure"), "columns": {**BASE["columns"], "age": {"type": "int"}}}
    added_optional = {
        "columns": {**BASE["columns"], "age": {"type": "int", "required": False}},
    }
    removed = {"columns": {k: v for k, v in BASE["columns"].items() if k != "note"}}

    assert diff_contracts(old, Contract.from_dict(added_required)).breaking
    assert not diff_contracts(old, Contract.from_dict(added_optional)).breaking
    assert not diff_contracts(old, Contract.from_dict(removed)).breaking
    assert diff_contracts(old, Contract.from_dict({**removed, "extra_columns": "reject"})).breaking


def test_diff_lists_changes_readably_and_reports_none_for_equal_contracts() -> None:
    old = Contract.from_dict(BASE, name="churn")
    new = Contract.from_dict(changed("tenure", min=1), name="churn")

    diff = diff_contracts(old, new)

    assert diff.lines() == ["breaking   column 'tenure': min raised from 0 to 1 (narrowed range)"]
    assert diff.changes[0].description == "column 'tenure': min raised from 0 to 1 (narrowed range)"
    assert (
        diff.summary()
        == "contract 'churn' v1 -> contract 'churn' v2: 1 breaking, 0 compatible changes"
    )
    assert json.loads(json.dumps(diff.to_dict()))["breaking"] is True
    assert diff_contracts(old, old).changes == ()


def test_module_exports_every_public_name() -> None:
    public = {
        name
        for name, value in vars(contracts_module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == contracts_module.__name__
    }

    assert public <= set(contracts_module.__all__)

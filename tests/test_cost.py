"""Pricing LLM calls: the arithmetic, dated prices, the shipped genai-prices table, steward.yaml prices.

Every expected figure is computed here from the rates (ours, or read from genai-prices' own API),
never taken from ``steward.llm.cost``.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers
from genai_prices.data_snapshot import DataSnapshot, get_snapshot, set_custom_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.errors import ConfigError, InvalidInputError
from steward.llm.cost import PriceBook, parse_price_overrides

MILLION = Decimal(1_000_000)
DECEMBER = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rounded(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN))


def table_rates(provider: str, model: str, at: datetime) -> Any:
    """The rates the genai-prices wheel lists for ``model`` at ``at``, read through its own API."""
    snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    _, info = snapshot.find_provider_model(model, None, provider, None)
    return info.get_prices(at)


# ---------------------------------------------------------------------------------------------
# The arithmetic


ACME = {
    "acme-llm": [
        {
            "valid_from": date(2026, 1, 1),
            "input": 2.5,
            "cached_input": 0.25,
            "cache_write": 3.125,
            "output": 10,
            "reasoning": 12,
        }
    ]
}


def test_cached_and_reasoning_tokens_cost_exactly_what_the_rates_give() -> None:
    call = PriceBook(ACME).cost(
        provider="acme",
        model="acme-llm",
        at=DECEMBER,
        input_tokens=10_000,
        cache_read_tokens=6_000,
        cache_creation_tokens=1_000,
        output_tokens=2_000,
        reasoning_tokens=500,
    )
    uncached = 10_000 - 6_000 - 1_000
    expected = (
        uncached * Decimal("2.5")
        + 6_000 * Decimal("0.25")
        + 1_000 * Decimal("3.125")
        + (2_000 - 500) * Decimal("10")
        + 500 * Decimal("12")
    ) / MILLION
    # The known bug: cached tokens charged at the input rate as well as the cache rate.
    charged_twice = expected + (6_000 + 1_000) * Decimal("2.5") / MILLION
    assert call.priced
    assert call.exact_cost == expected
    assert call.cost == rounded(expected)
    assert call.cost != rounded(charged_twice)
    assert call.source == "steward.yaml (valid from 2026-01-01)"
    assert call.breakdown == {
        "input": rounded(uncached * Decimal("2.5") / MILLION),
        "cache_read": rounded(6_000 * Decimal("0.25") / MILLION),
        "cache_write": rounded(1_000 * Decimal("3.125") / MILLION),
        "output": rounded(1_500 * Decimal("10") / MILLION),
        "reasoning": rounded(500 * Decimal("12") / MILLION),
    }


def test_missing_cached_and_reasoning_rates_fall_back_to_input_and_output_once() -> None:
    book = PriceBook({"plain": [{"valid_from": "2026-01-01", "input": 1, "output": 4}]})
    call = book.cost(
        provider=None,
        model="plain",
        at=DECEMBER,
        input_tokens=5_000,
        cache_read_tokens=3_000,
        cache_creation_tokens=500,
        output_tokens=800,
        reasoning_tokens=600,
    )
    # Every input token once at the input rate, every output token once at the output rate.
    expected = (5_000 * Decimal(1) + 800 * Decimal(4)) / MILLION
    assert call.exact_cost == expected
    assert "reasoning" not in call.breakdown
    assert call.rates["cached_input"] == call.rates["input"] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    cached=st.integers(0, 2_000_000),
    written=st.integers(0, 2_000_000),
    uncached=st.integers(0, 2_000_000),
    reasoning=st.integers(0, 500_000),
    answer=st.integers(0, 500_000),
    milli_rates=st.lists(st.integers(0, 100_000), min_size=5, max_size=5),
)
def test_any_call_costs_the_sum_of_its_tokens_at_their_rates(
    cached: int, written: int, uncached: int, reasoning: int, answer: int, milli_rates: list[int]
) -> None:
    rates = [Decimal(rate) / 1000 for rate in milli_rates]
    keys = ("input", "cached_input", "cache_write", "output", "reasoning")
    book = PriceBook({"m": [{"valid_from": "2026-01-01", **dict(zip(keys, rates, strict=True))}]})
    call = book.cost(
        provider=None,
        model="m",
        at=DECEMBER,
        input_tokens=uncached + cached + written,
        cache_read_tokens=cached,
        cache_creation_tokens=written,
        output_tokens=answer + reasoning,
        reasoning_tokens=reasoning,
    )
    tokens = (uncached, cached, written, answer, reasoning)
    expected = sum((n * r for n, r in zip(tokens, rates, strict=True)), Decimal(0)) / MILLION
    assert call.exact_cost == expected
    assert call.cost == rounded(expected)


def test_cost_is_rounded_to_a_billionth_of_a_dollar_and_exact_beside() -> None:
    book = PriceBook({"tiny": [{"valid_from": "2026-01-01", "input": "0.0025", "output": 0}]})
    call = book.cost(provider=None, model="tiny", at=DECEMBER, input_tokens=1, output_tokens=0)
    assert call.exact_cost == Decimal("0.0025") / MILLION
    assert call.cost == rounded(Decimal("0.0025") / MILLION) == 2e-9
    assert json.loads(json.dumps(call.to_dict()))["exact_cost"] == str(call.exact_cost)


# ---------------------------------------------------------------------------------------------
# Dated prices


def test_a_price_change_mid_window_charges_each_call_at_its_own_dates_price() -> None:
    book = PriceBook(
        {
            "acme-llm": [
                {"valid_from": date(2026, 1, 1), "input": "0.40", "output": "1.60"},
                {"valid_from": "2026-11-15T09:00:00Z", "input": "0.30", "output": "1.20"},
            ]
        }
    )
    window = [
        datetime(2026, 11, 15, 8, 59, tzinfo=UTC),  # the old price's last minute
        datetime(2026, 11, 15, 9, 0, tzinfo=UTC),  # the new price's first
    ]
    before, after = (
        book.cost(provider=None, model="acme-llm", at=at, input_tokens=10_000, output_tokens=2_000)
        for at in window
    )
    assert before.exact_cost == (10_000 * Decimal("0.40") + 2_000 * Decimal("1.60")) / MILLION
    assert after.exact_cost == (10_000 * Decimal("0.30") + 2_000 * Decimal("1.20")) / MILLION
    assert before.source == "steward.yaml (valid from 2026-01-01)"
    assert after.source == "steward.yaml (valid from 2026-11-15T09:00:00+00:00)"


def test_a_call_before_the_first_price_of_a_model_no_table_knows_is_unpriced() -> None:
    book = PriceBook({"acme-llm": [{"valid_from": "2026-06-01", "input": 1, "output": 1}]})
    call = book.cost(
        provider="acme",
        model="acme-llm",
        at=datetime(2026, 5, 31, tzinfo=UTC),
        input_tokens=10,
        output_tokens=1,
    )
    assert (call.cost, call.priced) == (None, False)
    assert "before 2026-06-01" in call.source


def test_the_tables_own_dated_price_change_is_honoured() -> None:
    # claude-opus-4-6 had long-context tiers until 2026-03-13 and one flat price after.
    usage = {"input_tokens": 250_000, "output_tokens": 1_000}
    book = PriceBook()
    costs = []
    for at in (datetime(2026, 3, 12, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)):
        call = book.cost(provider="anthropic", model="claude-opus-4-6", at=at, **usage)
        theirs = calc_price(
            Usage(**usage),
            "claude-opus-4-6",
            provider_id="anthropic",
            genai_request_timestamp=at,
        )
        assert call.exact_cost == theirs.total_price
        costs.append(call.cost)
    assert costs[0] != costs[1]


# ---------------------------------------------------------------------------------------------
# The shipped genai-prices table


def test_an_unknown_model_is_unpriced_never_free() -> None:
    call = PriceBook().cost(
        provider="openai", model="no-such-model-7", at=DECEMBER, input_tokens=100, output_tokens=10
    )
    assert call.cost is None
    assert call.priced is False
    assert call.source.startswith("unpriced: no price for provider openai model no-such-model-7")
    assert call.to_dict()["cost"] is None


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o-mini-2024-07-18"])
def test_a_table_model_is_priced_from_the_shipped_table(model: str) -> None:
    prices = table_rates("openai", model, DECEMBER)
    input_rate, cached_rate, output_rate = (
        prices.input_mtok,
        prices.cache_read_mtok,
        prices.output_mtok,
    )
    assert all(isinstance(r, Decimal) for r in (input_rate, cached_rate, output_rate))
    assert prices.output_reasoning_mtok is None  # so reasoning tokens go at the output rate

    call = PriceBook().cost(
        provider="openai",
        model=model,
        at=DECEMBER,
        input_tokens=12_000,
        cache_read_tokens=8_000,
        output_tokens=900,
        reasoning_tokens=300,
    )
    by_hand = (4_000 * input_rate + 8_000 * cached_rate + 900 * output_rate) / MILLION
    assert call.exact_cost == by_hand
    assert call.cost == rounded(by_hand)
    assert (
        call.source
        == f"genai-prices {genai_prices.__version__} (provider openai, model gpt-4o-mini)"
    )
    theirs = calc_price(
        Usage(input_tokens=12_000, cache_read_tokens=8_000, output_tokens=900),
        model,
        provider_id="openai",
        genai_request_timestamp=DECEMBER,
    )
    assert call.exact_cost == theirs.total_price


def test_a_table_reasoning_rate_prices_reasoning_tokens_once_at_that_rate() -> None:
    prices = table_rates("perplexity", "sonar-deep-research", DECEMBER)
    assert prices.output_reasoning_mtok is not None
    assert prices.output_reasoning_mtok != prices.output_mtok
    call = PriceBook().cost(
        provider="perplexity",
        model="sonar-deep-research",
        at=DECEMBER,
        input_tokens=1_000,
        output_tokens=5_000,
        reasoning_tokens=4_000,
    )
    by_hand = (
        1_000 * prices.input_mtok
        + 1_000 * prices.output_mtok
        + 4_000 * prices.output_reasoning_mtok
    ) / MILLION
    assert call.exact_cost == by_hand
    theirs = calc_price(
        Usage(input_tokens=1_000, output_tokens=5_000, output_reasoning_tokens=4_000),
        "sonar-deep-research",
        provider_id="perplexity",
        genai_request_timestamp=DECEMBER,
    )
    assert call.exact_cost == theirs.total_price


def test_a_long_prompt_pays_the_tables_tier_rate_on_every_token() -> None:
    usage = {
        "input_tokens": 150_000,
        "cache_read_tokens": 40_000,
        "cache_creation_tokens": 10_000,
        "output_tokens": 2_000,
    }
    short = {**usage, "input_tokens": 90_000}
    book = PriceBook()
    for counts in (usage, short):
        call = book.cost(provider="anthropic", model="claude-haiku-5-5", at=DECEMBER, **counts)
        theirs = calc_price(
            Usage(
                input_tokens=counts["input_tokens"],
                cache_read_tokens=counts["cache_read_tokens"],
                cache_write_tokens=counts["cache_creation_tokens"],
                output_tokens=counts["output_tokens"],
            ),
            "claude-haiku-5-5",
            provider_id="anthropic",
            genai_request_timestamp=DECEMBER,
        )
        assert call.exact_cost == theirs.total_price
    long_rate = book.cost(provider="anthropic", model="claude-haiku-5-5", at=DECEMBER, **usage)
    short_rate = book.cost(provider="anthropic", model="claude-haiku-5-5", at=DECEMBER, **short)
    assert long_rate.rates["input"] > short_rate.rates["input"]


def test_a_tables_price_per_request_is_charged_once_per_call() -> None:
    prices = table_rates("perplexity", "sonar", DECEMBER)
    assert prices.requests_kcount is not None
    call = PriceBook().cost(
        provider="perplexity", model="sonar", at=DECEMBER, input_tokens=2_000, output_tokens=300
    )
    by_hand = (
        2_000 * prices.input_mtok + 300 * prices.output_mtok
    ) / MILLION + prices.requests_kcount / 1000
    assert call.exact_cost == by_hand
    assert call.breakdown["requests"] == rounded(prices.requests_kcount / 1000)
    theirs = calc_price(
        Usage(input_tokens=2_000, output_tokens=300),
        "sonar",
        provider_id="perplexity",
        genai_request_timestamp=DECEMBER,
    )
    assert call.exact_cost == theirs.total_price


def test_a_table_entry_with_no_token_price_is_unpriced_not_free() -> None:
    # github-copilot lists gpt-4o-mini with no rate at all; genai-prices alone would say $0.
    assert table_rates("github-copilot", "gpt-4o-mini", DECEMBER).input_mtok is None
    call = PriceBook().cost(
        provider="github-copilot",
        model="gpt-4o-mini",
        at=DECEMBER,
        input_tokens=100,
        output_tokens=10,
    )
    assert (call.cost, call.priced) == (None, False)
    assert "no input price" in call.source


def test_pricing_uses_the_shipped_table_and_never_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("pricing tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    # A table fetched by another library's UpdatePrices replaces genai-prices' own process-wide.
    fetched = DataSnapshot(providers=[], from_auto_update=True)
    previous = get_snapshot()
    set_custom_snapshot(fetched)
    try:
        call = PriceBook().cost(
            provider="openai", model="gpt-4o-mini", at=DECEMBER, input_tokens=10, output_tokens=1
        )
    finally:
        set_custom_snapshot(previous)  # the bundled table, or whatever was set before
    assert call.priced
    assert not genai_prices.wait_prices_updated_sync(timeout=0)  # no updater was started


# ---------------------------------------------------------------------------------------------
# steward.yaml overrides


def test_an_override_wins_over_the_table_from_its_first_date_on() -> None:
    book = PriceBook({"gpt-4o-mini": [{"valid_from": "2026-11-15", "input": 9, "output": 9}]})
    table = book.cost(
        provider="openai",
        model="gpt-4o-mini",
        at=datetime(2026, 11, 14, tzinfo=UTC),
        input_tokens=1_000,
        output_tokens=0,
    )
    assert table.source.startswith("genai-prices")
    # The dated name OpenAI answers with is the same model to genai-prices, so the entry holds.
    for model in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"):
        ours = book.cost(
            provider="openai", model=model, at=DECEMBER, input_tokens=1_000, output_tokens=0
        )
        assert ours.source == "steward.yaml (valid from 2026-11-15)"
        assert ours.exact_cost == 1_000 * Decimal(9) / MILLION


def test_two_overrides_for_the_same_table_model_leave_a_third_name_unpriced() -> None:
    book = PriceBook(
        {
            "gpt-4o-mini": [{"valid_from": "2026-01-01", "input": 1, "output": 1}],
            "gpt-4o-mini-2024-07-18": [{"valid_from": "2026-01-01", "input": 2, "output": 2}],
        }
    )
    exact = book.cost(
        provider="openai", model="gpt-4o-mini", at=DECEMBER, input_tokens=10, output_tokens=0
    )
    assert exact.exact_cost == 10 * Decimal(1) / MILLION
    other = book.cost(
        provider="openai",
        model="gpt-4o-mini-search-preview",
        at=DECEMBER,
        input_tokens=10,
        output_tokens=0,
    )
    assert not other.priced
    assert "'gpt-4o-mini' and 'gpt-4o-mini-2024-07-18'" in other.source


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [
        (
            [{"valid_from": "2026-01-01", "input": -0.5, "output": 1}],
            ["'acme-llm'", "entry 0", "input", "-0.5", "negative"],
        ),
        (
            [{"valid_from": "2026-01-01", "input": 1, "output": 1, "cached": 0.1}],
            ["'acme-llm'", "entry 0", "unknown key 'cached'", "0.1", "cached_input"],
        ),
        (
            [
                {"valid_from": "2026-03-01", "input": 1, "output": 1},
                {"valid_from": "2026-01-01", "input": 2, "output": 2},
            ],
            ["'acme-llm'", "entry 1", "valid_from 2026-01-01", "entry 0", "oldest first"],
        ),
        (
            [
                {"valid_from": "2026-03-01", "input": 1, "output": 1},
                {"valid_from": date(2026, 3, 1), "input": 2, "output": 2},
            ],
            ["'acme-llm'", "entry 1", "valid_from 2026-03-01", "repeats entry 0"],
        ),
        (
            [{"valid_from": "2026-01-01", "output": 1}],
            ["'acme-llm'", "entry 0", "input is missing"],
        ),
        (
            [{"valid_from": "2026-01-01", "input": 1}],
            ["'acme-llm'", "entry 0", "output is missing"],
        ),
        (
            [{"input": 1, "output": 1}],
            ["'acme-llm'", "entry 0", "valid_from is missing"],
        ),
        (
            [{"valid_from": "next week", "input": 1, "output": 1}],
            ["'acme-llm'", "entry 0", "valid_from 'next week'", "not a date"],
        ),
        (
            [{"valid_from": "2026-01-01", "input": True, "output": 1}],
            ["'acme-llm'", "entry 0", "input True", "not a number"],
        ),
        (
            [{"valid_from": "2026-01-01", "input": 1, "output": float("nan")}],
            ["'acme-llm'", "entry 0", "output nan", "not a number"],
        ),
        ({"valid_from": "2026-01-01", "input": 1, "output": 1}, ["'acme-llm'", "non-empty list"]),
        ([], ["'acme-llm'", "non-empty list"]),
    ],
)
def test_bad_overrides_are_refused_naming_model_entry_key_and_value(
    entries: Any, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        PriceBook({"acme-llm": entries})
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping of model name"):
        parse_price_overrides([{"acme-llm": []}])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Counts that cannot be


def test_cached_tokens_beyond_the_input_are_refused_naming_the_figures() -> None:
    with pytest.raises(InvalidInputError) as raised:
        PriceBook().cost(
            provider="openai",
            model="gpt-4o-mini",
            at=DECEMBER,
            input_tokens=100,
            cache_read_tokens=80,
            cache_creation_tokens=30,
            output_tokens=5,
        )
    message = str(raised.value)
    for figure in ("cache_read_tokens (80)", "cache_creation_tokens (30)", "input_tokens (100)"):
        assert figure in message


@pytest.mark.parametrize(
    ("counts", "fragment"),
    [
        ({"input_tokens": 10, "output_tokens": 5, "reasoning_tokens": 6}, "reasoning_tokens (6)"),
        ({"input_tokens": -1, "output_tokens": 5}, "input_tokens -1"),
        ({"input_tokens": 1.5, "output_tokens": 5}, "input_tokens 1.5"),
    ],
)
def test_impossible_counts_are_refused(counts: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        PriceBook().cost(provider="openai", model="gpt-4o-mini", at=DECEMBER, **counts)


def test_a_naive_time_is_taken_as_utc() -> None:
    book = PriceBook({"m": [{"valid_from": "2026-11-15", "input": 1, "output": 1}]})
    naive = book.cost(
        provider=None, model="m", at=datetime(2026, 11, 15), input_tokens=1, output_tokens=0
    )
    assert naive.priced

"""What one LLM call cost, in US dollars, with the prices valid at the call's time.

A call is priced once, when it is logged (``steward.llm.calls``), by a ``PriceBook``. Its prices come
from two places:

- ``steward.yaml``'s ``prices:`` mapping, per model name, in US dollars per million tokens::

      prices:
        acme-llm:
          - {valid_from: 2026-01-01, input: 0.40, output: 1.60}
          - {valid_from: 2026-11-15, input: 0.30, cached_input: 0.03, output: 1.20}

  Each entry holds from its ``valid_from`` (a date means 00:00 UTC that day; a datetime without a
  zone is UTC) until the next entry's. ``input`` and ``output`` are required. A missing
  ``cached_input`` means cached tokens are charged at the input rate, a missing ``cache_write`` that
  cache writes are charged at the input rate, and a missing ``reasoning`` that reasoning tokens are
  charged at the output rate. These rates are flat (no tiers).
- otherwise the table shipped in the pinned ``genai-prices`` wheel (pydantic's price table), with its
  dated price changes, time-of-day prices and tiers (a tier's rate applies to every token of a call
  whose total input passes the tier's threshold). Only the table in the wheel is read: its optional
  background updater is never started, and a table fetched by another library in the same process
  is ignored, so a cost never depends on the network and the same call always costs the same.

A steward.yaml entry wins over the table for its model from its first ``valid_from`` on; before that
the table prices the model if it knows it. A model is found by its exact name first, then by what
genai-prices itself matches (it knows that ``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``, so a
steward.yaml entry for ``gpt-4o-mini`` also prices the dated name); there is no guessing of our own.

The arithmetic, in exact decimals. Counts follow OpenAI and the OpenTelemetry GenAI conventions:
``input_tokens`` include the cached ones, and ``output_tokens`` include the reasoning ones. So:

- uncached input = ``input_tokens - cache_read_tokens - cache_creation_tokens``, at the input rate
  (a negative figure is refused);
- ``cache_read_tokens`` at the cached rate only, never also at the input rate;
- ``cache_creation_tokens`` at the cache-write rate;
- if the model has a distinct reasoning rate, ``reasoning_tokens`` at that rate and the other
  ``output_tokens - reasoning_tokens`` at the output rate; else all ``output_tokens`` at the output
  rate (reasoning tokens are never charged twice);
- plus a fixed price per request, for the few table models that have one.

Each part is ``tokens × rate / 1,000,000``; the sum is exact (``CallCost.exact_cost``), and
``CallCost.cost`` is that sum rounded to the nearest 1e-9 dollar (half to even) as a float. A call
with no price for its model is unpriced (``cost`` None, ``priced`` False, and ``source`` saying
why), never free; so is a call that uses a kind of token its model has no rate for.

>>> from datetime import UTC, date, datetime
>>> book = PriceBook({"acme-llm": [{"valid_from": date(2026, 1, 1), "input": 1, "output": 2}]})
>>> call = book.cost(provider=None, model="acme-llm", at=datetime(2026, 2, 1, tzinfo=UTC),
...                  input_tokens=1000, output_tokens=500)
>>> call.cost, call.source
(0.002, 'steward.yaml (valid from 2026-01-01)')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from functools import cache
from typing import TYPE_CHECKING, Any

from steward.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = [
    "PRICE_KEYS",
    "CallCost",
    "PriceBook",
    "PricePeriod",
    "Rates",
    "parse_price_overrides",
    "price_book",
]

#: The prices an entry of steward.yaml's ``prices:`` may give, in US dollars per million tokens.
PRICE_KEYS = ("input", "cached_input", "cache_write", "output", "reasoning")
_ENTRY_KEYS = ("valid_from", *PRICE_KEYS)
_MILLION = Decimal(1_000_000)
_NANO_DOLLAR = Decimal("1e-9")
# Wide enough that tokens × rate and their sum never round (10^12 tokens at 28-digit rates).
_EXACT = Context(prec=60)
_ADVICE = "add it under prices: in steward.yaml"
_MAX_ALIASES = 10_000


@dataclass(frozen=True)
class Rates:
    """Prices in US dollars per million tokens, as they apply to one call.

    ``None`` means the source gives no such price: cached and cache-write tokens are then charged at
    the input rate, reasoning tokens at the output rate; a missing input or output rate leaves a
    call that uses such tokens unpriced. ``per_request`` is in dollars per call.
    """

    input: Decimal | None
    output: Decimal | None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    per_request: Decimal | None = None


@dataclass(frozen=True)
class PricePeriod:
    """One entry of steward.yaml's ``prices:``: rates valid from ``valid_from`` (UTC) on."""

    valid_from: datetime
    #: ``valid_from`` as written (a date stays a date), for ``CallCost.source``.
    label: str
    rates: Rates


@dataclass(frozen=True)
class CallCost:
    """What one call cost, where the price came from, and what each kind of token cost.

    ``cost`` is in US dollars rounded to 1e-9, or None when the call is unpriced (``priced`` False;
    ``source`` then says why). ``breakdown`` has the dollars for ``input`` (uncached), ``cache_read``,
    ``cache_write``, ``output`` and, when the model has a distinct reasoning rate, ``reasoning``
    (``output`` then excludes the reasoning tokens), and ``requests`` for a per-request price.
    ``rates`` are the rates applied (per million tokens; after the defaults above).
    """

    cost: float | None
    priced: bool
    source: str
    breakdown: dict[str, float] = field(default_factory=dict)
    #: The exact sum; ``cost`` is this rounded to 1e-9 dollar.
    exact_cost: Decimal | None = None
    rates: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (``exact_cost`` as decimal text)."""
        return {
            "cost": self.cost,
            "priced": self.priced,
            "source": self.source,
            "breakdown": dict(self.breakdown),
            "exact_cost": None if self.exact_cost is None else str(self.exact_cost),
            "rates": dict(self.rates),
        }


def _unpriced(reason: str) -> CallCost:
    return CallCost(cost=None, priced=False, source=f"unpriced: {reason}")


# ---------------------------------------------------------------------------------------------
# steward.yaml's prices:


def parse_price_overrides(
    overrides: Mapping[str, Any] | None,
) -> dict[str, tuple[PricePeriod, ...]]:
    """Check steward.yaml's ``prices:`` mapping and return each model's dated rates, oldest first.

    Raises ConfigError naming the model, the entry's index, the key and the value at fault.

    >>> periods = parse_price_overrides({"m": [{"valid_from": "2026-01-01", "input": 1, "output": 2}]})
    >>> periods["m"][0].rates.output
    Decimal('2')
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(
            f"prices: expected a mapping of model name to a list of dated prices, got "
            f"{type(overrides).__name__} {overrides!r}; e.g. prices: {{acme-llm: [{{valid_from: "
            "2026-01-01, input: 0.4, output: 1.6}]}"
        )
    parsed: dict[str, tuple[PricePeriod, ...]] = {}
    for model, entries in overrides.items():
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"prices: model name {model!r} must be a non-empty text")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(
                f"prices: model {model!r}: expected a non-empty list of dated prices, got "
                f"{entries!r}; write e.g. [{{valid_from: 2026-01-01, input: 0.4, output: 1.6}}]"
            )
        periods = tuple(_parse_entry(model, index, entry) for index, entry in enumerate(entries))
        _check_order(model, periods)
        parsed[model] = periods
    return parsed


def _entry_error(model: str, index: int, message: str) -> ConfigError:
    return ConfigError(f"prices: model {model!r}, entry {index}: {message}")


def _parse_entry(model: str, index: int, entry: Any) -> PricePeriod:
    if not isinstance(entry, Mapping):
        raise _entry_error(
            model,
            index,
            f"expected a mapping such as {{valid_from: 2026-01-01, input: 0.4, "
            f"output: 1.6}}, got {entry!r}",
        )
    for key, value in entry.items():
        if key not in _ENTRY_KEYS:
            raise _entry_error(
                model,
                index,
                f"unknown key {key!r} (value {value!r}); the keys are {', '.join(_ENTRY_KEYS)}",
            )
    for key in ("valid_from", "input", "output"):
        if key not in entry or entry[key] is None:
            raise _entry_error(
                model,
                index,
                f"{key} is missing; each entry needs valid_from, input and output "
                "(input and output in US dollars per million tokens)",
            )
    valid_from, label = _parse_valid_from(model, index, entry["valid_from"])
    prices = {key: _parse_price(model, index, key, entry.get(key)) for key in PRICE_KEYS}
    return PricePeriod(valid_from=valid_from, label=label, rates=Rates(**prices))


def _parse_valid_from(model: str, index: int, value: Any) -> tuple[datetime, str]:
    moment: date | None = value if isinstance(value, date) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        raise _entry_error(
            model,
            index,
            f"valid_from {value!r} is not a date; write e.g. 2026-11-15 or 2026-11-15T09:00:00Z",
        )
    if isinstance(moment, datetime):
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return aware, aware.isoformat()
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC), moment.isoformat()


def _parse_price(model: str, index: int, key: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    number: Decimal | None = None
    if isinstance(value, int | float | Decimal | str) and not isinstance(value, bool):
        try:
            # A float goes through its shortest text, so 0.15 is 0.15 and not 0.1499999....
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise _entry_error(
            model,
            index,
            f"{key} {value!r} is not a number; give US dollars per million tokens, e.g. 0.15",
        )
    if number < 0:
        raise _entry_error(
            model,
            index,
            f"{key} {value!r} is negative; prices are US dollars per million tokens, 0 or more",
        )
    return number


def _check_order(model: str, periods: tuple[PricePeriod, ...]) -> None:
    for index in range(1, len(periods)):
        before, this = periods[index - 1], periods[index]
        if this.valid_from == before.valid_from:
            raise _entry_error(
                model,
                index,
                f"valid_from {this.label} repeats entry {index - 1}'s; give each "
                "date once (the later entry replaces the earlier one from its date on)",
            )
        if this.valid_from < before.valid_from:
            raise _entry_error(
                model,
                index,
                f"valid_from {this.label} comes before entry {index - 1}'s "
                f"valid_from {before.label}; list the entries oldest first",
            )


# ---------------------------------------------------------------------------------------------
# The genai-prices table


@cache
def _table() -> tuple[DataSnapshot, str]:
    """The table shipped in the genai-prices wheel, and its label ("genai-prices 0.2.3").

    Built from ``genai_prices.data`` rather than through ``calc_price`` so that a table an
    ``UpdatePrices`` updater fetched (which genai-prices then uses process-wide) is never read.
    """
    import genai_prices
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False), (
        f"genai-prices {genai_prices.__version__}"
    )


def _table_rate(price: ModelPrice, key: str, input_tokens: int) -> Decimal | None:
    from genai_prices.types import TieredPrices

    value = getattr(price, key, None)
    if isinstance(value, TieredPrices):
        # genai-prices' tiers are cliffs on the call's whole input: past a threshold, every token
        # pays that tier's rate. Tiers are kept sorted by threshold.
        rate = value.base
        for tier in value.tiers:
            if input_tokens > tier.start:
                rate = tier.price
        return rate
    return value


def _table_rates(model: ModelInfo, at: datetime, input_tokens: int) -> Rates:
    price = model.get_prices(at)
    per_thousand_requests = _table_rate(price, "requests_kcount", input_tokens)
    return Rates(
        input=_table_rate(price, "input_mtok", input_tokens),
        output=_table_rate(price, "output_mtok", input_tokens),
        cached_input=_table_rate(price, "cache_read_mtok", input_tokens),
        cache_write=_table_rate(price, "cache_write_mtok", input_tokens),
        reasoning=_table_rate(price, "output_reasoning_mtok", input_tokens),
        per_request=None if per_thousand_requests is None else per_thousand_requests / 1000,
    )


# ---------------------------------------------------------------------------------------------
# The arithmetic


@dataclass(frozen=True)
class _Usage:
    input_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    output_tokens: int
    reasoning_tokens: int

    @property
    def uncached_input(self) -> int:
        return self.input_tokens - self.cache_read_tokens - self.cache_creation_tokens


def _charge(rates: Rates, usage: _Usage) -> tuple[dict[str, Decimal], dict[str, Decimal]] | str:
    """The dollars per kind of token and the rates applied, or the name of a missing rate."""
    applied = {
        "input": rates.input,
        "cached_input": rates.cached_input if rates.cached_input is not None else rates.input,
        "cache_write": rates.cache_write if rates.cache_write is not None else rates.input,
        "output": rates.output,
        "reasoning": rates.reasoning if rates.reasoning is not None else rates.output,
    }
    split_reasoning = rates.reasoning is not None
    output_tokens = usage.output_tokens - (usage.reasoning_tokens if split_reasoning else 0)
    counts = [
        ("input", usage.uncached_input, "input"),
        ("cache_read", usage.cache_read_tokens, "cached_input"),
        ("cache_write", usage.cache_creation_tokens, "cache_write"),
        ("output", output_tokens, "output"),
    ]
    if split_reasoning:
        counts.append(("reasoning", usage.reasoning_tokens, "reasoning"))
    parts: dict[str, Decimal] = {}
    with localcontext(_EXACT):
        for part, tokens, rate_key in counts:
            rate = applied[rate_key]
            if rate is None and tokens > 0:
                return rate_key
            parts[part] = Decimal(0) if rate is None else Decimal(tokens) * rate / _MILLION
        if rates.per_request:
            parts["requests"] = rates.per_request
            applied["per_request"] = rates.per_request
    return parts, {key: rate for key, rate in applied.items() if rate is not None}


def _dollars(amount: Decimal) -> float:
    return float(amount.quantize(_NANO_DOLLAR, rounding=ROUND_HALF_EVEN))


# ---------------------------------------------------------------------------------------------
# The book


class PriceBook:
    """Prices LLM calls from steward.yaml's ``prices:`` and the shipped genai-prices table.

    ``overrides`` is steward.yaml's ``prices:`` mapping (see the module docstring); it is checked
    here and a mistake raises ConfigError.

    >>> from datetime import UTC, datetime
    >>> call = PriceBook().cost(provider="openai", model="no-such-model",
    ...                         at=datetime(2026, 12, 1, tzinfo=UTC), input_tokens=10, output_tokens=5)
    >>> call.cost, call.priced
    (None, False)
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.overrides = parse_price_overrides(overrides)
        # (provider, model) -> the steward.yaml name genai-prices matches it to; None: none does.
        self._aliases: dict[tuple[str | None, str], str | tuple[str, ...] | None] = {}

    def cost(
        self,
        *,
        provider: str | None,
        model: str,
        at: datetime,
        input_tokens: int,
        cache_read_tokens: int = 0,
        cache_creation_tokens: int = 0,
        output_tokens: int,
        reasoning_tokens: int = 0,
    ) -> CallCost:
        """What a call of ``model`` at ``at`` cost, for its token counts (see the module docstring).

        ``input_tokens`` include the cached ones and ``output_tokens`` the reasoning ones. A
        ``provider`` of None lets genai-prices find the provider from the model name. A naive
        ``at`` is taken as UTC. Raises InvalidInputError for counts that cannot be.
        """
        usage = _check_usage(
            model,
            input_tokens=input_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_creation_tokens=cache_creation_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
        )
        moment = _check_moment(at)
        provider = provider or None
        found = self._rates(provider, model, moment, usage.input_tokens)
        if isinstance(found, CallCost):
            return found
        rates, source = found
        charged = _charge(rates, usage)
        if isinstance(charged, str):
            return _unpriced(
                f"{source} has no {charged.replace('_', ' ')} price for model {model}; {_ADVICE}"
            )
        parts, applied = charged
        with localcontext(_EXACT):
            total = sum(parts.values(), Decimal(0))
        return CallCost(
            cost=_dollars(total),
            priced=True,
            source=source,
            breakdown={part: _dollars(amount) for part, amount in parts.items()},
            exact_cost=total,
            rates={key: float(rate) for key, rate in applied.items()},
        )

    def _rates(
        self, provider: str | None, model: str, at: datetime, input_tokens: int
    ) -> tuple[Rates, str] | CallCost:
        """The rates for the call and their source, or the unpriced CallCost saying why not."""
        name = model if model in self.overrides else self._alias(provider, model)
        if isinstance(name, tuple):
            return _unpriced(
                f"steward.yaml prices {' and '.join(map(repr, name))} are all the same model to "
                f"genai-prices, so which one prices model {model} is unclear; keep one of them, "
                f"or add an entry for {model!r} itself"
            )
        periods = self.overrides.get(name) if name is not None else None
        if periods and at >= periods[0].valid_from:
            period = next(p for p in reversed(periods) if p.valid_from <= at)
            return period.rates, f"steward.yaml (valid from {period.label})"
        snapshot, label = _table()
        found = _find(snapshot, provider, model)
        if found is not None:
            table_provider, info = found
            rates = _table_rates(info, at, input_tokens)
            return rates, f"{label} (provider {table_provider.id}, model {info.id})"
        if periods:
            return _unpriced(
                f"no price for provider {_named(provider)} model {model} before "
                f"{periods[0].label}, the first date of its steward.yaml prices"
            )
        return _unpriced(f"no price for provider {_named(provider)} model {model}; {_ADVICE}")

    def _alias(self, provider: str | None, model: str) -> str | tuple[str, ...] | None:
        """The steward.yaml model name genai-prices takes to be the same model as ``model``.

        None when there is none, and all of them when several are (the caller refuses to choose).
        """
        key = (provider, model)
        if key not in self._aliases:
            if len(self._aliases) >= _MAX_ALIASES:  # a bound, whatever names callers send
                self._aliases.clear()
            self._aliases[key] = None
            snapshot, _ = _table()
            found = _find(snapshot, provider, model) if self.overrides else None
            if found is not None:
                same = tuple(
                    sorted(
                        name
                        for name in self.overrides
                        if (other := _find(snapshot, provider, name)) is not None
                        and other[1] is found[1]
                    )
                )
                self._aliases[key] = same[0] if len(same) == 1 else (same or None)
        return self._aliases[key]


def _find(
    snapshot: DataSnapshot, provider: str | None, model: str
) -> tuple[Provider, ModelInfo] | None:
    try:
        return snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        return None


def _named(provider: str | None) -> str:
    return provider if provider else "(none given)"


def _check_moment(at: Any) -> datetime:
    if not isinstance(at, datetime):
        raise InvalidInputError(
            f"the call's time {at!r} is not a datetime; give e.g. datetime.now(timezone.utc)"
        )
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _check_usage(model: Any, **counts: Any) -> _Usage:
    if not isinstance(model, str) or not model.strip():
        raise InvalidInputError(f"model {model!r} is not a model name; give the model called")
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(
                f"{name} {value!r} for model {model!r} is not a token count; give a whole number, "
                "0 or more"
            )
    usage = _Usage(**counts)
    if usage.uncached_input < 0:
        raise InvalidInputError(
            f"cache_read_tokens ({usage.cache_read_tokens}) + cache_creation_tokens "
            f"({usage.cache_creation_tokens}) exceed input_tokens ({usage.input_tokens}) for model "
            f"{model!r}: input_tokens count the cached tokens too (as OpenAI's prompt_tokens do), "
            "so report the whole prompt there"
        )
    if usage.reasoning_tokens > usage.output_tokens:
        raise InvalidInputError(
            f"reasoning_tokens ({usage.reasoning_tokens}) exceed output_tokens "
            f"({usage.output_tokens}) for model {model!r}: output_tokens count the reasoning "
            "tokens too (as OpenAI's completion_tokens do)"
        )
    return usage


def price_book(declared: Any) -> PriceBook:
    """A system's prices: the shipped table, with its ``prices:`` from steward.yaml (a
    ``SystemConfig``) overriding and extending it."""
    overrides = {
        model: [entry.model_dump(exclude_none=True) for entry in entries]
        for model, entries in declared.prices.items()
    }
    return PriceBook(overrides or None)

"""``steward llm calls|cost``: the LLM calls a system made, and what they cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from rich.markup import escape
from rich.table import Table

from steward._util.times import parse_window
from steward.cli.main import cell, console, get_steward
from steward.errors import InvalidInputError
from steward.llm.usage import GROUPINGS, summarize

__all__ = ["llm_calls", "llm_cost", "llm_group"]


@click.group("llm")
def llm_group() -> None:
    """Calls to LLMs: tokens, latency, errors and cost."""


def _window(since: str) -> tuple[datetime, datetime]:
    try:
        span = parse_window(since)
    except ValueError as error:
        raise InvalidInputError(f"--since {since!r}: {error}") from None
    end = datetime.now(UTC) + timedelta(seconds=1)
    return end - span, end


@llm_group.command("calls")
@click.argument("system")
@click.option("--since", default="1d", show_default=True, help="How far back, e.g. 1h, 7d.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The calls as JSON lines.")
@click.pass_context
def llm_calls(ctx: click.Context, system: str, since: str, limit: int, as_json: bool) -> None:
    """The newest calls of SYSTEM: prompt version, model, tokens, cost, latency, outcome."""
    steward = get_steward(ctx)
    steward.system(system)
    start, end = _window(since)
    rows = steward.events.scan("llm_call", system, start=start, end=end).to_pylist()[::-1][:limit]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    table = Table("time", "prompt", "model", "in", "cached", "out", "cost $", "ms", "finish")
    for row in rows:
        prompt = f"{row['prompt']} v{row['prompt_version']}" if row["prompt"] else "–"
        cost = "unpriced" if not row["priced"] else f"{row['cost']:.6f}"
        finish = row["error"] or ", ".join(json.loads(row["finish_reasons"] or "[]"))
        table.add_row(
            f"{row['event_time']:%Y-%m-%d %H:%M:%S}",
            escape(prompt),
            escape(row["response_model"] or row["request_model"] or "–"),
            cell(row["input_tokens"]),
            cell(row["cache_read_tokens"]),
            cell(row["output_tokens"]),
            cost,
            "–" if row["latency_ms"] is None else f"{row['latency_ms']:.0f}",
            escape(finish),
        )
    console.print(table)


@llm_group.command("cost")
@click.argument("system")
@click.option("--since", default="30d", show_default=True, help="How far back, e.g. 7d.")
@click.option("--by", type=click.Choice(GROUPINGS), default="day", show_default=True)
@click.pass_context
def llm_cost(ctx: click.Context, system: str, since: str, by: str) -> None:
    """Calls, tokens and cost of SYSTEM by day, prompt version or model; unpriced calls apart."""
    steward = get_steward(ctx)
    steward.system(system)
    start, end = _window(since)
    rows = summarize(steward.events.scan("llm_call", system, start=start, end=end), by)  # type: ignore[arg-type]
    table = Table(by, "calls", "input tok", "output tok", "cost $", "$/call", "unpriced", "p95 ms")
    for row in rows:
        per_call = row.cost_per_call
        table.add_row(
            escape(row.group),
            str(row.calls),
            str(row.input_tokens),
            str(row.output_tokens),
            f"{row.cost:.4f}",
            "–" if per_call is None else f"{per_call:.6f}",
            f"[yellow]{row.unpriced}[/]" if row.unpriced else "0",
            "–" if row.latency_p95_ms is None else f"{row.latency_p95_ms:.0f}",
        )
    console.print(table)
    unpriced = sum(row.unpriced for row in rows)
    if unpriced:
        console.print(
            f"[yellow]{unpriced} call(s) have no price[/] and are not in the cost; add their "
            "model under prices: in steward.yaml"
        )

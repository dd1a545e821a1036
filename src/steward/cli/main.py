"""The ``steward`` command: a thin shell over ``steward.Steward``.

Global options come from the settings table (``steward.settings.SETTINGS``). A mistake the user can fix
(a ``StewardError``) prints one line and exits 1; only a bug shows a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from steward.core import Steward
from steward.errors import InvalidInputError, StewardError
from steward.settings import SETTINGS

if TYPE_CHECKING:
    import pandas as pd

    from steward.data.drift import DriftReport

__all__ = ["cli", "main"]

# Piped output (CI logs, `| less`) gets a wide table rather than rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(click.Group):
    """A group that turns Steward's domain errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StewardError as error:
            error_console.print(f"[bold red]error:[/] {error}", markup=True)
            sys.exit(1)


def _setting_options(function: Any) -> Any:
    for setting in reversed(SETTINGS):
        function = click.option(
            setting.option,
            setting.name,
            default=None,
            envvar=None,
            show_envvar=False,
            help=f"{setting.help} [env: {setting.env_var}]",
        )(function)
    return function


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@_setting_options
@click.version_option(package_name="steward")
@click.pass_context
def cli(ctx: click.Context, **overrides: Any) -> None:
    """Steward: keep a deployed model trustworthy, from its data to its decisions."""
    ctx.obj = _Lazy(overrides)
    ctx.call_on_close(ctx.obj.close)


class _Lazy:
    """Opens the workspace on first use, so ``--help`` never touches a database."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._steward: Steward | None = None

    @property
    def steward(self) -> Steward:
        if self._steward is None:
            self._steward = Steward.open(**self.overrides)
        return self._steward

    def close(self) -> None:
        if self._steward is not None:
            self._steward.close()


def get_steward(ctx: click.Context) -> Steward:
    lazy: _Lazy = ctx.find_object(_Lazy)  # type: ignore[assignment]
    return lazy.steward


# Workspace


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create a commented steward.yaml and the .steward/ store in the workspace."""
    steward = get_steward(ctx)
    made = steward.init()
    for path in made:
        console.print(f"created {path}")
    if not made:
        console.print(f"{steward.settings.workspace} is already a Steward workspace")
    console.print("next: edit steward.yaml, then run `steward apply`")


@cli.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.pass_context
def apply(ctx: click.Context, file: Path | None) -> None:
    """Load steward.yaml (or FILE) into the store and say what changed."""
    changes = get_steward(ctx).apply(file)
    for change in changes:
        if change.kind == "changed":
            details = ", ".join(
                f"{key}: {old!r} -> {new!r}"
                for key, (old, new) in change.fields.items()
                if key != "config"
            )
            if "config" in change.fields:
                details = ", ".join(filter(None, [details, "card/contract/policy changed"]))
            console.print(f"[yellow]changed[/]   {change.name}: {details}")
        elif change.kind == "created":
            console.print(f"[green]created[/]   {change.name}")
        elif change.kind == "not-in-file":
            console.print(f"[dim]kept[/]      {change.name} (in the store, not in the file)")
        else:
            console.print(f"[dim]unchanged[/] {change.name}")
        if change.contract:
            console.print(f"[cyan]contract[/]  {change.name}: {change.contract}")


@cli.group()
def systems() -> None:
    """The systems Steward looks after."""


@systems.command("list")
@click.pass_context
def systems_list(ctx: click.Context) -> None:
    """List systems with their task, owner and risk tier."""
    table = Table("system", "task", "owner", "risk tier", "intended use")
    for info in get_steward(ctx).systems():
        table.add_row(info.name, info.task, info.owner, info.risk_tier, info.intended_use[:60])
    console.print(table)


# Registry


@cli.group()
def models() -> None:
    """Register model versions, move aliases, compare versions, render model cards."""


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--{what} expects NAME=VALUE, got {item!r}")
        try:
            pairs[key] = json.loads(raw)
        except json.JSONDecodeError:
            pairs[key] = raw
    return pairs


@models.command("register")
@click.argument("artifact")
@click.option("--system", required=True, help="The system this model serves.")
@click.option(
    "--flavor",
    type=click.Choice(["sklearn", "sklearn-pickle", "onnx", "python"]),
    help="Detected from the file suffix when left out.",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load a pickle, or skops types outside "
    "scikit-learn/numpy/scipy; only for files whose author you trust.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Training data (CSV or Parquet): fingerprinted, a sample kept as reference.",
)
@click.option("--param", multiple=True, help="NAME=VALUE, repeatable.")
@click.option("--metric", multiple=True, help="NAME=VALUE, repeatable.")
@click.option("--description", default="", help="One line on what this version is.")
@click.option("--alias", help="Also point this alias at the new version.")
@click.pass_context
def models_register(
    ctx: click.Context,
    artifact: str,
    system: str,
    flavor: str | None,
    trust: bool,
    data: Path | None,
    param: tuple[str, ...],
    metric: tuple[str, ...],
    description: str,
    alias: str | None,
) -> None:
    """Register ARTIFACT (a .skops/.joblib/.onnx file or module:function) as a new version."""
    steward = get_steward(ctx)
    registration = steward.register_model(
        artifact,
        system=system,
        flavor=flavor,
        trust=trust,
        data=data,
        params=_pairs(param, "param"),
        metrics=_pairs(metric, "metric"),
        description=description,
    )
    version = registration.version
    if registration.created:
        console.print(
            f"registered {system} v{version.version} "
            f"({version.flavor}, sha256:{version.artifact_sha256[:12]})"
        )
    else:
        console.print(
            f"already registered: this artifact is {system} v{version.version} "
            f"(sha256:{version.artifact_sha256[:12]}); nothing new was created"
        )
    if alias:
        change = steward.move_alias(system, alias, version.version, reason="set at registration")
        console.print(_describe_move(change))


@models.command("list")
@click.argument("system")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_list(ctx: click.Context, system: str, output_format: str) -> None:
    """List the versions of SYSTEM with their aliases."""
    versions = get_steward(ctx).versions(system)
    if output_format == "json":
        click.echo(json.dumps([version.to_dict() for version in versions], indent=2, default=str))
        return
    table = Table("version", "aliases", "flavor", "registered", "by", "metrics")
    for version in versions:
        metrics = ", ".join(f"{key}={value}" for key, value in version.metrics.items())
        table.add_row(
            str(version.version),
            ", ".join(version.aliases),
            version.flavor,
            version.registered_at.strftime("%Y-%m-%d %H:%M"),
            version.registered_by,
            metrics,
        )
    console.print(table)


@models.command("show")
@click.argument("system")
@click.argument("version")
@click.pass_context
def models_show(ctx: click.Context, system: str, version: str) -> None:
    """Everything recorded about one VERSION (a number or an alias), as JSON."""
    click.echo(
        json.dumps(get_steward(ctx).version(system, version).to_dict(), indent=2, default=str)
    )


@models.command("alias")
@click.argument("system")
@click.argument("alias")
@click.argument("version")
@click.option("--reason", default="", help="Why; kept in the alias history.")
@click.pass_context
def models_alias(ctx: click.Context, system: str, alias: str, version: str, reason: str) -> None:
    """Point ALIAS of SYSTEM at VERSION ('none' removes it)."""
    target = None if version.lower() == "none" else version
    console.print(_describe_move(get_steward(ctx).move_alias(system, alias, target, reason)))


@models.command("history")
@click.argument("system")
@click.option("--alias", help="Only this alias.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_history(ctx: click.Context, system: str, alias: str | None, output_format: str) -> None:
    """The timeline of alias moves of SYSTEM: who, when, from, to and why."""
    moves = get_steward(ctx).history(system, alias)
    if output_format == "json":
        click.echo(json.dumps([move.to_dict() for move in moves], indent=2))
        return
    table = Table("when (UTC)", "alias", "action", "from", "to", "by", "reason")
    for move in moves:
        table.add_row(
            move.moved_at.strftime("%Y-%m-%d %H:%M:%S"),
            move.alias,
            move.action,
            _v(move.from_version),
            _v(move.to_version),
            move.moved_by,
            move.reason,
        )
    console.print(table)


@models.command("diff")
@click.argument("system")
@click.argument("a")
@click.argument("b")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged rows too.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_diff(
    ctx: click.Context, system: str, a: str, b: str, show_all: bool, output_format: str
) -> None:
    """What changed between versions A and B: params, metrics, data, schema, code, libraries."""
    rows = get_steward(ctx).diff(system, a, b)
    if output_format == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "section": row.section,
                        "key": row.key,
                        "a": row.a,
                        "b": row.b,
                        "changed": row.changed,
                    }
                    for row in rows
                ],
                indent=2,
                default=str,
            )
        )
        return
    table = Table("section", "key", f"{a}", f"{b}")
    for row in rows:
        if row.changed:
            table.add_row(row.section, row.key, _cell(row.a), _cell(row.b), style="bold yellow")
        elif show_all:
            table.add_row(row.section, row.key, _cell(row.a), _cell(row.b), style="dim")
    console.print(table)
    n_changed = sum(row.changed for row in rows)
    console.print(
        f"{n_changed} of {len(rows)} fields differ"
        + ("" if show_all else " (--all shows the rest)")
    )


@models.command("card")
@click.argument("system")
@click.argument("version", default="champion")
@click.option(
    "--format", "output_format", type=click.Choice(["markdown", "html"]), default="markdown"
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@click.option(
    "--card-file",
    type=click.Path(path_type=Path),
    help="YAML with the card's narrative fields; wins over steward.yaml.",
)
@click.pass_context
def models_card(
    ctx: click.Context,
    system: str,
    version: str,
    output_format: str,
    output: Path | None,
    card_file: Path | None,
) -> None:
    """Render the model card of VERSION (default: champion) as Markdown or HTML."""
    card = get_steward(ctx).card(system, version, card_file)
    text = card.to_html() if output_format == "html" else card.to_markdown()
    if output is None:
        click.echo(text)
        return
    output.write_text(text)
    console.print(f"wrote {output}")
    if card.missing:
        console.print(f"[yellow]missing narrative:[/] {', '.join(card.missing)}")


@cli.command()
@click.argument("system")
@click.option("--reason", default="", help="Why; kept in the alias history.")
@click.option("--alias", default="champion", show_default=True)
@click.pass_context
def rollback(ctx: click.Context, system: str, reason: str, alias: str) -> None:
    """Move champion of SYSTEM back to the version that held it before."""
    change = get_steward(ctx).rollback(system, reason, alias)
    console.print(f"rolled back {system} {alias}: v{change.from_version} -> v{change.to_version}")


@cli.command()
@click.option("--seed", default=0, show_default=True, help="Changes the data, so the figures.")
@click.option(
    "--customers-per-week",
    default=400,
    show_default=True,
    type=click.IntRange(100, 5000),
    help="Customers scored in each simulated week.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Keep serving the API and dashboard after the story (until Ctrl-C).",
)
@click.option("--port", default=8000, show_default=True, help="Port to serve on (busy: any free).")
@click.pass_context
def demo(ctx: click.Context, seed: int, customers_per_week: int, serve: bool, port: int) -> None:
    """Tell the churn story on the shipped Telco data in a fresh workspace (default: here).

    Trains and serves v1, replays twelve simulated weeks with a product launch in week seven, and
    lets the loop detect, retrain, shadow and (after a named person approves) promote v2.
    """
    from steward.demo import Narrator, run_demo

    lazy: _Lazy = ctx.find_object(_Lazy)  # type: ignore[assignment]
    overrides = {key: value for key, value in lazy.overrides.items() if key != "workspace"}
    workspace = Path(lazy.overrides.get("workspace") or ".").resolve()
    run = run_demo(
        workspace,
        seed=seed,
        customers_per_week=customers_per_week,
        narrator=Narrator(console),
        port=port,
        overrides=overrides,
    )
    console.print(
        "next: `steward alerts list`, `steward models history churn`, "
        "`steward report churn --week`, `steward models diff churn 1 2`"
    )
    if not serve:
        run.close()
        return
    console.print(f"dashboard and API at {run.url}/ (OpenAPI: {run.url}/docs); Ctrl-C to stop")
    run.serve_forever()


# Contracts


@cli.group()
def contract() -> None:
    """Data contracts: draft one from training data, check a batch, compare two versions."""


@contract.command("infer")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--name", help="The system the contract is for.")
@click.option(
    "--max-categories",
    default=50,
    show_default=True,
    help="Text columns with at most this many values become categories.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
def contract_infer(data: Path, name: str | None, max_categories: int, output: Path | None) -> None:
    """Draft a contract from DATA (CSV or Parquet), ready to paste under a system's `contract:`."""
    from steward.data.contracts import infer_contract, read_table

    drafted = infer_contract(read_table(data), max_categories=max_categories, name=name)
    text = yaml.safe_dump({"contract": drafted.to_dict()}, sort_keys=False, allow_unicode=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}: {len(drafted.columns)} columns")


@contract.command("check")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--system", help="Check against this system's newest contract in the store.")
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(path_type=Path),
    help="Check against a contract file instead.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def contract_check(
    ctx: click.Context,
    data: Path,
    system: str | None,
    contract_file: Path | None,
    output_format: str,
) -> None:
    """Validate every row of DATA; list each violation with column, rule, count and first row.

    Exits 1 when a rule whose action is `reject` is broken.
    """
    from steward.data.contracts import check_batch, read_contract, read_table

    checked = _pick_contract(ctx, system, contract_file, read_contract)
    report = check_batch(checked, read_table(data))
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        table = Table("column", "rule", "action", "rows", "first row", "example", "expected")
        for violation in report.violations:
            table.add_row(
                violation.column,
                violation.rule,
                violation.action,
                str(violation.count),
                _cell(violation.first_row),
                _cell(violation.example),
                violation.expected,
            )
        if report.violations:
            console.print(table)
        console.print(report.summary())
    if report.n_rejected:
        sys.exit(1)


def _pick_contract(
    ctx: click.Context, system: str | None, contract_file: Path | None, read_contract: Any
) -> Any:
    if (system is None) == (contract_file is None):
        raise InvalidInputError("give exactly one of --system NAME or --contract FILE")
    if contract_file is not None:
        return read_contract(contract_file)
    from steward.workspace.systems import get_contract

    found = get_contract(get_steward(ctx).store, str(system))
    if found is None:
        raise InvalidInputError(
            f"system {system!r} declares no contract; add `contract:` to it "
            "in steward.yaml (draft one with `steward contract infer`)"
        )
    return found


@contract.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def contract_diff(old: Path, new: Path, output_format: str) -> None:
    """Classify every change from contract file OLD to NEW as breaking or compatible.

    Exits 1 when a change is breaking, so CI can stop it.
    """
    from steward.data.contracts import diff_contracts, read_contract

    result = diff_contracts(read_contract(old), read_contract(new))
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for change in result.changes:
            mark = "[red]breaking[/]  " if change.breaking else "[green]compatible[/]"
            console.print(f"{mark} {change.description}")
        console.print(result.summary())
    if result.breaking:
        sys.exit(1)


# Drift


def _column_names(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter(f"expects column names separated by commas, got {value!r}")
    return names


@cli.command("drift")
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@click.option("--exact", is_flag=True, help="Compare the raw rows instead of binned profiles.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="html is a self-contained page with a plot per column.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@click.option(
    "--columns",
    callback=_column_names,
    help="Compare only these, e.g. age,plan (default: every numeric, boolean or text column).",
)
@click.option(
    "--categorical", callback=_column_names, help="Numeric columns to compare as categories."
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level, after the Benjamini-Hochberg correction.",
)
def drift_command(
    reference: Path,
    current: Path,
    exact: bool,
    output_format: str,
    output: Path | None,
    columns: list[str] | None,
    categorical: list[str] | None,
    alpha: float,
) -> None:
    """Compare CURRENT with REFERENCE (CSV or Parquet) column by column; needs no workspace.

    By default both files are summarized as binned profiles (bins fitted on REFERENCE) and compared
    as a monitor compares stored windows; --exact compares the raw rows. A column alarms when a change
    is significant and larger than its floor. Exits 0 when no column alarms, 1 when one does (or on
    an error, printed as one line), 2 on a usage error.
    """
    from steward.data.drift import compare
    from steward.data.profiles import DatasetProfile, compare_profiles, fit_binnings
    from steward.model.lineage import read_table

    frames = {"REFERENCE": read_table(reference), "CURRENT": read_table(current)}
    _check_drift_columns(frames["REFERENCE"], [*(columns or []), *(categorical or [])], reference)
    if exact:
        _check_drift_columns(frames["CURRENT"], columns or [], current)
        report = compare(
            frames["REFERENCE"],
            frames["CURRENT"],
            columns=columns,
            categorical=categorical,
            alpha=alpha,
        )
    else:
        binnings = fit_binnings(frames["REFERENCE"], columns, categorical=categorical or ())
        _check_drift_columns(frames["CURRENT"], list(binnings), current)
        windows = [DatasetProfile.from_frame(frame, binnings) for frame in frames.values()]
        report = compare_profiles(*windows, alpha=alpha)
    _write_drift_report(report, "exact" if exact else "profile", output_format, output)
    if report.alarmed:
        sys.exit(1)


def _check_drift_columns(frame: pd.DataFrame, names: list[str], path: Path) -> None:
    missing = [name for name in dict.fromkeys(names) if name not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"column(s) {missing} are not in {str(path)!r} (it has {list(frame.columns)[:20]}); "
            "check the names, or leave them out with --columns"
        )


def _write_drift_report(
    report: DriftReport, mode: str, output_format: str, output: Path | None
) -> None:
    if output_format == "json":
        found = report.to_dict()
        text = json.dumps({"alarm": found["alarm"], "mode": mode, **found}, indent=2)
    elif output_format == "html":
        text = report.to_html()
    else:
        how = (
            "raw rows"
            if mode == "exact"
            else "binned profiles; each threshold is the floor plus the statistic's error bound"
        )
        text = f"{report.to_text()}mode: {mode} ({how})"
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(
            f"cannot write the report to {str(output)!r} ({error.strerror}); check the folder"
        ) from None
    click.echo(f"{report.to_text().splitlines()[0]}; mode: {mode}; wrote {output}")


# Serving


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the prediction API (and OpenAPI at /openapi.json) for every system of the workspace."""
    import uvicorn

    from steward.web import create_app

    steward = get_steward(ctx)
    steward.systems()  # fail here, in one line, if the store is unreachable
    console.print(
        f"serving {steward.settings.workspace} on http://{host}:{port} "
        f"(OpenAPI: http://{host}:{port}/docs)"
    )
    uvicorn.run(create_app(steward), host=host, port=port, log_level="warning")


@cli.group()
def monitor() -> None:
    """Run the monitors over a window of the prediction log, and read their stored results."""


@monitor.command("run")
@click.option("--system", help="Only this system (default: every system).")
@click.option(
    "--window", help="e.g. 24h, 7d, 2w (default: the system's monitors.window, 7d unless declared)."
)
@click.option("--at", "at_text", help="End of the window, ISO 8601 (default: now).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def monitor_run(
    ctx: click.Context,
    system: str | None,
    window: str | None,
    at_text: str | None,
    output_format: str,
) -> None:
    """Run one tick of the loop: monitors, SLOs, alerts, notifications, playbooks; exit 1 on a breach."""
    from steward._util.times import parse_window
    from steward.loop.tick import tick

    steward = get_steward(ctx)
    at = parse_time(at_text) if at_text else None
    span = parse_window(window) if window else None
    names = [system] if system else None
    if system:
        steward.system(system)  # an unknown system is one clear line, not a failed tick
    report = tick(steward, steward.events, at, names, window=span, force_monitors=True)
    results = report.checks()
    if output_format == "json":
        click.echo(json.dumps([result.to_dict() for result in results], indent=2, default=str))
    else:
        table = Table("system", "monitor", "window (UTC)", "status", "summary")
        for result in results:
            style = {"breach": "bold red", "ok": "green"}.get(result.status, "yellow")
            table.add_row(
                result.system,
                result.monitor,
                f"{result.window_start:%Y-%m-%d %H:%M} to {result.window_end:%Y-%m-%d %H:%M}",
                f"[{style}]{result.status}[/]",
                result.summary,
            )
        console.print(table)
        for alert in report.fired:
            console.print(f"[bold red]fired[/]    alert {alert.id} ({alert.severity}) {alert.rule}")
        for alert in report.resolved:
            console.print(f"[green]resolved[/] alert {alert.id} {alert.rule}")
        for action in report.actions:
            console.print(
                f"action   {getattr(action, 'kind', action)}: {getattr(action, 'status', '')}"
            )
    for problem in report.errors:
        error_console.print(f"[yellow]warning:[/] {problem}", markup=True)
    if report.breach:
        sys.exit(1)


@monitor.command("history")
@click.argument("system")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def monitor_history_command(ctx: click.Context, system: str, limit: int) -> None:
    """Stored monitor results of SYSTEM, newest first."""
    from steward.monitoring.runner import monitor_history

    table = Table("window end (UTC)", "monitor", "status", "summary")
    for result in monitor_history(get_steward(ctx), system, limit):
        table.add_row(
            f"{result.window_end:%Y-%m-%d %H:%M}", result.monitor, result.status, result.summary
        )
    console.print(table)


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"--at {text!r} is not an ISO 8601 time; e.g. 2026-03-03T00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
@click.pass_context
def retention(ctx: click.Context) -> None:
    """Delete logged events older than the retention_days setting (whole days, oldest first)."""
    from steward._util.times import retention_cutoff

    steward = get_steward(ctx)
    settings = steward.settings
    cutoff = retention_cutoff(settings.retention_days)
    removed = steward.events.delete_before(cutoff)
    console.print(
        f"removed {removed} day partition(s) dated before {cutoff:%Y-%m-%d} "
        f"(retention_days = {settings.retention_days})"
    )


# Governance


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Recompute the audit log's hash chain; exit 1 if an entry was edited or removed."""
    check = get_steward(ctx).verify_audit()
    if check.ok:
        console.print(f"audit log intact: {check.n_entries} entries")
        return
    error_console.print(
        f"[bold red]audit log broken[/] at entry {check.first_bad_id}: {check.reason}"
    )
    sys.exit(1)


@cli.command("settings")
@click.pass_context
def settings_command(ctx: click.Context) -> None:
    """Show every setting's value and where it can be set."""
    resolved = get_steward(ctx).settings
    table = Table("setting", "value", "environment variable")
    for setting in SETTINGS:
        table.add_row(setting.name, str(getattr(resolved, setting.name)), setting.env_var)
    console.print(table)


def _describe_move(change: Any) -> str:
    return f"{change.system} {change.alias}: {_v(change.from_version)} -> {_v(change.to_version)}"


def _v(version: int | None) -> str:
    return "–" if version is None else f"v{version}"


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def main() -> None:
    cli(prog_name="steward")

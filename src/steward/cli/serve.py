"""``steward serve`` (the prediction API and dashboard) and ``steward retention``."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

import click

from steward.cli.main import console, error_console, get_steward
from steward.errors import InvalidInputError

__all__ = ["bind_socket", "is_loopback", "retention", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name clients use to reach the server (repeatable); others get 400. "
    "Default: the allowed_hosts setting, else localhost, 127.0.0.1, ::1 and --host.",
)
@click.option(
    "--insecure-local",
    is_flag=True,
    help="No sign-in: every caller acts as you, with the admin role. Loopback --host only.",
)
@click.option(
    "--grpc-port",
    type=int,
    default=None,
    help="Also serve the Open Inference Protocol over gRPC on this port (0: any free one), "
    "with the same tokens and roles as HTTP. Needs the grpc extra: pip install 'steward[grpc]'.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    insecure_local: bool,
    grpc_port: int | None,
) -> None:
    """Serve the prediction API and the dashboard (OpenAPI at /docs) for every system.

    Every route but health, metrics and the API description needs a credential: an API token
    (`steward tokens create`) or the browser session a login link opens. The server prints a
    login link for you at start; `steward login-link` makes more.
    """
    import uvicorn

    from steward.governance.access import Role, ensure_identity, login_link
    from steward.web import create_app
    from steward.web.auth import DEFAULT_HOSTS

    if insecure_local and not is_loopback(host):
        raise InvalidInputError(
            f"--insecure-local serves without sign-in, so only on a loopback address, not "
            f"{host!r}; drop the flag (callers then need tokens) or pass --host 127.0.0.1"
        )
    steward = get_steward(ctx)
    steward.systems()  # fail here, in one line, if the store is unreachable
    hosts = set(allowed_hosts or steward.settings.allowed_hosts or DEFAULT_HOSTS)
    if not allowed_hosts and not steward.settings.allowed_hosts and host not in {"0.0.0.0", "::"}:
        hosts.add(host)
    listening = bind_socket(host, port)  # before saying "serving": a busy port is one clear line
    if grpc_port is not None:
        grpc_port = _grpc_port(host, grpc_port)
    bound = listening.getsockname()[1]
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    address = f"http://{f'[{shown}]' if ':' in shown else shown}:{bound}"
    console.print(f"serving {steward.settings.workspace} on {address} (OpenAPI: {address}/docs)")
    if grpc_port is not None:
        target = f"{f'[{shown}]' if ':' in shown else shown}:{grpc_port}"
        console.print(f"Open Inference Protocol over gRPC on {target}")
    if insecure_local:
        console.print(
            f"[bold yellow]no sign-in[/]: every caller acts as {steward.actor!r} with the admin "
            "role (--insecure-local)"
        )
    else:
        me = ensure_identity(steward, steward.actor, Role.ADMIN)
        link = login_link(steward, me.name)
        console.print(
            f"dashboard: {address}/ui/login?token={link.secret}  (signs you in as {me.name!r}; "
            "one use, 15 minutes; `steward login-link` makes another)",
            soft_wrap=True,
        )
    app = create_app(steward, insecure_local=insecure_local, allowed_hosts=sorted(hosts))
    if grpc_port is not None:
        from steward.web.grpc.server import serve_grpc

        serve_grpc(app, host, grpc_port)  # started and stopped with the app's lifespan
    config = uvicorn.Config(app, host=host, port=bound, log_level="warning")
    uvicorn.Server(config).run(sockets=[listening])


def _grpc_port(host: str, port: int) -> int:
    """``port`` (a free one for 0) once it is known free and the grpc extra is installed."""
    try:
        import grpc  # noqa: F401
        from google import protobuf  # noqa: F401
    except ImportError:
        raise InvalidInputError(
            "--grpc-port needs grpcio and protobuf; install them with pip install "
            "'steward[grpc]', or drop --grpc-port"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:  # a busy port is one clear line, before serving anything
            probe.bind((host, port))
        except OSError as error:
            reason = (
                "is in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error})"
            )
            raise InvalidInputError(
                f"gRPC port {port} on {host} {reason}; pass --grpc-port with a free port, e.g. "
                f"--grpc-port {port + 1}, or 0 for any"
            ) from None
        return int(probe.getsockname()[1])


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use or an unknown host is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it, Nagle and delayed ACKs add ~40 ms a reply.
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as error:
        listening.close()
        reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error})"
        raise InvalidInputError(
            f"port {port} on {host} {reason}; pass --port with a free port, e.g. --port {port + 1}"
        ) from None
    listening.set_inheritable(True)
    return listening


@click.group(invoke_without_command=True)
@click.pass_context
def retention(ctx: click.Context) -> None:
    """Delete each system's logged events older than its retention_days (its own, else the
    workspace's setting), by whole UTC days, and its review decisions and retrain exports older
    than that; `steward retention verify` proves what remains."""
    if ctx.invoked_subcommand is not None:
        return
    from steward.workspace.retention import run_retention

    steward = get_steward(ctx)
    for run in run_retention(steward, steward.events):
        console.print(
            f"{run.system}: removed {run.removed} day partition(s) dated before "
            f"{run.cutoff:%Y-%m-%d}, {run.review_decisions} review decision(s) and "
            f"{run.exports} retrain export(s) (kept {run.days} days)"
        )


@retention.command("verify")
@click.pass_context
def retention_verify(ctx: click.Context) -> None:
    """Read every event (Parquet files and write-ahead segments), review decision and retrain
    export, and prove none is older than its system's cutoff; exits 1 naming each one that is."""
    from steward.workspace.retention import verify_retention

    steward = get_steward(ctx)
    check = verify_retention(steward, steward.events)
    for system, views in check.oldest.items():
        oldest = ", ".join(f"{view} {when[:10] if when else '–'}" for view, when in views.items())
        console.print(f"{system}: oldest kept: {oldest}")
    if check.ok:
        console.print("retention verified: nothing older than any system's cutoff remains")
        return
    for violation in check.violations:
        error_console.print(f"[red]past retention:[/] {violation}")
    sys.exit(1)

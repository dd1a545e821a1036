"""``steward serve`` (the prediction API and dashboard) and ``steward retention``."""

from __future__ import annotations

import errno
import socket

import click

from steward.cli.main import console, get_steward
from steward.errors import InvalidInputError

__all__ = ["bind_socket", "retention", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the prediction API (and OpenAPI at /openapi.json) for every system of the workspace."""
    import uvicorn

    from steward.web import create_app

    steward = get_steward(ctx)
    steward.systems()  # fail here, in one line, if the store is unreachable
    listening = bind_socket(host, port)  # before saying "serving": a busy port is one clear line
    bound = listening.getsockname()[1]
    console.print(
        f"serving {steward.settings.workspace} on http://{host}:{bound} "
        f"(OpenAPI: http://{host}:{bound}/docs)"
    )
    config = uvicorn.Config(create_app(steward), host=host, port=bound, log_level="warning")
    uvicorn.Server(config).run(sockets=[listening])


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


@click.command()
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

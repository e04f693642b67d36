"""``iqms serve``: the HTTP API, patients' ticket pages and waiting-room boards (uvicorn)."""

from __future__ import annotations

import logging
import socket
from typing import Annotated, Any

import typer

from iqms.commands._common import ExitCode, fail, info, run, settings_or_exit
from iqms.core import migrate
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import ConfigError


def _logging_config(settings: Settings, access_log: bool) -> dict[str, Any]:
    """Server lines and one line per request on stderr (in every worker process)."""
    configured = logging.getLevelName(settings.log_level.upper())
    level = configured if isinstance(configured, int) else logging.WARNING
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            # uvicorn's own access log would print query strings (board keys): ours does not.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "iqms": {"handlers": ["stderr"], "level": level, "propagate": False},
            "iqms.api.access": {
                "handlers": ["stderr"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
        },
    }


async def _check_database(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        await db.check()
        await migrate.require_current(db)
    finally:
        await db.dispose()


def _check_port(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}: {exc.strerror}", ExitCode.USAGE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror}")


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on (0.0.0.0 for every interface; keep 127.0.0.1 behind "
            "a reverse proxy).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, max=64, help="Server processes (about one per CPU core)."
        ),
    ] = 1,
    root_path: Annotated[
        str,
        typer.Option(
            "--root-path",
            help="Path prefix the reverse proxy serves IQMS under (e.g. /queue).",
        ),
    ] = "",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies trusted to say the client's address and https (X-Forwarded-For, "
            "X-Forwarded-Proto), comma-separated.",
        ),
    ] = "127.0.0.1",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log one line per request (no query strings, bodies or credentials).",
        ),
    ] = True,
) -> None:
    """Serve the HTTP API, patients' ticket pages and waiting-room boards until Ctrl-C."""
    settings = settings_or_exit()
    try:
        settings.signing_secret()  # created once here, not by several workers at once
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)
    run(lambda: _check_database(settings))
    root = root_path.strip().rstrip("/")
    if root and not root.startswith("/"):
        fail("--root-path must start with / (like /queue)", ExitCode.USAGE)
    _check_port(host, port)

    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    info(
        f"iqms serve: http://{shown}:{port}{root}/ (API docs at {root}/api/docs), "
        f"{workers} worker(s); Ctrl-C stops."
    )
    if not settings.public_url:
        info(
            "iqms serve: IQMS_PUBLIC_URL is not set, so tickets carry no status-page link "
            "(set it to this server's public https:// address)."
        )
    uvicorn.run(
        "iqms.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        root_path=root,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=False,
        log_config=_logging_config(settings, access_log),
        server_header=False,
        timeout_graceful_shutdown=5,
    )

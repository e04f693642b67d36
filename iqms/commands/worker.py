"""``iqms worker``: the long-running notification sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from iqms.commands._common import ExitCode, fail, info, run, settings_or_exit
from iqms.core import migrate
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.notify.providers import enabled_channels
from iqms.core.notify.worker import NotificationWorker

log = logging.getLogger("iqms.notify.worker")


@contextlib.contextmanager
def _worker_logging(settings: Settings, quiet: bool) -> Iterator[None]:
    """Log the worker's lines to stderr while it runs; put the previous set-up back after."""
    configured = logging.getLevelName(settings.log_level.upper())
    level = logging.WARNING if quiet else logging.INFO
    if isinstance(configured, int):
        level = min(level, configured)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("iqms")
    # The provider SDKs log every HTTP request at INFO; keep one line per message.
    noisy = [logging.getLogger(n) for n in ("twilio", "urllib3", "google", "firebase_admin")]
    saved = (ours.level, ours.propagate, [n.level for n in noisy])
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False
    for logger in noisy:
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        for logger, old_level in zip(noisy, saved[2], strict=True):
            logger.setLevel(old_level)


def worker(
    once: Annotated[
        bool,
        typer.Option("--once", help="Send what is due now, then exit (for cron or a check)."),
    ] = False,
    poll: Annotated[
        float,
        typer.Option(
            "--poll", min=0.1, max=60.0, help="Seconds between looks at the outbox when idle."
        ),
    ] = 1.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log only problems, not every message.")
    ] = False,
) -> None:
    """Send patient messages (SMS, push) from the outbox until stopped with Ctrl-C."""
    settings = settings_or_exit()
    if not enabled_channels(settings):
        fail(
            "nothing to send with: IQMS_SMS_PROVIDER and IQMS_PUSH_PROVIDER are both 'none'",
            ExitCode.CONFIG,
        )

    async def go() -> int:
        db = Database.from_settings(settings)
        sender: NotificationWorker | None = None
        try:
            sender = NotificationWorker(db, settings)
            await db.check()
            await migrate.require_current(db)
            for warning in await sender.verify():
                log.warning(warning)
            if once:
                outcomes = await sender.run_until_idle()
                info(f"iqms worker: {len(outcomes)} message(s) handled.")
                return len(outcomes)
            return await _run_until_stopped(sender, poll)
        finally:
            if sender is not None:
                sender.close()
            await db.dispose()

    with _worker_logging(settings, quiet):
        run(go)


async def _run_until_stopped(sender: NotificationWorker, poll: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # asked twice: stop now
            return
        info("iqms worker: stopping after the message in flight (Ctrl-C again to force)")
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    info(f"iqms worker: sending {'; '.join(sender.describe())}. Ctrl-C stops.")
    try:
        handled = await sender.run(stop, poll_seconds=poll)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    info(f"iqms worker: stopped after {handled} message(s).")
    return handled

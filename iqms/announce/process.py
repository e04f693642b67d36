"""Running the speech and audio programs: quietly, with a time limit, never left behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Literal


class CommandProblem(Exception):
    """A program could not be run (``missing``, ``cannot_run``), hung (``timeout``) or failed.

    ``detail`` is the system's reason, or the first line the program wrote to
    stderr (its exit code if it wrote none).
    """

    def __init__(
        self, kind: Literal["missing", "cannot_run", "timeout", "failed"], detail: str = ""
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


async def run_quietly(args: Sequence[str], *, limit_seconds: float) -> None:
    """Run ``args`` with no input and no output kept but stderr; raise :class:`CommandProblem`.

    A program that outlives ``limit_seconds``, or whose caller is cancelled,
    is killed.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise CommandProblem("missing") from None
    except OSError as exc:
        raise CommandProblem("cannot_run", exc.strerror or str(exc)) from None
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise CommandProblem("timeout") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    if proc.returncode != 0:
        lines = (err or b"").decode("utf-8", "replace").strip().splitlines()
        raise CommandProblem("failed", lines[0] if lines else f"exit code {proc.returncode}")


__all__ = ["CommandProblem", "run_quietly"]

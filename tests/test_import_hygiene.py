"""The core knows nothing of its front ends: importing it pulls in no UI library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "textual",
    "typer",
    "rich",
    "escpos",
    "fastapi",
    "starlette",
    "uvicorn",
    "iqms.api",
    "iqms.tui",
    "iqms.kiosk",
    "iqms.cli",
    "iqms.commands",
    "iqms.announce",
)


def test_core_imports_no_front_end_library() -> None:
    code = (
        "import sys, pkgutil, importlib, iqms.core\n"
        "for m in pkgutil.walk_packages(iqms.core.__path__, 'iqms.core.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r} or n.startswith({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"iqms.core imported front-end modules: {out.stdout.strip()}"

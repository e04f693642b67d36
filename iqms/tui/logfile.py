"""Where a console writes its log: a file in the data directory, never the screen.

A console owns the terminal, so log records (warnings of a lost database, the
details of a bug) go to ``DATA_DIR/logs/<console>.log``, rotated at 1 MB.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from iqms.core.config import Settings

LOG_BYTES = 1_000_000
LOG_BACKUPS = 3


def log_to_file(settings: Settings, console: str) -> Path:
    """Send the ``iqms`` loggers to ``DATA_DIR/logs/<console>.log`` at ``IQMS_LOG_LEVEL``."""
    path = settings.data_dir / "logs" / f"{console}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("iqms")
    logger.addHandler(handler)
    level = logging.getLevelName(settings.log_level.upper())
    logger.setLevel(level if isinstance(level, int) else logging.WARNING)
    logger.propagate = False  # nothing reaches the terminal the console draws on
    return path


__all__ = ["log_to_file"]

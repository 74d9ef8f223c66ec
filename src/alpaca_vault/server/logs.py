"""Logging: stderr only (stdout is the stdio transport), every record redacted.

Redaction happens where records are born (a log record factory), not in one
handler, so it holds for every handler anyone attaches: ours, uvicorn's,
the SDK's, pytest's capture.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from alpaca_vault.server.redaction import scrub_text
from alpaca_vault.vault.exposure import exposed_values

# Libraries whose DEBUG output can include request headers or bodies.
_WIRE_LOGGERS = (
    "httpx2",
    "httpx",
    "httpcore",
    "httpcore2",
    "hpack",
    "aiosqlite",
    "sqlalchemy.engine",
    "alembic",
    "asyncio",
)
_HANDLER_MARK = "_alpaca_vault_handler"


def _scrub_record(record: logging.LogRecord) -> None:
    secrets = exposed_values()
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not take the server down
        message = f"{record.msg!r} (unformattable log arguments)"
    record.msg = scrub_text(message, secrets)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        # Render the traceback now, scrubbed, and drop the live exception objects
        # (their frames and arguments could be rendered unscrubbed later).
        record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info), secrets)
        record.exc_info = None
    if record.stack_info:
        record.stack_info = scrub_text(record.stack_info, secrets)


def install_record_scrubber() -> None:
    """Make every LogRecord created in this process scrub itself; idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_alpaca_vault_scrubber", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_record(record)
        return record

    factory._alpaca_vault_scrubber = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(level: str = "INFO") -> None:
    """Send logs to stderr through the scrubber; idempotent. Call before building the MCP server."""
    install_record_scrubber()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # Wire-level logs (every HTTP request, every SQL statement) stay at WARNING even when we run
    # at DEBUG: they are noise, and headers and parameters live there.
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))

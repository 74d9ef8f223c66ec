"""The last line of defence: scrub secrets from tool results and log records.

Secrets should never get near a result or a log line in the first place (the
result models have no secret fields, errors never carry values). This module
catches what slips through anyway:

* every value the vault unsealed during the current tool call, plus the
  secret arguments a caller sent (``store_credential``'s keys), is registered
  in a per-call scope (``vault.exposure``) and replaced wherever it appears;
* text shaped like an Alpaca key id, an Alpaca secret or a bearer token is
  masked in log records even when no scope is active.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

# Alpaca key ids are 20 upper-case alphanumerics starting PK (paper) or AK (live);
# secrets are 40 mixed-case alphanumerics. Masked in logs whatever their origin.
_ALPACA_KEY_ID = re.compile(r"\b[PA]K[A-Z0-9]{16,30}\b")
_LONG_SECRET = re.compile(r"\b[A-Za-z0-9]{40,}\b")  # no "/": file paths in tracebacks must survive
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}")
_HEADER_VALUE = re.compile(r"(?i)(apca-api-(?:key-id|secret-key)['\"]?\s*[:=,]\s*['\"]?)[^'\"\s,}]+")
_TOKEN = re.compile(r"\bav[tc]_[A-Za-z0-9_-]{20,}\b")  # agent (avt_) and console (avc_) tokens
# #12: a one-time link's secret part (key entry, order approval, console sign-in) is a capability: never
# in a log line, e.g. uvicorn's access log of the page request. Any 43-character run in a path under
# /connect/ or /sign-in/, however many plain segments come first (/connect/approve/<secret>).
_ONE_TIME_LINK = re.compile(r"(/(?:connect|sign-in)/(?:[a-z][a-z-]*/)*)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret, then every secret-shaped run, with ``[REDACTED]``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return scrub_patterns(text)


def scrub_patterns(text: str) -> str:
    """Mask values shaped like Alpaca keys, bearer tokens or auth headers."""
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _HEADER_VALUE.sub(r"\1" + REDACTED, text)
    text = _TOKEN.sub(REDACTED, text)
    text = _ONE_TIME_LINK.sub(r"\1" + REDACTED, text)
    text = _ALPACA_KEY_ID.sub(REDACTED, text)
    return _LONG_SECRET.sub(REDACTED, text)


def scrub_known(value: Any, secrets: frozenset[str]) -> Any:
    """Return ``value`` (str, list, dict, nested) with every known secret replaced.

    Only exact known secrets are replaced here: tool results carry order ids and
    other long identifiers that the pattern masks of ``scrub_patterns`` would
    mangle, and a result can only leak what was unsealed or sent in this call.
    """
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [scrub_known(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub_known(item, secrets) for item in value)
    if isinstance(value, dict):
        return {scrub_known(k, secrets): scrub_known(v, secrets) for k, v in value.items()}
    return value

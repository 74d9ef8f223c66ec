"""Redact secrets from third-party text, including pieces of them (issue #10, point 5).

Lives below every room (broker/ uses it on Alpaca's error messages, server/ on tool errors):
it knows nothing but strings.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"

# A run this long copied from a secret is treated as the secret: an upstream that echoes part of a
# key (or a message cut in the middle of one) must not hand the agent that part.
MIN_SECRET_RUN = 8


def redact_secret_runs(text: str, secrets: Iterable[str], *, min_run: int = MIN_SECRET_RUN) -> str:
    """Replace each secret, and every run of ``min_run`` or more characters taken from one, with ``[REDACTED]``.

    Linear in ``len(text)`` per secret: the secret's ``min_run``-grams are hashed once, and every text
    position that starts one marks ``min_run`` characters as covered; covered stretches collapse
    into one marker.
    """
    covered = bytearray(len(text))
    for secret in secrets:
        if len(secret) < min_run:
            if secret:
                start = text.find(secret)
                while start != -1:
                    covered[start : start + len(secret)] = b"\x01" * len(secret)
                    start = text.find(secret, start + 1)
            continue
        grams = {secret[i : i + min_run] for i in range(len(secret) - min_run + 1)}
        for i in range(len(text) - min_run + 1):
            if text[i : i + min_run] in grams:
                covered[i : i + min_run] = b"\x01" * min_run
    if not any(covered):
        return text
    parts: list[str] = []
    i = 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            parts.append(REDACTED)
        else:
            j = i
            while j < len(text) and not covered[j]:
                j += 1
            parts.append(text[i:j])
            i = j
    return "".join(parts)


def scrub_then_cut(text: str, secrets: Iterable[str], limit: int) -> str:
    """Redact first, then cut to ``limit`` characters: a cut must never leave the head of a secret behind."""
    cleaned = redact_secret_runs(text, secrets)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"

"""The HTTP/1.1 protocol uvicorn runs for us: httptools plus a header-read deadline (issue #10, point 3).

uvicorn has a keep-alive timeout (idle between requests) but no limit on how long a request's
*headers* may take to arrive, nor on their size with httptools: a client that trickles one header
byte every few seconds holds its connection (and a ``limit_concurrency`` slot) for as long as it
likes, and enough of them starve everyone else ("slowloris"). This subclass starts a deadline when
a connection opens and when each request's first byte arrives, cancels it when the headers are
complete, and closes the connection if it fires; header bytes beyond a bound close it at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT = 10.0
# Generous for real clients (a bearer token and a dozen headers are ~1 KiB); nginx's default is 8 KiB x 4.
MAX_HEADER_BYTES = 64 * 1024


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size bound on each request's headers."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._reading_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._cancel_header_deadline()
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_headers:  # the next request on a kept-alive connection
            self._start_header_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def _start_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._reading_headers = True
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        self._reading_headers = False
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(header_timeout: float, max_header_bytes: int = MAX_HEADER_BYTES) -> type:
    """A protocol class for ``uvicorn.Config(http=...)`` with these bounds (uvicorn takes a class)."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )

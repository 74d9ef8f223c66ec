"""The stdio transport on the event loop's own pipes.

The SDK's ``stdio_server()`` reads and writes through anyio's file wrappers,
which run every readline, write and flush on a worker thread: three thread
hops per tool call, about half a millisecond on a small machine. When stdin
and stdout are pipes or sockets (as every MCP client launches us), we serve
the same JSON-RPC lines through asyncio pipe transports instead: no threads.
Anything else (a terminal, a redirected file) falls back to the SDK's path.

Like the SDK, we keep the wire for ourselves while serving: fd 1 points at
stderr and fd 0 at the null device, so a stray ``print`` (ours or a
library's) cannot corrupt the JSON-RPC stream. Both are restored on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.stdio import stdio_server

# One JSON-RPC message per line; a longer line is answered as a parse error rather than buffered.
MAX_LINE_BYTES = 32 * 1024 * 1024


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Lines:
    """``async for line in ...`` over the reader, as the SDK's transport expects of stdin."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        try:
            line = await self._reader.readline()
        except ValueError:  # longer than MAX_LINE_BYTES: the SDK answers it as unparseable
            return "\n"
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Writer:
    """``write`` + ``flush`` as the SDK's transport expects of stdout; flush waits out back-pressure."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


@contextlib.contextmanager
def _claim_standard_streams() -> Any:
    """Duplicate fds 0/1 for the wire and point the originals at /dev/null and stderr."""
    wire_in = os.dup(0)
    wire_out = os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(devnull)
        with contextlib.suppress(OSError):
            os.dup2(saved_in, 0)
            os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


@contextlib.asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """(read stream, write stream) for ``Server.run``: native pipes when possible, else the SDK's."""
    if not (_is_pipe_or_socket(0) and _is_pipe_or_socket(1)):
        async with stdio_server() as streams:
            yield streams
        return
    loop = asyncio.get_running_loop()
    with _claim_standard_streams() as (wire_in, wire_out):
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
        )
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
        try:
            async with stdio_server(_Lines(reader), _Writer(writer)) as streams:  # type: ignore[arg-type]
                yield streams
        finally:
            read_transport.close()
            writer.close()  # flushes what is still buffered, then closes the pipe
            with contextlib.suppress(Exception):  # the client may be gone already
                await asyncio.wait_for(writer.wait_closed(), timeout=5)

"""The stdio transport on the event loop's own pipes.

The SDK's ``stdio_server()`` reads and writes through anyio's file wrappers,
which run every readline, write and flush on a worker thread: three thread
hops per tool call, about half a millisecond on a small machine. When stdin
and stdout are pipes or sockets (as every MCP client launches us), we serve
the same JSON-RPC lines through asyncio pipe transports instead: no threads.
A terminal takes the same path: there, the SDK's reader thread would sit in a
blocking read that Ctrl-C cannot end (the process hangs until Enter). Anything
else (a redirected file) and Windows fall back to the SDK's transport.

Like the SDK, we keep the wire for ourselves while serving: fd 1 points at
stderr and fd 0 at the null device, so a stray ``print`` (ours or a
library's) cannot corrupt the JSON-RPC stream. On exit both are restored,
blocking again, after Python's own stdout buffer has gone to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

logger = logging.getLogger("alpaca_vault.server.stdio")

# One JSON-RPC message per line. A longer line is dropped (and logged), like any line that is not
# JSON-RPC: the SDK answers neither, so the client's request times out instead of the server
# buffering without bound.
MAX_LINE_BYTES = 32 * 1024 * 1024
# How long closing waits for the last answers to leave the pipe when the client reads slowly.
FLUSH_ON_CLOSE_SECONDS = 5.0


async def serve_stdio(server: MCPServer[Any]) -> None:
    """What ``MCPServer.run_stdio_async`` does, on :func:`stdio_streams`."""
    lowlevel: Server[Any] = server._lowlevel_server  # the SDK has no public accessor for it
    async with stdio_streams() as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


@contextlib.asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """(read stream, write stream) for ``Server.run``: native pipes when possible, else the SDK's."""
    if sys.platform == "win32" or not (_is_stream(0) and _is_stream(1)):
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
            await _flushed(write_transport)
            write_transport.close()


async def _flushed(transport: asyncio.WriteTransport) -> None:
    """Wait (bounded) until the transport has handed everything buffered to the pipe."""
    deadline = asyncio.get_running_loop().time() + FLUSH_ON_CLOSE_SECONDS
    while transport.get_write_buffer_size() and not transport.is_closing():
        if asyncio.get_running_loop().time() > deadline:
            logger.warning("The client did not read the last answers within %.0f s", FLUSH_ON_CLOSE_SECONDS)
            return
        await asyncio.sleep(0.01)


def _is_stream(fd: int) -> bool:
    """A pipe, a socket or a terminal: what an asyncio pipe transport can serve (not a regular file)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


class _Lines:
    """``async for line in ...`` over the reader, as the SDK's transport expects of stdin."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as eof:
                if not eof.partial:
                    raise StopAsyncIteration from None
                line = eof.partial  # a last message without its newline
            except asyncio.LimitOverrunError:
                await self._skip_rest_of_line()
                logger.warning("Dropped a message longer than %d bytes", MAX_LINE_BYTES)
                continue
            return line.decode("utf-8", errors="replace")

    async def _skip_rest_of_line(self) -> None:
        """Discard input up to and including the next newline, however it arrives in chunks."""
        while True:
            try:
                try:
                    await self._reader.readuntil(b"\n")
                    return
                except asyncio.LimitOverrunError as overrun:
                    await self._reader.readexactly(overrun.consumed)  # what is buffered so far
            except asyncio.IncompleteReadError:  # the client closed stdin mid-line
                return


class _Writer:
    """``write`` + ``flush`` as the SDK's transport expects of stdout; flush waits out back-pressure."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def _dup_above_std(fd: int) -> int:
    """A close-on-exec copy of ``fd`` numbered 3 or above, so it can never be confused with 0, 1 or 2."""
    import fcntl  # POSIX only, like this whole path

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


@contextlib.contextmanager
def _claim_standard_streams() -> Iterator[tuple[int, int]]:
    """Copies of fds 0/1 for the wire; meanwhile fd 0 reads /dev/null and fd 1 writes to stderr.

    The asyncio transports make the pipes non-blocking, a flag the pipes share with
    whoever else holds them (a wrapper script, a shell): it is put back on exit.
    """
    blocking = os.get_blocking(0), os.get_blocking(1)
    saved_in, saved_out = _dup_above_std(0), _dup_above_std(1)
    wire_in, wire_out = _dup_above_std(0), _dup_above_std(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(devnull)
        # Whatever a stray print left in Python's buffer goes to stderr, not onto the restored wire.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(OSError):
            os.dup2(saved_in, 0)
        with contextlib.suppress(OSError):
            os.dup2(saved_out, 1)
        for fd, was_blocking in zip((0, 1), blocking, strict=True):
            with contextlib.suppress(OSError):
                os.set_blocking(fd, was_blocking)
        os.close(saved_in)
        os.close(saved_out)

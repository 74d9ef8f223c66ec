"""server/stdio.py: the stdio transport on the event loop's own pipes, and its fallback.

A tiny MCPServer (no vault, no broker) is served through ``stdio_streams()`` in a
subprocess, so these tests pin the transport alone: what reaches stdout, what a
stray print does, an oversized line, and stdin/stdout that are files, not pipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.server.test_stdio import _rpc

SERVER_SCRIPT = """
import logging
import os
import sys
import anyio
from mcp.server.mcpserver import MCPServer
from alpaca_vault.server import stdio

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

stdio.MAX_LINE_BYTES = 4096  # small, so a test can overrun it cheaply
server = MCPServer("transport-test")

@server.tool()
async def shout(text: str) -> str:
    print("STRAY-PRINT-FROM-A-TOOL", text)  # must land on stderr, not on the wire
    return text.upper()

anyio.run(stdio.serve_stdio, server)
print("AFTER-SERVING blocking:", os.get_blocking(0), os.get_blocking(1), file=sys.stderr)
"""


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "transport_server.py"
    path.write_text(SERVER_SCRIPT)
    return path


def _message(request_id: int | None, method: str, params: dict[str, Any] | None = None) -> bytes:
    return _rpc(request_id, method, params).encode()


HANDSHAKE = _message(
    0,
    "initialize",
    {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
) + _message(None, "notifications/initialized")


def _call(request_id: int, text: str) -> bytes:
    return _message(request_id, "tools/call", {"name": "shout", "arguments": {"text": text}})


def _read_until(stdout: Any, request_id: int, seen: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Read JSON-RPC lines until the answer to ``request_id`` (the server exits at EOF on stdin,
    cancelling what is in flight, so a test keeps stdin open until it has its answers)."""
    while request_id not in seen:
        line = stdout.readline()
        assert line, "the server closed stdout early"
        message = json.loads(line)  # every stdout line is a JSON-RPC message, nothing else
        assert message["jsonrpc"] == "2.0"
        if "id" in message:
            seen[message["id"]] = message
    return seen[request_id]


async def test_sdk_client_over_pipes(server_script: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(server_script)])
    async with Client(params) as client:
        for text in ("one", "two", "x" * 2000):
            result = await client.call_tool("shout", {"text": text})
            assert not result.is_error
            assert result.content[0].text == text.upper()  # type: ignore[union-attr]


def _serve(server_script: Path) -> subprocess.Popen[bytes]:
    # Without PYTHONUNBUFFERED a stray print sits in Python's stdout buffer until exit: the hard case.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.Popen(
        [sys.executable, str(server_script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _close_and_wait(process: subprocess.Popen[bytes]) -> None:
    """EOF on its stdin, then its exit; one that does not exit is killed (a test never leaves one behind)."""
    assert process.stdin
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_stray_prints_go_to_stderr_an_oversized_line_is_dropped_and_the_pipes_end_blocking(
    server_script: Path,
) -> None:
    """One server process over pipes for what the transport does while serving and on its way out (a
    process costs a second and a half of imports): a stray print, buffered until exit, lands on stderr;
    a line over the limit, arriving in pieces, is dropped whole and serving goes on; the pipes are
    handed back blocking."""
    process = _serve(server_script)
    assert process.stdin and process.stdout and process.stderr
    seen: dict[int, dict[str, Any]] = {}
    oversized = _call(2, '{"jsonrpc": "2.0", "id": 99} ' + "y" * 20000)  # 5x the 4096-byte limit
    process.stdin.write(HANDSHAKE + _call(1, "before"))
    process.stdin.flush()
    try:
        assert _read_until(process.stdout, 1, seen)["result"]["content"][0]["text"] == "BEFORE"
        for start in range(0, len(oversized), 3000):  # in pieces, as a pipe delivers a long line
            process.stdin.write(oversized[start : start + 3000])
            process.stdin.flush()
            time.sleep(0.01)
        process.stdin.write(_call(3, "after"))
        process.stdin.flush()
        assert _read_until(process.stdout, 3, seen)["result"]["content"][0]["text"] == "AFTER"
    finally:
        _close_and_wait(process)
    assert process.returncode == 0
    assert 2 not in seen and 99 not in seen  # no piece of it was taken for a message
    rest = process.stdout.read()
    for line in rest.splitlines():
        json.loads(line)  # anything left on stdout is JSON-RPC
    assert b"STRAY-PRINT-FROM-A-TOOL" not in rest
    stderr = process.stderr.read()
    assert b"STRAY-PRINT-FROM-A-TOOL before" in stderr and b"STRAY-PRINT-FROM-A-TOOL after" in stderr
    assert b"Dropped a message longer than 4096 bytes" in stderr
    # asyncio made the pipes non-blocking; whoever else holds them must get them back as they were
    assert b"AFTER-SERVING blocking: True True" in stderr


def test_stdout_to_a_file_uses_the_sdk_transport(server_script: Path, tmp_path: Path) -> None:
    """A regular file cannot take an asyncio pipe transport: the SDK's threaded transport serves it."""
    answers = tmp_path / "answers.jsonl"
    with answers.open("wb") as stdout:
        process = subprocess.Popen([sys.executable, str(server_script)], stdin=subprocess.PIPE, stdout=stdout)
        assert process.stdin
        process.stdin.write(HANDSHAKE + _call(1, "into a file"))
        process.stdin.flush()
        try:
            with answers.open("rb") as reader:
                seen: dict[int, dict[str, Any]] = {}
                answer = _read_until(_Follow(reader), 1, seen)
        finally:
            _close_and_wait(process)
    assert answer["result"]["content"][0]["text"] == "INTO A FILE"


class _Follow:
    """``readline`` on a file another process is still writing: waits for each complete line."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def readline(self) -> bytes:
        deadline = time.monotonic() + 30
        pending = b""
        while time.monotonic() < deadline:
            pending += self._reader.readline()
            if pending.endswith(b"\n"):
                return pending
            time.sleep(0.02)
        return b""

"""Ready-to-paste connections for what `serve` is running right now: MCP Inspector, curl, mcp.json.

Printed on stderr by server/runner.py, and only what works in the running mode: an HTTP server
gets an Inspector command, a curl line and an mcp.json entry carrying its token; a stdio server
(which a client starts itself) gets the Inspector command and the mcp.json entry that start it.
Tests run these lines exactly as printed.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence

# Pinned to the major version: unpinned, npx on an older Node fetches an old Inspector (0.15 on Node 20)
# that cannot pass these arguments to a URL server.
INSPECTOR = "npx @modelcontextprotocol/inspector@2"
# The Inspector's current major version runs on this Node or newer (its package.json "engines").
INSPECTOR_NODE = "22.19"
PROTOCOL_VERSION = "2025-06-18"


def _initialize_request() -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "curl", "version": "0"},
            },
        },
        separators=(",", ":"),
    )


def http_connection(url: str, token: str, *, server_name: str = "alpaca-vault") -> list[str]:
    """Lines for an HTTP endpoint and a bearer token that opens it."""
    header = f"Authorization: Bearer {token}"
    inspector = f"{INSPECTOR} --cli {url} --transport http --header {shlex.quote(header)} --method tools/list"
    curl = " ".join(
        [
            "curl -sS",
            url,
            "-H",
            shlex.quote(header),
            "-H",
            shlex.quote("Content-Type: application/json"),
            "-H",
            shlex.quote("Accept: application/json, text/event-stream"),
            "-d",
            shlex.quote(_initialize_request()),
        ]
    )
    entry = {
        "mcpServers": {
            server_name: {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}
        }
    }
    return [
        f"  MCP Inspector (Node {INSPECTOR_NODE} or newer):",
        f"    {inspector}",
        "  curl (the MCP handshake; the answer names the server):",
        f"    {curl}",
        "  mcp.json entry (Cursor, Claude Code, VS Code):",
        f"    {json.dumps(entry)}",
    ]


def stdio_connection(
    command: str, args: Sequence[str], *, server_name: str = "alpaca-vault", env_names: Sequence[str] = ()
) -> list[str]:
    """Lines for a client that starts ``command args`` itself (stdio: nothing to curl)."""
    env = {name: os.environ[name] for name in env_names if os.environ.get(name)}
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # Options first, then `--` and the server's own command line, which the Inspector passes on unchanged.
    options = [f"-e {k}={shlex.quote(v)}" for k, v in env.items()] + ["--method tools/list"]
    inspector = f"{INSPECTOR} --cli {' '.join(options)} -- {shlex.join([command, *args])}"
    entry: dict[str, object] = {"command": command, "args": list(args)}
    if env:
        entry["env"] = env
    lines = [
        f"  MCP Inspector (Node {INSPECTOR_NODE} or newer; it starts its own copy of this server):",
        f"    {inspector}",
        "  mcp.json entry (Claude Desktop, Cursor, Claude Code):",
        f"    {json.dumps({'mcpServers': {server_name: entry}})}",
    ]
    if prefix:
        lines.insert(0, f"  (the same settings as this run: {prefix})")
    return lines

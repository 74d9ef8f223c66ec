"""What a model pays to know our tools: the tool count and the tools/list payload, ours against the peer's.

    python bench/tools_economy.py [--peer PATH_TO_alpaca-mcp-server] [--no-peer]

Both servers are started over stdio exactly as a client would (initialize, then tools/list), and the
same measure is taken of each answer: the bytes of what a model sees of every tool, its name,
description and input schema, as compact JSON (UTF-8). The whole listing (titles, annotations, output
schemas) is printed too, for reference. The peer is `alpaca-mcp-server` 2.4.0 from PyPI, in a virtual
environment of its own: --peer names its executable; otherwise bench/.peer-venv (as bench/tool_latency.py
installs it) or /tmp/peer is used when present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PEER_CANDIDATES = (
    ROOT / "bench" / ".peer-venv" / "bin" / "alpaca-mcp-server",
    Path("/tmp/peer/bin/alpaca-mcp-server"),
)
TARGET_RATIO = 0.60
TARGET_COUNT = 48


def list_tools(command: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """The tools/list answer of a stdio MCP server (first page; both servers answer in one)."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "b", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    ]
    payload = "".join(json.dumps(m) + "\n" for m in messages).encode()
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdin and process.stdout
    try:
        process.stdin.write(payload)
        process.stdin.flush()
        while line := process.stdout.readline():
            message = json.loads(line)
            if message.get("id") == 1:
                if "error" in message:
                    raise RuntimeError(f"{command[0]}: tools/list failed: {message['error']}")
                tools: list[dict[str, Any]] = message["result"]["tools"]
                if message["result"].get("nextCursor"):
                    print(f"  note: {command[0]} paginates tools/list; only the first page is measured")
                return tools
        raise RuntimeError(f"{command[0]} exited without answering tools/list")
    finally:
        process.kill()
        process.wait()


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def model_view(tools: list[dict[str, Any]]) -> int:
    """Bytes of what a model sees: name, description and input schema of every tool."""
    return compact([{k: t.get(k) for k in ("name", "description", "inputSchema")} for t in tools])


def report(label: str, tools: list[dict[str, Any]]) -> int:
    seen = model_view(tools)
    annotated = sum(1 for t in tools if t.get("annotations"))
    print(f"{label}: {len(tools)} tools ({annotated} annotated); model-visible payload {seen:,} bytes "
          f"(whole listing {compact(tools):,} bytes); mean {seen // max(len(tools), 1):,} bytes a tool")  # fmt: skip
    return seen


def ours() -> list[dict[str, Any]]:
    from alpaca_vault.vault.keyring import generate_key

    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
        env.update(
            {
                "ALPACA_VAULT_DATA_DIR": data_dir,
                "ALPACA_VAULT_ENCRYPTION_KEYS": generate_key(),
            }
        )
        return list_tools([str(BIN / "alpaca-vault"), "serve"], env)


def peer(path: str | None) -> list[dict[str, Any]] | None:
    exe = Path(path) if path else next((p for p in PEER_CANDIDATES if p.exists()), None)
    if exe is None or not exe.exists():
        print("peer: alpaca-mcp-server not found (install it in its own venv: python3 -m venv /tmp/peer && "
              "/tmp/peer/bin/pip install alpaca-mcp-server==2.4.0, or run bench/tool_latency.py once)")  # fmt: skip
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    env.update(
        {
            "ALPACA_API_KEY": "PKECONOMY00000000001",
            "ALPACA_SECRET_KEY": "economy-secret-000000000000000000000000",
        }
    )
    return list_tools([str(exe)], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", help="path of the peer's alpaca-mcp-server executable")
    parser.add_argument("--no-peer", action="store_true", help="measure ours only")
    args = parser.parse_args()
    mine = ours()
    seen = report("alpaca-vault", mine)
    print(
        f"  tool count {len(mine)} (target <= {TARGET_COUNT}): {'ok' if len(mine) <= TARGET_COUNT else 'OVER'}"
    )
    if args.no_peer:
        return
    theirs = peer(args.peer)
    if theirs is None:
        return
    their_seen = report("alpaca-mcp-server 2.4.0", theirs)
    ratio = seen / their_seen
    print(f"  ratio ours/peer (model-visible payload): {ratio:.2f} (target <= {TARGET_RATIO:.2f}): "
          f"{'ok' if ratio <= TARGET_RATIO else 'OVER'}")  # fmt: skip
    print(f"  ratio ours/peer (tool count): {len(mine) / len(theirs):.2f}")


if __name__ == "__main__":
    main()

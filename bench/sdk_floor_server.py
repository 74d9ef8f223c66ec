"""The floor under alpaca_get_account over stdio: the MCP SDK, the broker call and the result, nothing else.

Run by bench/tool_latency.py as a stdio subprocess next to `alpaca-vault serve`. It has the
same tool name, output schema, result and transport as the real server, but no vault (the
keys come from BENCH_KEY_ID / BENCH_SECRET in its environment), no middleware, no runtime.
The real server's latency minus this one's is what alpaca-vault itself adds; this one's
minus the raw broker call is what the SDK and the stdio round trip cost.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import SecretStr

from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys
from alpaca_vault.server.stdio import serve_stdio
from alpaca_vault.tools.account import AccountResult
from alpaca_vault.tools.results import respond
from alpaca_vault.tools.schemas import compact_schema

URL = os.environ["ALPACA_VAULT_PAPER_URL"]
KEYS = AlpacaKeys(
    SecretStr(os.environ["BENCH_KEY_ID"]), SecretStr(os.environ["BENCH_SECRET"]), "paper", "bench"
)


@asynccontextmanager
async def lifespan(_: MCPServer[AlpacaClient]) -> AsyncIterator[AlpacaClient]:
    async with AlpacaClient(
        paper_url=URL, live_url=URL, data_url=URL, rate_limit_per_minute=10_000
    ) as broker:
        yield broker


server: MCPServer[AlpacaClient] = MCPServer("sdk-floor", lifespan=lifespan, log_level="WARNING")


@server.tool()
async def alpaca_get_account(ctx: Context[Any, Any]) -> Annotated[CallToolResult, AccountResult]:
    account = await ctx.request_context.lifespan_context.get_account(KEYS)
    return respond(AccountResult(credential="bench", account=account), f"Account {account.account_number}.")


for tool in server._tool_manager.list_tools():  # the same published schema as the real tool
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema)

if __name__ == "__main__":
    anyio.run(serve_stdio, server)

"""The real HTTP server for multi-user tests: `build_http_app` under uvicorn on a loopback thread.

``serve_http`` (``server.runner.serve_http_in_thread``) binds a free loopback
port first (Host/Origin checks need the real port), runs exactly the app
`alpaca-vault serve --transport http` runs, with its lifespan, and yields the
``/mcp`` URL. ``connect`` opens the SDK's
``Client`` over Streamable HTTP with an ``Authorization: Bearer`` header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

from alpaca_vault.broker.transport import verified_tls_context
from alpaca_vault.server.runner import serve_http_in_thread
from alpaca_vault.server.settings import Settings
from alpaca_vault.vault.keyring import generate_key


def http_settings(data_dir: Path, database_url: str, simulator_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "encryption_keys": generate_key(),
        "paper_url": simulator_url,
        "live_url": simulator_url,
        "data_url": simulator_url,
        "http_timeout": 5.0,
        "log_level": "WARNING",  # a test that wants more asks for it
        "allow_secrets_in_arguments": True,  # keys as arguments here; tests/console covers the page
    }
    values.update(overrides)
    return Settings(**values)


def serve_http(
    settings: Settings, *, stateless: bool = False, gate_hooks: Any = None
) -> AbstractContextManager[str]:
    return serve_http_in_thread(settings, stateless=stateless, gate_hooks=gate_hooks)


def mcp_http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    """The HTTP client the SDK's ``create_mcp_http_client`` makes (its timeouts, no redirects), with
    the process's one verified TLS context: httpx loads the CA bundle afresh for each client
    (~50 ms of CPU), and a load test connects ten of them."""
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT),
        verify=verified_tls_context(),
    )


@asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        mcp_http_client({"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), raise_exceptions=False) as client,
    ):
        yield client

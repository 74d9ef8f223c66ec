"""The real HTTP server for multi-user tests: `build_http_app` under uvicorn on a loopback thread.

``serve_http`` binds a free loopback port first (Host/Origin checks need the
real port), runs exactly the app `alpaca-vault serve --transport http` runs,
with its lifespan, and yields the ``/mcp`` URL. ``connect`` opens the SDK's
``Client`` over Streamable HTTP with an ``Authorization: Bearer`` header.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from alpaca_vault.server.runner import HTTP_KEEP_ALIVE_SECONDS, build_http_app
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
        "log_level": "DEBUG",
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def serve_http(settings: Settings, *, stateless: bool = False) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    app = build_http_app(settings, host="127.0.0.1", port=port, stateless=stateless)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        backlog=1024,
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run, name=f"alpaca-vault-http-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError("the HTTP server failed to start") from (failure[0] if failure else None)
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the HTTP server did not start in time")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), raise_exceptions=False) as client,
    ):
        yield client

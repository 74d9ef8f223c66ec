"""Run the server on a transport: stdio, or Streamable HTTP under uvicorn.

Kept apart from the CLI so tests and benchmarks can start exactly what
``alpaca-vault serve`` starts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import anyio

from alpaca_vault.server.settings import Settings

logger = logging.getLogger("alpaca_vault.server")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEMO_CREDENTIAL = "demo"
# Fixed demo keys, so the credential stored by --simulate stays valid across runs.
DEMO_API_KEY = "PKDEMO00000000000001"
DEMO_SECRET_KEY = "demo-secret-for-the-offline-simulator-000"  # noqa: S105 - public, simulator only


class StartupError(Exception):
    """The server cannot start; the message says what to change."""


def transport_security(settings: Settings, host: str, port: int) -> Any:
    """Host/Origin checks (DNS-rebinding protection) for the HTTP transport."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = {"127.0.0.1", "localhost", "[::1]"}
    if host not in LOOPBACK_HOSTS and host not in ("0.0.0.0", "::"):  # noqa: S104
        hosts.add(host)
    allowed_hosts = [f"{h}:{port}" for h in sorted(hosts)] + [*sorted(hosts), *settings.allowed_hosts]
    allowed_origins = [f"http://{h}:{port}" for h in sorted(hosts)] + list(settings.allowed_origins)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


@contextlib.contextmanager
def simulated_alpaca(settings: Settings) -> Iterator[Settings]:
    """Start the simulator in this process and return settings pointing at it, with a separate vault."""
    from decimal import Decimal

    from alpaca_vault.simulator.app import create_app
    from alpaca_vault.simulator.config import AccountSpec, SimulatorConfig
    from alpaca_vault.simulator.runner import serve_in_thread

    config = SimulatorConfig(
        accounts=[AccountSpec(api_key=DEMO_API_KEY, secret_key=DEMO_SECRET_KEY, cash=Decimal("100000"))]
    )
    with serve_in_thread(create_app(config)) as base_url:
        logger.info("Alpaca simulator running at %s", base_url)
        yield settings.model_copy(
            update={
                "paper_url": base_url,
                "live_url": base_url,
                "data_url": base_url,
                "data_dir": settings.data_dir / "simulator",
                "database_url": None if settings.is_embedded_sqlite else settings.database_url,
            }
        )


async def store_demo_credential(settings: Settings) -> None:
    """Make sure the local user has the 'demo' paper credential for the simulator."""
    from pydantic import SecretStr

    from alpaca_vault.server.app import open_runtime
    from alpaca_vault.vault.errors import CredentialNotFound

    async with open_runtime(settings) as runtime:
        user_id = await runtime.resolve_user()
        try:
            await runtime.vault.get(user_id, DEMO_CREDENTIAL)
        except CredentialNotFound:
            await runtime.vault.store(
                user_id,
                DEMO_CREDENTIAL,
                "paper",
                SecretStr(DEMO_API_KEY),
                SecretStr(DEMO_SECRET_KEY),
                account_number=None,
                account_status="ACTIVE",
                validated=False,
            )
            logger.info("Stored the demo paper credential '%s' for user '%s'", DEMO_CREDENTIAL, settings.user)


def run_server(
    settings: Settings,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    simulate: bool = False,
    stateless: bool = False,
) -> None:
    with contextlib.ExitStack() as stack:
        if simulate:
            settings = stack.enter_context(simulated_alpaca(settings))
            anyio.run(store_demo_credential, settings)
        if transport == "stdio":
            anyio.run(_run_stdio, settings)
        else:
            anyio.run(_run_http, settings, host, port, stateless)


async def _run_stdio(settings: Settings) -> None:
    from alpaca_vault.server.app import build_server

    server = build_server(settings)
    await server.run_stdio_async()


def build_http_app(settings: Settings, *, host: str, port: int, stateless: bool = False) -> Any:
    """The Starlette app `serve --transport http` runs (tests mount the same)."""
    from alpaca_vault.server.app import build_server

    server = build_server(settings)
    return server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=stateless,
        json_response=stateless,
        transport_security=transport_security(settings, host, port),
        host=host,
    )


async def _run_http(settings: Settings, host: str, port: int, stateless: bool) -> None:
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        raise StartupError(
            f"Refusing to serve HTTP on {host} without authentication. Bind to 127.0.0.1 "
            "(the default) or put alpaca-vault behind bearer-token auth."
        )
    app = build_http_app(settings, host=host, port=port, stateless=stateless)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=settings.log_level.lower())
    logger.info("MCP endpoint: http://%s:%d/mcp", host, port)
    await uvicorn.Server(config).serve()

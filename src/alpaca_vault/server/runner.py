"""Run the server on a transport: stdio, or Streamable HTTP under uvicorn.

Kept apart from the CLI so tests and benchmarks can start exactly what
``alpaca-vault serve`` starts.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import timedelta
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
    # Lower case on both sides: the Host header is lower-cased before the check (server/limits.py).
    hosts = {h.lower() for h in hosts}
    allowed_hosts = [f"{h}:{port}" for h in sorted(hosts)] + [
        *sorted(hosts),
        *(h.lower() for h in settings.allowed_hosts),
    ]
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
                # Always its own embedded vault, whatever the real one is: demo keys and demo tokens
                # must never land in a production database.
                "data_dir": settings.data_dir / "simulator",
                "database_url": None,
                "encryption_keys": None,
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


async def create_demo_token(settings: Settings) -> str:
    """A fresh bearer token for the local user of the simulator's demo vault."""
    from alpaca_vault.accounts import AccountAdmin

    database = settings.open_database()
    try:
        # Short-lived: a demo token is for this session at the keyboard, not for a config file.
        issued = await AccountAdmin(database).create_token(
            settings.user, name="demo", expires_in=timedelta(days=1)
        )
        return issued.token.get_secret_value()
    finally:
        await database.dispose()


def run_server(
    settings: Settings,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    simulate: bool = False,
    stateless: bool = False,
) -> None:
    from alpaca_vault.server.hardening import harden_process

    harden_process()  # before any key is loaded: no core dumps, not dumpable (issue #10, point 11)
    if transport == "stdio" and sys.stdin.isatty():
        ctrl_c_quits()  # the banner says so
        # Before the simulator's start and the SDK's import (seconds), and outside the event loop: a person
        # reads at once what runs and how to connect, and a Ctrl-C meanwhile stops the start-up there
        # (asyncio would only cancel its task after an import).
        print("\n".join(_stdio_banner(settings, simulate)), file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        sock = None if transport == "stdio" else bind_http_port(host, port)  # a busy port fails first
        if sock is not None:
            stack.callback(sock.close)
        if simulate:
            settings = stack.enter_context(simulated_alpaca(settings))
            anyio.run(store_demo_credential, settings)
        if transport == "stdio":
            import alpaca_vault.server.app  # noqa: F401 - the SDK and the server, after the banner (above)

            anyio.run(_run_stdio, settings)
        else:
            assert sock is not None
            token = anyio.run(create_demo_token, settings) if simulate else None
            anyio.run(_run_http, settings, host, sock, stateless, token)


def ctrl_c_quits() -> None:
    """Make Ctrl-C quit, as a person at a terminal is told, even when this process inherited SIGINT ignored:
    a parent that ignores it (a shell's background job, a test runner's worker) passes that on through
    exec, and then neither Python nor asyncio installs a handler, so ^C did nothing at all. (The HTTP
    server needs none of this: uvicorn installs its own handlers.)"""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def bind_http_port(host: str, port: int) -> Any:
    """The listening socket for `serve --transport http`, or a StartupError that names --port."""
    from alpaca_vault.simulator.runner import listening_socket

    try:
        return listening_socket(host, port, backlog=2048)
    except OSError as exc:
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another server?); choose another with --port, "
                f"e.g. --port {port + 1 if port < 65535 else 8001}."
            ) from None
        raise StartupError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port."
        ) from None


def _stdio_banner(settings: Settings, simulate: bool) -> list[str]:
    """What a person who started the stdio server in a terminal should know (stderr only)."""
    from alpaca_vault.server.connect import stdio_connection
    from alpaca_vault.server.hints import program_path

    mode = (
        "with the built-in Alpaca simulator (demo vault, credential 'demo')"
        if simulate
        else f"as user '{settings.user}'"
    )
    lines = [
        f"alpaca-vault: MCP over stdio {mode}; waiting for an MCP client on stdin. Ctrl-D or Ctrl-C to quit.",
        "This is meant to be started by an MCP client, for example:",
    ]
    args = ["serve", "--simulate"] if simulate else ["serve"]
    return lines + stdio_connection(
        program_path(),
        args,
        server_name="alpaca-vault-demo" if simulate else "alpaca-vault",
        env_names=("ALPACA_VAULT_DATA_DIR",) if simulate else (),
    )


async def _run_stdio(settings: Settings) -> None:
    from alpaca_vault.server.app import build_server
    from alpaca_vault.server.stdio import serve_stdio

    await serve_stdio(build_server(settings, defer_tools=True))


def http_server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options against slow and greedy clients (issue #10, point 3), for serve and tests alike.

    The keep-alive timeout stays longer than a load balancer's idle timeout (60 s on common ones): if
    the server closed an idle keep-alive connection first, a request the client was just sending on it
    would be lost. uvicorn has no header-read timeout of its own: ``header_deadline_protocol`` adds one.
    """
    from alpaca_vault.server.http_protocol import header_deadline_protocol

    return {
        "http": header_deadline_protocol(settings.http_header_timeout),
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": settings.http_limit_concurrency,
    }


def token_hint(settings: Settings) -> str:
    """How to get a token for the local user (run with the same ALPACA_VAULT_* settings as the server)."""
    from alpaca_vault.server.hints import program

    return (
        f"create one with `{program()} tokens create --user {settings.user}` "
        f"(if that user does not exist yet, first `{program()} users add {settings.user}`)"
    )


def http_auth(settings: Settings, *, host: str, port: int) -> tuple[Any, Any]:
    """(token verifier, AuthSettings) for the HTTP transport: every request needs an `avt_` bearer token.

    We are a resource server only: tokens come from `alpaca-vault tokens create`, not an OAuth flow.
    So no protected resource metadata (RFC 9728) is served: it would have to name an authorization
    server, and a client would follow it into an OAuth flow that does not exist. The 401 says what to
    do instead (server/bearer.py).
    """
    from mcp.server.auth.settings import AuthSettings

    from alpaca_vault.server.auth import TOKEN_SCOPE, BearerTokenVerifier

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    origin = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    auth = AuthSettings(
        issuer_url=origin,  # required by the SDK's settings; unused without metadata or an OAuth provider
        resource_server_url=None,
        # Our tokens are not audience-bound JWTs; the verifier accepts only tokens this database issued.
        validate_token_resource=False,
        required_scopes=[TOKEN_SCOPE],
    )
    return BearerTokenVerifier(settings.open_database()), auth


def build_http_app(
    settings: Settings, *, host: str, port: int, stateless: bool = False, gate_hooks: Any = None
) -> Any:
    """The Starlette app `serve --transport http` runs (tests mount the same); always behind bearer tokens."""
    from starlette.routing import Mount

    from alpaca_vault.console.app import connect_app, console_app
    from alpaca_vault.server.app import build_server
    from alpaca_vault.server.pages import PagesHub

    verifier, auth = http_auth(settings, host=host, port=port)

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    origin = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    # The console's sign-in form takes console tokens only: an agent's token opens no console session.
    pages = PagesHub(settings, base_url=origin, verify_token=verifier.console_sign_in)
    server = build_server(settings, token_verifier=verifier, auth=auth, pages=pages, gate_hooks=gate_hooks)
    security = transport_security(settings, host, port)
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=stateless,
        json_response=stateless,
        transport_security=security,
        host=host,
        session_idle_timeout=settings.session_idle_timeout,
    )
    from alpaca_vault.server.limits import install_fair_limits

    install_fair_limits(
        server.session_manager,
        sessions_per_user=settings.sessions_per_user,
        requests_per_minute=settings.requests_per_minute,
    )
    # #12: the key entry page and the console, on the same server (their own Host/Origin checks).
    page_config = pages.page_config(list(security.allowed_hosts), list(security.allowed_origins))
    app.router.routes.append(Mount("/connect", app=connect_app(pages.services, page_config)))
    app.router.routes.append(Mount("/console", app=console_app(pages.services, page_config)))
    from alpaca_vault.server.bearer import explain_refusals
    from alpaca_vault.server.hints import program

    explain_refusals(app, verifier, f"Create a token with `{program()} tokens create --user NAME`.")
    serve_sessions = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(starlette_app: Any) -> Any:
        try:
            async with serve_sessions(starlette_app):
                yield
        finally:
            await verifier.aclose()

    app.router.lifespan_context = lifespan
    app.state.requires_bearer_token = True
    return app


def _http_banner(host: str, port: int, token: str | None, settings: Settings) -> list[str]:
    from alpaca_vault.server.connect import http_connection

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    url = f"http://[{shown}]:{port}/mcp" if ":" in shown else f"http://{shown}:{port}/mcp"
    if token is None:
        return [
            f"alpaca-vault: MCP over Streamable HTTP at {url}; every request needs a bearer token: "
            f"{token_hint(settings)}. Ctrl-C to quit."
        ]
    return [
        f"alpaca-vault demo: MCP over Streamable HTTP at {url} with the built-in Alpaca simulator and a demo "
        "vault (credential 'demo'). Ctrl-C to quit.",
        # Printed, not logged: this token opens only the simulator's demo vault.
        "The token below is for this demo vault only (valid 24 h); connect with:",
        *http_connection(url, token, server_name="alpaca-vault-demo"),
    ]


async def _run_http(
    settings: Settings, host: str, sock: Any, stateless: bool, demo_token: str | None = None
) -> None:
    import uvicorn

    port = sock.getsockname()[1]
    app = build_http_app(settings, host=host, port=port, stateless=stateless)
    if not getattr(app.state, "requires_bearer_token", False):  # fail closed, whatever the address
        raise StartupError("Refusing to serve HTTP without bearer-token authentication.")
    if host not in LOOPBACK_HOSTS and not settings.allowed_hosts:
        logger.warning(
            "Serving on %s: requests are accepted only with a loopback Host header until you set "
            "ALPACA_VAULT_ALLOWED_HOSTS (and ALPACA_VAULT_ALLOWED_ORIGINS for browsers) to the public name.",
            host,
        )
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level=settings.log_level.lower(),
        **http_server_options(settings),
    )
    server = uvicorn.Server(config)
    # The connection is printed once the server is listening (the socket is bound already).
    print("\n".join(_http_banner(host, port, demo_token, settings)), file=sys.stderr, flush=True)
    await server.serve(sockets=[sock])


@contextlib.contextmanager
def serve_http_in_thread(
    settings: Settings, *, stateless: bool = False, gate_hooks: Any = None
) -> Iterator[str]:
    """Run exactly what `serve --transport http` runs, on a free loopback port in a background thread.

    Yields the ``/mcp`` URL. For tests and benchmarks: the server has its own event loop, so the
    caller may be sync or async.
    """
    from alpaca_vault.simulator.runner import listening_socket, uvicorn_in_thread

    sock = listening_socket("127.0.0.1", 0, backlog=1024)
    port = sock.getsockname()[1]  # bound first: the Host/Origin allowlist names the real port
    app = build_http_app(settings, host="127.0.0.1", port=port, stateless=stateless, gate_hooks=gate_hooks)
    with uvicorn_in_thread(
        app,
        sock,
        name=f"alpaca-vault-http-{port}",
        startup_timeout=30,
        log_config=None,
        lifespan="on",
        backlog=1024,
        **http_server_options(settings),
    ):
        yield f"http://127.0.0.1:{port}/mcp"

"""Serve an app with uvicorn on a background thread (its own event loop) and yield its base URL.

Works from plain code and from inside a running event loop alike, because the server never
shares the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def listening_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = 2048) -> socket.socket:
    """A bound, listening TCP socket (0 = a free port), so the caller knows the port before serving."""
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP; without it, every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class _PromptExitServer(uvicorn.Server):
    """uvicorn's server, told to stop by :meth:`exit_soon` from any thread, and stopping at once.

    uvicorn notices ``should_exit`` on its next tick, up to 0.1 s later; a test run starts and stops a
    hundred of these servers. The ticks themselves (the Date header, the request limit) are uvicorn's.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    async def main_loop(self) -> None:
        # uvicorn's own main_loop (0.32-0.54: on_tick every 0.1 s until it says to exit), with the sleep
        # made wakeable. Compare with uvicorn/server.py's when upgrading uvicorn.
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)  # uvicorn's own tick: asyncio.sleep(0.1)
            should_exit = await self.on_tick(counter)

    def exit_soon(self) -> None:
        self.should_exit = True
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: it is not waiting any more
                loop.call_soon_threadsafe(woken.set)


@contextmanager
def uvicorn_in_thread(
    app: ASGIApp, sock: socket.socket, *, name: str, startup_timeout: float = 10.0, **options: Any
) -> Iterator[None]:
    """Serve ``app`` on ``sock`` with uvicorn in a background thread (its own event loop) until exit.

    ``options`` go to ``uvicorn.Config``. The socket is closed when the block ends.
    """
    config = uvicorn.Config(app, access_log=False, timeout_graceful_shutdown=1, **options)
    server = _PromptExitServer(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # surfaced to the caller below
            failure.append(error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"{name} failed to start") from (failure[0] if failure else None)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start within {startup_timeout}s")
            time.sleep(0.01)
        yield
    finally:
        server.exit_soon()
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10.0
) -> Iterator[str]:
    """Run ``app`` on ``host:port`` (0 = a free port) until the block exits; yields ``http://host:port``."""
    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    with uvicorn_in_thread(
        app,
        sock,
        name=f"simulator-{bound_port}",
        startup_timeout=startup_timeout,
        log_level="warning",
        lifespan="off",
        backlog=2048,
    ):
        yield f"http://{url_host}:{bound_port}"

"""The stdio-mode key entry listener: loopback only, an ephemeral port, open only while needed.

Over stdio there is no HTTP server, so the first key entry starts one on ``127.0.0.1:<free port>``
in the server's own event loop, serving ``/connect/`` alone. It answers only to ``127.0.0.1:<port>``
and ``localhost:<port>`` (a DNS-rebinding page under another name gets 421) and closes once no
entry is outstanding (each one done, burnt or expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

logger = logging.getLogger("alpaca_vault.console")


class LoopbackListener:
    """Starts on first use (``base_url``), stops on ``close``; can start again later on a new port."""

    def __init__(self, make_app: Callable[[tuple[str, ...], tuple[str, ...]], ASGIApp]) -> None:
        # make_app(allowed_hosts, allowed_origins) -> the /connect app (hosts are known once the port is)
        self._make_app = make_app
        self._lock = asyncio.Lock()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def base_url(self) -> str:
        async with self._lock:
            if self._url is None:
                await self._start()
            assert self._url is not None
            return self._url

    async def _start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))  # loopback only: the page is for the person at this machine
        sock.listen(16)
        port = sock.getsockname()[1]
        hosts = (f"127.0.0.1:{port}", f"localhost:{port}")
        origins = (f"http://127.0.0.1:{port}", f"http://localhost:{port}")
        app = Starlette(routes=[Mount("/connect", app=self._make_app(hosts, origins))])
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        # _serve, not serve: serve() would take over the process's signal handlers (the stdio server's).
        task = asyncio.create_task(server._serve(sockets=[sock]), name=f"key-entry-listener-{port}")
        while not server.started:
            if task.done():
                sock.close()
                task.result()  # raises what stopped it
                raise RuntimeError("the key entry listener stopped while starting")
            await asyncio.sleep(0.01)
        self._server, self._task, self._socket = server, task, sock
        self._url = f"http://127.0.0.1:{port}"
        logger.info("Key entry page listening on http://127.0.0.1:%d/connect/ (loopback only)", port)

    async def close(self) -> None:
        async with self._lock:
            server, task, sock = self._server, self._task, self._socket
            self._server = self._task = self._socket = None
            self._url = None
            if server is None or task is None:
                return
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, timeout=5)
            if sock is not None:
                sock.close()
            logger.info("Key entry listener closed")

"""Answer a stdio client's first tools/list before the tools are built (cold start, issue #15 item 9).

Building the tools (pydantic models from some fifty signatures, their JSON schemas, our compaction)
is about a quarter of a cold start, and a client waits for it before it can show a single tool. A
stdio server therefore registers its tools lazily: the first tools/list is answered from the listing
the previous start served, stored in ``<data_dir>/cache/tool-list.json``; the tools are built right
after that answer is out, and in any case before a tools/call goes through the middleware.

The file is only used when its fingerprint matches: the path, size and modification time of every
source file of this package, of the SDK's and pydantic's entry modules, and the settings that shape
the listing (toolsets, secrets as arguments). Anything else rebuilds first and answers second, as an
eager server does. Once built, the real listing is compared with what was served; a difference (a
stale or edited file) is logged and the file rewritten. The file lives in the vault's own directory
(0700) and is written 0600, like the vault beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ListToolsResult
from mcp_types import Tool as MCPTool

from alpaca_vault.server.settings import Settings
from alpaca_vault.tools.table import ToolTable

logger = logging.getLogger("alpaca_vault.server")

CACHE_FILE = Path("cache") / "tool-list.json"
# The modules besides ours whose code shapes a listing: the SDK (schemas, tool model) and pydantic.
_SHAPING_MODULES = ("mcp", "mcp_types", "pydantic", "pydantic_core")


def fingerprint(settings: Settings) -> str:
    """What a listing is made of, as a hash: our sources, the shaping libraries, the shaping settings."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                stat = os.stat(path)
                digest.update(
                    f"{os.path.relpath(path, package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode()
                )
    for module in _SHAPING_MODULES:
        path = getattr(sys.modules.get(module), "__file__", None) or ""
        stat = os.stat(path) if path else None
        digest.update(f"{module}:{path}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}\n".encode())
    toolsets = settings.enabled_toolsets
    digest.update(f"toolsets:{sorted(toolsets) if toolsets is not None else '*'}\n".encode())
    digest.update(f"secrets-as-arguments:{settings.allow_secrets_in_arguments}\n".encode())
    return digest.hexdigest()


class DeferredTools:
    """A server's tools, registered on first need; until then tools/list comes from the cache file."""

    def __init__(
        self,
        server: MCPServer[Any],
        settings: Settings,
        register: Callable[[], ToolTable],
        prepare: Callable[[], Iterator[None]] | None = None,
    ) -> None:
        self._server = server
        self._register = register
        # The build's work in steps (imports, one row at a time), so the build after a listing can stop
        # between two of them when the client leaves: its exit does not wait for a build nobody will use.
        self._prepare = prepare
        self._scheduled: asyncio.TimerHandle | None = None
        self._path = settings.data_dir / CACHE_FILE
        self._fingerprint = fingerprint(settings)
        self._registered = False
        self._served: list[dict[str, Any]] | None = None  # what the cache answered, checked after the build
        self._background: set[asyncio.Task[None]] = set()
        self.table = ToolTable({})  # filled in place by ensure(); the middleware holds this object

    async def ensure(self) -> None:
        """Register the tools now if they are not yet (about half a second, once per process)."""
        if self._registered:
            return
        try:
            self.table.fill(self._register())
        except BaseException:
            self._server._tool_manager._tools.clear()  # half a registration would refuse the next try
            raise
        self._registered = True
        await self._refresh_cache()

    def install(self) -> None:
        """Answer tools/list from the cache while unregistered; register before any tools/call."""
        handlers = self._server._lowlevel_server._request_handlers  # the SDK has no public hook here
        entry = handlers["tools/list"]
        list_tools = entry.handler

        async def list_from_cache_first(ctx: Any, params: Any) -> Any:
            if not self._registered and (cached := self._load()) is not None:
                self._served = cached
                # Build once this answer is on its way (a call arriving first builds at once instead).
                if self._scheduled is None and not self._background:  # a second listing: one build is enough
                    self._scheduled = asyncio.get_running_loop().call_later(0.05, self._build_in_background)
                return ListToolsResult(tools=[MCPTool.model_validate(tool) for tool in cached])
            await self.ensure()
            return await list_tools(ctx, params)

        handlers["tools/list"] = dataclasses.replace(entry, handler=list_from_cache_first)

        async def register_before_a_call(ctx: Any, call_next: Any) -> Any:
            if ctx.method == "tools/call":
                await self.ensure()
            return await call_next(ctx)

        # First in the stack: the argument guard and the secret scope read the table it fills.
        self._server.middleware.insert(0, register_before_a_call)

    async def aclose(self) -> None:
        """The session is over (the client closed stdin): stop the build after the listing, if any.

        A client that has gone gets nothing from it, and its exit (or a test's) would wait for all of it:
        the tool modules' import and some fifty schemas, about a second of CPU. The listing file stays as it
        was; the next server that builds checks and rewrites it.
        """
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None  # the next session on this server schedules its own
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _build_in_background(self) -> None:
        self._scheduled = None  # due now: the task below stands for it (self._background)
        task = asyncio.ensure_future(self._build_quietly())
        self._background.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._background.discard)

    async def _build_quietly(self) -> None:
        try:
            for _step in self._prepare() if self._prepare is not None else ():
                await asyncio.sleep(0)  # where aclose() (or a tools/call's own ensure) gets its turn
            await self.ensure()
        except Exception:  # the next tools/call tries again and reports it; the server keeps serving
            logger.exception("registering the tools after the first listing failed")

    def _load(self) -> list[dict[str, Any]] | None:
        try:
            stored = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("fingerprint") != self._fingerprint:
            return None
        tools = stored.get("tools")
        return tools if isinstance(tools, list) else None

    async def _refresh_cache(self) -> None:
        """Store the real listing for the next start; say so if the one served differed from it."""
        tools = [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True)
            for tool in await self._server.list_tools()
        ]
        if self._served is not None and self._served != tools:
            logger.warning(
                "The tool list answered from %s differed from the tools this server built (a stale or "
                "edited file); it is rewritten. A client that lists the tools again sees the built ones.",
                self._path,
            )
        if self._served == tools or self._load() == tools:
            return
        with contextlib.suppress(OSError):  # a read-only data directory only costs the next start time
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self._path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"fingerprint": self._fingerprint, "tools": tools}, out)
            os.replace(temporary, self._path)

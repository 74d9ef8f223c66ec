"""Answer a stdio client's first tools/list before the tools are built (cold start, issue #15 item 9).

Building the tools (pydantic models from some fifty signatures, their JSON schemas, our compaction)
is about a quarter of a cold start, and a client waits for it before it can show a single tool. A
stdio server therefore registers its tools lazily: the first tools/list is answered from the listing
the previous start served, stored in ``<data_dir>/cache/tool-list.json``, and a tools/call registers
the one tool it names before it goes through the middleware (its row in the table the argument guard
and the secret scope read, its key arguments hidden like the others'; a tool outside the enabled
toolsets stays unknown). Every tool is built once the server has been idle for a while
(``BUILD_WHEN_IDLE_SECONDS``; a minute at the latest under a client that never pauses): a process
that lists, calls a tool and leaves builds that tool only.

The file is only used when its fingerprint matches: the path, size and modification time of every
source file of this package, of the SDK's and pydantic's entry modules, and the settings that shape
the listing (toolsets, secrets as arguments). It is written only after every row was checked and built
from those very sources, so a matching file is also the proof that no row is malformed: a server
without it (a changed source, other settings, a first start) checks and builds every tool before it
answers a listing or a call, as an eager server does, and a malformed row refuses both. The tool a call
registers is compared with its entry in the file at once, and the whole listing once every tool is built;
a difference (a stale or edited file) is logged and the file rewritten. The file lives in the vault's own
directory (0700) and is written 0600, like the vault beside it.
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
import time
from collections.abc import Callable, Collection, Iterator
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


# When nothing happens for this long after a stored listing or a tool's own registration, the server builds
# every tool (about 0.7 s of CPU) to compare them with the stored listing. A short-lived client (a probe, an
# orchestrator's single call, a test) has left by then: its process never builds a tool nobody calls.
BUILD_WHEN_IDLE_SECONDS = 5.0
# A client that is never quiet that long still gets the whole listing checked (and rewritten if stale).
BUILD_AT_THE_LATEST_SECONDS = 60.0


class DeferredTools:
    """A server's tools, registered on first need; until then tools/list comes from the cache file.

    A tools/call registers the tool it names, alone, when the stored listing proves that every row of these
    very sources built (its fingerprint matches); without that proof it registers every tool first, as a
    listing does. Every tool is registered once the server has been idle for ``BUILD_WHEN_IDLE_SECONDS``.
    """

    def __init__(
        self,
        server: MCPServer[Any],
        settings: Settings,
        register: Callable[[Collection[str] | None], ToolTable],
        prepare: Callable[[], Iterator[None]] | None = None,
    ) -> None:
        self._server = server
        # register(None) registers every enabled tool; register(names) only the enabled ones of those names.
        self._register = register
        # The build's work in steps (imports, one row at a time), so the build after a listing can stop
        # between two of them when the client leaves: its exit does not wait for a build nobody will use.
        self._prepare = prepare
        self._scheduled: asyncio.TimerHandle | None = None
        self._path = settings.data_dir / CACHE_FILE
        self._fingerprint = fingerprint(settings)
        self._registered = False  # every enabled tool (a call may have registered its own before)
        self._stored: list[dict[str, Any]] | None = None  # the file's listing, once read and matched
        self._served: list[dict[str, Any]] | None = None  # what the cache answered, checked after the build
        self._background: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # requests being handled; the build waits for a quiet server
        self._last_request = time.monotonic()
        self._build_wanted_since: float | None = None  # when the first wait for a quiet server began
        self.table = ToolTable({})  # filled in place; the middleware holds this object

    async def ensure(self) -> None:
        """Register every enabled tool now if they are not yet (about 0.7 s of CPU, once per process)."""
        if self._registered:
            return
        tools = self._server._tool_manager._tools
        registered_one_by_one = dict(tools)
        # Registered again, all in the registry's order: the SDK lists tools in the order they were added.
        tools.clear()
        try:
            self.table.fill(self._register(None))
        except BaseException:
            # Half a registration would refuse the next try; the tools registered for their calls stay.
            tools.clear()
            tools.update(registered_one_by_one)
            raise
        self._registered = True
        await self._refresh_cache()

    async def ensure_tool(self, name: str) -> None:
        """Register the tool ``name`` before its call: alone if the stored listing proves the rows sound.

        The listing file is written only after every row of the sources it is fingerprinted with was
        checked and built (``ensure``), and with the settings that filter them: a matching file is that
        proof, so one row is checked and built here (a few milliseconds) instead of all of them. Without
        it, every row is checked first: a malformed one refuses this call as it refuses a listing. A name
        that no enabled row has registers nothing, and the SDK answers it as an unknown tool.
        """
        if self._registered or self._server._tool_manager.get_tool(name) is not None:
            return
        stored = self._stored_listing()
        if stored is None:
            await self.ensure()
            return
        tools = self._server._tool_manager._tools
        before = dict(tools)
        try:
            registered = self._register([name])
        except BaseException:
            # A tool left registered without its table row would skip this method next time, and the
            # argument guard and the secret scope would not know its secret arguments.
            tools.clear()
            tools.update(before)
            raise
        self.table.fill(registered)
        if name in registered:
            await self._check_one_against(stored, name)
        self._build_when_idle()

    def install(self) -> None:
        """Answer tools/list from the cache while unregistered; register a tool before its call."""
        handlers = self._server._lowlevel_server._request_handlers  # the SDK has no public hook here
        entry = handlers["tools/list"]
        list_tools = entry.handler

        async def list_from_cache_first(ctx: Any, params: Any) -> Any:
            # Served whole even when some tools are registered already (for their calls): every enabled
            # tool, in the registry's order, the very answer the build that stored it gave.
            if not self._registered and (cached := self._stored_listing()) is not None:
                self._served = cached
                self._build_when_idle()  # a second listing schedules nothing more: one build is enough
                return ListToolsResult(tools=[MCPTool.model_validate(tool) for tool in cached])
            await self.ensure()
            return await list_tools(ctx, params)

        handlers["tools/list"] = dataclasses.replace(entry, handler=list_from_cache_first)

        async def register_before_a_call(ctx: Any, call_next: Any) -> Any:
            self._in_flight += 1
            try:
                if ctx.method == "tools/call":
                    await self.ensure_tool(str((ctx.params or {}).get("name")))
                return await call_next(ctx)
            finally:
                self._in_flight -= 1
                self._last_request = time.monotonic()

        # First in the stack: the argument guard and the secret scope read the table it fills.
        self._server.middleware.insert(0, register_before_a_call)

    async def aclose(self) -> None:
        """The session is over (the client closed stdin): stop the build of every tool, if any.

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

    def _build_when_idle(self) -> None:
        if self._registered or self._scheduled is not None or self._background:
            return
        if self._build_wanted_since is None:
            self._build_wanted_since = time.monotonic()
        first_look = min(BUILD_WHEN_IDLE_SECONDS, BUILD_AT_THE_LATEST_SECONDS)
        self._scheduled = asyncio.get_running_loop().call_later(first_look, self._build_if_idle)

    def _build_if_idle(self) -> None:
        self._scheduled = None
        if self._registered:
            return
        now = time.monotonic()
        quiet_for = now - self._last_request
        waited = now - (self._build_wanted_since or now)
        if (self._in_flight or quiet_for < BUILD_WHEN_IDLE_SECONDS) and waited < BUILD_AT_THE_LATEST_SECONDS:
            wait = BUILD_WHEN_IDLE_SECONDS - (0.0 if self._in_flight else quiet_for)
            wait = min(wait, BUILD_AT_THE_LATEST_SECONDS - waited)
            self._scheduled = asyncio.get_running_loop().call_later(max(wait, 0.01), self._build_if_idle)
            return
        self._build_in_background()

    def _build_in_background(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None  # due now: the task below stands for it (self._background)
        if self._background:
            return
        task = asyncio.ensure_future(self._build_quietly())
        self._background.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._background.discard)

    async def _build_quietly(self) -> None:
        try:
            for _step in self._prepare() if self._prepare is not None else ():
                await asyncio.sleep(0)  # where aclose() and the requests that arrive meanwhile get their turn
            await self.ensure()
        except Exception:  # the server keeps serving: each call registers its own tool meanwhile
            # Tried again when a later listing or the first call of another tool schedules it.
            logger.exception("registering every tool (to check the stored listing) failed")

    def _stored_listing(self) -> list[dict[str, Any]] | None:
        if self._stored is None:
            self._stored = self._load()  # a miss is read again next time: the build may have written it
        return self._stored

    async def _check_one_against(self, stored: list[dict[str, Any]], name: str) -> None:
        """Compare the tool just registered with its entry in the stored listing (the whole is compared
        by the build of every tool); a difference is said at once, and that build starts now."""
        built = [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True)
            for tool in await self._server.list_tools()  # the tools registered so far: a few
            if tool.name == name
        ]
        if built != [tool for tool in stored if isinstance(tool, dict) and tool.get("name") == name]:
            logger.warning(
                "The tool list stored in %s differs from the tool %s this server built (a stale or edited "
                "file); every tool is built now and the file rewritten.",
                self._path,
                name,
            )
            self._build_in_background()

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

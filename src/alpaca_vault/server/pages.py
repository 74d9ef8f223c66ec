"""Wiring the pages (console/) to the server: one hub per process, built before the MCP server.

The hub turns the runtime's open parts (database, key ring, vault, broker) into the pages'
``ConsoleServices`` and the tools' ``KeyEntryDesk``. Over HTTP the pages are mounted on the same
app (``/connect/``, ``/console/``) and links use ``ALPACA_VAULT_PUBLIC_URL`` (or the listening
address); over stdio the desk starts the loopback listener on demand and closes it when done.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from alpaca_vault.console.app import ConsoleServices, PageConfig
    from alpaca_vault.console.keyentry import KeyEntryDesk
    from alpaca_vault.console.listener import LoopbackListener
    from alpaca_vault.server.settings import Settings
    from alpaca_vault.tools.runtime import ToolRuntime


class PagesHub:
    """The pages' view of one server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        verify_token: Callable[[str], Awaitable[tuple[uuid.UUID, uuid.UUID] | None]] | None = None,
    ) -> None:
        # base_url None: stdio, a loopback listener serves the entry page when one is needed.
        self.settings = settings
        self.base_url = settings.public_url or base_url
        self.verify_token = verify_token
        self.runtime: ToolRuntime | None = None
        self._services: ConsoleServices | None = None
        self.listener: LoopbackListener | None = None
        self._audit: Any = None
        self.approvals: Any = None

    @property
    def approval_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.approval_minutes)

    @property
    def key_entry_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.key_entry_minutes)

    def page_config(self, allowed_hosts: list[str], allowed_origins: list[str]) -> PageConfig:
        from alpaca_vault.console.app import PageConfig

        hosts, origins = list(allowed_hosts), list(allowed_origins)
        if self.settings.public_url:
            public = urlsplit(self.settings.public_url)
            hosts.append(public.netloc)
            origins.append(f"{public.scheme}://{public.netloc}")
        return PageConfig(
            allowed_hosts=tuple(hosts),
            allowed_origins=tuple(origins),
            secure_cookies=bool(self.settings.public_url and self.settings.public_url.startswith("https://")),
            session_minutes=self.settings.console_session_minutes,
            key_entry_lifetime=self.key_entry_lifetime,
        )

    def open(self, *, db: Any, keyring: Any, vault: Any, broker: Any) -> KeyEntryDesk:
        """Called once the runtime's parts are open: builds the pages' services and the tools' desk."""
        from alpaca_vault.console.app import ConsoleServices, connect_app
        from alpaca_vault.console.keyentry import KeyEntry, KeyEntryDesk
        from alpaca_vault.console.links import LinkStore
        from alpaca_vault.console.listener import LoopbackListener
        from alpaca_vault.console.tokens import UserTokens

        links = LinkStore(db)
        audit = _audit_log(db, keyring)
        self._audit = audit
        if self.base_url is not None:
            fixed = self.base_url

            async def base_url() -> str:
                return fixed

            desk = KeyEntryDesk(links, base_url=base_url, lifetime=self.key_entry_lifetime)
        else:
            listener = LoopbackListener(
                lambda hosts, origins: connect_app(
                    self.services, self.page_config(list(hosts), list(origins))
                )
            )
            self.listener = listener
            desk = KeyEntryDesk(
                links, base_url=listener.base_url, lifetime=self.key_entry_lifetime, on_settled=listener.close
            )
        from alpaca_vault.console.approval import OrderApprovals

        # #14: approval links for orders whose client cannot show a confirmation form (the guard's desk).
        self.approvals = OrderApprovals(links, desk, lifetime=self.approval_lifetime)
        self._services = ConsoleServices(
            db=db,
            keyring=keyring,
            vault=vault,
            broker=broker,
            links=links,
            key_entry=KeyEntry(links, vault, broker, audit=audit),
            desk=desk,
            tokens=UserTokens(db),
            verify_token=self.verify_token,
            audit=audit,
        )
        return desk

    async def services(self) -> ConsoleServices:
        if self._services is None:
            for _ in range(600):  # the runtime is attached by the server's lifespan, right at start-up
                if self.runtime is not None:
                    break
                await asyncio.sleep(0.05)
            if self.runtime is None:
                raise RuntimeError("The server's runtime did not start")
            await self.runtime.ready()
        assert self._services is not None
        return self._services

    async def aclose(self) -> None:
        if self._services is not None:
            with contextlib.suppress(Exception):
                await self._services.desk.aclose()
        if self.listener is not None:
            with contextlib.suppress(Exception):
                await self.listener.close()
        if self._audit is not None:
            with contextlib.suppress(Exception):
                self._audit.close()


def _audit_log(db: Any, keyring: Any) -> Any:
    """The audit trail (#13) the pages record to and read from."""
    from alpaca_vault.audit import AuditLog, ChainKeys

    return AuditLog(db, ChainKeys.from_keyring(keyring))

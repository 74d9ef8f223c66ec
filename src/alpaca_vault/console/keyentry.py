"""Key entry: a person pastes an Alpaca key pair into the server directly, never into the chat.

``KeyEntryDesk`` is what the tools use: open an entry (a one-time link bound to the user and the
credential), then wait for its outcome. ``KeyEntry.submit`` is what the page calls with the form's
values: check the pair with Alpaca (as ``credentials add`` does), store it sealed, and finish the
link. The person sees exactly why Alpaca refused a pair; the agent learns only a general reason
(``AGENT_REASONS``): the details of someone's keys are none of its business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import SecretStr

from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys
from alpaca_vault.broker.errors import AlpacaAuthError, AlpacaError
from alpaca_vault.console.links import MAX_ATTEMPTS, IssuedLink, LinkError, LinkRecord, LinkStore, Purpose
from alpaca_vault.vault.credential_types import CredentialInfo
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.errors import CredentialExists, DuplicateKeyPair, InvalidCredentialInput, VaultError
from alpaca_vault.vault.exposure import exposure_scope, register_exposed
from alpaca_vault.vault.key_ids import check_key_environment

logger = logging.getLogger("alpaca_vault.console")

# Printable ASCII without spaces, as every Alpaca key id and secret (same rule as the tools).
_KEY_CHARS = re.compile(r"[\x21-\x7e]{1,256}")

# What the agent is told when an entry fails: general terms only.
AGENT_REASONS = {
    "alpaca_rejected": "Alpaca did not accept the key pair that was entered",
    "account_not_active": "the Alpaca account behind the keys is not active",
    "wrong_environment": "the keys entered belong to the other environment (paper vs live)",
    "duplicate": "that key pair or that credential name is already stored",
    "malformed": "what was entered is not an Alpaca key pair",
    "alpaca_unavailable": "Alpaca could not be reached to check the keys",
    "credential_gone": "the credential to replace no longer exists",
    "vault": "the vault could not store the keys",
    "declined": "the user declined to open the key entry page",
}


@dataclass(frozen=True)
class KeyEntryTicket:
    """An open key entry: the link to hand to the person and when it stops working."""

    link_id: uuid.UUID
    url: str
    expires_at: datetime

    @property
    def elicitation_id(self) -> str:
        return str(self.link_id)

    def __repr__(self) -> str:  # the URL is a capability: keep it out of reprs and logs
        return f"KeyEntryTicket(link_id={self.link_id}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class KeyEntryOutcome:
    status: Literal["stored", "failed", "expired", "pending"]
    credential_id: uuid.UUID | None = None
    reason: str | None = None  # a key of AGENT_REASONS

    @property
    def agent_reason(self) -> str:
        return AGENT_REASONS.get(self.reason or "", "the entry could not be completed")


def outcome_of(record: LinkRecord | None) -> KeyEntryOutcome:
    if record is None:
        return KeyEntryOutcome("expired")
    if record.used_at is not None and record.outcome == "stored":
        ref = uuid.UUID(record.outcome_ref) if record.outcome_ref else None
        return KeyEntryOutcome("stored", credential_id=ref)
    if record.used_at is not None:
        reason = (record.outcome or "").split(":", 1)[-1] or None
        return KeyEntryOutcome("failed", reason=reason)
    if record.expired():
        return KeyEntryOutcome("expired")
    return KeyEntryOutcome("pending")


class KeyEntryDesk:
    """Opens key entries for the tools and tells them how each ended.

    ``base_url`` returns the origin the person's browser will reach (the HTTP server's public URL,
    or a loopback listener started on demand in stdio mode). ``on_open`` / the watcher let a
    stdio listener close itself once no entry is outstanding.
    """

    def __init__(
        self,
        links: LinkStore,
        *,
        base_url: Callable[[], Awaitable[str]],
        lifetime: timedelta,
        on_settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.links = links
        self._base_url = base_url
        self.lifetime = lifetime
        self._on_settled = on_settled
        self._watchers: set[asyncio.Task[None]] = set()

    async def open_entry(
        self,
        user_id: uuid.UUID,
        *,
        name: str,
        environment: str,
        replace: CredentialInfo | None = None,
    ) -> KeyEntryTicket:
        if replace is not None:
            bound_to = str(replace.id)
            details = {"action": "replace", "environment": replace.environment, "name": replace.name}
        else:
            bound_to = name
            details = {"action": "store", "environment": environment, "name": name}
        issued, url = await self.open_link(
            user_id, "key_entry", "/connect/", lifetime=self.lifetime, bound_to=bound_to, details=details
        )
        logger.info(
            "Opened key entry %s for credential '%s' (%s)", issued.id, details["name"], details["action"]
        )
        return KeyEntryTicket(issued.id, url, issued.expires_at)

    async def open_link(
        self,
        user_id: uuid.UUID,
        purpose: Purpose,
        path: str,
        *,
        lifetime: timedelta,
        bound_to: str,
        details: dict[str, Any],
    ) -> tuple[IssuedLink, str]:
        """A one-time link served at ``path`` (key entry, order approval); over stdio the listener stays
        up until every open link is done or expired."""
        base = await self._base_url()
        issued = await self.links.issue(
            user_id, purpose, lifetime=lifetime, bound_to=bound_to, details=details
        )
        if self._on_settled is not None:
            task = asyncio.create_task(self._watch(user_id, issued.id))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
        return issued, f"{base}{path}{issued.secret}"

    async def wait(self, user_id: uuid.UUID, link_id: uuid.UUID) -> KeyEntryOutcome:
        return outcome_of(await self.links.wait(user_id, link_id))

    async def status(self, user_id: uuid.UUID, link_id: uuid.UUID) -> KeyEntryOutcome:
        return outcome_of(await self.links.get(user_id, link_id))

    async def withdraw(self, user_id: uuid.UUID, link_id: uuid.UUID) -> None:
        await self.links.withdraw(user_id, link_id, "failed:declined")

    def outstanding(self) -> int:
        return len(self._watchers)

    async def _watch(self, user_id: uuid.UUID, link_id: uuid.UUID) -> None:
        with contextlib.suppress(Exception):
            await self.links.wait(user_id, link_id)
        current = asyncio.current_task()
        if current is not None:
            self._watchers.discard(current)
        if self._on_settled is not None and not self._watchers:
            await self._on_settled()

    async def aclose(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        for task in list(self._watchers):
            with contextlib.suppress(BaseException):
                await task


@dataclass(frozen=True)
class SubmitResult:
    """What the page shows after a submission. ``message`` is for the person, in our own words."""

    ok: bool
    message: str
    credential: CredentialInfo | None = None
    can_retry: bool = False


class KeyEntry:
    """The page's side: validate a pasted pair with Alpaca, store it sealed, finish the link."""

    def __init__(
        self, links: LinkStore, vault: CredentialService, broker: AlpacaClient, *, audit: Any = None
    ) -> None:
        self.links = links
        self.vault = vault
        self.broker = broker
        self.audit = audit  # the audit trail (#13); the record is written before the vault changes

    async def submit(self, record: LinkRecord, api_key: str, secret_key: str) -> SubmitResult:
        # A fresh exposure scope: the log scrubber removes these two values from anything logged below.
        with exposure_scope():
            api_plain, secret_plain = api_key.strip(), secret_key.strip()
            register_exposed(api_key)
            register_exposed(secret_key)
            register_exposed(api_plain)
            register_exposed(secret_plain)
            try:
                return await self._submit(record, SecretStr(api_plain), SecretStr(secret_plain))
            finally:
                del api_plain, secret_plain, api_key, secret_key

    async def _submit(self, record: LinkRecord, api_key: SecretStr, secret_key: SecretStr) -> SubmitResult:
        details = record.details
        environment = "live" if details.get("environment") == "live" else "paper"
        name = str(details.get("name", record.bound_to or ""))
        replace = details.get("action") == "replace"
        if not (
            _KEY_CHARS.fullmatch(api_key.get_secret_value())
            and _KEY_CHARS.fullmatch(secret_key.get_secret_value())
        ):
            return await self._refused(
                record,
                "malformed",
                "The key id or the secret is empty or contains spaces, line breaks or characters no Alpaca key "
                "has. Copy both again exactly as Alpaca shows them.",
            )
        try:
            check_key_environment(api_key, environment)
        except InvalidCredentialInput:
            other = "live" if environment == "paper" else "paper"
            return await self._refused(
                record,
                "wrong_environment",
                f"That key id looks like a {other} key, but this entry is for a {environment} credential. "
                f"Enter {environment} keys here, or ask for a {other} entry instead.",
            )
        keys = AlpacaKeys(
            api_key=api_key,
            secret_key=secret_key,
            environment="live" if environment == "live" else "paper",
            limiter_key=f"entry:{record.id}",
        )
        try:
            account = await self.broker.get_account(keys)
        except AlpacaAuthError:
            other = "live" if environment == "paper" else "paper"
            return await self._refused(
                record,
                "alpaca_rejected",
                f"Alpaca refused this key pair on its {environment} endpoint (HTTP 401). Check that you copied "
                f"the key id and the secret exactly (regenerate them in Alpaca's dashboard if unsure); {other} "
                f"keys do not work for a {environment} credential.",
            )
        except AlpacaError:
            return await self._refused(
                record,
                "alpaca_unavailable",
                "Alpaca could not be reached to check this key pair. Nothing was stored; try again in a moment.",
            )
        finally:
            del keys
        status = str(account.status)
        if status.upper().removeprefix("ACCOUNTSTATUS.") != "ACTIVE":
            return await self._refused(
                record,
                "account_not_active",
                f"Alpaca accepted the keys, but account {account.account_number} is {status}, not ACTIVE, so it "
                "cannot trade. Nothing was stored.",
            )
        if self.audit is not None and not await self._audited(record, replace, name, environment):
            return SubmitResult(
                False,
                "The audit trail cannot be written right now, so nothing was stored. Try again in a moment.",
                can_retry=True,
            )
        # Claim the link before writing: of two tabs submitting at once, exactly one stores.
        if not await self.links.consume(record, "storing"):
            return SubmitResult(False, "This link has already been used or has expired. Nothing was stored.")
        try:
            if replace:
                info = await self.vault.update(
                    record.user_id, record.bound_to, api_key=api_key, secret_key=secret_key
                )
                await self.vault.record_validation(
                    record.user_id, info.id, account_number=account.account_number, account_status=status
                )
                info = await self.vault.get(record.user_id, str(info.id))
            else:
                info = await self.vault.store(
                    record.user_id,
                    name,
                    environment,
                    api_key,
                    secret_key,
                    account_number=account.account_number,
                    account_status=status,
                    validated=True,
                )
        except (CredentialExists, DuplicateKeyPair) as exc:
            await self.links.finish(record, "failed:duplicate")
            return SubmitResult(False, f"{exc} Nothing was stored.")
        except VaultError as exc:
            reason = "credential_gone" if replace else "vault"
            await self.links.finish(record, f"failed:{reason}")
            logger.warning("Key entry %s could not be stored: %s", record.id, type(exc).__name__)
            return SubmitResult(False, f"The keys could not be stored: {exc}")
        await self.links.finish(record, "stored", str(info.id))
        logger.info("Key entry %s stored credential %s", record.id, info.id)
        verb = "Replaced the keys of" if replace else "Stored"
        return SubmitResult(
            True,
            f"{verb} credential '{info.name}' ({info.environment}). Alpaca accepted it: account "
            f"{info.account_number}, {status}. You can close this tab and go back to your assistant.",
            credential=info,
        )

    async def _audited(self, record: LinkRecord, replace: bool, name: str, environment: str) -> bool:
        from alpaca_vault.audit.chain import CONSOLE

        try:
            await self.audit.append(
                record.user_id,
                "credential.update" if replace else "credential.store",
                CONSOLE,
                credential_id=uuid.UUID(record.bound_to) if replace and record.bound_to else None,
                credential_name=name,
                details={"environment": environment, "changes": "keys entered on the key entry page"},
            )
        except Exception:  # fail closed: no record, no change
            logger.error("Key entry %s: the audit record could not be written; nothing stored", record.id)
            return False
        return True

    async def _refused(self, record: LinkRecord, reason: str, message: str) -> SubmitResult:
        attempts = await self.links.record_failure(record, reason)
        left = MAX_ATTEMPTS - attempts
        if left > 0:
            return SubmitResult(False, f"{message} ({left} more attempt(s) with this link.)", can_retry=True)
        return SubmitResult(
            False,
            f"{message} This link is now used up; ask your assistant for a new one. Nothing was stored.",
        )


__all__ = ["AGENT_REASONS", "KeyEntry", "KeyEntryDesk", "KeyEntryOutcome", "KeyEntryTicket", "LinkError"]

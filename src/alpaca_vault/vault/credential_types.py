"""What the credential service hands out: a user's and a credential's metadata (never a key), an opened
key pair that closes with its block, and a resolved row the gate may open without reading it again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from alpaca_vault.db import Database
from alpaca_vault.db.engine import DataVersion
from alpaca_vault.vault.errors import UnsealedCredentialClosed

Environment = Literal["paper", "live"]


class UserInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    name: str
    is_active: bool
    created_at: datetime


class CredentialInfo(BaseModel):
    """Everything about a credential except its keys."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    provider: str
    environment: Environment
    is_active: bool
    account_number: str | None
    account_status: str | None
    expires_at: datetime | None
    last_validated_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # #10 item 8: "damaged" when its stored keys (or its data key) can never be opened again.
    status: Literal["ok", "damaged"] = "ok"
    problem: str | None = None


class UnsealedCredential:
    """An opened key pair, valid only inside its ``unsealed()`` block."""

    __slots__ = ("_api_key", "_info", "_secret_key")

    def __init__(self, info: CredentialInfo, api_key: SecretStr, secret_key: SecretStr) -> None:
        self._info = info
        self._api_key: SecretStr | None = api_key
        self._secret_key: SecretStr | None = secret_key

    @property
    def info(self) -> CredentialInfo:
        return self._info

    @property
    def api_key(self) -> SecretStr:
        if self._api_key is None:
            raise UnsealedCredentialClosed(self._closed_message())
        return self._api_key

    @property
    def secret_key(self) -> SecretStr:
        if self._secret_key is None:
            raise UnsealedCredentialClosed(self._closed_message())
        return self._secret_key

    def _closed_message(self) -> str:
        return f"Credential '{self._info.name}' was used after its unsealed() block ended."

    def _close(self) -> None:
        self._api_key = None
        self._secret_key = None

    def __repr__(self) -> str:
        state = "open" if self._api_key is not None else "closed"
        return (
            f"UnsealedCredential(name={self._info.name!r}, environment={self._info.environment!r}, {state})"
        )


class ResolvedRow:
    """A credential as :meth:`CredentialService.resolve` read it: its ``info``, and its row (sealed
    values only) for one ``unsealed(..., resolved=)`` that opens it instead of reading it again, as long
    as nothing has been committed to the database since (``Database.data_version``)."""

    __slots__ = ("_row", "_version", "info")

    def __init__(self, info: CredentialInfo, row: Any, version: DataVersion | None) -> None:
        self.info = info
        self._row = row
        self._version = version

    def take_if_current(self, db: Database, user_id: uuid.UUID, ref: str | None) -> Any | None:
        """The row, once, if it is the one ``ref`` names and no commit can have changed it; else None."""
        row, self._row = self._row, None
        if row is None or self._version is None or self.info.user_id != user_id:
            return None
        if ref is None or ref.strip() != str(self.info.id):
            return None
        # The audit trail's own appends (Database.write_inline) do not count: they never touch credentials.
        return row if db.data_version() == self._version else None

    def __repr__(self) -> str:
        return f"ResolvedRow(name={self.info.name!r})"

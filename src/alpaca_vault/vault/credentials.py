"""The credential lifecycle and the only road to plaintext: ``CredentialService.unsealed``."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, cast

from pydantic import SecretStr
from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alpaca_vault.db import Credential, Database, User
from alpaca_vault.db.engine import DataVersion
from alpaca_vault.db.inline import write_in_passing
from alpaca_vault.db.models import ENVIRONMENTS, utcnow
from alpaca_vault.db.rls import lookup_user_id
from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.credential_types import (
    CredentialInfo,
    Environment,
    ResolvedRow,
    UnsealedCredential,
    UserInfo,
)
from alpaca_vault.vault.datakeys import current_data_key, data_keys, undestroyed_data_keys, unwrap
from alpaca_vault.vault.errors import (
    CredentialAmbiguous,
    CredentialDamaged,
    CredentialExists,
    CredentialInactive,
    CredentialNotFound,
    DataKeyDestroyed,
    DuplicateKeyPair,
    InvalidCredentialInput,
    UnsealError,
    VaultError,
)
from alpaca_vault.vault.exposure import register_exposed
from alpaca_vault.vault.key_ids import check_key_environment
from alpaca_vault.vault.keyring import KeyRing

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Alpaca key ids and secrets are short ASCII tokens; anything with spaces or controls is a paste error.
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,256}$")
# last_used_at is kept to this resolution, so repeated opens need no write.
LAST_USED_RESOLUTION = timedelta(seconds=60)
ADD_HINT = "Add one with `alpaca-vault credentials add NAME --environment paper`."


_credentials = cast(Table, Credential.__table__)
# The credential's row and, in the same read, its wrapped data key (envelope form) or NULLs (old form).
_WITH_DATA_KEY = select(
    _credentials,
    data_keys.c.sealed_key.label("dk_sealed_key"),
    data_keys.c.destroyed_at.label("dk_destroyed_at"),
).select_from(
    _credentials.outerjoin(
        data_keys,
        and_(data_keys.c.id == _credentials.c.data_key_id, data_keys.c.user_id == _credentials.c.user_id),
    )
)
# Built once: the open path runs these for every Alpaca call.
_OPEN_BY_NAME = _WITH_DATA_KEY.where(
    _credentials.c.user_id == bindparam("user_id"), _credentials.c.name == bindparam("ref")
)
_OPEN_BY_ID = _WITH_DATA_KEY.where(
    _credentials.c.user_id == bindparam("user_id"), _credentials.c.id == bindparam("ref")
)

# The only active credential (two rows at most: a second one means "ambiguous", handled by the ORM path).
_OPEN_ONLY_ACTIVE = _WITH_DATA_KEY.where(
    _credentials.c.user_id == bindparam("user_id"), _credentials.c.is_active.is_(True)
).limit(2)

_LIST = _WITH_DATA_KEY.where(_credentials.c.user_id == bindparam("user_id")).order_by(_credentials.c.name)

_TOUCH_LAST_USED = (
    update(_credentials)
    .where(_credentials.c.id == bindparam("b_id"), _credentials.c.user_id == bindparam("b_user_id"))
    .values(last_used_at=bindparam("b_now"))
)


def damage_of(row: Any) -> str | None:
    """Why the row's keys can never be opened, from what loading it found (nothing is decrypted).

    The values themselves, and, for rows read with their data key (``_WITH_DATA_KEY``), that key.
    """
    for column in ("api_key", "secret_key"):
        problem = getattr(row, column).problem
        if problem is not None:
            return f"its stored {column.replace('_', ' ')} is not a sealed value ({problem})"
    data_key = getattr(row, "dk_sealed_key", None)
    if data_key is not None and data_key.damaged:
        return f"its user's data key is not a sealed value ({data_key.problem})"
    if row.data_key_id is not None and data_key is None and "dk_sealed_key" in getattr(row, "_fields", ()):
        return "its data key was destroyed" if row.dk_destroyed_at is not None else "its data key is missing"
    return None


def _info(row: Any) -> CredentialInfo:
    """From an ORM ``Credential`` or a Core row of the credentials table."""
    problem = damage_of(row)
    return CredentialInfo(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        provider=row.provider,
        environment=_check_environment(row.environment),
        is_active=row.is_active,
        account_number=row.account_number,
        account_status=row.account_status,
        expires_at=row.expires_at,
        last_validated_at=row.last_validated_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status="ok" if problem is None else "damaged",
        problem=problem,
    )


def _user_info(row: User) -> UserInfo:
    return UserInfo(id=row.id, name=row.name, is_active=row.is_active, created_at=row.created_at)


def _shown(ref: str) -> str:
    """A reference echoed in an error, cut short (a pasted secret must not come back whole)."""
    return ref if len(ref) <= 64 else ref[:16] + "..."


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidCredentialInput(
            "A credential name must be 1-64 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example 'paper-main')."
        )
    try:
        uuid.UUID(name)
    except ValueError:
        return name
    raise InvalidCredentialInput("A credential name cannot look like a credential id (a UUID).")


def _check_environment(environment: str) -> Environment:
    if environment not in ENVIRONMENTS:
        raise InvalidCredentialInput("The environment must be 'paper' or 'live'.")
    return environment  # type: ignore[return-value]


def _check_key(value: SecretStr, what: str) -> str:
    plain = value.get_secret_value().strip()
    if not _KEY_PATTERN.fullmatch(plain):
        raise InvalidCredentialInput(
            f"The {what} is empty or contains spaces or control characters; "
            "paste it exactly as Alpaca shows it."
        )
    return plain


class CredentialService:
    """Store, find, change and open a user's Alpaca credentials."""

    def __init__(self, db: Database, keyring: KeyRing) -> None:
        self._db = db
        self._keyring = keyring

    # users

    async def ensure_user(self, name: str) -> UserInfo:
        """The user with this name, created on first use."""
        found = await self.find_user(name)
        if found is not None:
            return found
        new_id = uuid.uuid4()
        try:
            # Scoped to the new id: under PostgreSQL row-level security a row is only
            # insertable by the transaction whose app.user_id is that row's user.
            async with self._db.session(new_id) as session:
                user = User(id=new_id, name=name, is_active=True, created_at=utcnow())
                session.add(user)
                await session.flush()
                return _user_info(user)
        except IntegrityError:
            # Another process created it between our lookup and our insert.
            found = await self.find_user(name)
            if found is None:
                raise
            return found

    async def find_user(self, name: str) -> UserInfo | None:
        async with self._db.session(readonly=True) as session:
            # A user's id is not known before the lookup; rls.lookup_user_id is the narrow
            # cross-user path (a SECURITY DEFINER function on PostgreSQL).
            user_id = await lookup_user_id(session, name)
        if user_id is None:
            return None
        async with self._db.session(user_id, readonly=True) as session:
            user = await session.get(User, user_id)
            return None if user is None else _user_info(user)

    # credentials

    async def store(
        self,
        user_id: uuid.UUID,
        name: str,
        environment: str,
        api_key: SecretStr,
        secret_key: SecretStr,
        *,
        account_number: str | None = None,
        account_status: str | None = None,
        validated: bool = False,
    ) -> CredentialInfo:
        """Seal and store a new key pair. Refuses a taken name or a key pair already stored."""
        name = _check_name(name)
        env = _check_environment(environment)
        check_key_environment(api_key, env)
        api_plain = _check_key(api_key, "API key id")
        secret_plain = _check_key(secret_key, "secret key")
        credential_id = uuid.uuid4()
        now = utcnow()
        await self._ensure_data_key(user_id)
        try:
            async with self._db.session(user_id) as session:
                await self._refuse_duplicates(session, user_id, name, api_plain, exclude=None)
                data_key = await current_data_key(session, self._keyring, user_id, create=True)
                assert data_key is not None
                row = Credential(
                    id=credential_id,
                    user_id=user_id,
                    name=name,
                    provider="alpaca",
                    environment=env,
                    api_key=data_key.seal(
                        api_plain, AssociatedData.for_credential("api_key", credential_id, user_id)
                    ),
                    secret_key=data_key.seal(
                        secret_plain, AssociatedData.for_credential("secret_key", credential_id, user_id)
                    ),
                    key_fingerprint=data_key.fingerprint(api_plain),
                    data_key_id=data_key.id,
                    account_number=account_number,
                    account_status=account_status,
                    is_active=True,
                    last_validated_at=now if validated else None,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
                return _info(row)
        except IntegrityError:
            # Lost a race with a concurrent store: report it as the same friendly refusal.
            async with self._db.session(user_id, readonly=True) as session:
                await self._refuse_duplicates(session, user_id, name, api_plain, exclude=None)
                if await session.get(User, user_id) is None:
                    raise VaultError("Unknown user; create it first (ensure_user).") from None
            raise VaultError(f"Credential '{name}' could not be stored; try again.") from None
        finally:
            del api_plain, secret_plain

    async def check_new_name(self, user_id: uuid.UUID, name: str) -> str:
        """The name as ``store`` would take it, or the error ``store`` would raise for it (its rule, or a
        name already taken): for a key entry page, asked before the person is asked for keys."""
        name = _check_name(name)
        async with self._db.session(user_id, readonly=True) as session:
            await self._refuse_duplicates(session, user_id, name, None, None)
        return name

    async def _ensure_data_key(self, user_id: uuid.UUID) -> None:
        """Make the user's first data key in a transaction of its own, so concurrent first stores agree."""
        try:
            async with self._db.session(user_id) as session:
                await current_data_key(session, self._keyring, user_id, create=True)
        except IntegrityError:
            pass  # another store made it first (or the user is unknown: the store itself reports that)

    async def _refuse_duplicates(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        name: str | None,
        api_plain: str | None,
        exclude: uuid.UUID | None,
    ) -> None:
        if name is not None:
            query = select(Credential.id).where(Credential.user_id == user_id, Credential.name == name)
            if exclude is not None:
                query = query.where(Credential.id != exclude)
            if await session.scalar(query) is not None:
                raise CredentialExists(f"A credential named '{name}' already exists.")
        if api_plain is not None:
            # Under each data key of the user that can still open values, and under the master keys
            # for values still in the old form.
            candidates = [
                key.fingerprint(api_plain)
                for key in await undestroyed_data_keys(session, self._keyring, user_id)
            ] + self._keyring.fingerprints(api_plain)
            by_key = select(Credential.name).where(
                Credential.user_id == user_id, Credential.key_fingerprint.in_(candidates)
            )
            if exclude is not None:
                by_key = by_key.where(Credential.id != exclude)
            existing = await session.scalar(by_key)
            if existing is not None:
                raise DuplicateKeyPair(
                    f"This Alpaca key pair is already stored as credential '{existing}'. "
                    "Use that credential, or remove it first."
                )

    async def list(self, user_id: uuid.UUID) -> list[CredentialInfo]:
        """Metadata of every credential of the user, by name."""
        # With each row's data key, so a damaged or destroyed one shows (nothing is decrypted).
        async with self._db.connection(user_id, readonly=True) as conn:
            rows = await conn.execute(_LIST, {"user_id": user_id})
            return [_info(row) for row in rows]

    async def get(self, user_id: uuid.UUID, ref: str | None) -> CredentialInfo:
        """By name or id; ``None`` means the user's only active credential."""
        async with self._db.session(user_id, readonly=True) as session:
            return _info(await self._resolve(session, user_id, ref))

    async def resolve(self, user_id: uuid.UUID, ref: str | None) -> ResolvedRow:
        """``get`` on the hot path (the gate, before its hooks): the same answer (``.info``) and the same
        errors, from one Core read (inline on SQLite) instead of an ORM session. Nothing is decrypted.

        Pass it to ``unsealed(..., resolved=)``: on SQLite, if nothing was committed since this read
        (its data_version, read with the row; the audit trail's inline appends do not count), the open
        uses it instead of reading the row again.
        """
        row, version = await self._lookup_for_open(user_id, ref, versioned=True)
        return ResolvedRow(_info(row), row, version)

    async def _resolve(self, session: AsyncSession, user_id: uuid.UUID, ref: str | None) -> Credential:
        mine = select(Credential).where(Credential.user_id == user_id)
        if ref is None or not ref.strip():
            active = list(await session.scalars(mine.where(Credential.is_active).order_by(Credential.name)))
            if len(active) == 1:
                return active[0]
            if len(active) > 1:
                listed = ", ".join(c.name for c in active)
                raise CredentialAmbiguous(f"Several active credentials: {listed}; none was named.")
            names = await self._names(session, user_id)
            if names:
                raise CredentialNotFound(
                    f"No active credential. Inactive: {', '.join(names)}.", inactive=names
                )
            raise CredentialNotFound(f"No credentials are stored yet. {ADD_HINT}")
        ref = ref.strip()
        try:
            by_id: uuid.UUID | None = uuid.UUID(ref)
        except ValueError:
            by_id = None
        # Always filtered by user_id: another user's id behaves exactly like an unknown one.
        query = (
            mine.where(Credential.id == by_id) if by_id is not None else mine.where(Credential.name == ref)
        )
        row = await session.scalar(query)
        if row is not None:
            return row
        names = await self._names(session, user_id)
        if names:
            raise CredentialNotFound(
                f"Credential '{_shown(ref)}' not found. Available: {', '.join(names)}.", available=names
            )
        raise CredentialNotFound(
            f"Credential '{_shown(ref)}' not found. No credentials are stored yet. {ADD_HINT}"
        )

    async def _names(self, session: AsyncSession, user_id: uuid.UUID) -> builtins.list[str]:
        return list(
            await session.scalars(
                select(Credential.name).where(Credential.user_id == user_id).order_by(Credential.name)
            )
        )

    async def update(
        self,
        user_id: uuid.UUID,
        ref: str | None,
        *,
        name: str | None = None,
        is_active: bool | None = None,
        api_key: SecretStr | None = None,
        secret_key: SecretStr | None = None,
    ) -> CredentialInfo:
        """Rename, (de)activate, or replace the key pair (both keys together)."""
        if (api_key is None) != (secret_key is None):
            raise InvalidCredentialInput("Replace the key pair with both the API key id and the secret key.")
        new_name = _check_name(name) if name is not None else None
        api_plain = _check_key(api_key, "API key id") if api_key is not None else None
        secret_plain = _check_key(secret_key, "secret key") if secret_key is not None else None
        try:
            async with self._db.session(user_id) as session:
                row = await self._resolve(session, user_id, ref)
                if api_key is not None:
                    check_key_environment(api_key, row.environment)
                await self._refuse_duplicates(session, user_id, new_name, api_plain, exclude=row.id)
                if new_name is not None:
                    row.name = new_name
                if is_active is not None:
                    row.is_active = is_active
                if api_plain is not None and secret_plain is not None:
                    data_key = await current_data_key(session, self._keyring, user_id, create=True)
                    assert data_key is not None
                    row.api_key = data_key.seal(
                        api_plain, AssociatedData.for_credential("api_key", row.id, user_id)
                    )
                    row.secret_key = data_key.seal(
                        secret_plain, AssociatedData.for_credential("secret_key", row.id, user_id)
                    )
                    row.key_fingerprint = data_key.fingerprint(api_plain)
                    row.data_key_id = data_key.id
                    del data_key
                    # New keys: the old validation says nothing about them.
                    row.last_validated_at = None
                    row.account_number = None
                    row.account_status = None
                row.updated_at = utcnow()
                await session.flush()
                return _info(row)
        except IntegrityError:
            raise VaultError("The credential changed concurrently; try again.") from None
        finally:
            del api_plain, secret_plain

    async def delete(self, user_id: uuid.UUID, ref: str | None) -> CredentialInfo:
        async with self._db.session(user_id) as session:
            row = await self._resolve(session, user_id, ref)
            info = _info(row)
            await session.delete(row)
            return info

    async def record_validation(
        self,
        user_id: uuid.UUID,
        credential_id: uuid.UUID,
        *,
        account_number: str | None,
        account_status: str | None,
    ) -> None:
        """Remember that Alpaca accepted this key pair (and which account it opens)."""
        async with self._db.session(user_id) as session:
            row = await self._resolve(session, user_id, str(credential_id))
            now = utcnow()
            row.account_number = account_number
            row.account_status = account_status
            row.last_validated_at = now
            row.updated_at = now

    def unsealed(
        self, user_id: uuid.UUID, ref: str | None, *, resolved: ResolvedRow | None = None
    ) -> AbstractAsyncContextManager[UnsealedCredential]:
        """Decrypt the pair for the duration of the block; unusable afterwards.

        The database transaction ends before the block starts (no lock is held
        during the Alpaca call). Plaintext lives only in the yielded object and
        the request's exposure set, never on ORM objects. ``resolved``: this
        credential's ``resolve`` just before, reused when still current (see there).
        """
        return self._unsealed(user_id, ref, resolved)

    @asynccontextmanager
    async def _unsealed(
        self, user_id: uuid.UUID, ref: str | None, resolved: ResolvedRow | None = None
    ) -> AsyncIterator[UnsealedCredential]:
        row = resolved.take_if_current(self._db, user_id, ref) if resolved is not None else None
        known = resolved.info if row is not None and resolved is not None else None
        if row is None:
            row, _ = await self._lookup_for_open(user_id, ref)
        if not row.is_active:
            raise CredentialInactive(f"Credential '{row.name}' is deactivated.")
        damaged = damage_of(row)
        if damaged is not None and row.dk_destroyed_at is None:  # a destroyed key has its own error
            raise CredentialDamaged(row.name, damaged)
        reason: str | None = None
        try:
            api_plain, secret_plain = self._open_pair(row, user_id)
        except DataKeyDestroyed:
            raise
        except UnsealError as exc:
            reason = str(exc)
        if reason is not None:
            # Raised here, outside the handler: the original's traceback (whose frames held the
            # unwrapped data key) must not stay reachable as this error's context.
            raise UnsealError(f"Credential '{row.name}' could not be decrypted: {reason}.")
        info = known or _info(row)
        del row
        now = utcnow()
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_RESOLUTION:
            # A write only when the recorded time is stale (most opens stay read-only), and on SQLite only
            # when the file's write lock is free: the call never waits on its own bookkeeping.
            params = {"b_id": info.id, "b_user_id": user_id, "b_now": now}
            if await write_in_passing(self._db, user_id, _TOUCH_LAST_USED, params):
                info = info.model_copy(update={"last_used_at": now})
        register_exposed(api_plain)
        register_exposed(secret_plain)
        opened = UnsealedCredential(info, SecretStr(api_plain), SecretStr(secret_plain))
        del api_plain, secret_plain
        try:
            yield opened
        finally:
            opened._close()

    def _open_pair(self, row: Any, user_id: uuid.UUID) -> tuple[str, str]:
        """Both values of the row: through the user's data key, or (old form) the master key ring."""
        api_aad = AssociatedData.for_credential("api_key", row.id, user_id)
        secret_aad = AssociatedData.for_credential("secret_key", row.id, user_id)
        if row.data_key_id is None:
            return self._keyring.open(row.api_key, api_aad), self._keyring.open(row.secret_key, secret_aad)
        if row.dk_sealed_key is None:
            if row.dk_destroyed_at is not None:
                raise DataKeyDestroyed(row.name, row.dk_destroyed_at)
            raise UnsealError("its data key is missing")
        # Unwrapped for this call only, and dropped before returning (even on an error: a traceback
        # keeps its frames' locals alive).
        data_key = unwrap(self._keyring, row.data_key_id, user_id, row.dk_sealed_key)
        try:
            return data_key.open(row.api_key, api_aad), data_key.open(row.secret_key, secret_aad)
        finally:
            del data_key

    async def _lookup_for_open(
        self, user_id: uuid.UUID, ref: str | None, *, versioned: bool = False
    ) -> tuple[Any, DataVersion | None]:
        """The credential's row as a plain (Core) row: no ORM object, no identity map entry; with
        ``versioned``, and the data version it was read at (when read inline; else None)."""
        params: dict[str, object]
        if ref is not None and ref.strip():
            ref = ref.strip()
            try:
                statement, params = _OPEN_BY_ID, {"user_id": user_id, "ref": uuid.UUID(ref)}
            except ValueError:
                statement, params = _OPEN_BY_NAME, {"user_id": user_id, "ref": ref}
        else:
            statement, params = _OPEN_ONLY_ACTIVE, {"user_id": user_id}
        # The hot path: a Core read, inline on SQLite, else on a read-only connection (no ORM, no session).
        rows: Sequence[Any] | None
        version: DataVersion | None = None
        if versioned:
            read = self._db.read_inline_versioned(statement, params)
            rows, version = read if read is not None else (None, None)
        else:
            rows = self._db.read_inline(statement, params)
        if rows is None:
            async with self._db.connection(user_id, readonly=True) as conn:
                rows = (await conn.execute(statement, params)).fetchall()
        if len(rows) == 1:
            return rows[0], version
        # No reference, or not found: the ORM path builds the helpful error (or picks the only one),
        # then the chosen row is read again with its data key.
        async with self._db.session(user_id, readonly=True) as session:
            chosen = (await self._resolve(session, user_id, ref)).id
        async with self._db.connection(user_id, readonly=True) as conn:
            return (await conn.execute(_OPEN_BY_ID, {"user_id": user_id, "ref": chosen})).one(), None

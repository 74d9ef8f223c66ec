"""The credential service on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from alpaca_vault.db import Credential, Database
from alpaca_vault.vault import (
    CredentialAmbiguous,
    CredentialExists,
    CredentialInactive,
    CredentialNotFound,
    CredentialService,
    DuplicateKeyPair,
    InvalidCredentialInput,
    KeyRing,
    UnsealError,
    UserInfo,
    generate_key,
)
from tests.vault.conftest import key_pair


async def _count(database: Database) -> int:
    async with database.session(readonly=True) as session:
        return int(await session.scalar(select(func.count()).select_from(Credential)) or 0)


async def test_round_trip(service: CredentialService, alice: UserInfo) -> None:
    api, secret = key_pair()
    info = await service.store(alice.id, "paper-main", "paper", api, secret)
    assert (info.name, info.environment, info.is_active, info.user_id) == (
        "paper-main",
        "paper",
        True,
        alice.id,
    )
    async with service.unsealed(alice.id, "paper-main") as opened:
        assert opened.api_key.get_secret_value() == api.get_secret_value()
        assert opened.secret_key.get_secret_value() == secret.get_secret_value()
        assert isinstance(opened.secret_key, SecretStr)
        assert opened.info.id == info.id
    async with service.unsealed(alice.id, str(info.id)) as opened:
        assert opened.api_key.get_secret_value() == api.get_secret_value()


async def test_raw_database_never_holds_plaintext(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    api, secret = key_pair("RAWMARKERAPI")
    await service.store(alice.id, "marked", "paper", api, secret)
    new_api, new_secret = key_pair("RAWMARKERREPLACED")
    await service.update(alice.id, "marked", api_key=new_api, secret_key=new_secret)
    async with database.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM credentials"))).all()
    dump = repr(rows)
    assert "marked" in dump  # the read did see the row
    for plain in (api, secret, new_api, new_secret):
        assert plain.get_secret_value() not in dump
    assert "RAWMARKER" not in dump


async def test_list_and_get_are_metadata_only(service: CredentialService, alice: UserInfo) -> None:
    api, secret = key_pair()
    await service.store(alice.id, "b-live", "live", *key_pair(prefix="AK"))
    await service.store(alice.id, "a-paper", "paper", api, secret)
    listed = await service.list(alice.id)
    assert [c.name for c in listed] == ["a-paper", "b-live"]
    dumped = repr(listed) + str([c.model_dump() for c in listed])
    assert api.get_secret_value() not in dumped and secret.get_secret_value() not in dumped
    assert "api_key" not in dumped and "secret_key" not in dumped
    assert (await service.get(alice.id, "b-live")).environment == "live"


async def test_duplicate_name_is_refused_with_no_half_written_row(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    await service.store(alice.id, "main", "paper", *key_pair())
    with pytest.raises(CredentialExists, match="A credential named 'main' already exists"):
        await service.store(alice.id, "main", "paper", *key_pair())
    assert await _count(database) == 1


async def test_same_key_pair_twice_is_refused_naming_the_existing_credential(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    api, secret = key_pair()
    await service.store(alice.id, "first", "paper", api, secret)
    with pytest.raises(DuplicateKeyPair, match="already stored as credential 'first'") as caught:
        await service.store(alice.id, "second", "paper", api, secret)
    assert api.get_secret_value() not in str(caught.value)
    assert await _count(database) == 1


async def test_same_key_pair_for_another_user_is_allowed(
    service: CredentialService, alice: UserInfo, bob: UserInfo
) -> None:
    api, secret = key_pair()
    await service.store(alice.id, "shared", "paper", api, secret)
    await service.store(bob.id, "shared", "paper", api, secret)
    assert len(await service.list(bob.id)) == 1


async def test_duplicate_key_pair_found_under_an_older_key(database: Database, alice: UserInfo) -> None:
    old_key = generate_key()
    api, secret = key_pair()
    await CredentialService(database, KeyRing.from_string(old_key)).store(
        alice.id, "old", "paper", api, secret
    )
    rotated = KeyRing.from_string(f"{generate_key()},{old_key}")
    with pytest.raises(DuplicateKeyPair, match="'old'"):
        await CredentialService(database, rotated).store(alice.id, "new", "paper", api, secret)


async def test_bad_input_is_refused_clearly(service: CredentialService, alice: UserInfo) -> None:
    with pytest.raises(InvalidCredentialInput, match="environment must be 'paper' or 'live'"):
        await service.store(alice.id, "x", "sandbox", *key_pair())
    with pytest.raises(InvalidCredentialInput, match="credential name"):
        await service.store(alice.id, "has space", "paper", *key_pair())
    with pytest.raises(InvalidCredentialInput, match="secret key is empty"):
        await service.store(alice.id, "x", "paper", SecretStr("PKX"), SecretStr("  "))
    with pytest.raises(InvalidCredentialInput, match="look like a credential id"):
        await service.store(alice.id, str(uuid.uuid4()), "paper", *key_pair())
    assert await service.list(alice.id) == []


async def test_unknown_credential_lists_the_available_names(
    service: CredentialService, alice: UserInfo
) -> None:
    with pytest.raises(CredentialNotFound, match="credentials add NAME --environment paper"):
        await service.get(alice.id, "main")
    await service.store(alice.id, "paper-1", "paper", *key_pair())
    await service.store(alice.id, "paper-2", "paper", *key_pair())
    with pytest.raises(CredentialNotFound) as caught:
        await service.get(alice.id, "main")
    # Facts only: the vault names no MCP tool (tools/errors.py adds the agent's next step).
    assert str(caught.value) == "Credential 'main' not found. Available: paper-1, paper-2."
    assert caught.value.available == ("paper-1", "paper-2")


async def test_no_reference_means_the_only_active_credential(
    service: CredentialService, alice: UserInfo
) -> None:
    with pytest.raises(CredentialNotFound, match="No credentials are stored yet"):
        await service.get(alice.id, None)
    only = await service.store(alice.id, "only", "paper", *key_pair())
    assert (await service.get(alice.id, None)).id == only.id
    await service.store(alice.id, "second", "paper", *key_pair())
    with pytest.raises(CredentialAmbiguous, match="only, second"):
        await service.get(alice.id, None)
    await service.update(alice.id, "only", is_active=False)
    assert (await service.get(alice.id, None)).name == "second"


async def test_a_user_cannot_see_or_open_another_users_credential(
    service: CredentialService, alice: UserInfo, bob: UserInfo
) -> None:
    theirs = await service.store(bob.id, "bobs", "paper", *key_pair())
    await service.store(alice.id, "mine", "paper", *key_pair())
    for ref in ("bobs", str(theirs.id)):
        with pytest.raises(CredentialNotFound) as caught:
            await service.get(alice.id, ref)
        assert "Available: mine." in str(caught.value)
        with pytest.raises(CredentialNotFound):
            async with service.unsealed(alice.id, ref):
                pass
        with pytest.raises(CredentialNotFound):
            await service.delete(alice.id, ref)
        with pytest.raises(CredentialNotFound):
            await service.update(alice.id, ref, is_active=False)
    assert [c.name for c in await service.list(alice.id)] == ["mine"]
    assert (await service.get(bob.id, "bobs")).is_active  # untouched


async def test_update_renames_deactivates_and_replaces_the_pair(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    info = await service.store(alice.id, "old", "paper", *key_pair(), account_number="PA1", validated=True)
    assert info.last_validated_at is not None
    renamed = await service.update(alice.id, "old", name="new")
    assert renamed.id == info.id and renamed.name == "new"
    await service.store(alice.id, "other", "paper", *key_pair())
    with pytest.raises(CredentialExists):
        await service.update(alice.id, "new", name="other")
    await service.update(alice.id, "new", is_active=False)
    with pytest.raises(CredentialInactive, match="'new' is deactivated"):
        async with service.unsealed(alice.id, "new"):
            pass
    await service.update(alice.id, "new", is_active=True)
    api, secret = key_pair()
    replaced = await service.update(alice.id, "new", api_key=api, secret_key=secret)
    assert replaced.last_validated_at is None and replaced.account_number is None
    async with service.unsealed(alice.id, "new") as opened:
        assert opened.secret_key.get_secret_value() == secret.get_secret_value()
    with pytest.raises(InvalidCredentialInput, match="both"):
        await service.update(alice.id, "new", api_key=api)
    assert await _count(database) == 2


async def test_replacing_with_a_pair_stored_elsewhere_is_refused(
    service: CredentialService, alice: UserInfo
) -> None:
    api, secret = key_pair()
    await service.store(alice.id, "a", "paper", api, secret)
    await service.store(alice.id, "b", "paper", *key_pair())
    with pytest.raises(DuplicateKeyPair, match="'a'"):
        await service.update(alice.id, "b", api_key=api, secret_key=secret)
    # Re-entering a credential's own pair is fine.
    await service.update(alice.id, "a", api_key=api, secret_key=secret)


async def test_delete_and_record_validation(service: CredentialService, alice: UserInfo) -> None:
    info = await service.store(alice.id, "gone", "paper", *key_pair())
    await service.record_validation(alice.id, info.id, account_number="PA123", account_status="ACTIVE")
    validated = await service.get(alice.id, "gone")
    assert (validated.account_number, validated.account_status) == ("PA123", "ACTIVE")
    assert validated.last_validated_at is not None
    assert (await service.delete(alice.id, "gone")).id == info.id
    assert await service.list(alice.id) == []


async def test_ensure_user_is_get_or_create(service: CredentialService) -> None:
    first = await service.ensure_user("carol")
    assert (await service.ensure_user("carol")).id == first.id
    assert (await service.find_user("carol")) == first
    assert await service.find_user("nobody") is None
    together = await asyncio.gather(*(service.ensure_user("dave") for _ in range(5)))
    assert len({u.id for u in together}) == 1


async def _swap_column(database: Database, column: str, source: uuid.UUID, target: uuid.UUID) -> None:
    async with database.session() as session:
        token = await session.scalar(text(f"SELECT {column} FROM credentials WHERE id = :id"), {"id": source})
        await session.execute(
            text(f"UPDATE credentials SET {column} = :token WHERE id = :id"), {"token": token, "id": target}
        )


def _db_id(database: Database, value: uuid.UUID) -> object:
    # SQLite stores Uuid as 32 hex characters; PostgreSQL as uuid.
    return value if database.is_postgres else value.hex


async def test_sealed_value_copied_into_another_row_fails_naming_the_credential(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    source = await service.store(alice.id, "source", "paper", *key_pair())
    target = await service.store(alice.id, "target", "paper", *key_pair())
    await _swap_column(database, "secret_key", _db_id(database, source.id), _db_id(database, target.id))  # type: ignore[arg-type]
    with pytest.raises(UnsealError, match="Credential 'target' could not be decrypted") as caught:
        async with service.unsealed(alice.id, "target"):
            pass
    assert "v1." not in str(caught.value)
    async with service.unsealed(alice.id, "source") as opened:  # the original still opens
        assert opened.secret_key.get_secret_value()


async def test_sealed_value_copied_into_another_users_row_fails(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database
) -> None:
    mine = await service.store(alice.id, "mine", "paper", *key_pair())
    theirs = await service.store(bob.id, "theirs", "paper", *key_pair())
    await _swap_column(database, "api_key", _db_id(database, mine.id), _db_id(database, theirs.id))  # type: ignore[arg-type]
    with pytest.raises(UnsealError, match="Credential 'theirs' could not be decrypted"):
        async with service.unsealed(bob.id, "theirs"):
            pass


async def test_wrong_key_ring_gives_an_error_naming_the_credential(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    await service.store(alice.id, "paper-main", "paper", *key_pair())
    stranger = CredentialService(database, KeyRing.from_string(generate_key()))
    with pytest.raises(
        UnsealError, match=r"Credential 'paper-main' could not be decrypted: .*not in the key ring"
    ):
        async with stranger.unsealed(alice.id, "paper-main"):
            pass


async def test_tampered_token_in_the_database_gives_a_clear_error(
    service: CredentialService, alice: UserInfo, database: Database
) -> None:
    info = await service.store(alice.id, "tampered", "paper", *key_pair())
    async with database.session() as session:
        row = await session.get(Credential, info.id)
        assert row is not None
        token = row.secret_key.to_token()
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        await session.execute(
            text("UPDATE credentials SET secret_key = :t WHERE name = 'tampered'"), {"t": flipped}
        )
    with pytest.raises(
        UnsealError, match="Credential 'tampered' could not be decrypted: authentication failed"
    ):
        async with service.unsealed(alice.id, "tampered"):
            pass


async def test_unsealed_records_last_used(service: CredentialService, alice: UserInfo) -> None:
    await service.store(alice.id, "used", "paper", *key_pair())
    assert (await service.get(alice.id, "used")).last_used_at is None
    async with service.unsealed(alice.id, "used"):
        pass
    assert (await service.get(alice.id, "used")).last_used_at is not None


async def test_fifty_concurrent_stores_and_opens(service: CredentialService, alice: UserInfo) -> None:
    pairs = [key_pair() for _ in range(50)]

    async def store_then_open(i: int) -> str:
        await service.store(alice.id, f"c{i}", "paper", *pairs[i])
        async with service.unsealed(alice.id, f"c{i}") as opened:
            return opened.secret_key.get_secret_value()

    opened = await asyncio.gather(*(store_then_open(i) for i in range(50)))
    assert opened == [secret.get_secret_value() for _, secret in pairs]

    async def open_again(i: int) -> str:
        async with service.unsealed(alice.id, f"c{i}") as again:
            return again.api_key.get_secret_value()

    assert await asyncio.gather(*(open_again(i) for i in range(50))) == [
        a.get_secret_value() for a, _ in pairs
    ]


async def test_a_paper_key_id_cannot_be_stored_or_swapped_in_as_live(
    service: CredentialService, alice: UserInfo
) -> None:
    """The vault itself refuses the mix-up, whichever door (tool, CLI, --no-validate) it came through."""
    with pytest.raises(InvalidCredentialInput, match="looks like a paper key"):
        await service.store(alice.id, "oops", "live", SecretStr("PKMIXEDUP00000000001"), SecretStr("s" * 40))
    assert await service.list(alice.id) == []
    live = await service.store(
        alice.id, "live", "live", SecretStr("AKLIVE00000000000001"), SecretStr("s" * 40)
    )
    with pytest.raises(InvalidCredentialInput, match="looks like a paper key"):
        await service.update(
            alice.id, "live", api_key=SecretStr("PKMIXEDUP00000000002"), secret_key=SecretStr("t" * 40)
        )
    assert (await service.get(alice.id, "live")).updated_at == live.updated_at

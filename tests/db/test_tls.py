"""TLS to PostgreSQL, against a real TLS-only cluster with certificates from a CA made in the test.

Attack stopped: the database password and every sealed value crossing the network in cleartext,
or to a server impersonating the database (a certificate from a CA we do not trust).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from alpaca_vault.db import Database, DatabaseError
from alpaca_vault.db.engine import ConnectionSettings
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.vault import CredentialService, KeyRing, generate_key
from tests.cli.conftest import Cli
from tests.fixtures.postgres_tls import TlsPostgres


def _settings(tls: TlsPostgres, **overrides: object) -> ConnectionSettings:
    values: dict[str, object] = {
        "sslmode": "verify-full",
        "ca_file": tls.ca_file,
        "cert_file": tls.client_cert,
        "key_file": tls.client_key,
    }
    values.update(overrides)
    return ConnectionSettings(**values)  # type: ignore[arg-type]


async def _ssl_in_use(db: Database) -> bool:
    try:
        async with db.engine.connect() as conn:
            query = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return bool((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_verify_full_with_our_ca_and_client_certificate_connects_over_tls(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    db = Database.create(tls_postgres.url(), _settings(tls_postgres))
    assert db.sslmode == "verify-full"
    try:
        await upgrade_database(db)
        # The whole vault over that connection: store and open through a data key.
        service = CredentialService(db, KeyRing.load(generate_key(), tmp_path))
        user = await service.ensure_user("tls")
        await service.store(user.id, "over-tls", "paper", SecretStr("PKTLS0000000001"), SecretStr("s" * 40))
        async with service.unsealed(user.id, "over-tls") as opened:
            assert opened.api_key.get_secret_value() == "PKTLS0000000001"
    finally:
        await db.dispose()
    assert await _ssl_in_use(Database.create(tls_postgres.url(), _settings(tls_postgres))) is True


@pytest.mark.postgres
async def test_a_certificate_from_another_ca_is_refused_with_a_clear_error(tls_postgres: TlsPostgres) -> None:
    db = Database.create(tls_postgres.url(), _settings(tls_postgres, ca_file=tls_postgres.wrong_ca_file))
    with pytest.raises(DatabaseError) as caught:
        await _ssl_in_use(db)
    message = str(caught.value)
    assert "The database server's TLS certificate was refused (sslmode=verify-full)" in message
    assert f"the CA bundle {tls_postgres.wrong_ca_file}" in message
    assert tls_postgres.password not in message


@pytest.mark.postgres
async def test_a_plain_connection_to_a_tls_only_server_fails_clearly(tls_postgres: TlsPostgres) -> None:
    db = Database.create(tls_postgres.url(), ConnectionSettings(sslmode="disable"))
    with pytest.raises(
        DatabaseError, match="accepts only TLS connections, and ALPACA_VAULT_DATABASE_SSLMODE is disable"
    ):
        await _ssl_in_use(db)


@pytest.mark.postgres
async def test_without_a_client_certificate_the_server_refuses_clearly(tls_postgres: TlsPostgres) -> None:
    db = Database.create(tls_postgres.url(), _settings(tls_postgres, cert_file=None, key_file=None))
    with pytest.raises(
        DatabaseError, match=r"requires a client certificate .*ALPACA_VAULT_DATABASE_SSL_CERT"
    ):
        await _ssl_in_use(db)


def test_cleartext_credentials_to_a_remote_host_are_refused_before_any_connection() -> None:
    remote = "postgresql+asyncpg://app:hunter2-db-password@db.example.com/vault"
    with pytest.raises(DatabaseError) as caught:
        Database.create(remote, ConnectionSettings(sslmode="disable"))
    assert "Refusing to send the database credentials in cleartext to db.example.com" in str(caught.value)
    assert "ALPACA_VAULT_DATABASE_ALLOW_PLAINTEXT=true" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(DatabaseError, match="cleartext"):
        Database.create(remote + "?sslmode=disable")  # the same when the URL says it
    # The explicit opt-out; and the defaults: verify-full remote, disable on loopback and sockets.
    assert (
        Database.create(remote, ConnectionSettings(sslmode="disable", allow_plaintext=True)).sslmode
        == "disable"
    )
    assert Database.create(remote).sslmode == "verify-full"
    assert Database.create(remote + "?sslmode=require").sslmode == "require"
    assert Database.create("postgresql+asyncpg://u:p@127.0.0.1/x").sslmode == "disable"
    assert Database.create("postgresql+asyncpg://u:p@/x?host=/run/postgresql").sslmode == "disable"
    with pytest.raises(
        DatabaseError, match="sslmode=require but ALPACA_VAULT_DATABASE_SSLMODE is verify-full"
    ):
        Database.create(remote + "?sslmode=require", ConnectionSettings(sslmode="verify-full"))
    with pytest.raises(DatabaseError, match=r"CA bundle .* cannot be read"):
        Database.create(remote, ConnectionSettings(ca_file=Path("/nonexistent/ca.pem")))


def test_the_cli_refuses_cleartext_to_a_remote_database_in_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", "postgresql://app:hunter2-db-password@db.example.com/vault")
    result = cli("users", "list", ALPACA_VAULT_DATABASE_SSLMODE="disable")
    assert result.returncode == 1
    assert "Refusing to send the database credentials in cleartext to db.example.com" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
    bad = cli("users", "list", ALPACA_VAULT_DATABASE_SSL_CERT="/tmp/client.pem")
    assert bad.returncode == 2 and "ALPACA_VAULT_DATABASE_SSL_KEY" in bad.stderr

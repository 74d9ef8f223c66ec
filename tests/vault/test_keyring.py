"""Master keys: encoding, key file safety, AEAD behaviour."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from alpaca_vault.db.sealed import SealedValue
from alpaca_vault.vault import AssociatedData, KeyRing, KeyRingError, UnsealError, generate_key

AAD = AssociatedData.for_credential("secret_key", uuid.uuid4(), uuid.uuid4())


def test_generated_keys_are_base64url_32_bytes_and_distinct() -> None:
    a, b = generate_key(), generate_key()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", a)
    assert a != b


def test_kid_is_derived_from_the_key_and_stable() -> None:
    key = generate_key()
    ring1, ring2 = KeyRing.from_string(key), KeyRing.from_string(key)
    assert re.fullmatch(r"[0-9a-f]{8}", ring1.primary_kid)
    assert ring1.primary_kid == ring2.primary_kid
    assert KeyRing.from_string(generate_key()).primary_kid != ring1.primary_kid


def test_explicit_kid_form_and_primary_first() -> None:
    k1, k2 = generate_key(), generate_key()
    ring = KeyRing.from_string(f"2026-b:{k2}, 2026-a:{k1}")
    assert ring.primary_kid == "2026-b"
    assert ring.kids == ["2026-b", "2026-a"]


@pytest.mark.parametrize("bad", ["not-a-key", "c2hvcnQ", "x" * 43 + "!", "bad.kid:" + "A" * 43])
def test_malformed_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(KeyRingError, match="key #2") as caught:
        KeyRing.from_string(f"{generate_key()},{bad}")
    assert bad not in str(caught.value)


def test_duplicate_key_is_refused() -> None:
    key = generate_key()
    with pytest.raises(KeyRingError, match="twice"):
        KeyRing.from_string(f"{key},{key}")


def test_key_file_is_created_0600_in_a_0700_directory_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ring = KeyRing.load(None, data_dir, create_key_file=True)
    key_file = data_dir / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert KeyRing.load("", data_dir).primary_kid == ring.primary_kid
    assert list(data_dir.iterdir()) == [key_file]  # no temporary file left behind


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    KeyRing.load(None, tmp_path, create_key_file=True)
    key_file = tmp_path / "master.key"
    key_file.chmod(mode)
    with pytest.raises(KeyRingError, match=rf"chmod 600 {re.escape(str(key_file))}"):
        KeyRing.load(None, tmp_path)


def test_without_keys_a_missing_key_file_is_not_created_unless_allowed(tmp_path: Path) -> None:
    # A shared database: a key made on this host would seal what the other replicas cannot open.
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(None, tmp_path)
    message = str(caught.value)
    assert "set ALPACA_VAULT_ENCRYPTION_KEYS to the same keys on every replica" in message
    assert "`alpaca-vault keys generate` makes one" in message
    assert list(tmp_path.iterdir()) == []


def test_an_existing_key_file_is_used_without_permission_to_create(tmp_path: Path) -> None:
    made = KeyRing.load(None, tmp_path, create_key_file=True)
    assert KeyRing.load(None, tmp_path).primary_kid == made.primary_kid


def test_encryption_keys_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    key = generate_key()
    ring = KeyRing.load(key, tmp_path)
    assert ring.primary_kid == KeyRing.from_string(key).primary_kid
    assert not (tmp_path / "master.key").exists()


def test_same_value_sealed_twice_gives_different_tokens() -> None:
    ring = KeyRing.from_string(generate_key())
    a, b = ring.seal("PKSAMEVALUE", AAD), ring.seal("PKSAMEVALUE", AAD)
    assert a.to_token() != b.to_token()
    assert a.nonce != b.nonce
    assert ring.open(a, AAD) == ring.open(b, AAD) == "PKSAMEVALUE"


def test_token_names_its_key_and_holds_no_plaintext() -> None:
    ring = KeyRing.from_string(generate_key())
    token = ring.seal("PKPLAINMARKER", AAD).to_token()
    assert token.startswith(f"v1.{ring.primary_kid}.")
    assert "PKPLAINMARKER" not in token


def test_wrong_key_gives_a_clear_error() -> None:
    sealed = KeyRing.from_string(generate_key()).seal("secret", AAD)
    other = KeyRing.from_string(f"{sealed.kid}:{generate_key()}")
    with pytest.raises(UnsealError, match="authentication failed") as caught:
        other.open(sealed, AAD)
    assert "secret" not in str(caught.value).replace("secret_key", "")


def test_unknown_kid_says_which_key_is_missing() -> None:
    sealed = KeyRing.from_string(generate_key()).seal("secret", AAD)
    with pytest.raises(UnsealError, match=f"sealed under key '{sealed.kid}', which is not in the key ring"):
        KeyRing.from_string(generate_key()).open(sealed, AAD)


def test_tampered_token_gives_a_clear_error() -> None:
    ring = KeyRing.from_string(generate_key())
    sealed = ring.seal("secret", AAD)
    flipped = bytearray(sealed.payload)
    flipped[-1] ^= 0x01
    with pytest.raises(UnsealError, match="authentication failed"):
        ring.open(SealedValue(sealed.version, sealed.kid, bytes(flipped)), AAD)


@pytest.mark.parametrize(
    "elsewhere",
    [
        AssociatedData.for_credential("secret_key", uuid.uuid4(), AAD.user_id),  # another row
        AssociatedData.for_credential("secret_key", AAD.row_id, uuid.uuid4()),  # another user
        AssociatedData.for_credential("api_key", AAD.row_id, AAD.user_id),  # another column
        AssociatedData("users", "secret_key", AAD.row_id, AAD.user_id),  # another table
        AssociatedData("credentials", "secret_key", AAD.row_id, AAD.user_id, purpose="other"),
    ],
    ids=["row", "user", "column", "table", "purpose"],
)
def test_value_opened_anywhere_else_fails(elsewhere: AssociatedData) -> None:
    ring = KeyRing.from_string(generate_key())
    sealed = ring.seal("secret", AAD)
    with pytest.raises(UnsealError):
        ring.open(sealed, elsewhere)


def test_repr_never_shows_key_material() -> None:
    key = generate_key()
    ring = KeyRing.from_string(key)
    assert key not in repr(ring)
    assert "primary_kid" in repr(ring)

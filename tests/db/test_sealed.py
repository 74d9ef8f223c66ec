"""The sealed token format: parsed and validated, never decrypted."""

from __future__ import annotations

import pytest

from alpaca_vault.db.sealed import MalformedToken, SealedValue


def test_round_trip_through_token_text() -> None:
    value = SealedValue("v1", "a1b2c3d4", bytes(range(40)))
    token = value.to_token()
    assert token.startswith("v1.a1b2c3d4.")
    assert "=" not in token
    assert SealedValue.parse(token) == value


@pytest.mark.parametrize(
    "token",
    [
        "my-plaintext-secret",
        "v2.a1b2c3d4.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.bad.kid.AAAA",
        "v1.a1b2c3d4.AAAA",
        "v1.a1b2c3d4.not*base64*",
        "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_tokens_are_refused_without_echoing_them(token: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        SealedValue.parse(token)
    assert token not in str(caught.value)


def test_repr_hides_the_payload() -> None:
    value = SealedValue("v1", "a1b2c3d4", b"\xff" * 40)
    assert "payload=<40 bytes>" in repr(value)
    assert value.to_token().split(".")[2] not in repr(value)

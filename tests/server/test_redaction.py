"""The scrubbers on their own: log records, tool results, pydantic's echoed inputs."""

from __future__ import annotations

import logging

import pytest

from alpaca_vault.server.logs import configure_logging
from alpaca_vault.server.middleware import strip_input_values
from alpaca_vault.server.redaction import REDACTED, scrub_known, scrub_text
from alpaca_vault.vault.exposure import exposure_scope, register_exposed


def test_known_secrets_are_replaced_in_nested_results() -> None:
    secret = "s3cr3t-value-123"
    result = {"content": [{"text": f"key {secret}!"}], "nested": [(secret, 1)], secret: "as a key"}
    cleaned = scrub_known(result, frozenset({secret}))
    assert secret not in repr(cleaned)
    assert cleaned["content"][0]["text"] == f"key {REDACTED}!"


def test_secret_shaped_text_is_masked_in_logs_even_when_unknown() -> None:
    line = (
        "headers={'APCA-API-KEY-ID': 'PKABCDEFGHIJKLMNOPQR', 'APCA-API-SECRET-KEY': 'x'} "
        "Authorization: Bearer avt_abcdefghijklmnopqrstuvwxyz012345 "
        "token=avc_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 "
        "secret=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCD"
    )
    masked = scrub_text(line)
    assert "PKABCDEFGHIJKLMNOPQR" not in masked
    assert "avt_abcdefghijklmnopqrstuvwxyz012345" not in masked
    assert "avc_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" not in masked  # a console sign-in token, outside a header
    assert "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCD" not in masked
    # Ordinary words and ids survive.
    assert scrub_text("bearer token required for order 3f1c2a9e-1b2c-4d5e-8f90-123456789abc") == (
        "bearer token required for order 3f1c2a9e-1b2c-4d5e-8f90-123456789abc"
    )


def test_pydantic_input_values_are_removed_from_error_text() -> None:
    text = (
        "1 validation error for store_credentialArguments\nname\n  Field required "
        "[type=missing, input_value={'api_key': 'PKAAAA...', 'secret_key': 'abc...xyz'}, input_type=dict]\n"
        "    For further information visit https://errors.pydantic.dev/2.14/v/missing"
    )
    stripped = strip_input_values(text)
    assert "input_value" not in stripped and "abc" not in stripped
    assert "Field required" in stripped and "errors.pydantic.dev" not in stripped


def test_log_records_are_scrubbed_when_created(capsys: pytest.CaptureFixture[str]) -> None:
    """Attack stopped: a secret logged (in the message, an argument or a traceback) at any level."""
    configure_logging("DEBUG")
    logger = logging.getLogger("alpaca_vault.test.redaction")
    secret = "plain-lowercase-secret-value"
    with exposure_scope():
        register_exposed(secret)
        logger.debug("debug %s", secret)
        logger.info("info with arg", extra={})
        try:
            raise ValueError(f"boom {secret}")
        except ValueError:
            logger.exception("failed")
    captured = capsys.readouterr()
    assert secret not in captured.err
    assert "debug [REDACTED]" in captured.err
    assert "boom [REDACTED]" in captured.err  # the traceback was scrubbed too
    assert captured.out == ""  # stdout belongs to the stdio transport


@pytest.mark.parametrize(
    "path",
    [
        "/connect/{secret}",
        "/connect/approve/{secret}",
        "/console/sign-in/{secret}",
        "/connect/approve/{secret}/",
    ],
)
def test_attack_reading_a_one_time_link_from_the_access_log_finds_it_masked(path: str) -> None:
    """Whoever reads the logs must not be able to approve a held order or enter keys with the link.

    Link secrets are url-safe base64 and often hold '-' and '_', which the generic long-secret mask
    does not catch; an approval link has a segment between /connect/ and the secret.
    """
    secret = "Ab-_" * 10 + "x_Z"  # 43 characters, with the '-' and '_' that defeat the generic masks
    line = f'127.0.0.1:5555 - "GET {path.format(secret=secret)} HTTP/1.1" 200'
    scrubbed = scrub_text(line)
    assert secret not in scrubbed and secret[:20] not in scrubbed
    assert REDACTED in scrubbed

"""What an Alpaca key id says about itself. Light on purpose: tools/ and the CLI import it at start."""

from __future__ import annotations

from pydantic import SecretStr

from alpaca_vault.vault.errors import InvalidCredentialInput

# Alpaca key ids start PK (paper) or AK (live); other shapes (tests, future formats) pass.
_KEY_PREFIX_ENVIRONMENT = {"PK": "paper", "AK": "live"}


def check_key_environment(api_key: SecretStr, environment: str) -> None:
    """Refuse a paper key id stored as live, or the reverse, before anything else happens."""
    looks_like = _KEY_PREFIX_ENVIRONMENT.get(api_key.get_secret_value().strip()[:2].upper())
    if looks_like is not None and looks_like != environment:
        prefix = "PK" if looks_like == "paper" else "AK"
        raise InvalidCredentialInput(
            f"That key id looks like a {looks_like} key ({looks_like} key ids start with '{prefix}'), "
            f"but the environment given is '{environment}'. Store it as {looks_like}, or check that you "
            "copied the right key. Nothing was stored."
        )

"""What a tool call does to the world, one member per kind of effect.

Each tool's registry row declares its intent; the gate, the trading guard and the audit trail key
their decisions on it, never on a tool's name or an English description.
"""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    """The effect of one tool call."""

    READ = "read"  # reads from Alpaca or the vault; changes nothing
    PLACE = "place"  # submits a new order
    REPLACE = "replace"  # replaces (modifies) an open order
    CANCEL = "cancel"  # cancels one open order
    CANCEL_ALL = "cancel_all"  # cancels every open order of the account
    CLOSE = "close"  # closes (liquidates) one position
    CLOSE_ALL = "close_all"  # closes every position
    EXERCISE = "exercise"  # exercises an option position (or declines to)
    CONFIGURE_ACCOUNT = "configure_account"  # changes the account's configuration at Alpaca
    CHANGE_WATCHLIST = "change_watchlist"  # creates, changes or deletes a watchlist
    LOCATE = "locate"  # requests a short-sale locate (shares to borrow; Alpaca charges its fee)
    CREDENTIAL_STORE = "credential_store"  # stores a new key pair in the vault
    CREDENTIAL_UPDATE = "credential_update"  # renames, (de)activates or re-keys a stored credential
    CREDENTIAL_DELETE = "credential_delete"  # deletes a stored credential
    CREDENTIAL_VALIDATE = "credential_validate"  # checks a stored key pair with Alpaca, records the result

    @property
    def changes_alpaca_state(self) -> bool:
        """True when the call changes something at Alpaca (orders, positions, account, watchlists).

        These are the intents the live-trading wall refuses for a live credential unless the
        operator allows live trading, and the ones the trading guard checks.
        """
        return self in _CHANGES_ALPACA_STATE

    @property
    def changes_vault(self) -> bool:
        """True when the call changes what the vault stores (a credential's row)."""
        return self in _CHANGES_VAULT

    @property
    def is_order(self) -> bool:
        """True when the call submits an order under a ``client_order_id`` (a durable intent can hold it)."""
        return self in (Intent.PLACE, Intent.REPLACE)


_CHANGES_ALPACA_STATE = frozenset(
    {
        Intent.PLACE,
        Intent.REPLACE,
        Intent.CANCEL,
        Intent.CANCEL_ALL,
        Intent.CLOSE,
        Intent.CLOSE_ALL,
        Intent.EXERCISE,
        Intent.CONFIGURE_ACCOUNT,
        Intent.CHANGE_WATCHLIST,
        Intent.LOCATE,
    }
)
_CHANGES_VAULT = frozenset(
    {
        Intent.CREDENTIAL_STORE,
        Intent.CREDENTIAL_UPDATE,
        Intent.CREDENTIAL_DELETE,
        Intent.CREDENTIAL_VALIDATE,  # records the account number, status and validation time
    }
)

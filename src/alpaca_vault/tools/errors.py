"""One voice: every error text an agent reads, in one table keyed by error class.

Lower rooms (broker, vault, guard, audit) raise errors that carry facts (status, Alpaca's code and
message, the credential's name, the names available) and never name an MCP tool. This table turns
each class into what the agent reads: what happened, then its next step, naming our tools. A class
is looked up along its MRO, so a subclass without a row of its own reads as its parent.

Anything raised that has no row here is a bug, not advice: it is logged with its (scrubbed)
traceback and the agent gets a generic internal-error text. Only errors we raise on purpose have
rows; a bare ``ValueError`` or ``KeyError`` from a programming mistake never reaches the agent as
if it were a hint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from alpaca_vault.audit.errors import AuditUnavailable
from alpaca_vault.broker import errors as broker
from alpaca_vault.guard import confirm
from alpaca_vault.guard import errors as guard
from alpaca_vault.guard.intents import Intent
from alpaca_vault.tools import voice
from alpaca_vault.tools.params import InvalidArgument
from alpaca_vault.tools.voice import quoted
from alpaca_vault.vault import errors as vault

if TYPE_CHECKING:
    from alpaca_vault.tools.gate import ToolCall

logger = logging.getLogger("alpaca_vault.tools")

E = TypeVar("E", bound=BaseException)
Text = Callable[[Any, "ToolCall | None"], str]


# What each intent does, as a phrase: "alpaca-vault will not <phrase>".
_INTENT_PHRASES: dict[Intent, str] = {
    Intent.READ: "read it",
    Intent.PLACE: "place an order",
    Intent.REPLACE: "replace an order",
    Intent.CANCEL: "cancel an order",
    Intent.CANCEL_ALL: "cancel orders",
    Intent.CLOSE: "close a position",
    Intent.CLOSE_ALL: "close positions",
    Intent.EXERCISE: "exercise an option",
    Intent.CONFIGURE_ACCOUNT: "change the account's configuration",
    Intent.CHANGE_WATCHLIST: "change a watchlist",
    Intent.LOCATE: "request a short-sale locate",
    Intent.CREDENTIAL_STORE: "store the credential",
    Intent.CREDENTIAL_UPDATE: "update the credential",
    Intent.CREDENTIAL_DELETE: "delete the credential",
    Intent.CREDENTIAL_VALIDATE: "validate the credential",
}


def intent_phrase(intent: Intent) -> str:
    return _INTENT_PHRASES[intent]


class NoMarketData(Exception):
    """Alpaca's multi-symbol answer had no entry for the symbol asked for."""

    def __init__(self, symbol: str, what: str) -> None:
        super().__init__(f"no {what} for {symbol}")
        self.symbol = symbol
        self.what = what


class UnknownAsset(Exception):
    """Alpaca has no asset under this symbol (its 404)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no asset {symbol}")
        self.symbol = symbol


class AccountNotActive(Exception):
    """A key pair's Alpaca account is not ACTIVE, so it cannot trade."""

    def __init__(self, account_number: str, status: str) -> None:
        super().__init__(f"account {account_number} is {status}")
        self.account_number = account_number
        self.status = status


class OrderDeadlineExceeded(broker.OrderOutcomeUnknown):
    """alpaca_place_order ran out of its time (ORDER_DEADLINE) before Alpaca's answer was known.

    An outcome-unknown error (the order may exist): the audit hook settles its intent as unknown and the
    reconciler looks it up by ``client_order_id`` later.
    """

    def __init__(self, client_order_id: str, seconds: float, intent: Any) -> None:
        super().__init__(
            f"the order call stopped waiting for Alpaca after {seconds:g}s", client_order_id=client_order_id
        )
        self.seconds = seconds
        self.intent_id = str(intent.id) if intent is not None else None


class LocateOutcomeUnknown(Exception):
    """A locate request was sent and no answer came: it may be in place, its fee charged."""

    def __init__(self, request_id: str) -> None:
        super().__init__("the locate request got no answer")
        self.request_id = request_id


class KeyPairRefused(Exception):
    """Alpaca refused a key pair given to store (its 401 on the environment's endpoint)."""

    def __init__(self, environment: str) -> None:
        super().__init__(f"key pair refused on the {environment} endpoint")
        self.environment = environment


# ---------------------------------------------------------------------------------------------------------
# Helpers the texts share


def _who(call: ToolCall | None) -> str:
    return f"credential '{call.credential.name}'" if call and call.credential else "this credential"


def _detail(exc: broker.AlpacaError) -> str:
    """The error's facts in our words: HTTP status and Alpaca's code, and the message when it is ours.

    Alpaca's own message is third-party text: never said here, only quoted at the end (``_quote``).
    """
    facts = [f"HTTP {exc.status}"] if exc.status is not None else []
    if exc.code is not None:
        facts.append(f"Alpaca code {exc.code}")
    if not exc.alpaca_text:
        facts.append(exc.message)
    return ", ".join(facts) or "no details"


def _quote(exc: broker.AlpacaError) -> str:
    """Alpaca's message, when there is one, quoted after the label that marks it as data."""
    return quoted(exc.message) if exc.alpaca_text else ""


def _nothing_done(call: ToolCall | None) -> str:
    """For a credential being stored or re-keyed: say plainly that the vault is unchanged."""
    if call is None:
        return ""
    if call.intent is Intent.CREDENTIAL_STORE:
        return " Nothing was stored."
    if call.intent is Intent.CREDENTIAL_UPDATE:
        return " Nothing was changed."
    return ""


def _changes_state(call: ToolCall | None) -> bool:
    return call is not None and call.intent.changes_alpaca_state


def validation_message(exc: ValidationError) -> str:
    """Pydantic's errors without the input values (which may be secrets)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"])  # empty for a check across several arguments
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "Invalid arguments: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Broker errors: Alpaca's facts, our next step


def _auth(exc: broker.AlpacaAuthError, call: ToolCall | None) -> str:
    return (
        f"Alpaca rejected the key pair of {_who(call)} ({_detail(exc)}). The keys may be revoked, "
        "mistyped, or for the other environment (paper vs live). Store new keys with update_credential or "
        "`alpaca-vault credentials add`, then validate_credential." + _nothing_done(call) + _quote(exc)
    )


def _forbidden(exc: broker.AlpacaForbidden, call: ToolCall | None) -> str:
    return (
        f"Alpaca refused the request for {_who(call)} ({_detail(exc)}). Check alpaca_get_account "
        "(buying power, trading_blocked) and alpaca_get_positions (quantity available) before trying again."
        + _quote(exc)
    )


def _insufficient_qty(exc: broker.InsufficientQty, call: ToolCall | None) -> str:
    # Only parsed numbers, a checked symbol and checked order ids reach this text: Alpaca's facts, our words.
    what = exc.symbol or "shares"
    available = "" if exc.available is None else f" Available to sell now: {exc.available}."
    if not exc.held_for_orders:
        held = "" if exc.existing_qty is None else f" The position holds {exc.existing_qty}."
        return (
            f"Alpaca refused the order for {_who(call)} ({_detail(exc)}): the position holds less "
            f"than the order asks for.{held}{available} alpaca_get_positions shows what is held; sell at most that."
            + _quote(exc)
        )
    orders = f" ({', '.join(exc.related_orders)})" if exc.related_orders else ""
    of = f" of the {exc.existing_qty} held" if exc.existing_qty is not None else ""
    first = exc.related_orders[0] if exc.related_orders else "ID"
    return (
        f"Alpaca refused the order for {_who(call)} ({_detail(exc)}): {exc.held_for_orders} {what}{of} are held for "
        f"open orders{orders}, such as a bracket's take-profit and stop-loss legs.{available} "
        f"Cancel them first with alpaca_cancel_order(order_id='{first}') or alpaca_cancel_all_orders, then "
        "sell; or sell no more than is available; or leave the exits to close the position. "
        "alpaca_list_orders shows them." + _quote(exc)
    )


def _not_found(exc: broker.AlpacaNotFound, call: ToolCall | None) -> str:
    return (
        f"Alpaca found nothing for that request ({_detail(exc)}). Check the id or symbol: "
        "alpaca_list_orders(status='all'), alpaca_get_positions and alpaca_get_asset show what exists."
        + _quote(exc)
    )


def _rejected(exc: broker.AlpacaRejected, call: ToolCall | None) -> str:
    if not exc.alpaca_text:  # the broker's own account (e.g. an id Alpaca says is taken): our words
        return f"Alpaca rejected the request ({_detail(exc)})."
    if "client_order_id" in exc.message:  # a reused id
        return (
            f"Alpaca rejected the request ({_detail(exc)}): its message is about the client_order_id, which "
            "must be unique. Choose a new client_order_id, or omit it to get a fresh one." + _quote(exc)
        )
    if call is not None and call.intent in (Intent.REPLACE, Intent.CANCEL):
        # Actions on an existing order: Alpaca's 422 then almost always means the order is no longer open.
        return (
            f"Alpaca rejected the request ({_detail(exc)}). The order is probably no longer open "
            "(filled, canceled, expired or already replaced): check it with alpaca_get_order." + _quote(exc)
        )
    return (
        f"Alpaca rejected the request ({_detail(exc)}). Change what Alpaca's message (below) names and "
        "try again." + _quote(exc)
    )


def _client_order_id_conflict(exc: broker.ClientOrderIdConflict, call: ToolCall | None) -> str:
    # Facts only: the order holding the id is Alpaca's (its fields are third-party text), so it is named by
    # its id and the request fields it differs in, and alpaca_get_order shows the rest.
    differs = f"; it differs in {', '.join(exc.differences)}" if exc.differences else ""
    return (
        f"client_order_id '{exc.client_order_id}' already belongs to a different order (order "
        f"{voice.ident(exc.existing_order_id)}{differs}); {exc.untouched}. Choose a new client_order_id, or "
        f"omit it to get a fresh one; alpaca_get_order(client_order_id='{exc.client_order_id}') shows the "
        "existing order."
    )


def _request_error(exc: broker.AlpacaRequestError, call: ToolCall | None) -> str:
    if _changes_state(call) and exc.request_sent:
        assert call is not None
        return (
            f"{exc.message}, so whether alpaca-vault managed to {intent_phrase(call.intent)} is unknown. "
            "Check with alpaca_list_orders(status='all') and alpaca_get_positions before repeating it."
        )
    return (
        f"{exc.message}. This is a problem of the server, not of the request: tell the operator (the "
        "server's Alpaca URLs ALPACA_VAULT_PAPER_URL / LIVE_URL / DATA_URL may be malformed)."
        + _nothing_done(call)
    )


def _bad_request(exc: broker.AlpacaBadRequest, call: ToolCall | None) -> str:
    return (
        f"Alpaca could not read the request ({_detail(exc)}). Check the arguments' names and "
        "formats against the tool's input schema." + _nothing_done(call) + _quote(exc)
    )


def _rate_limited(exc: broker.AlpacaRateLimited, call: ToolCall | None) -> str:
    wait = f"Wait {exc.retry_after:g} s" if exc.retry_after else "Wait a little"
    return (
        f"Alpaca's rate limit was reached for {_who(call)} ({_detail(exc)}). {wait} and try again."
        + _quote(exc)
    )


def _budget_exhausted(exc: broker.RequestBudgetExhausted, call: ToolCall | None) -> str:
    shared = " (shared by every server replica)" if exc.shared else ""
    again = f"Try again in about {exc.retry_after:g} s" if exc.retry_after else "Wait a minute"
    return (
        f"alpaca-vault's request budget{shared} for {_who(call)} ({exc.per_minute} Alpaca requests per "
        "window: ALPACA_VAULT_RATE_LIMIT_PER_MINUTE, ALPACA_VAULT_RATE_LIMIT_WINDOW_SECONDS) had no room within "
        f"{exc.waited:g} s, the longest a call may wait (ALPACA_VAULT_RATE_LIMIT_MAX_WAIT), so this call was "
        f"refused and nothing was sent to Alpaca. {again}, or make fewer calls with this credential."
    )


def _unavailable(exc: broker.AlpacaUnavailable, call: ToolCall | None) -> str:
    if not exc.alpaca_text:  # the broker's own account of what happened (e.g. a lookup proved nothing placed)
        return f"{exc.message}."
    return (
        f"Alpaca is unavailable right now ({_detail(exc)}); retries did not help. Try again shortly."
        + _quote(exc)
    )


def _no_answer(exc: broker.AlpacaTimeout | broker.AlpacaConnectionError, call: ToolCall | None) -> str:
    if _changes_state(call) and exc.request_sent:
        assert call is not None
        return (
            f"{exc.message}, even after retries, so whether alpaca-vault managed to "
            f"{intent_phrase(call.intent)} is unknown. Check with alpaca_get_order or "
            "alpaca_list_orders(status='all') before repeating it."
        )
    return (
        f"{exc.message}, even after retries. Try again shortly; if it persists, the network or the "
        "server's Alpaca URLs (ALPACA_VAULT_PAPER_URL / LIVE_URL / DATA_URL) may be wrong."
        + _nothing_done(call)
    )


def _bad_response(exc: broker.AlpacaBadResponse, call: ToolCall | None) -> str:
    text = f"Alpaca's answer had an unexpected shape ({exc.message})."
    if _changes_state(call):
        return (
            text
            + " Check with alpaca_list_orders(status='all') and alpaca_get_positions before repeating it."
        )
    return text + " Try again; if it persists, report it to the operator."


def _outcome_unknown(exc: broker.OrderOutcomeUnknown, call: ToolCall | None) -> str:
    if exc.client_order_id is None:
        return (
            f"{exc.message}. Do NOT repeat the request: check alpaca_list_orders(status='all') and "
            "alpaca_get_positions first to see whether it took effect."
        )
    return (
        f"The order's outcome is unknown: Alpaca's answer was lost (timeout, dropped connection or server "
        f"error) and the order could not be found yet. client_order_id={exc.client_order_id}. Do NOT send "
        f"it again under another client_order_id; call alpaca_get_order with "
        f"client_order_id='{exc.client_order_id}' to see whether it exists."
    )


def _locate_unknown(exc: LocateOutcomeUnknown, call: ToolCall | None) -> str:
    return (
        f"Alpaca did not answer the locate request for {_who(call)}, so whether the locate was made (and its "
        f"fee charged) is unknown. To retry, call alpaca_request_locate again with request_id='{exc.request_id}' "
        "and the same other arguments: Alpaca answers a repeated request_id with the first request's answer "
        "and charges once. alpaca_get_locates lists today's locates."
    )


def _order_deadline(exc: OrderDeadlineExceeded, call: ToolCall | None) -> str:
    cid = exc.client_order_id
    intent = (
        f" Its order intent {exc.intent_id} is recorded (state unknown) and the server keeps looking the order "
        "up by its client_order_id."
        if exc.intent_id
        else ""
    )
    return (
        f"alpaca-vault stopped waiting for Alpaca after {exc.seconds:g} s (ALPACA_VAULT_ORDER_DEADLINE), so "
        f"whether the order was placed is unknown. client_order_id={cid}.{intent} Do NOT place it again "
        f"under another client_order_id: call alpaca_get_order(client_order_id='{cid}') to see whether it "
        f"exists; to try again, call alpaca_place_order with the same arguments and client_order_id='{cid}', "
        "which never creates a second order."
    )


def _live_trading_disabled(exc: broker.LiveTradingDisabled, call: ToolCall | None) -> str:
    what = intent_phrase(call.intent) if call is not None else "do that"
    return (
        f"{_who(call).capitalize()} is a live-trading credential and live trading is disabled, "
        f"so alpaca-vault will not {what}. Use a paper credential, or ask the operator to set "
        "ALPACA_VAULT_ALLOW_LIVE_TRADING=true and restart the server."
    )


def _alpaca(exc: broker.AlpacaError, call: ToolCall | None) -> str:
    return f"Alpaca refused the request ({_detail(exc)})." + _nothing_done(call) + _quote(exc)


# ---------------------------------------------------------------------------------------------------------
# Vault errors: names and facts from the vault, our next step


def _not_found_credential(exc: vault.CredentialNotFound, call: ToolCall | None) -> str:
    if exc.available:
        return f"{exc} list_credentials shows them all."
    if exc.inactive:
        return f"{exc} Activate one with update_credential, or name it."
    return f"{exc} (store_credential works too, but puts the secret in this chat.)"


def _ambiguous(exc: vault.CredentialAmbiguous, call: ToolCall | None) -> str:
    return f"{exc} Say which one with the credential argument."


def _exists(exc: vault.CredentialExists, call: ToolCall | None) -> str:
    return f"{exc} Choose another name, or use update_credential to replace its keys."


def _inactive(exc: vault.CredentialInactive, call: ToolCall | None) -> str:
    return f"{exc} Activate it with update_credential first."


def _damaged(exc: vault.CredentialDamaged, call: ToolCall | None) -> str:
    name = exc.credential_name
    return (
        f"Credential '{name}' is damaged: {exc.problem}. Nothing was decrypted or sent to Alpaca. No key can "
        f"recover it: delete it with delete_credential(credential='{name}') and store the key pair again "
        "with store_credential."
    )


def _as_is(exc: BaseException, call: ToolCall | None) -> str:
    return str(exc)


# ---------------------------------------------------------------------------------------------------------
# The tools' own refusals


def _no_market_data(exc: NoMarketData, call: ToolCall | None) -> str:
    return (
        f"Alpaca has no {exc.what} for {exc.symbol}. Check the symbol with alpaca_get_asset; "
        "crypto pairs are written like BTC/USD."
    )


def _unknown_asset(exc: UnknownAsset, call: ToolCall | None) -> str:
    return (
        f"Alpaca has no asset {exc.symbol} (HTTP 404). Check the spelling: tickers like 'AAPL' or 'BRK.B', "
        "crypto pairs like 'BTC/USD'."
    )


def _account_not_active(exc: AccountNotActive, call: ToolCall | None) -> str:
    return (
        f"Alpaca account {voice.ident(exc.account_number)} is "
        f"{voice.word(exc.status, voice.ACCOUNT_STATUSES)}, not ACTIVE, so it cannot trade."
        + _nothing_done(call)
        + " Use validate=false to store it anyway."
    )


def _key_pair_refused(exc: KeyPairRefused, call: ToolCall | None) -> str:
    other = "live" if exc.environment == "paper" else "paper"
    return (
        f"Alpaca did not accept this key pair on the {exc.environment} endpoint (401). Check the key id and "
        f"secret; if they are {other} keys, use environment='{other}'." + _nothing_done(call)
    )


def _confirmation_pending(exc: confirm.ConfirmationPending, call: ToolCall | None) -> str:
    # Never read by an agent: the confirmation middleware answers with the InputRequiredResult instead.
    return "A person is being asked to confirm this call."


def _validation(exc: ValidationError, call: ToolCall | None) -> str:
    return validation_message(exc)


def _audit_unavailable(exc: AuditUnavailable, call: ToolCall | None) -> str:
    placed = " The order was NOT placed." if call is not None and call.intent is Intent.PLACE else ""
    return (
        "alpaca-vault could not write the audit record for this call, so it refused the call: nothing was "
        f"decrypted and nothing was sent to Alpaca.{placed} The server's database is not accepting writes; "
        "try again shortly, and tell the operator if it persists."
    )


#: Error class -> the text an agent reads. Looked up along the raised error's MRO.
ERROR_TEXTS: dict[type[BaseException], Text] = {
    # Our own tool errors, and arguments refused before anything was done.
    ToolError: _as_is,
    InvalidArgument: _as_is,
    ValidationError: _validation,
    broker.InvalidRequestError: _as_is,
    NoMarketData: _no_market_data,
    UnknownAsset: _unknown_asset,
    AccountNotActive: _account_not_active,
    KeyPairRefused: _key_pair_refused,
    # Broker: every class has its hint.
    broker.AlpacaError: _alpaca,
    broker.AlpacaBadRequest: _bad_request,
    broker.AlpacaAuthError: _auth,
    broker.AlpacaForbidden: _forbidden,
    broker.InsufficientQty: _insufficient_qty,
    broker.AlpacaNotFound: _not_found,
    broker.AlpacaRejected: _rejected,
    broker.ClientOrderIdConflict: _client_order_id_conflict,
    broker.AlpacaRequestError: _request_error,
    broker.AlpacaRateLimited: _rate_limited,
    broker.RequestBudgetExhausted: _budget_exhausted,
    broker.AlpacaUnavailable: _unavailable,
    broker.AlpacaTimeout: _no_answer,
    broker.AlpacaConnectionError: _no_answer,
    broker.AlpacaBadResponse: _bad_response,
    broker.OrderOutcomeUnknown: _outcome_unknown,
    OrderDeadlineExceeded: _order_deadline,
    LocateOutcomeUnknown: _locate_unknown,
    broker.LiveTradingDisabled: _live_trading_disabled,
    # Vault: its messages name things (credentials, key ids, files); the next step is ours.
    vault.VaultError: _as_is,
    vault.CredentialNotFound: _not_found_credential,
    vault.CredentialAmbiguous: _ambiguous,
    vault.CredentialExists: _exists,
    vault.CredentialInactive: _inactive,
    vault.CredentialDamaged: _damaged,
    # Guard (#14): refusals name the rule, limit, value, environment and the way forward (a CLI command
    # for the owner; no tool can change a policy); a declined confirmation says the user declined.
    guard.GuardError: _as_is,
    confirm.ConfirmationPending: _confirmation_pending,
    # Audit (#13): fail closed, nothing done.
    AuditUnavailable: _audit_unavailable,
}

INTERNAL_ERROR = (
    "alpaca-vault hit an internal error in {tool}; it has been logged for the operator. "
    "Nothing in this message comes from the request."
)
INTERNAL_ERROR_STATE = (
    " It may have happened after Alpaca was called: check alpaca_list_orders(status='all') and "
    "alpaca_get_positions before repeating it."
)


def agent_text(exc: BaseException, call: ToolCall | None = None) -> str | None:
    """The text for ``exc`` from the table; None when its class has no row (a bug)."""
    for cls in type(exc).__mro__:
        text = ERROR_TEXTS.get(cls)
        if text is not None:
            return text(exc, call)
    return None


def as_tool_error(exc: BaseException, call: ToolCall | None) -> ToolError:
    """The tool error an agent receives for ``exc``; an exception without a row is logged as a bug."""
    text = agent_text(exc, call)
    if text is not None:
        return ToolError(text)
    tool = call.tool if call is not None else "a tool"
    logger.error("internal error in %s", tool, exc_info=exc)
    return ToolError(
        INTERNAL_ERROR.format(tool=tool) + (INTERNAL_ERROR_STATE if _changes_state(call) else "")
    )

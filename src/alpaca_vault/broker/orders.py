"""Order submission that never makes the same order twice.

Every order carries a ``client_order_id``, which Alpaca keeps unique per
account. When a submission's outcome is unknown (timeout, dropped
connection, 5xx), we look the order up by that id before anything else:

* found: the order exists; return it.
* definitely not found (404): nothing was created, so submitting once more
  with the *same* id is safe (if the first request lands late after all,
  Alpaca refuses the second with "client_order_id must be unique", and we
  look the order up again).
* the lookup itself fails: raise :class:`OrderOutcomeUnknown` carrying the
  id. Never resubmit blindly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from .errors import (
    AlpacaBadResponse,
    AlpacaConnectionError,
    AlpacaError,
    AlpacaNotFound,
    AlpacaRejected,
    AlpacaTimeout,
    AlpacaUnavailable,
    OrderOutcomeUnknown,
    is_duplicate_client_order_id,
)
from .models import Order

logger = logging.getLogger("alpaca_vault.broker.orders")

Submit = Callable[[], Awaitable[Order]]
Lookup = Callable[[], Awaitable[Order]]
#: Decides whether an order found under our client_order_id is the one we meant
#: (returns None) or someone else's use of the same id (returns why not).
Mismatch = Callable[[Order], "str | None"]


def new_client_order_id() -> str:
    """A fresh id for an order the caller did not name."""
    return str(uuid.uuid4())


def _outcome_unknown(error: AlpacaError) -> bool:
    """True when the request may have reached Alpaca and taken effect."""
    if isinstance(error, AlpacaTimeout | AlpacaConnectionError):
        return error.request_sent
    # A 2xx we could not read still means Alpaca took the order.
    return isinstance(error, AlpacaUnavailable | AlpacaBadResponse)


async def _find(lookup: Lookup, client_order_id: str) -> Order | None:
    """The order under ``client_order_id``; None when Alpaca says it does not exist."""
    try:
        return await lookup()
    except AlpacaNotFound:
        return None
    except AlpacaError as exc:
        raise OrderOutcomeUnknown(
            f"The order request was sent but its outcome is unknown, "
            f"and looking it up failed ({exc.message})",
            client_order_id=client_order_id,
        ) from None


async def submit_once(
    submit: Submit,
    lookup: Lookup,
    client_order_id: str,
    mismatch: Mismatch,
    *,
    what: str = "order",
    untouched: str = "nothing new was placed",
) -> Order:
    """Submit, reconciling by ``client_order_id`` so at most one order results.

    ``untouched`` tells the caller what did not happen when the id turns out to belong to a
    different order (Alpaca refuses a reused id, so the request took no effect).
    """
    for attempt in (1, 2):
        try:
            return await submit()
        except AlpacaRejected as exc:
            if not is_duplicate_client_order_id(exc):
                raise
            duplicate = True
        except AlpacaError as exc:
            if not _outcome_unknown(exc):
                raise
            duplicate = False
            logger.warning(
                "%s outcome unknown (%s); looking it up by client_order_id %s",
                what,
                type(exc).__name__,
                client_order_id,
            )

        found = await _find(lookup, client_order_id)
        if found is not None:
            reason = mismatch(found)
            if reason is not None:
                raise AlpacaRejected(
                    422,
                    None,
                    f"client_order_id {client_order_id!r} already belongs to a different order "
                    f"({reason}); {untouched}. Choose a new client_order_id, or omit it to get a fresh one",
                )
            return found
        if duplicate:
            # Alpaca says the id is taken yet cannot show the order: do not guess.
            raise OrderOutcomeUnknown(
                f"Alpaca reports client_order_id {client_order_id!r} as used "
                "but the order could not be found",
                client_order_id=client_order_id,
            )
        if attempt == 2:
            raise AlpacaUnavailable(
                None,
                None,
                f"Alpaca failed twice to take the {what} and a lookup confirms it was NOT placed "
                f"(client_order_id {client_order_id!r}); it is safe to try again later "
                "with the same client_order_id",
            )
        logger.info("%s %s confirmed absent; submitting once more with the same id", what, client_order_id)
    raise AssertionError("unreachable")  # pragma: no cover

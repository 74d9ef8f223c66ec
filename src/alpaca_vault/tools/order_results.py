"""What the trading tools answer (their structured results; the text beside each is the tool's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from alpaca_vault.broker.models import CancelOrderResult, ClosePositionResult, Order
from alpaca_vault.tools.results import Bounded

Environment = Literal["paper", "live"]
_ENVIRONMENT = Field(description="paper or live: which Alpaca environment the credential trades in.")


class OrderResult(BaseModel):
    credential: str
    environment: Environment = _ENVIRONMENT
    order: Order


class PlacedOrderResult(OrderResult):
    new_order_placed: bool = Field(
        default=True,
        description="False when the client_order_id already named an order (a retry of the same request): "
        "nothing new was placed and `order` is the existing order.",
    )


class OrdersResult(Bounded):
    credential: str
    orders: list[Order] = Field(
        description="Newest first by default; bracket/oco/oto exits are nested under their entry as `legs`."
    )


class CancelResult(BaseModel):
    credential: str
    environment: Environment = _ENVIRONMENT
    order_id: str
    canceled: bool = Field(
        description="True when Alpaca accepted the cancel request (or the order was already canceled); "
        "alpaca_get_order shows the final status."
    )


class CancelAllResult(Bounded):
    credential: str
    environment: Environment = _ENVIRONMENT
    results: list[CancelOrderResult]
    still_open: list[str] | None = Field(
        default=None,
        description="Ids of live orders Alpaca's answer did not cover (cancel each with alpaca_cancel_order); "
        "null when the check could not be made.",
    )


class ClosePositionOutcome(BaseModel):
    credential: str
    environment: Environment = _ENVIRONMENT
    order: Order = Field(description="The order Alpaca created to close the position.")


class CloseAllResult(Bounded):
    credential: str
    environment: Environment = _ENVIRONMENT
    cancel_orders: bool = Field(description="Whether open orders were cancelled first.")
    results: list[ClosePositionResult] = Field(description="One per position: the closing order or why not.")

"""Money in results: plain-digit strings on the wire ("0.0000001", "1000"), never exponent form.

The plain form comes from the ``Money`` type's serializer, so it holds only for fields typed
``Money``: a response field typed bare ``Decimal`` would go out as "1E+3". The first test
walks every response model and refuses such a field; the second pins what the wire carries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, PlainSerializer

from alpaca_vault.broker.models import Account, AlpacaModel, PortfolioHistory


def _response_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [AlpacaModel]
    while pending:
        model = pending.pop()
        if model.__module__ != __name__:  # not the deliberate offender defined below
            found.append(model)
        pending.extend(model.__subclasses__())
    return found


def _has_bare_decimal(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> bool:
    if annotation is Decimal:
        return not any(isinstance(m, PlainSerializer) for m in metadata)
    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        return _has_bare_decimal(base, extras)
    return any(_has_bare_decimal(arg) for arg in get_args(annotation))


def test_every_decimal_in_a_response_model_is_money() -> None:
    offenders = [
        f"{model.__name__}.{name}"
        for model in _response_models()
        for name, field in model.model_fields.items()
        if _has_bare_decimal(field.annotation, field.metadata)
    ]
    assert len(_response_models()) > 10  # the walk found the models
    assert offenders == [], f"type these fields Money, not Decimal: {offenders}"


def test_the_walk_would_catch_a_bare_decimal() -> None:
    class Sneaky(AlpacaModel):
        price: Decimal
        series: dict[str, list[Decimal | None]] | None = None

    assert _has_bare_decimal(Sneaky.model_fields["price"].annotation, Sneaky.model_fields["price"].metadata)
    assert _has_bare_decimal(Sneaky.model_fields["series"].annotation)
    assert Sneaky(price=Decimal("1E+3")).model_dump(mode="json")["price"] == "1E+3"  # what it prevents
    assert not _has_bare_decimal(
        Account.model_fields["cash"].annotation, Account.model_fields["cash"].metadata
    )


def test_money_goes_out_in_plain_digits_at_any_depth() -> None:
    account = Account.model_validate(
        {"id": "a", "account_number": "PA1", "status": "ACTIVE", "cash": "1E+3", "equity": "0.0000001"}
    )
    wire = account.model_dump(mode="json")
    assert (wire["cash"], wire["equity"]) == ("1000", "0.0000001")
    assert account.model_dump()["cash"] == Decimal("1E+3")  # Python mode keeps the Decimal
    history = PortfolioHistory.model_validate(
        {
            "timestamp": [1, 2],
            "equity": ["1E+2", None],
            "profit_loss": ["1E-7", "0"],
            "profit_loss_pct": ["0", "0"],
            "base_value": "1E+3",
            "timeframe": "1D",
            "cashflow": {"CSD": ["1E+1", None]},
        }
    )
    dumped = history.model_dump(mode="json")
    assert dumped["equity"] == ["100", None] and dumped["profit_loss"][0] == "0.0000001"
    assert dumped["cashflow"] == {"CSD": ["10", None]}

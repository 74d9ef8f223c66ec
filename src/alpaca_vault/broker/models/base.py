"""What every model shares: the Money type, the lenient response base, the strict request base, bounded decimals.

Response models are lenient (``extra="allow"``: Alpaca adds fields over time,
and a new field must never break a call); request models are strict
(``extra="forbid"``) and check argument combinations before anything is sent,
with messages that say what to change. Money and quantities are ``Decimal``
(serialised as strings in JSON mode), so no float rounding touches an order.

Every decimal a request carries is bounded in magnitude and scale *before*
anything formats it: ``format(Decimal("1e80000000"), "f")`` is an 80 MB string
(issue #10: a 13-byte argument that could exhaust the server's memory).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    FieldSerializationInfo,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_serializer,
)

#: Longest text accepted as a decimal argument: "1000000000.123456789" is 20 characters.
MAX_DECIMAL_TEXT = 40


def plain_decimals(value: Any) -> Any:
    """Decimals as plain digits ("0.0000001", "10"), never exponent form ("1E-7", "1E+1"), at any depth."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return [plain_decimals(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_decimals(item) for key, item in value.items()}
    return value


def _decimals_only(value: Any) -> bool:
    """A Decimal, or lists/dicts holding nothing but Decimals and None."""
    if isinstance(value, Decimal):
        return True
    if isinstance(value, list):
        return bool(value) and all(v is None or _decimals_only(v) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(v is None or _decimals_only(v) for v in value.values())
    return False


# Money and quantities in results: Decimal in Python, plain-digit strings on the wire, and said so in
# the output schema (the SDK derives it in validation mode, which would offer "number or string").
# The serializer sits on the type, not on every field: the other fields stay in pydantic's Rust core,
# which makes dumping an account about three times faster (it runs on every tool result).
def _answer_decimal(value: Decimal) -> Decimal:
    """A decimal in Alpaca's answer, refused when written as a huge power of ten (issue #10, point 4).

    A hostile upstream's "1e80000000" is 10 bytes on the wire and 80 MB once written out as plain digits
    for the agent (``plain_decimals``); no price, quantity or amount is that far from 1.
    """
    # adjusted() is the power of ten of the leading digit (of the exponent, for a zero like "0E-80000000");
    # a long run of written digits costs the upstream as many bytes on the wire, so it needs no bound here.
    if not -_ANSWER_EXPONENT <= value.adjusted() <= _ANSWER_EXPONENT and value.is_finite():
        raise ValueError(f"a number of about 10^{value.adjusted()} is no price, quantity or amount")
    return value


_ANSWER_EXPONENT = 40

Money = Annotated[
    Decimal,
    AfterValidator(_answer_decimal),
    PlainSerializer(plain_decimals, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "A decimal number as a string."}),
]


class AlpacaModel(BaseModel):
    """Base for everything Alpaca answers: tolerant of new fields. Decimal fields are typed ``Money``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _PlainDecimalJson(BaseModel):
    """Serialises every Decimal field in JSON mode as plain digits: Alpaca's wire form (requests we send)."""

    @field_serializer("*", mode="wrap", when_used="json")
    def _plain_decimals(
        self, value: Any, handler: SerializerFunctionWrapHandler, info: FieldSerializationInfo
    ) -> Any:
        if _decimals_only(value):
            return plain_decimals(value)
        return handler(value)


class RequestModel(_PlainDecimalJson):
    """Base for what we send: unknown fields refused, immutable once checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- bounded decimals


def _as_decimal(value: Any, allowed: str) -> Decimal:
    """A Decimal from an argument, refusing what is no plain number before any expansion can happen."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(allowed)
    if isinstance(value, int):
        if value.bit_length() > 128:  # a number far past any bound: refuse without building it
            raise ValueError(f"{allowed} (got a number of {value.bit_length()} bits)")
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the float as written (0.1 stays 0.1)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_DECIMAL_TEXT:
            raise ValueError(
                f"{allowed} (got {len(text)} characters; a number here has at most {MAX_DECIMAL_TEXT})"
            )
        try:
            return Decimal(text)  # parsing keeps the exponent as written: cheap even for "1e80000000"
        except ArithmeticError:
            raise ValueError(f"{allowed} (got something that is not a number)") from None
    raise ValueError(f"{allowed} (got a {type(value).__name__})")


def _bounds_checker(low: Decimal, high: Decimal, places: int, *, low_inclusive: bool) -> Any:
    above = f"at least {low}" if low_inclusive else f"greater than {low}"
    allowed = f"must be {above} and at most {high:,}, with at most {places} decimal places"
    smallest_step = Decimal(1).scaleb(-places)

    def check(raw: Any) -> Decimal:
        value = _as_decimal(raw, allowed)
        # Only exponent and digit-count arithmetic here: nothing that expands the number.
        if not value.is_finite():
            raise ValueError(f"{allowed} (got a non-finite number)")
        _sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        magnitude = len(digits) + exponent  # digits before the point, for a nonzero value
        if value != 0 and magnitude > len(str(int(high))):
            raise ValueError(f"{allowed} (got a number of about 10^{magnitude - 1})")
        if value > high or value < low or (value == low and not low_inclusive):
            raise ValueError(allowed)
        if exponent < -places:
            if value != value.quantize(smallest_step, rounding="ROUND_DOWN"):
                raise ValueError(f"{allowed} (got {-exponent} decimal places)")
            value = value.normalize()  # "1.50000000000" is 1.5: only zeros were past the scale
        return value

    return check


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def bounded_decimal(
    high: str | int, *, places: int, low: str | int = 0, low_inclusive: bool = False, description: str = ""
) -> Any:
    """A request decimal with bounds checked before any formatting; the error states the allowed range.

    Trailing zeros beyond ``places`` are accepted ("1.50000000000" is 1.5); any other excess scale is refused.
    """
    low_d, high_d = Decimal(low), Decimal(high)
    # The range as JSON-schema keywords (they bound the number form; maxLength bounds the text form): a
    # model reads them as well as prose, for a third of the bytes in every price and quantity argument.
    schema: dict[str, Any] = {
        "type": ["number", "string"],
        "minimum" if low_inclusive else "exclusiveMinimum": _json_number(low_d),
        "maximum": _json_number(high_d),
        "maxLength": MAX_DECIMAL_TEXT,
        "description": (description + " " if description else "") + f"Up to {places} decimal places.",
    }
    return Annotated[
        Decimal,
        BeforeValidator(_bounds_checker(low_d, high_d, places, low_inclusive=low_inclusive)),
        WithJsonSchema(schema),
    ]


#: Shares, coins or contracts in one order. Fractional shares and coins go to 9 decimal places.
Quantity = bounded_decimal(1_000_000_000, places=9)
#: A dollar amount to trade (notional orders).
Notional = bounded_decimal(1_000_000_000, places=2)
#: A limit, stop or trail price: from fractions of a cent (crypto) up to 1,000,000,000.
Price = bounded_decimal(1_000_000_000, places=9)
#: A trailing stop's percentage.
TrailPercent = bounded_decimal(99, places=4)
#: A share of a position to close, in percent.
Percentage = bounded_decimal(100, places=9)
#: A strike price in an option contract search.
StrikePrice = bounded_decimal(1_000_000, places=3, low_inclusive=True)
#: The most fee per share a short-sale locate request accepts, in USD.
LocateFee = bounded_decimal(1_000, places=4, description="Most fee per share accepted, in USD.")

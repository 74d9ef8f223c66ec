"""Fixed income: latest best bid and ask of a few US Treasuries, by ISIN (``/v1beta1/fixed_income``).

Prices are in percent of par and sizes in par value, as Alpaca sends them; yields are in percent.
The quotes move a little with the clock (deterministically), so two reads a minute apart differ.
"""

from __future__ import annotations

import math
from typing import Any

from alpaca_vault.simulator.clock import iso_nanos
from alpaca_vault.simulator.errors import invalid

#: ISIN -> (mid price in percent of par, yield to maturity in percent)
TREASURIES: dict[str, tuple[float, float]] = {
    "US912797SX61": (99.86, 4.21),  # a bill
    "US912797KJ59": (99.65, 4.25),
    "US912810SK51": (61.80, 5.02),  # a long bond
    "US91282CJL54": (98.90, 4.41),  # a note
}
MAX_ISINS = 100


def latest_quotes(isins: list[str], now: float) -> dict[str, Any]:
    """Quotes of the known ISINs among ``isins``; unknown ones are left out (Alpaca's way)."""
    if not isins:
        raise invalid("isins is required")
    if len(isins) > MAX_ISINS:
        raise invalid(f"at most {MAX_ISINS} isins are allowed")
    wave = math.sin(now / 600.0) * 0.02  # a slow, bounded drift
    quotes: dict[str, Any] = {}
    for isin in dict.fromkeys(i.upper() for i in isins):
        known = TREASURIES.get(isin)
        if known is None:
            continue
        mid, ytm = known
        bid, ask = round(mid + wave - 0.05, 8), round(mid + wave + 0.05, 8)
        quotes[isin] = {
            "t": iso_nanos(now),
            "bp": bid, "bs": 1_000_000, "bms": 1000, "bytm": round(ytm + 0.02, 6), "bytw": round(ytm + 0.02, 6),
            "ap": ask, "as": 1_000_000, "ams": 1000, "aytm": round(ytm - 0.02, 6), "aytw": round(ytm - 0.02, 6),
        }  # fmt: skip
    return {"quotes": quotes}

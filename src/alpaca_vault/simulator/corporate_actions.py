"""Corporate actions: Market Data ``/v1/corporate-actions`` and Trading ``/v2/corporate_actions/announcements``.

A fixed set: quarterly cash dividends of the dividend payers from two years back to a quarter
ahead; the real forward splits of the universe (NVDA 10:1 in 2024, AAPL 4:1 in 2020, ...); and a
spin-off and two mergers among fictional companies (``SIMCO`` and friends), dated in the last 60
days, so every type the tools ask for has an example.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

_DIVIDENDS = {"AAPL": 0.25, "MSFT": 0.83, "JPM": 1.25, "KO": 0.51, "XOM": 0.99, "V": 0.59, "SPY": 1.75}
_SPLITS = [  # symbol, new rate, old rate, ex date
    ("AAPL", 4, 1, date(2020, 8, 31)),
    ("AMZN", 20, 1, date(2022, 6, 6)),
    ("GOOGL", 20, 1, date(2022, 7, 18)),
    ("GME", 4, 1, date(2022, 7, 22)),
    ("TSLA", 3, 1, date(2022, 8, 25)),
    ("NVDA", 10, 1, date(2024, 6, 10)),
]
TYPES = (
    "forward_split",
    "reverse_split",
    "unit_split",
    "stock_dividend",
    "cash_dividend",
    "spin_off",
    "cash_merger",
    "stock_merger",
    "stock_and_cash_merger",
    "redemption",
    "name_change",
    "worthless_removal",
    "rights_distribution",
)


def cusip(symbol: str) -> str:
    """A stable, CUSIP-shaped identifier (not the real one)."""
    digits = f"{zlib.crc32(symbol.encode()):010d}"
    return (symbol.replace(".", "")[:3] + digits)[:9].upper().ljust(9, "0")


def _id(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "alpaca-vault-simulator/ca/" + "/".join(map(str, parts))))


@dataclass(frozen=True)
class Action:
    type: str  # one of TYPES
    process_date: date
    symbols: tuple[str, ...]  # every symbol it concerns, for filtering
    fields: dict[str, Any] = field(default_factory=dict)
    ex_date: date | None = None
    record_date: date | None = None
    payable_date: date | None = None
    declaration_date: date | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"id": _id(self.type, self.process_date, *self.symbols), **self.fields}
        data["process_date"] = self.process_date.isoformat()
        for name in ("ex_date", "record_date", "payable_date"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value.isoformat()
        return data

    @property
    def cusips(self) -> set[str]:
        return {v for k, v in self.fields.items() if k.endswith("cusip")}


def _second_thursday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 7)


def dataset(today: date) -> list[Action]:
    actions: list[Action] = []
    for symbol, rate in _DIVIDENDS.items():
        for year in range(today.year - 2, today.year + 2):
            for month in (2, 5, 8, 11):
                ex = _second_thursday(year, month)
                if not today - timedelta(days=730) <= ex <= today + timedelta(days=92):
                    continue
                actions.append(
                    Action(
                        type="cash_dividend",
                        process_date=ex + timedelta(days=14),
                        symbols=(symbol,),
                        fields={
                            "symbol": symbol,
                            "cusip": cusip(symbol),
                            "rate": rate,
                            "special": False,
                            "foreign": False,
                        },
                        ex_date=ex,
                        record_date=ex,
                        payable_date=ex + timedelta(days=14),
                        declaration_date=ex - timedelta(days=21),
                    )
                )
    for symbol, new, old, ex in _SPLITS:
        actions.append(
            Action(
                type="forward_split",
                process_date=ex,
                symbols=(symbol,),
                fields={"symbol": symbol, "cusip": cusip(symbol), "new_rate": new, "old_rate": old},
                ex_date=ex,
                record_date=ex - timedelta(days=4),
                payable_date=ex - timedelta(days=3),
                declaration_date=ex - timedelta(days=60),
            )
        )
    spin, cash_deal, stock_deal = (
        today - timedelta(days=45),
        today - timedelta(days=30),
        today - timedelta(days=10),
    )
    actions += [
        Action(
            type="spin_off",
            process_date=spin,
            symbols=("SIMCO", "SIMSP"),
            fields={
                "source_symbol": "SIMCO",
                "source_cusip": cusip("SIMCO"),
                "source_rate": 1,
                "new_symbol": "SIMSP",
                "new_cusip": cusip("SIMSP"),
                "new_rate": 0.25,
            },
            ex_date=spin,
            record_date=spin - timedelta(days=2),
            payable_date=spin - timedelta(days=1),
            declaration_date=spin - timedelta(days=40),
        ),
        Action(
            type="cash_merger",
            process_date=cash_deal,
            symbols=("SIMCO", "SIMAQ"),
            fields={
                "acquirer_symbol": "SIMCO",
                "acquirer_cusip": cusip("SIMCO"),
                "acquiree_symbol": "SIMAQ",
                "acquiree_cusip": cusip("SIMAQ"),
                "rate": 42.5,
                "effective_date": cash_deal.isoformat(),
            },
            payable_date=cash_deal,
            declaration_date=cash_deal - timedelta(days=90),
        ),
        Action(
            type="stock_merger",
            process_date=stock_deal,
            symbols=("SIMCO", "SIMTG"),
            fields={
                "acquirer_symbol": "SIMCO",
                "acquirer_cusip": cusip("SIMCO"),
                "acquirer_rate": 0.8,
                "acquiree_symbol": "SIMTG",
                "acquiree_cusip": cusip("SIMTG"),
                "acquiree_rate": 1,
                "effective_date": stock_deal.isoformat(),
            },
            payable_date=stock_deal,
            declaration_date=stock_deal - timedelta(days=75),
        ),
    ]
    actions.sort(key=lambda a: (a.process_date, a.type, a.symbols))
    return actions


def search(
    actions: list[Action],
    *,
    symbols: list[str],
    cusips: list[str],
    types: list[str],
    start: date,
    end: date,
    ids: list[str],
) -> list[Action]:
    if ids:  # exclusive with every other filter, as on Alpaca
        wanted = set(ids)
        return [a for a in actions if a.to_json()["id"] in wanted]
    symbol_set, cusip_set, type_set = {s.upper() for s in symbols}, set(cusips), set(types)
    return [
        a
        for a in actions
        if start <= a.process_date <= end
        and (not type_set or a.type in type_set)
        and (not symbol_set or symbol_set & set(a.symbols))
        and (not cusip_set or cusip_set & a.cusips)
    ]


# ---------------------------------------------------------------- Trading API announcements

_ANNOUNCEMENT_TYPES = {
    "cash_dividend": ("dividend", "cash"),
    "forward_split": ("split", "stock_split"),
    "spin_off": ("spinoff", "spinoff"),
    "cash_merger": ("merger", "merger_completion"),
    "stock_merger": ("merger", "merger_completion"),
}


def announcement_json(action: Action) -> dict[str, Any]:
    ca_type, sub_type = _ANNOUNCEMENT_TYPES[action.type]
    f = action.fields
    initiating = f.get("symbol") or f.get("acquirer_symbol") or f.get("source_symbol")
    target = f.get("acquiree_symbol") or f.get("new_symbol")
    base = action.to_json()["id"]
    return {
        "id": _id("announcement", base),
        "corporate_action_id": base,
        "ca_type": ca_type,
        "ca_sub_type": sub_type,
        "initiating_symbol": initiating,
        "initiating_original_cusip": cusip(str(initiating)),
        "target_symbol": target,
        "target_original_cusip": cusip(target) if target else None,
        "declaration_date": action.declaration_date.isoformat() if action.declaration_date else None,
        "ex_date": action.ex_date.isoformat() if action.ex_date else None,
        "record_date": action.record_date.isoformat() if action.record_date else None,
        "payable_date": action.payable_date.isoformat() if action.payable_date else None,
        "cash": str(f.get("rate", 0)) if action.type in ("cash_dividend", "cash_merger") else "0",
        "old_rate": str(f.get("old_rate", f.get("acquiree_rate", 1))),
        "new_rate": str(f.get("new_rate", f.get("acquirer_rate", 1))),
    }


def announcements(
    actions: list[Action],
    ca_types: list[str],
    since: date,
    until: date,
    symbol: str | None,
    date_type: str | None,
) -> list[dict[str, Any]]:
    """Announcements whose date of ``date_type`` (default: declaration) falls in [since, until]."""
    field_name = {"ex": "ex_date", "record": "record_date", "payable": "payable_date"}.get(
        (date_type or "declaration").removesuffix("_date"), "declaration_date"
    )
    found = []
    for action in actions:
        kind = _ANNOUNCEMENT_TYPES.get(action.type)
        if kind is None or kind[0] not in ca_types:
            continue
        when = getattr(action, field_name)
        if when is None or not since <= when <= until:
            continue
        if symbol and symbol.upper() not in action.symbols:
            continue
        found.append(announcement_json(action))
    return found

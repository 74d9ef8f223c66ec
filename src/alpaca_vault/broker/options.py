"""Option contracts: search and look-up (trading API), and an underlying's chain with greeks (data API)."""

from __future__ import annotations

from . import arguments as args
from .errors import InvalidRequestError
from .models import (
    OptionChainPage,
    OptionChainQuery,
    OptionContract,
    OptionContractsPage,
    OptionContractsQuery,
    OptionFeed,
    is_option_symbol,
)
from .transport import AlpacaKeys, AlpacaTransport


class OptionsApi(AlpacaTransport):
    async def get_option_contracts(
        self, keys: AlpacaKeys, query: OptionContractsQuery
    ) -> OptionContractsPage:
        """One page of contracts matching the query; pass next_page_token back as page_token for more."""
        url = self._trading(keys, "/v2/options/contracts")
        return self._parse(OptionContractsPage, await self._get(keys, url, query.to_params()))

    async def get_option_contract(self, keys: AlpacaKeys, symbol_or_id: str) -> OptionContract:
        """One contract by its OCC symbol or its id."""
        text = symbol_or_id.strip()
        if len(text) == 36 and "-" in text:
            segment = args.uuid_param(text, "option contract id")
        else:
            segment = args.path_symbol(text)
            if not is_option_symbol(segment):
                raise InvalidRequestError(
                    f"{text[:40]!r} is not an option contract: give its OCC symbol (like AAPL250620C00200000) or id."
                )
        url = self._trading(keys, f"/v2/options/contracts/{segment}")
        return self._parse(OptionContract, await self._get(keys, url))

    async def get_option_chain(
        self,
        keys: AlpacaKeys,
        underlying: str,
        query: OptionChainQuery | None = None,
        *,
        feed: OptionFeed | None = None,
    ) -> OptionChainPage:
        """Snapshots (latest quote and trade, greeks, implied volatility) of an underlying's contracts."""
        segment = args.path_symbol(underlying)
        if is_option_symbol(segment) or "/" in underlying:
            raise InvalidRequestError(
                "the option chain is asked for by the underlying's ticker, like 'AAPL'."
            )
        params = {**(query or OptionChainQuery()).to_params(), "feed": feed}
        payload = await self._get(keys, self._data(f"/v1beta1/options/snapshots/{segment}"), params)
        raw = args.section(payload, "snapshots")
        snapshots = {sym: {**s, "symbol": sym} for sym, s in raw.items() if isinstance(s, dict)}
        next_token = payload.get("next_page_token") if isinstance(payload, dict) else None
        return self._parse(OptionChainPage, {"snapshots": snapshots, "next_page_token": next_token})

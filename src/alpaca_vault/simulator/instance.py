"""One running simulator: its broker (the books, behind one lock), market data and faults.

The app keeps it in ``app.state.simulator``; every route reads it from there, so
``/_simulator/reset`` can swap the books under live routes.
"""

from __future__ import annotations

from alpaca_vault.simulator.broker import Broker
from alpaca_vault.simulator.config import SimulatorConfig
from alpaca_vault.simulator.faults import FaultInjector
from alpaca_vault.simulator.market_data import MarketData
from alpaca_vault.simulator.news import NewsWire
from alpaca_vault.simulator.request_log import RequestLog


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultInjector(config.seed, config.faults)
        self.broker = Broker(config)
        self.market = MarketData(self.broker.prices, self.broker.clock)
        self.news = NewsWire(config.seed, self.broker.clock.now())
        self.requests = RequestLog()

    def reset(self) -> None:
        if self.broker.state_path is not None:
            self.broker.state_path.unlink(missing_ok=True)  # back to the start configuration
        self.broker = Broker(self.config)
        self.broker.persist()
        self.market = MarketData(self.broker.prices, self.broker.clock)
        self.news = NewsWire(self.config.seed, self.broker.clock.now())
        self.faults.clear()
        self.requests.clear()
        for spec in self.config.faults:
            self.faults.add(spec)

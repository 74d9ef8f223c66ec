"""An Alpaca-compatible paper broker (ASGI) for tests, demos and benchmarks.

Stands alone: imports nothing else of alpaca_vault, so it can run as an independent Alpaca
stand-in (``alpaca-vault simulator``) or in-process via :func:`serve_in_thread`.
"""

from alpaca_vault.simulator.app import create_app
from alpaca_vault.simulator.config import AccountSpec, FaultSpec, SimulatorConfig
from alpaca_vault.simulator.runner import serve_in_thread

__all__ = ["AccountSpec", "FaultSpec", "SimulatorConfig", "create_app", "serve_in_thread"]

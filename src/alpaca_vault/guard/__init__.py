"""Trading policy, order preview, human confirmation, durable order intents and their reconciler.

``Intent`` (guard/intents.py) lives here, below tools/, so the guard's checks and the audit trail
reason about what a call does without importing the MCP layer.
"""

from alpaca_vault.guard.intents import Intent

__all__ = ["Intent"]

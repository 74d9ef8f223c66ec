"""The trading guard: what a tool call intends, and (issue #14) the policy checks on it.

``Intent`` lives here, below tools/, so the guard's checks and the audit trail can reason about a
call's effect without importing the MCP layer.
"""

from alpaca_vault.guard.intents import Intent

__all__ = ["Intent"]

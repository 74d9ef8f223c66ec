"""Trading guardrails: per-credential policy, checks, order preview, human confirmation (#14),
durable order intents and their reconciler (#13).

Lower than tools/: everything here carries facts (rule, limit, value, the way forward) and never
names an MCP tool; tools/ turns them into the agent's text. ``Intent`` (guard/intents.py) lives
here, below tools/, so the guard's checks and the audit trail reason about what a call does
without importing the MCP layer.
"""

from alpaca_vault.guard.intents import Intent

__all__ = ["Intent"]

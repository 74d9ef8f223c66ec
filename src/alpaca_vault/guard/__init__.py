"""Trading guardrails (#14): per-credential policy, checks, order preview, human confirmation.

Lower than tools/: everything here carries facts (rule, limit, value, the way
forward) and never names an MCP tool; tools/ turns them into the agent's text.
"""

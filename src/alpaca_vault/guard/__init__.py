"""Trading guardrails: per-credential policy, checks, order preview, human confirmation (#14),
durable order intents and their reconciler (#13).

Lower than tools/: everything here carries facts (rule, limit, value, the way
forward) and never names an MCP tool; tools/ turns them into the agent's text.
"""

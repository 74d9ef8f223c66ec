"""alpaca-vault: an MCP server that lets AI agents trade through Alpaca without seeing a key."""

__version__ = "0.1.0"

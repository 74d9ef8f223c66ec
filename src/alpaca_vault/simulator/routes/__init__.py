"""The simulator's HTTP routes, one module per API: trading, market data, admin."""

# One command each on a fresh clone with only Python 3.11+ and make:
#   make run    the MCP server over Streamable HTTP on the embedded defaults
#   make demo   the same, plus an in-process Alpaca simulator and a demo credential
#   make test   the whole test suite (SQLite and an embedded PostgreSQL)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	@# HTTP always requires a bearer token: make sure the local user exists and say how to get one.
	@$(BIN)/alpaca-vault users list --json 2>/dev/null | grep -q '"name": "local"' || $(BIN)/alpaca-vault users add local >/dev/null 2>&1
	@echo "Streamable HTTP at http://127.0.0.1:8000/mcp requires a bearer token. Create one for the local user" >&2
	@echo "(it is printed once; send it as 'Authorization: Bearer <token>'):" >&2
	@echo "  $(BIN)/alpaca-vault tokens create --user local" >&2
	$(BIN)/alpaca-vault serve --transport http

demo: $(STAMP)
	$(BIN)/alpaca-vault serve --transport http --simulate

# One worker per core (pytest-xdist); a file's tests stay on one worker so its module fixtures
# (a server, a TLS cluster) start once. TEST_WORKERS=0 runs everything in this process.
# Bytecode is written even when PYTHONDONTWRITEBYTECODE is set: without it, each worker compiles and
# assertion-rewrites every test module and pytest plugin (hypothesis, anyio, ...) afresh, ~10 s of
# CPU per worker to collect the suite (__pycache__ is ignored by git).
TEST_WORKERS ?= auto
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src/alpaca_vault/vault src/alpaca_vault/broker src/alpaca_vault/db src/alpaca_vault/audit \
		src/alpaca_vault/accounts src/alpaca_vault/guard src/alpaca_vault/tools src/alpaca_vault/console

bench: $(STAMP)
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/simulator.py
	$(BIN)/python bench/tool_latency.py
	$(BIN)/python bench/multiuser.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

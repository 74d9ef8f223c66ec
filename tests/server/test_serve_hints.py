"""What `alpaca-vault serve` tells a person, run as they would run it: in a terminal, as the demo.

* stdio in a terminal (a pseudo-terminal here): a one-line banner on stderr, never on stdout (the wire);
  Ctrl-C and Ctrl-D stop it cleanly.
* `serve --simulate` prints a ready-to-paste connection for the mode it runs in; the tests run
  that connection exactly as printed (the curl line through a shell, the mcp.json entry through the
  SDK's client), not a copy of it.
* A client without a token learns why it was refused and how to get one, and so does the log.
* A busy port is one line naming --port.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.cli.conftest import CONSOLE_SCRIPT
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.mcp_server import text_of
from tests.fixtures.tool_listing import store_tool_listing


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env["ALPACA_VAULT_DATA_DIR"] = str(data_dir)
    env["PYTHONFAULTHANDLER"] = "1"  # a process that hangs can be made to say where (Terminal.exit_code)
    env.update(extra)
    return env


def _take_terminal() -> None:
    """In the child: make the pseudo-terminal on fd 0 its controlling terminal, so ^C is a SIGINT."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _take_terminal_with_ctrl_c_ignored() -> None:
    """As _take_terminal, in a child whose parent ignored SIGINT (the child inherits that through exec)."""
    _take_terminal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Terminal:
    """A child process with stdin and stderr on a pseudo-terminal (as in a shell) and stdout on a pipe."""

    def __init__(self, args: list[str], env: dict[str, str], *, parent_ignores_ctrl_c: bool = False) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_take_terminal_with_ctrl_c_ignored if parent_ignores_ctrl_c else _take_terminal,
        )
        os.close(slave)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    break
        return self.seen.decode(errors="replace")

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def exit_code(self, timeout: float = 30) -> int:
        """The process's exit code; if it has not ended by then, fail with where each of its threads was
        (the tests start it with PYTHONFAULTHANDLER set: SIGABRT makes it print them on the terminal)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            threads = self.read_until(b"\x00", 2)
            pytest.fail(f"still running {timeout} s after it was told to quit; its threads:\n{threads}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@contextmanager
def terminal(
    args: list[str], env: dict[str, str], *, parent_ignores_ctrl_c: bool = False
) -> Iterator[Terminal]:
    term = Terminal(args, env, parent_ignores_ctrl_c=parent_ignores_ctrl_c)
    try:
        yield term
    finally:
        term.close()


BANNER = b"Ctrl-D or Ctrl-C to quit."


def _imported(import_log: str) -> set[str]:
    """The modules named by ``python -X importtime`` lines (PYTHONPROFILEIMPORTTIME) in ``import_log``."""
    return {
        line.rsplit("|", 1)[-1].strip() for line in import_log.splitlines() if line.startswith("import time:")
    }


@pytest.mark.parametrize("key", [b"\x03", b"\x04"], ids=["ctrl-c", "ctrl-d"])
def test_stdio_in_a_terminal_shows_a_banner_on_stderr_and_quits_cleanly(tmp_path: Path, key: bytes) -> None:
    # The import log shows what ran before the banner: not the SDK (a second or more), so the person reads
    # at once what runs and how to quit, and a Ctrl-C meanwhile stops the start-up there.
    env = _env(tmp_path, PYTHONPROFILEIMPORTTIME="1")
    with terminal([str(CONSOLE_SCRIPT), "serve"], env) as term:
        shown = term.read_until(BANNER)
        assert "alpaca-vault: MCP over stdio as user 'local'; waiting for an MCP client on stdin." in shown
        before_banner = _imported(shown[: shown.index(BANNER.decode())])
        assert "alpaca_vault.server.cli" in before_banner
        assert not {name for name in before_banner if name.split(".")[0] in ("mcp", "mcp_types")}
        term.type(key)
        output = term.read_until(b"\x00", timeout=60)  # until it exits (the import log must not fill the pty)
        assert term.exit_code() == 0
        assert term.proc.stdout is not None
        stdout = term.proc.stdout.read()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert stdout == b"", "nothing but JSON-RPC may reach stdout"


def test_ctrl_c_quits_even_when_the_parent_ignored_it(tmp_path: Path) -> None:
    # What made this file's Ctrl-C tests hang in CI: a pytest worker that ignores SIGINT passes that on to
    # the server it starts, and ^C did nothing while the banner said "Ctrl-C to quit".
    with terminal([str(CONSOLE_SCRIPT), "serve"], _env(tmp_path), parent_ignores_ctrl_c=True) as term:
        term.read_until(BANNER)
        term.type(b"\x03")
        assert term.exit_code() == 0
        output = term.read_until(b"\x00", timeout=1)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_stdio_launched_by_a_client_prints_no_banner(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "serve"], input=b"", capture_output=True, env=_env(tmp_path), timeout=60
    )
    assert proc.returncode == 0
    assert BANNER not in proc.stderr and proc.stdout == b""


def _lines_after(text: str, heading: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(heading):
            return lines[i + 1].strip()
    raise AssertionError(f"no {heading!r} in:\n{text}")


def test_the_stdio_demo_prints_a_connection_that_works_as_printed(tmp_path: Path) -> None:
    # The import log shows what ran before the connection was printed: neither the simulator nor the SDK
    # (seconds), so the person reads it at once, and a Ctrl-C meanwhile stops the start-up there.
    env = _env(tmp_path, PYTHONPROFILEIMPORTTIME="1")
    with terminal([str(CONSOLE_SCRIPT), "serve", "--simulate"], env) as term:
        term.read_until(b"This is meant", timeout=90)
        # The banner line comes first (a terminal ends lines with \r\n).
        assert term.seen.index(BANNER) < term.seen.index(b"This is meant"), term.seen
        term.read_until(b"}}}", timeout=30)
        end = term.seen.index(b"}}}")
        for _ in range(50):  # the rest of the mcp.json line
            if b"\n" in term.seen[end:]:
                break
            term.read_until(b"\x00", timeout=0.2)
        printed = term.seen[: term.seen.index(b"\n", end)].decode(errors="replace")
        term.type(b"\x03")
        term.read_until(b"\x00", timeout=60)  # until it exits (the import log must not fill the pty)
        assert term.exit_code() == 0
    before_connection = _imported(printed)
    assert "alpaca_vault.server.runner" in before_connection
    heavy = ("mcp", "mcp_types", "uvicorn", "starlette")
    assert not {name for name in before_connection if name.split(".")[0] in heavy}
    assert not {name for name in before_connection if name.startswith("alpaca_vault.simulator")}
    shown = "\n".join(line for line in printed.splitlines() if not line.startswith("import time:"))
    assert "curl" not in shown, "stdio has nothing to curl: only what works in this mode is printed"
    inspector = _lines_after(shown, "MCP Inspector")
    assert inspector.startswith("npx @modelcontextprotocol/inspector@2 --cli ")  # pinned: see connect.py
    assert inspector.endswith(f"-- {CONSOLE_SCRIPT} serve --simulate")
    entry = json.loads(_lines_after(shown, "mcp.json entry"))["mcpServers"]["alpaca-vault-demo"]
    assert entry["command"] == str(CONSOLE_SCRIPT)  # absolute: clients do not search PATH

    # The demo vault already at head for the client's server (~0.6 s CPU): the first start of --simulate
    # on an empty data dir is the HTTP demo's below.
    migrated_sqlite_file(Path(entry["env"]["ALPACA_VAULT_DATA_DIR"]) / "simulator" / "vault.db")
    # ... and it has served before (its stored tool listing): the call builds only the tool it names.
    store_tool_listing(Path(entry["env"]["ALPACA_VAULT_DATA_DIR"]) / "simulator")

    async def use_it() -> None:
        env = {**{"PATH": os.environ["PATH"]}, **entry.get("env", {})}
        async with Client(
            StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
        ) as client:
            result = await client.call_tool("alpaca_get_account", {"credential": "demo"})
            assert not result.is_error, text_of(result)
            assert result.structured_content is not None
            assert result.structured_content["account"]["status"] == "ACTIVE"

    import anyio

    anyio.run(use_it)


class Server:
    """`serve --transport http --simulate` in a subprocess; stderr collected on a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.stderr = ""
        self._lock = threading.Lock()
        assert self.proc.stderr is not None
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.stderr += line

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if text in self.stderr:
                    return self.stderr
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not printed; stderr so far:\n{self.stderr}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def http_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One demo server for the tests that read its banner and call it (~4 s to start): neither
    # changes what the other asserts (one uses the printed token, the other sends none or a forged one).
    server = Server(
        [str(CONSOLE_SCRIPT), "serve", "--transport", "http", "--simulate", "--port", "0"],
        _env(tmp_path_factory.mktemp("http-demo")),
    )
    try:
        server.wait_for("Application startup complete")
        yield server
    finally:
        server.stop()


def test_the_http_demo_prints_a_connection_that_works_as_printed(http_demo: Server) -> None:
    shown = http_demo.wait_for('"headers"')
    assert "alpaca-vault demo: MCP over Streamable HTTP at http://127.0.0.1:" in shown
    # Only what works here: no generic "create a token in the real vault" line that this server would refuse.
    assert "tokens create" not in shown

    curl = _lines_after(shown, "curl")
    answered = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert answered.returncode == 0, answered.stderr
    [data] = [
        line.removeprefix("data: ") for line in answered.stdout.splitlines() if line.startswith("data: ")
    ]
    assert json.loads(data)["result"]["serverInfo"]["name"] == "alpaca-vault"

    inspector = _lines_after(shown, "MCP Inspector")
    entry = json.loads(_lines_after(shown, "mcp.json entry"))["mcpServers"]["alpaca-vault-demo"]
    assert entry["type"] == "http"
    assert inspector.startswith("npx @modelcontextprotocol/inspector@2 --cli ")
    assert f"--cli {entry['url']} --transport http --header 'Authorization: " in inspector

    async def use_it() -> None:
        async with (
            create_mcp_http_client(headers=entry["headers"]) as http,
            Client(streamable_http_client(entry["url"], http_client=http)) as client,
        ):
            result = await client.call_tool("alpaca_get_account", {"credential": "demo"})
            assert not result.is_error, text_of(result)
            assert result.structured_content is not None
            assert result.structured_content["account"]["status"] == "ACTIVE"

    import anyio

    anyio.run(use_it)


def test_a_tokenless_client_is_told_why_and_how_and_so_is_the_log(http_demo: Server) -> None:
    shown = http_demo.wait_for('"headers"')
    url = json.loads(_lines_after(shown, "mcp.json entry"))["mcpServers"]["alpaca-vault-demo"]["url"]
    import httpx2

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    refused = httpx2.post(url, json=initialize, headers=accept, timeout=30)
    assert refused.status_code == 401
    description = refused.json()["error_description"]
    assert description == (
        "No bearer token was sent. This server takes its own bearer tokens, not OAuth: its operator creates "
        "one with `alpaca-vault tokens create --user NAME`; send it as the header Authorization: Bearer <token>."
    )
    assert "resource_metadata" not in refused.headers["www-authenticate"]
    origin = url.removesuffix("/mcp")
    assert httpx2.get(f"{origin}/.well-known/oauth-protected-resource/mcp", timeout=30).status_code == 404
    logged = http_demo.wait_for("HTTP 401 for POST /mcp")
    line = next(line for line in logged.splitlines() if "HTTP 401 for POST /mcp" in line)
    assert "No bearer token was sent." in line and "tokens create --user NAME" in line

    forged = httpx2.post(url, json=initialize, headers={**accept, "Authorization": "Bearer avt_" + "x" * 43})
    assert forged.json()["error_description"].startswith("This bearer token is not valid for this server.")
    assert "avt_" + "x" * 43 not in http_demo.wait_for("not valid for this server")


def test_a_busy_port_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CONSOLE_SCRIPT), "serve", "--transport", "http", "--port", str(port)],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"alpaca-vault: port {port} on 127.0.0.1 is already in use (another server?); choose another with "
        f"--port, e.g. --port {port + 1}."
    ]
    assert result.stdout == ""


async def test_initialize_advertises_tools_only(tmp_path: Path) -> None:
    # Claiming prompts and resources sends clients to list empty collections (and some show empty tabs).
    from alpaca_vault.server.app import build_server
    from alpaca_vault.server.settings import Settings

    server = build_server(Settings(data_dir=tmp_path))
    async with Client(server) as client:
        capabilities = client.server_capabilities
        assert capabilities.tools is not None
        assert capabilities.prompts is None and capabilities.resources is None
        from mcp.shared.exceptions import MCPError

        with pytest.raises(MCPError, match=r"[Mm]ethod not found"):
            await client.list_prompts()


async def test_stdio_instructions_name_the_executable_when_it_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone runs .venv/bin/alpaca-vault: "run `alpaca-vault credentials add`" would lead nowhere.
    # The server stdio builds, in this process as `alpaca-vault serve` runs it: what the hint reads is
    # the executable it runs as and PATH (once a process, hence the cleared cache), nothing a second
    # process would add.
    from alpaca_vault.server import hints
    from alpaca_vault.server.app import build_server
    from alpaca_vault.server.settings import Settings
    from tests.fixtures.databases import migrated_sqlite_file

    migrated_sqlite_file(tmp_path / "vault.db")
    monkeypatch.setattr("sys.argv", [str(CONSOLE_SCRIPT), "serve"])

    async def instructions(path: str) -> str:
        monkeypatch.setenv("PATH", path)
        hints.program.cache_clear()
        async with Client(build_server(Settings(data_dir=tmp_path))) as client:
            assert client.instructions is not None
            return client.instructions

    try:
        off_path = await instructions("/usr/bin:/bin")
        on_path = await instructions(f"{CONSOLE_SCRIPT.parent}:/usr/bin:/bin")
    finally:
        hints.program.cache_clear()  # later tests in this worker read the real PATH again
    assert f"`{CONSOLE_SCRIPT} credentials add NAME" in off_path
    assert "`alpaca-vault credentials add NAME" in on_path


async def test_summaries_count_in_words_not_all_order_s(server_settings: Any, sim_account: Any) -> None:
    from tests.fixtures.mcp_server import paper_session

    async with paper_session(server_settings, sim_account) as client:
        for limit in ("1", "2", "3"):  # far below the price: they rest
            placed = await client.call_tool(
                "alpaca_place_order",
                {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "limit_price": limit},
            )
            assert not placed.is_error, text_of(placed)
        every = text_of(await client.call_tool("alpaca_list_orders", {"status": "all"}))
        assert every.startswith("3 orders in 'paper-1': ")
        assert text_of(await client.call_tool("alpaca_list_orders", {})).startswith(
            "3 open orders in 'paper-1'"
        )
        assert text_of(await client.call_tool("list_credentials", {})).startswith("1 credential: ")
        cancelled = text_of(await client.call_tool("alpaca_cancel_all_orders", {}))
        assert cancelled.startswith("Cancel requested for 3 of 3 open orders in 'paper-1'")
        assert "(s)" not in every + cancelled


def test_the_simulator_on_a_busy_port_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CONSOLE_SCRIPT), "simulator", "--port", str(port)],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"alpaca-vault: cannot listen on 127.0.0.1:{port} (")
    assert line.endswith("); choose another with --port.")


def test_the_http_banner_says_how_to_get_a_token_first_and_the_user_only_if_missing(tmp_path: Path) -> None:
    """`make run` adds the local user before it serves; the banner used to tell the person to create that
    user anyway ("create the user once with ..."), as if they had skipped a step."""
    from alpaca_vault.server.runner import _http_banner
    from alpaca_vault.server.settings import Settings

    (line,) = _http_banner("127.0.0.1", 8000, None, Settings(data_dir=tmp_path))
    assert "every request needs a bearer token: create one with `" in line
    assert "tokens create --user local` (if that user does not exist yet, first `" in line
    assert line.endswith("users add local`). Ctrl-C to quit.")

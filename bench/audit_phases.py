"""Where the audit trail's in-process cost lands: alpaca_get_account timed phase by phase.

    python bench/audit_phases.py [--calls 1000] [--rounds 40]

The same two in-process servers as bench/audit_cost.py part 2 (SQLite, one with the audit hooks and
one without, taking turns in short rounds), with timestamps taken on the event loop's thread at the
boundaries of the gate's steps. Per phase, the median wall time and event loop thread CPU time of
each mode, and their difference (microseconds):

* before the vault: from the SDK's tool manager to the open of the credential (arguments, the
  gate's caller, and with audit the resolve read and the hooks);
* audit hooks: the ``before_send`` hook alone (the ``credential.unseal`` event, committed);
* unseal: the open (without audit it reads the row; with audit it checks that nothing changed since
  the resolve read), and the decrypt;
* broker call: the HTTP exchange with the simulator;
* after: the result's shaping and the after-call hooks;
* in the server, the client's call, and outside the server (the SDK's layers, both sides).

The timers are this script's wrappers, installed in its own process; the server has no switch to
turn auditing off, and no timer of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.audit_cost import MODES, in_process_clients, round_order

# Phase -> (the stamp it starts at, the stamp it ends at).
PHASES = {
    "before the vault": ("tool", "open"),
    "audit hooks": ("hooks", "hooks done"),
    "unseal": ("open", "opened"),
    "broker call": ("broker", "broker done"),
    "after": ("broker done", "tool done"),
    "in the server": ("tool", "tool done"),
}
_stamps: dict[str, tuple[int, int]] = {}


def _stamp(name: str) -> None:
    _stamps[name] = (time.perf_counter_ns(), time.thread_time_ns())


def _timed(fn: Callable[..., Awaitable[Any]], start: str, end: str) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        _stamp(start)
        try:
            return await fn(*args, **kwargs)
        finally:
            _stamp(end)

    return wrapper


def install_timers() -> None:
    from mcp.server.mcpserver.tools.tool_manager import ToolManager

    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.tools.audit_hooks import AuditHooks
    from alpaca_vault.vault import CredentialService

    ToolManager.call_tool = _timed(ToolManager.call_tool, "tool", "tool done")  # type: ignore[method-assign]
    AlpacaClient.get_account = _timed(AlpacaClient.get_account, "broker", "broker done")  # type: ignore[method-assign]
    AuditHooks.before_send = _timed(AuditHooks.before_send, "hooks", "hooks done")  # type: ignore[method-assign]
    unsealed = CredentialService.unsealed

    @contextlib.asynccontextmanager
    async def timed_unsealed(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        _stamp("open")
        async with unsealed(self, *args, **kwargs) as opened:
            _stamp("opened")
            yield opened

    CredentialService.unsealed = timed_unsealed  # type: ignore[method-assign,assignment]


async def measure(calls: int, rounds: int) -> dict[str, dict[str, tuple[list[int], list[int]]]]:
    """Per mode and phase: (wall ns, CPU ns) of every measured call."""
    from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread

    install_timers()
    names = [*PHASES, "the client's call", "outside the server"]
    out = {mode: {name: ([], []) for name in names} for mode in MODES}
    with serve_in_thread(create_app(SimulatorConfig())) as sim_url, tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            clients = await in_process_clients(stack, sim_url, Path(tmp))
            for round_number in range(rounds):
                for mode in round_order(round_number):
                    warm_up = 20 if round_number == 0 else 3
                    for i in range(max(1, calls // rounds) + warm_up):
                        _stamps.clear()
                        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
                        result = await clients[mode].call_tool("alpaca_get_account", {})
                        wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
                        if result.is_error:
                            raise RuntimeError(result.content[0].text[:300])
                        if i < warm_up:
                            continue
                        phases = out[mode]
                        for name, (start, end) in PHASES.items():
                            if start in _stamps and end in _stamps:
                                phases[name][0].append(_stamps[end][0] - _stamps[start][0])
                                phases[name][1].append(_stamps[end][1] - _stamps[start][1])
                        server = phases["in the server"]
                        phases["the client's call"][0].append(wall)
                        phases["the client's call"][1].append(cpu)
                        phases["outside the server"][0].append(wall - server[0][-1])
                        phases["outside the server"][1].append(cpu - server[1][-1])
    return out


def report(out: dict[str, dict[str, tuple[list[int], list[int]]]]) -> None:
    def median_us(values: list[int]) -> float | None:
        return statistics.median(values) / 1000 if values else None

    def cell(value: float | None) -> str:
        return f"{value:9.1f}" if value is not None else f"{'-':>9s}"

    with_audit, without = out["with audit"], out["without audit"]
    print(
        f"{'phase (us, medians)':22s}{'wall with':>10s}{'without':>10s}{'added':>10s}"
        f"{'CPU with':>10s}{'without':>10s}{'added':>10s}"
    )
    for name in with_audit:
        row = []
        for kind in (0, 1):
            a, b = median_us(with_audit[name][kind]), median_us(without[name][kind])
            row += [cell(a), cell(b), cell(a - b if a is not None and b is not None else None)]
        print(f"{name:22s}" + " ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    report(asyncio.run(measure(args.calls, args.rounds)))


if __name__ == "__main__":
    main()

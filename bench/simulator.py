"""Throughput of the Alpaca simulator: GET /v2/account at 50 concurrent keep-alive connections.

Runs ``alpaca-vault simulator`` as its own process on a loopback port, then loads it with
``wrk`` when installed (``apt-get install wrk``), else with a multi-process asyncio client.
Prints requests per second; the target is >= 2,000 req/s so the simulator is never the
bottleneck of our other benchmarks.

    .venv/bin/python bench/simulator.py [--seconds 10] [--connections 50] [--generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

API_KEY = "PKBENCH0000000000000"
SECRET_KEY = "bench-secret-bench-secret-bench-secret00"
PATH = "/v2/account"
TARGET = 2000.0


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpaca_vault.server.cli",
            "simulator",
            "--port",
            "0",
            "--account",
            f"{API_KEY}:{SECRET_KEY}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"on (http://\S+)", line)
        if match:
            return process, match.group(1)
    raise SystemExit("the simulator did not start")


def run_wrk(url: str, connections: int, seconds: int) -> tuple[float, str]:
    wrk = shutil.which("wrk")
    assert wrk
    result = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"APCA-API-KEY-ID: {API_KEY}",
            "-H",
            f"APCA-API-SECRET-KEY: {SECRET_KEY}",
            url + PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{result.stdout}")
    if "Non-2xx" in result.stdout:
        raise SystemExit(f"the simulator answered errors:\n{result.stdout}")
    return float(match.group(1)), result.stdout


async def _client(host: str, port: int, connections: int, seconds: float, counts: list[int]) -> None:
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"APCA-API-KEY-ID: {API_KEY}\r\nAPCA-API-SECRET-KEY: {SECRET_KEY}\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {head[:80]!r}")
            length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            counts[0] += 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def _worker(
    host: str, port: int, connections: int, seconds: float, queue: multiprocessing.Queue[int]
) -> None:
    counts = [0]
    asyncio.run(_client(host, port, connections, seconds, counts))
    queue.put(counts[0])


def run_python(url: str, connections: int, seconds: int) -> float:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    processes = 2
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_worker, args=(host, port, connections // processes, seconds, queue))
        for _ in range(processes)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    total = sum(queue.get() for _ in workers)
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    process, url = start_simulator()
    try:
        # Warm up (imports, first connections) before measuring.
        if generator == "wrk":
            run_wrk(url, args.connections, 1)
            rate, report = run_wrk(url, args.connections, args.seconds)
            print(report.rstrip())
        else:
            run_python(url, args.connections, 1)
            rate = run_python(url, args.connections, args.seconds)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    verdict = "met" if rate >= TARGET else "NOT met"
    print(
        f"simulator GET {PATH}: {rate:,.0f} req/s at {args.connections} connections for {args.seconds}s "
        f"(load generator: {generator}; target >= {TARGET:,.0f} req/s: {verdict})"
    )


if __name__ == "__main__":
    main()

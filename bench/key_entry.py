"""Key entry cost: a one-time link's life (issue, look up, consume) and the entry page over HTTP.

    .venv/bin/python bench/key_entry.py [--rounds 200]

SQLite file vault, loopback HTTP (the server in a thread, as `serve --transport http` runs it).
Prints medians and p95 in milliseconds. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx2

from alpaca_vault.console.links import LinkStore
from alpaca_vault.db.engine import Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.server.auth import AccountAdmin
from alpaca_vault.server.runner import serve_http_in_thread
from alpaca_vault.server.settings import Settings
from alpaca_vault.vault.keyring import generate_key


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    median = statistics.median(ordered) * 1000
    return f"{name:<34} median {median:7.2f} ms   p95 {p95 * 1000:7.2f} ms   n={len(ordered)}"


async def links(db: Database, user_id: object, rounds: int) -> list[str]:
    store = LinkStore(db)
    issue, find, consume = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        issued = await store.issue(user_id, "key_entry", lifetime=timedelta(minutes=10), bound_to="x")  # type: ignore[arg-type]
        t1 = time.perf_counter()
        record = await store.find(issued.secret, "key_entry")
        t2 = time.perf_counter()
        assert await store.consume(record, "stored")
        t3 = time.perf_counter()
        issue.append(t1 - t0)
        find.append(t2 - t1)
        consume.append(t3 - t2)
    return [
        summary("link issue", issue),
        summary("link lookup (by hash)", find),
        summary("link consume", consume),
    ]


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        settings = Settings(data_dir=Path(work), encryption_keys=generate_key(), log_level="WARNING")
        db = Database.create(settings.effective_database_url)
        await upgrade_database(db)
        admin = AccountAdmin(db)
        user = await admin.add_user("bench")
        token = (await admin.create_token("bench")).token.get_secret_value()
        lines = await links(db, user.id, rounds)
        with serve_http_in_thread(settings) as mcp_url:
            base = mcp_url.removesuffix("/mcp")
            store = LinkStore(db)
            pages, signins = [], []
            async with httpx2.AsyncClient(base_url=base) as http:
                for _ in range(rounds):
                    issued = await store.issue(
                        user.id, "key_entry", lifetime=timedelta(minutes=10), bound_to="x"
                    )
                    t0 = time.perf_counter()
                    response = await http.get(f"/connect/{issued.secret}")
                    pages.append(time.perf_counter() - t0)
                    assert response.status_code == 200
                form = await http.get("/console/sign-in")
                csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                for _ in range(rounds // 4):
                    http.cookies.clear()
                    t0 = time.perf_counter()
                    signed = await http.post(
                        "/console/sign-in", data={"csrf": csrf, "token": token}, headers={"Origin": base}
                    )
                    signins.append(time.perf_counter() - t0)
                    assert signed.status_code == 303
            lines += [
                summary("GET entry page (HTTP)", pages),
                summary("console sign-in with token (HTTP)", signins),
            ]
        await db.dispose()
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))

"""The soak in the suite: 40 orders over HTTP from 4 clients with faults injected at random moments.

bench/soak.py runs the same with 1,000 orders on both backends. The suite keeps the size small:
each order is a full HTTP round trip through the gate, the guard and the audit record (100 orders
took ~50 s on PostgreSQL); 40 still overlap a dozen or more injected faults. What must hold,
whatever the faults: no client_order_id makes two orders, every intent is settled after one
reconcile, every settled intent agrees with the broker, and the audit chains verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.soak import run_soak

ORDERS = 40


@pytest.mark.timeout(600)
async def test_orders_under_random_faults_leave_no_duplicate_and_nothing_unresolved(
    database_url: str, simulator: Any, tmp_path: Path
) -> None:
    report = await run_soak(database_url, simulator, backend="test", orders=ORDERS, clients=4)
    print("\n".join(report.lines()))
    assert report.faults_injected > 0
    assert report.intents == ORDERS
    assert report.duplicates == 0
    assert report.unresolved_after_reconcile == 0
    assert report.disagreements == 0, report.lines()
    assert report.verify_ok, report.verify_detail
    assert 0 < report.orders_at_simulator <= ORDERS

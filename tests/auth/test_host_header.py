"""Issue #10, point 11: the Host header is compared case-insensitively (host names are, RFC 9110)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.auth.test_http_auth import ACCEPT, INITIALIZE
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import http_settings, serve_http


@pytest.mark.parametrize("deployment_urls", ["sqlite"], indirect=True)
async def test_host_header_in_another_case_is_accepted_and_a_foreign_host_still_refused(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Bug stopped: `Host: VAULT.example.com` refused behind a proxy that keeps the user's spelling,
    while a foreign Host (DNS rebinding) must still be refused whatever its case."""
    token = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path / "data", deployment.server_url, simulator.base_url, allowed_hosts=["Vault.Example.com"]
    )
    with serve_http(settings) as url:
        headers = dict(ACCEPT, Authorization=f"Bearer {token}")
        for host in ("VAULT.EXAMPLE.COM", "vault.example.com", "LOCALHOST"):
            ok = httpx2.post(url, json=INITIALIZE, headers=dict(headers, Host=host), timeout=10)
            assert ok.status_code == 200, (host, ok.status_code, ok.text)
        refused = httpx2.post(url, json=INITIALIZE, headers=dict(headers, Host="EVIL.example"), timeout=10)
        assert refused.status_code >= 400

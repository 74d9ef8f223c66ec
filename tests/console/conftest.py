"""Fixtures for the key entry page and the console: a headless Chromium (Debian's headless shell, else
its full chromium; never a download), and the multi-user deployment (SQLite, and PostgreSQL as the
application role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.console.helpers import BROWSER_ARGS, chromium_executable, chromium_missing_reason
from tests.multiuser.conftest import deployment, deployment_urls, rls_cluster, rls_database

__all__ = ["browser", "deployment", "deployment_urls", "rls_cluster", "rls_database"]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One Chromium per worker (launching costs ~1 s); each test opens its own context (fresh
    cookies, storage and cache) and closes it."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            await launched.close()

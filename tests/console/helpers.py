"""Shared by the console tests and the screenshot script: the browser, the page's forms, markers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Debian's build of Chromium's headless shell (package chromium-headless-shell, same source and
# version as chromium): the same Blink and V8 without the desktop browser around them, as Playwright
# itself uses for headless runs. The browser walks cost ~2.5x less CPU in it (~0.8 s against ~2 s
# per page visited with a few navigations, measured with /proc over every Chromium process).
HEADLESS_SHELL = Path("/usr/bin/chromium-headless-shell")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Every page must carry these (asserted on every response the tests see).
REQUIRED_HEADERS = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def chromium_executable() -> Path | None:
    """The headless shell when installed, else the full Chromium; None when neither is."""
    for candidate, name in ((HEADLESS_SHELL, "chromium-headless-shell"), (CHROMIUM, "chromium")):
        found = candidate if candidate.exists() else shutil.which(name)
        if found:
            return Path(found)
    return None


def chromium_missing_reason() -> str | None:
    if chromium_executable() is not None:
        return None
    return (
        "browser test skipped: Debian's chromium-headless-shell (or chromium) is not installed at "
        "/usr/bin (`apt-get install chromium-headless-shell`; .ci/run installs it)"
    )


def assert_security_headers(headers: Any) -> None:
    """The headers every console and key entry response sends, errors included."""
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    csp = lowered.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, csp
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp, csp
    for name, value in REQUIRED_HEADERS.items():
        assert lowered.get(name) == value, (name, lowered.get(name))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def origin_of(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


async def enter_keys(page: Any, url: str, api_key: str, secret_key: str) -> str:
    """Open the entry page, fill both labelled inputs, submit; returns the resulting page's text."""
    response = await page.goto(url)
    assert response is not None and response.status == 200, response and response.status
    assert_security_headers(await response.all_headers())
    await page.get_by_label("API key id").fill(api_key)
    await page.get_by_label("Secret key").fill(secret_key)
    async with page.expect_navigation():
        await page.get_by_role("button", name=re.compile("store", re.I)).click()
    return str(await page.inner_text("main"))


def watch_urls(context: Any) -> list[str]:
    """Every URL the browser requested or navigated to (its history is a subset)."""
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    return seen

"""A stand-in for Chromium in the PostgreSQL runs of the browser walks: the part of Playwright's
``Page`` the walks use (goto, get_by_label / get_by_role, fill, check, click, inner_text), over plain
HTTP with the pages' own forms.

The console needs no JavaScript by design (its CSP allows no script), so what a person does in the
browser is exactly: follow a link, fill a form's fields, press a button (its form is posted with
every field as shown, plus the button's name and value), follow the redirect. A walk written once
runs in Chromium on SQLite (rendering, screenshots) and here on PostgreSQL, where what differs is
the database under the pages (rows, the application role's policies), not the browser.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx2

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
BLOCK = {"p", "div", "section", "h1", "h2", "h3", "li", "tr", "dt", "dd", "form", "table", "ul", "dl", "br"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def text(self) -> str:
        """The element's text as a browser's innerText roughly gives it: blocks on lines of their own."""
        parts: list[str] = []

        def collect(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif child.tag not in ("script", "style", "option"):
                    if child.tag in BLOCK:
                        parts.append("\n")
                    collect(child)
                    if child.tag in BLOCK:
                        parts.append("\n")
                    elif child.tag in ("td", "th"):
                        parts.append("\t")

        collect(self)
        lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(parts).split("\n"))
        return "\n".join(line for line in lines if line)

    def form(self) -> Node | None:
        node = self.parent
        while node is not None and node.tag != "form":
            node = node.parent
        return node


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


class Locator:
    """The element ``get_by_label`` or ``get_by_role`` found (the first match, like ``.first``)."""

    def __init__(self, page: FormPage, find: Callable[[], Node | None]) -> None:
        self._page, self._find = page, find

    @property
    def first(self) -> Locator:
        return self

    def _node(self) -> Node:
        node = self._find()
        assert node is not None, "no such element on the page"
        return node

    async def fill(self, value: str) -> None:
        self._page.values[id(self._node())] = value

    async def check(self) -> None:
        self._page.values[id(self._node())] = True

    async def uncheck(self) -> None:
        self._page.values[id(self._node())] = False

    async def select_option(self, value: str) -> None:
        node = self._node()
        assert value in [o.attrs.get("value", o.text()) for o in node.walk() if o.tag == "option"], value
        self._page.values[id(node)] = value

    async def input_value(self) -> str:
        return str(self._page.value_of(self._node()))

    async def inner_text(self) -> str:
        return self._node().text()

    async def click(self) -> None:
        node = self._node()
        if node.tag == "a":
            await self._page.goto(urljoin(self._page.url, node.attrs["href"]))
            return
        await self._page.submit(node)


@dataclass
class Answer:
    """What ``goto`` returns: the final response's status and headers."""

    status: int
    headers: dict[str, str]

    async def all_headers(self) -> dict[str, str]:
        return self.headers


class FormPage:
    """One tab of a person without JavaScript, on ``http`` (an AsyncClient that keeps cookies); also
    its browser context, for ``cookies()`` and ``close()``. ``requested`` is every URL it asked for."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.url = ""
        self.root = Node("#document", {})
        self.values: dict[int, str | bool] = {}  # what the person typed or ticked since the page came
        self.requested: list[str] = []
        self._cookies: dict[str, dict[str, Any]] = {}

        async def seen(request: httpx2.Request) -> None:
            self.requested.append(str(request.url))

        http.event_hooks["request"].append(seen)

    async def _show(self, response: httpx2.Response) -> Answer:
        self._keep_cookies(response)
        while response.status_code in (301, 302, 303, 307, 308):  # as a browser follows them
            response = await self.http.get(urljoin(str(response.url), response.headers["location"]))
            self._keep_cookies(response)
        self.url = str(response.url)
        builder = _TreeBuilder()
        builder.feed(response.text)
        self.root, self.values = builder.root, {}
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()})

    def _keep_cookies(self, response: httpx2.Response) -> None:
        """Each Set-Cookie's attributes, as Playwright's ``context.cookies()`` reports them."""
        for header in response.headers.get_list("set-cookie"):
            name_value, *attributes = (part.strip() for part in header.split(";"))
            name, _, value = name_value.partition("=")
            flags = {a.partition("=")[0].lower(): a.partition("=")[2] for a in attributes}
            self._cookies[name] = {
                "name": name,
                "value": value,
                "httpOnly": "httponly" in flags,
                "secure": "secure" in flags,
                "sameSite": flags.get("samesite", "Lax").capitalize(),
            }

    async def cookies(self) -> list[dict[str, Any]]:
        return list(self._cookies.values())

    async def close(self) -> None:
        await self.http.aclose()

    async def goto(self, url: str) -> Answer:
        return await self._show(await self.http.get(url))

    @asynccontextmanager
    async def expect_navigation(self) -> AsyncIterator[None]:
        yield  # every click here navigates before it returns

    async def inner_text(self, selector: str) -> str:
        found = next((n for n in self.root.walk() if n.tag == selector), None)
        assert found is not None, f"no <{selector}> on the page"
        return found.text()

    async def screenshot(self, **_options: Any) -> None:
        """Nothing is drawn without a browser (the screenshots come from the Chromium run)."""

    def get_by_label(self, text: str) -> Locator:
        def find() -> Node | None:
            for label in self.root.walk():
                if label.tag == "label" and label.text() == text:
                    target = label.attrs.get("for")
                    return next((n for n in self.root.walk() if n.attrs.get("id") == target), None)
            return None

        return Locator(self, find)

    def get_by_role(self, role: str, name: str | None = None) -> Locator:
        def find() -> Node | None:
            for node in self.root.walk():
                named = name is None or node.attrs.get("aria-label", node.text()) == name
                if role == "button" and node.tag == "button" and named:
                    return node
                if role == "link" and node.tag == "a" and "href" in node.attrs and named:
                    return node
                if role == "alert" and node.attrs.get("role") == "alert" and named:
                    return node
            return None

        return Locator(self, find)

    def value_of(self, node: Node) -> str | bool:
        if id(node) in self.values:
            return self.values[id(node)]
        if node.attrs.get("type") == "checkbox":
            return "checked" in node.attrs
        if node.tag == "select":
            options = [o for o in node.walk() if o.tag == "option"]
            chosen = next((o for o in options if "selected" in o.attrs), options[0] if options else None)
            return "" if chosen is None else chosen.attrs.get("value", chosen.text())
        if node.tag == "textarea":
            return node.text()
        return node.attrs.get("value", "")

    async def submit(self, button: Node) -> Answer:
        """Press ``button``: its form's fields as the person left them, posted as a browser posts them."""
        form = button.form()
        assert form is not None, "a button outside any form"
        data: dict[str, str] = {}
        for control in form.walk():
            name = control.attrs.get("name")
            if not name or control.tag not in ("input", "select", "textarea") or "disabled" in control.attrs:
                continue
            value = self.value_of(control)
            if control.attrs.get("type") == "checkbox":
                if value is True:
                    data[name] = control.attrs.get("value", "on")
            else:
                data[name] = str(value)
        if button.attrs.get("name"):
            data[button.attrs["name"]] = button.attrs.get("value", "")
        action = urljoin(self.url, form.attrs.get("action") or self.url)
        origin = re.match(r"https?://[^/]+", self.url)
        assert origin is not None and (form.attrs.get("method") or "get").lower() == "post"
        return await self._show(await self.http.post(action, data=data, headers={"Origin": origin.group(0)}))

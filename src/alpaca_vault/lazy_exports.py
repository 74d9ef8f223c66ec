"""A package's re-exports resolved on first use (PEP 562), so importing one room does not load them all.

Answering a stdio client's first tools/list must not wait for SQLAlchemy, the models or every pydantic
model of the broker (#15 cold start); the packages still offer ``from alpaca_vault.broker import X``.
Each package keeps its real imports under ``TYPE_CHECKING`` for the type checker and ``__all__``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any


def exports_on_first_use(
    package: str, where: Mapping[str, str] | Sequence[str], names: Collection[str] = ()
) -> Callable[[str], Any]:
    """The package's ``__getattr__``: ``where`` maps each name to its module, or lists the package's
    modules to search in order for a name of ``names``. A name found is kept on the package."""

    def modules_for(name: str) -> list[str]:
        if isinstance(where, Mapping):
            return [where[name]] if name in where else []
        return [f"{package}.{module}" for module in where] if name in names else []

    def __getattr__(name: str) -> Any:
        for module_name in modules_for(name):
            module = importlib.import_module(module_name)
            if hasattr(module, name):
                value = getattr(module, name)
                setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
                return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

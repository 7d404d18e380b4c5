"""The dialect registry: every module of this package that defines a :class:`Dialect`
subclass registers it by its ``name``, so adding a broker is one module here, its route table
(``rules/routes/<name>.toml``) and its paper-broker module; nothing lists brokers twice.
"""

from __future__ import annotations

import importlib
import pkgutil

from rules.routes import load_routes

from .base import REGISTRY, Dialect

__all__ = ["REGISTRY", "create_dialects"]


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base", "fields"):
            importlib.import_module(f"{__name__}.{module.name}")


def create_dialects() -> dict[str, Dialect]:
    """One instance of every registered dialect, built from its shipped route table."""
    _discover()
    return {name: cls(load_routes(name)) for name, cls in sorted(REGISTRY.items())}

"""The resolver boundary: turn requirement inputs into exact pins with hashes.

    >>> from reprolock.resolver import resolver_for
    >>> resolver = resolver_for("uv")
    >>> resolution = resolver.resolve(request)  # doctest: +SKIP
"""

from __future__ import annotations

from reprolock.errors import ConfigError
from reprolock.resolver.interface import Resolver


def resolver_for(name: str) -> Resolver:
    if name == "uv":
        from reprolock.resolver.uv import UvResolver

        return UvResolver()
    if name == "pip-tools":
        from reprolock.resolver.piptools import PipToolsResolver

        return PipToolsResolver()
    raise ConfigError(f"unknown resolver {name!r}", hint="use 'uv' or 'pip-tools'")

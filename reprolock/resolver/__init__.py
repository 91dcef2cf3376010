"""The resolver boundary: turn requirement inputs into exact pins with hashes.

    >>> from reprolock.resolver import resolver_for
    >>> resolver = resolver_for("uv")
    >>> resolution = resolver.resolve(request)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from reprolock.errors import ConfigError, UsageError
from reprolock.resolver.interface import Resolver


def _uv() -> Resolver:
    from reprolock.resolver.uv import UvResolver

    return UvResolver()


def _pip_tools() -> Resolver:
    from reprolock.resolver.piptools import PipToolsResolver

    return PipToolsResolver()


# The one list of resolvers, by the name reprolock.toml, the lock and --resolver use. The
# config and lock schemas repeat the names as enums (JSON Schema cannot import them);
# tests/test_registries.py keeps the two equal. The factories import lazily: naming a
# resolver must not load every tool's module.
RESOLVERS: Mapping[str, Callable[[], Resolver]] = MappingProxyType(
    {"uv": _uv, "pip-tools": _pip_tools})


def resolver_names() -> tuple[str, ...]:
    """The resolver names, in the order help texts list them (the default first)."""
    return tuple(RESOLVERS)


def check_resolver_name(name: str, *, option: str = "--resolver") -> str:
    """``name`` if a resolver has it; a usage error (exit 2) naming the choices if not."""
    if name not in RESOLVERS:
        raise UsageError.not_known(option, name, resolver_names())
    return name


def resolver_for(name: str) -> Resolver:
    factory = RESOLVERS.get(name)
    if factory is None:
        choices = " or ".join(repr(known) for known in RESOLVERS)
        raise ConfigError(f"unknown resolver {name!r}", hint=f"use {choices}")
    return factory()

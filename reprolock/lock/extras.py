"""The requirements of a project's extras ([project.optional-dependencies]), as
``pip install '.[EXTRA]'`` would install them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from packaging.utils import canonicalize_name

from reprolock.errors import ConfigError

_MOST = 10_000
_HINT = "fix dependencies.extras in the reprolock config, or the extra in pyproject.toml"


def with_extras(deps: list[str], project: Mapping[str, Any], extras: tuple[str, ...],
                strings: Callable[[object, str], list[str]]) -> list[str]:
    """``deps`` and then the requirements of each extra (normalized names), without
    repeats; ``strings`` checks a list read from pyproject.toml."""
    table = project.get("optional-dependencies", {})
    if not isinstance(table, dict):
        raise ConfigError("pyproject.toml: project.optional-dependencies must be a table",
                          hint="see https://packaging.python.org/specifications/pyproject-toml/")
    optional: dict[str, list[str]] = {
        canonicalize_name(k): strings(v, f"project.optional-dependencies.{k}")
                for k, v in table.items()}
    missing = [e for e in extras if e not in optional]
    if missing:
        raise ConfigError(f"pyproject.toml has no extra {', '.join(map(repr, missing))} in "
                          f"[project.optional-dependencies] (it has: "
                          f"{', '.join(sorted(optional)) or 'none'})", hint=_HINT)
    name = project.get("name")
    own = canonicalize_name(name) if isinstance(name, str) else None
    found = dict.fromkeys(deps)
    budget = [_MOST]
    for extra in extras:
        found.update(dict.fromkeys(_expanded(extra, optional, own, None, (), budget)))
    return list(found)


def _expanded(extra: str, optional: Mapping[str, list[str]], own: str | None,
              marker: str | None, path: tuple[str, ...], budget: list[int]) -> list[str]:
    """The requirements of ``extra``; one that names the project itself (``proj[a,b]``)
    stands for those extras, under its marker. ``path``: the extras that led here (a
    cycle ends); ``budget``: how many more requirements a crafted file may make us read."""
    from packaging.requirements import InvalidRequirement, Requirement

    if extra in path:
        return []
    found: list[str] = []
    for text in optional.get(extra, []):
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigError(f"pyproject.toml: the extras {', '.join((*path, extra))} "
                              f"name each other into more than {_MOST} requirements",
                              hint=_HINT)
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"pyproject.toml: extra {extra!r} holds {text!r}, which is not a "
                              f"requirement ({exc})", hint=_HINT) from exc
        inner = _joined(str(req.marker) if req.marker else None, marker)
        if own is not None and canonicalize_name(req.name) == own:
            for nested in sorted(canonicalize_name(e) for e in req.extras):
                if nested not in optional:
                    raise ConfigError(f"pyproject.toml: extra {extra!r} names "
                                      f"{text!r}, whose extra {nested!r} does not exist",
                                      hint=_HINT)
                found += _expanded(nested, optional, own, inner, (*path, extra), budget)
        else:
            found.append(text if inner == (str(req.marker) if req.marker else None)
                         else _with_marker(req, inner))
    return found


def _joined(first: str | None, second: str | None) -> str | None:
    if first and second:
        return f"({first}) and ({second})"
    return first or second


def _with_marker(req: Any, marker: str | None) -> str:
    from packaging.markers import Marker

    req.marker = Marker(marker) if marker else None
    return str(req)

"""Named indexes for uv: each package pinned to one comes from it and from no other index.

uv pins a package to an index only where a ``pyproject.toml`` it reads declares the
package as a dependency (``[tool.uv.sources]``); a package that is only required by
another (``triton`` by ``torch``) would come from the default index (astral-sh/uv#8253,
#15003) -- the dependency-confusion hole of the 2022 torchtriton incident. So reprolock
writes such a ``pyproject.toml`` beside the user's inputs and resolves in passes: each
pass declares every pinned package that the previous one resolved, until the set holds.
A package declared only by that file (nothing of the user's needs it any longer) is
dropped in the next pass, so the passes add nothing the inputs do not require.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from reprolock._internal.urls import redact, userinfo
from reprolock.errors import ResolverError
from reprolock.resolver.interface import IndexSettings, Pin

PROJECT = "reprolock-index-pins"  # the name of the written project: never a real package
MAX_PASSES = 6


def write_project(settings: IndexSettings, pinned: Iterable[str], dest: Path,
                  ) -> dict[str, str]:
    """Write the project that pins ``pinned`` to their named indexes into ``dest``; return
    the variables that give uv the credentials of each index (never the file)."""
    lines = ["[project]", f'name = "{PROJECT}"', 'version = "0"',
             f"dependencies = {json.dumps(sorted(pinned))}", ""]
    env: dict[str, str] = {}
    for index in settings.named:
        # json.dumps writes a valid TOML basic string for any text
        lines += ["[[tool.uv.index]]", f"name = {json.dumps(index.name)}",
                  f"url = {json.dumps(redact(index.url))}", "explicit = true", ""]
        env.update(_credentials(index.name, index.url))
    lines += ["[tool.uv.sources]"]
    lines += [f"{json.dumps(pkg)} = {{ index = {json.dumps(index.name)} }}"
              for index in settings.named for pkg in index.packages]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env


def _credentials(name: str, url: str) -> dict[str, str]:
    """uv reads an index's credentials from UV_INDEX_<NAME>_USERNAME/_PASSWORD."""
    found = userinfo(url)
    if found is None:
        return {}
    key = re.sub(r"[^A-Z0-9]", "_", name.upper())
    return {f"UV_INDEX_{key}_USERNAME": found[0], f"UV_INDEX_{key}_PASSWORD": found[1]}


def resolve_pinned(settings: IndexSettings, direct: Iterable[str],
                   compile_with: Callable[[frozenset[str]], tuple[Pin, ...]],
                   ) -> tuple[Pin, ...]:
    """Resolve until the declared set is the set of pinned packages the resolution holds;
    ``compile_with`` runs one pass with the given packages declared.

    The first pass declares the pinned packages the inputs name. Where it fails (a package
    they need is on the named index only), the next declares every pinned package, and
    the passes after it drop those nothing of the user's needs."""
    everything = frozenset(p for n in settings.named for p in n.packages)
    declared = frozenset(n for n in direct if n in everything)
    for _ in range(MAX_PASSES):
        try:
            pins = compile_with(declared)
        except ResolverError:
            if declared == everything:
                raise
            declared = everything
            continue
        present = {p.name for p in pins if p.name in everything}
        only_ours = {p.name for p in pins if p.name in declared and set(p.via) <= {PROJECT}}
        following = frozenset((declared | present) - only_ours)
        if following == declared:
            return tuple(_without_project(p) for p in pins)
        declared = following
    raise ResolverError(
        f"the packages pinned to named indexes did not settle in {MAX_PASSES} resolutions",
        hint="require the pinned packages directly in your requirements (each from its "
        "named index), or report this with your reprolock.toml")


def _without_project(pin: Pin) -> Pin:
    from dataclasses import replace

    return replace(pin, via=tuple(v for v in pin.via if v != PROJECT))


def refuse_named(settings: IndexSettings, tool: str) -> None:
    """For a resolver that cannot take a package from one index only."""
    if settings.named:
        names = ", ".join(f"{n.name} ({redact(n.url)})" for n in settings.named)
        raise ResolverError(
            f"{tool} cannot take a package from one index only, and index.named lists "
            f"{names}", hint="set resolver = \"uv\" in reprolock.toml, or move the "
            "[[index.named]] URLs to index.extra-urls (every file is still pinned by its "
            "hash, but a package may then come from either index)")

"""Whiteouts: which paths of the layers beneath a layer it hides."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def hidden_by(hidden: Iterable[str]) -> Callable[[str], bool]:
    """A test of whether a path is one of ``hidden`` or below one ("" or "/": the root,
    everything), in time of the path's depth: a crafted layer of 60,000 whiteouts over
    60,000 files made the test of every path against every whiteout run for minutes."""
    marks = {h.strip("/") for h in hidden}
    if "" in marks:
        return lambda path: True

    def gone(path: str) -> bool:
        path = path.strip("/")
        while path:
            if path in marks:
                return True
            path = path.rpartition("/")[0]
        return False

    return gone

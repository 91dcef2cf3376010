"""Strict JSON for every document reprolock reads: locks, records, envelopes, manifests.

Every such document may be crafted. Python's ``json`` accepts duplicate keys (the last
wins, so two readers of one file can disagree about what it says), ``NaN`` and
``Infinity``, and raises ``RecursionError`` on deep nesting. Here each of those is a
:class:`~reprolock.errors.ReprolockError` of the caller's type, naming the document.

    >>> from reprolock.errors import LockFileError
    >>> parse_json(b'{"a": 1}', source="x.json", error=LockFileError)
    {'a': 1}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolock.errors import ReprolockError

#: Deeper documents are refused before parsing: no file reprolock reads nests past ~12.
MAX_DEPTH = 64
#: The default bound of one read: a lock of 2,000 packages is about 5 MB.
DEFAULT_LIMIT = 64 << 20


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C: an index page has thousands of objects
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings, without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(
    data: bytes | str,
    *,
    source: str,
    error: type[ReprolockError] = ReprolockError,
    hint: str | None = None,
    want_object: bool = True,
    max_depth: int | None = MAX_DEPTH,
) -> Any:
    """Parse ``data`` strictly; raise ``error`` naming ``source`` on anything malformed.

    ``max_depth=None`` skips the nesting check, a loop over every character: for a
    document nothing walks recursively (an index page), where the decoder's own
    ``RecursionError`` is enough."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise error(f"{source} is not UTF-8 text (byte {exc.start})", hint=hint) from None
    if max_depth is not None and ("[" in text or "{" in text) and _depth(text) > max_depth:
        raise error(f"{source} nests deeper than {max_depth} levels; no document reprolock "
                    "writes does", hint=hint)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate as exc:
        raise error(f"{source} has the key {json.dumps(str(exc))} twice in one object; "
                    "readers disagree about which one counts, so it is refused",
                    hint=hint) from None
    except json.JSONDecodeError as exc:
        raise error(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg})", hint=hint) from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{source} is not valid JSON: {exc}", hint=hint) from None
    if want_object and not isinstance(value, dict):
        raise error(f"{source} is not a JSON object (it is {type(value).__name__})",
                    hint=hint)
    return value


def read_bounded(
    path: Path,
    *,
    limit: int = DEFAULT_LIMIT,
    error: type[ReprolockError] = ReprolockError,
    hint: str | None = None,
) -> bytes:
    """Read at most ``limit`` bytes of ``path``; a larger file is an error, not a stall."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error(f"no file at {path}", hint=hint) from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a file", hint=hint) from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}", hint=hint) from None
    if len(data) > limit:
        raise error(f"{path} is larger than {limit} bytes, more than any such file needs",
                    hint=hint)
    return data


def read_json(
    path: Path,
    *,
    error: type[ReprolockError] = ReprolockError,
    hint: str | None = None,
    limit: int = DEFAULT_LIMIT,
    want_object: bool = True,
) -> Any:
    """Read and strictly parse the JSON document at ``path``."""
    data = read_bounded(path, limit=limit, error=error, hint=hint)
    return parse_json(data, source=str(path), error=error, hint=hint, want_object=want_object)

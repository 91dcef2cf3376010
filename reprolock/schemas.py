"""JSON Schemas of every file reprolock reads or writes, and validation against them.

    >>> from reprolock.schemas import validate
    >>> validate({"base": "x"}, "config", source="reprolock.toml")
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from reprolock.errors import ReprolockError

_PACKAGED = Path(__file__).parent / "schemas"
_SOURCE_TREE = Path(__file__).parent.parent / "schemas"


def schema_dir() -> Path:
    """The installed wheel carries schemas/ inside the package; a checkout has it beside."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    path = schema_dir() / f"{name}.schema.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def validate(
    instance: Any,
    name: str,
    *,
    source: str,
    error: type[ReprolockError] = ReprolockError,
    hint: str | None = None,
    cache_dir: Path | None = None,
) -> None:
    """Raise ``error`` naming ``source``, the key path and what was expected.

    With ``cache_dir``, a document that passed once is not checked again: the stamp is
    keyed by the schema's and the document's digests, so any change is checked anew.
    """
    try:
        stamp = _stamp(cache_dir, name, instance)
        if stamp is not None and stamp.exists():
            return
        _validate(instance, name, source=source, error=error, hint=hint)
    except RecursionError:  # a document nested deeper than any reprolock writes
        raise error(f"{source} is nested too deeply to check", hint=hint or
                    f"edit {source}; the schema is schemas/{name}.schema.json") from None
    if stamp is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs time
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()


def _stamp(cache_dir: Path | None, name: str, instance: Any) -> Path | None:
    if cache_dir is None:
        return None
    schema = (schema_dir() / f"{name}.schema.json").read_bytes()
    doc = json.dumps(instance, sort_keys=True, default=_tagged).encode()
    key = hashlib.sha256(hashlib.sha256(schema).digest() + doc).hexdigest()
    return cache_dir / "valid" / f"{name}-{key}"


def _tagged(value: Any) -> dict[str, str]:
    """A non-JSON value (a TOML date) keyed by its type, so it never stamps like a string."""
    return {"$type": type(value).__name__, "value": str(value)}


def _validate(
    instance: Any,
    name: str,
    *,
    source: str,
    error: type[ReprolockError],
    hint: str | None,
) -> None:
    import jsonschema  # slow to import; only paid when something is validated

    schema = load_schema(name)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = [_describe(err, schema) for err in errors[:10]]
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    raise error(
        f"{source} is not valid:\n" + "\n".join(f"  - {line}" for line in lines) + more,
        hint=hint or f"edit {source}; the schema is schemas/{name}.schema.json",
    )


def _describe(err: Any, schema: dict[str, Any]) -> str:
    where = _key_path(list(err.absolute_path))
    if err.validator == "additionalProperties":
        return _unknown_keys(err, where)
    if err.validator == "type":
        got = f"{_json_type(err.instance)} {_short(err.instance)}"
        return f"{where}: expected {_a(err.validator_value)}, got {got}"
    if err.validator == "enum":
        choices = ", ".join(json.dumps(v) for v in err.validator_value)
        return f"{where}: {_short(err.instance)} is not one of {choices}"
    if err.validator == "required":
        return f"{where}: {err.message}"
    if err.validator == "pattern":
        desc = _description(err)
        return f"{where}: {_short(err.instance)} does not match {err.validator_value}" + (
            f" ({desc})" if desc else ""
        )
    return f"{where}: {err.message}"


def _unknown_keys(err: Any, where: str) -> str:
    allowed = sorted(err.schema.get("properties", {}))
    unknown = sorted(set(err.instance) - set(allowed))
    parts = []
    for key in unknown:
        near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        tip = f" (did you mean {near[0]!r}?)" if near else ""
        parts.append(f"unknown key {_key_path([*err.absolute_path, key])!r}{tip}")
    known = f"; known keys here: {', '.join(allowed)}" if allowed else ""
    return "; ".join(parts) + known if parts else f"{where}: {err.message}"


def _key_path(parts: list[Any]) -> str:
    if not parts:
        return "(top level)"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _description(err: Any) -> str:
    desc = err.schema.get("description", "")
    return str(desc).split(". ")[0].rstrip(".")


def _a(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(_a(e) for e in expected)
    return {"object": "a table", "array": "a list", "string": "a string",
            "boolean": "true or false", "integer": "an integer"}.get(expected, str(expected))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."

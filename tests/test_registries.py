"""Each extension point is named once, in its registry; the JSON Schemas repeat the names
as enums (a schema cannot import them), so this keeps the two equal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reprolock.errors import EXIT_ERROR, UsageError
from reprolock.resolver import check_resolver_name, resolver_for, resolver_names
from reprolock.sbom import check_sbom_format, sbom_format_names
from reprolock.sbom.interface import FORMATS

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

# (schema file, JSON pointer of the enum) → the registry that owns the names
RESOLVER_ENUMS = [("config.schema.json", "/properties/resolver"),
                  ("lock.schema.json", "/properties/inputs/properties/resolver"),
                  ("lock.schema.json", "/properties/resolver/properties/name")]
SBOM_ENUMS = [("lock.schema.json", "/properties/sbom/properties/format")]


def _enum(schema: str, pointer: str) -> list[Any]:
    node: Any = json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return list(node["enum"])


def _enums(node: Any) -> Iterator[list[Any]]:
    if isinstance(node, dict):
        if "enum" in node:
            yield list(node["enum"])
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


def _every_enum() -> list[list[Any]]:
    return [enum for path in sorted(SCHEMAS.glob("*.json"))
            for enum in _enums(json.loads(path.read_text(encoding="utf-8")))]


@pytest.mark.parametrize(("schema", "pointer"), RESOLVER_ENUMS)
def test_schema_resolver_enum_is_the_registry(schema: str, pointer: str) -> None:
    assert _enum(schema, pointer) == list(resolver_names())


@pytest.mark.parametrize(("schema", "pointer"), SBOM_ENUMS)
def test_schema_sbom_format_enum_is_the_registry(schema: str, pointer: str) -> None:
    assert _enum(schema, pointer) == list(sbom_format_names())


def test_no_other_enum_lists_resolvers_or_sbom_formats() -> None:
    """A schema that names them somewhere new must be added to the lists above."""
    known = {tuple(_enum(s, p)) for s, p in RESOLVER_ENUMS + SBOM_ENUMS}
    names = set(resolver_names()) | set(sbom_format_names())
    for enum in _every_enum():
        if names & set(map(str, enum)):
            assert tuple(enum) in known
    counted = sum(1 for enum in _every_enum() if names & set(map(str, enum)))
    assert counted == len(RESOLVER_ENUMS) + len(SBOM_ENUMS)


def test_no_schema_lists_output_schemes() -> None:
    """Output schemes (oci:, oci-archive:, docker:, registry:) are command-line values that
    no lock, record or config stores, so no schema has an enum of them to keep in step
    with reprolock.output. A schema that gains one must be checked against it here."""
    schemes = {"oci", "oci-archive", "docker", "registry"}
    assert not [enum for enum in _every_enum() if schemes & set(map(str, enum))]


@pytest.mark.parametrize("name", resolver_names())
def test_each_resolver_is_built_under_its_name(name: str) -> None:
    assert resolver_for(name).name == name


def test_sbom_formats_have_distinct_files_and_media_types() -> None:
    assert sbom_format_names()[0] == "spdx"  # the default of --sbom-format
    assert len({f.file_name for f in FORMATS.values()}) == len(FORMATS)
    assert len({f.media_type for f in FORMATS.values()}) == len(FORMATS)


def test_unknown_names_are_usage_errors_listing_the_registry() -> None:
    assert check_resolver_name("uv") == "uv"
    assert check_sbom_format("cyclonedx") == "cyclonedx"
    with pytest.raises(UsageError) as resolver:
        check_resolver_name("poetry")
    assert resolver.value.exit_code == EXIT_ERROR
    assert resolver.value.diagnostics() == ("--resolver 'poetry' is not known\n"
                                            "  fix: use uv or pip-tools")
    with pytest.raises(UsageError) as sbom:
        check_sbom_format("swid")
    assert sbom.value.diagnostics() == ("--sbom-format 'swid' is not known\n"
                                        "  fix: use spdx or cyclonedx")


# Exception classes outside reprolock/errors.py, each with why. The runtime checker ships
# into images without reprolock, so it keeps its own standard-library error.
ERRORS_ELSEWHERE = {("runtime/check.py", "CheckError"),
                    ("_internal/jsonio.py", "_Duplicate"),  # private: never leaves jsonio
                    # a condition, never an error: sbomview catches it and gives syft the
                    # whole layer
                    ("oci/tarfilter.py", "Unfilterable")}


def test_every_exception_class_is_defined_in_errors_py() -> None:
    """One module names every error reprolock raises, so one import finds them all and
    each exit code is decided in one place."""
    import ast
    import builtins

    package = Path(__file__).resolve().parent.parent / "reprolock"
    errors = {name for name, value in vars(__import__("reprolock.errors").errors).items()
              if isinstance(value, type) and issubclass(value, BaseException)}
    bases = errors | {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
    found = set()
    for path in sorted(package.rglob("*.py")):
        if path.name == "errors.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(base).rpartition(".")[2] in bases for base in node.bases):
                found.add((path.relative_to(package).as_posix(), node.name))
    assert found <= ERRORS_ELSEWHERE

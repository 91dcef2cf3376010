"""The project's configuration: ``reprolock.toml`` or ``[tool.reprolock]`` in pyproject.toml.

    >>> from pathlib import Path
    >>> from reprolock.config import load_config
    >>> config = load_config(Path("fixtures/example"))   # doctest: +SKIP
    >>> config.resolver
    'uv'
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.urls import literal_credential, redact
from reprolock.errors import ConfigError
from reprolock.schemas import validate

CONFIG_NAME = "reprolock.toml"
DEFAULT_LOCKFILE = "reprolock.lock.json"
NOT_LOCK_INPUTS = ("audit", "run", "require-signature")
_MAX_DEPTH = 32  # no setting nests deeper; a deeper document is refused before it is read


@dataclass(frozen=True)
class NamedIndex:
    """An index that serves only the packages pinned to it, and those only from it (uv's
    explicit index with first-index semantics): ``[[index.named]]``."""

    name: str
    url: str  # as written: may hold ${VARS}
    packages: tuple[str, ...]  # normalized names


@dataclass(frozen=True)
class IndexConfig:
    url: str | None = None
    extra_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    named: tuple[NamedIndex, ...] = ()

    def pinned(self) -> dict[str, str]:
        """Each package pinned to a named index, and the index's name."""
        return {pkg: index.name for index in self.named for pkg in index.packages}


@dataclass(frozen=True)
class ImageConfig:
    workdir: str = "/app"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditConfig:
    """The ``[audit]`` table: rules to ignore everywhere or under some paths, and the
    severity that makes ``reprolock audit`` exit 1."""

    ignore: tuple[str, ...] = ()
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (glob, rule ids)
    fail_on: str | None = None


@dataclass(frozen=True)
class Config:
    """A validated configuration. ``data`` is the table as written (less ``[audit]``), for
    the inputs digest."""

    root: Path
    source: Path
    data: Mapping[str, Any]
    base: str
    platform: str = "linux/amd64"
    resolver: str = "uv"
    lockfile: str = DEFAULT_LOCKFILE
    requirements: tuple[str, ...] = ()
    pyproject_dependencies: bool = False
    pyproject_extras: tuple[str, ...] = ()  # normalized (PEP 685): locked beside them
    build_from_source: tuple[str, ...] = ()  # normalized names: built from their sdist
    index: IndexConfig = IndexConfig()
    code_include: tuple[str, ...] = ()
    code_exclude: tuple[str, ...] = ()
    image: ImageConfig = ImageConfig()
    audit: AuditConfig = AuditConfig()
    require_signature: bool = False  # verify fails on an unsigned lock or without --key
    run_outputs: str = "outputs"  # [run] outputs: mounted at /outputs by 'reprolock run'
    run_gpus: str | None = None  # [run] gpus: "all" or a count

    @property
    def lock_path(self) -> Path:
        return self.root / self.lockfile

    @property
    def source_name(self) -> str:
        return self.source.name if self.source.parent == self.root else str(self.source)


def find_config(root: Path) -> Path:
    """The config file of the project at ``root``: reprolock.toml, else pyproject.toml."""
    own = root / CONFIG_NAME
    if own.is_file():
        return own
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool")
        if isinstance(tool, dict) and "reprolock" in tool:
            return pyproject
    raise ConfigError(
        f"no {CONFIG_NAME} (nor [tool.reprolock] in pyproject.toml) in {root}",
        hint=f"run 'reprolock init {root}' to write a starter {CONFIG_NAME}",
    )


def load_config(root: Path, *, cache_dir: Path | None = None) -> Config:
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"project directory {root} does not exist",
                          hint="pass the directory that holds reprolock.toml")
    source = find_config(root)
    doc = _read_toml(source)
    if source.name == "pyproject.toml":
        table = doc["tool"]["reprolock"]
        where = f"{source.name} [tool.reprolock]"
    else:
        table = doc
        where = source.name
    validate(table, "config", source=where, error=ConfigError,
             cache_dir=cache_dir if cache_dir is not None else default_cache_dir())
    _refuse_literal_credentials(table, where)
    return _from_table(root, source, table)


def _refuse_literal_credentials(table: Mapping[str, Any], where: str) -> None:
    """The config is committed and goes into the image: a password written in it is
    published. Only ``${VAR}`` references may stand for one."""
    index = table.get("index", {})
    urls = [("index.url", index.get("url"))]
    for key in ("extra-urls", "find-links"):
        urls += [(f"index.{key}[{i}]", url) for i, url in enumerate(index.get(key, ()))]
    urls += [(f"index.named[{i}].url", entry.get("url"))
             for i, entry in enumerate(index.get("named", ())) if isinstance(entry, dict)]
    for key, url in urls:
        if isinstance(url, str) and literal_credential(url):
            raise ConfigError(
                f"{where}: {key} ({redact(url)}) holds a literal user name or password; "
                "the file is committed and goes into the image, so the secret would be "
                "published",
                hint="write it as \"https://user:${INDEX_TOKEN}@host/simple\" (or "
                "\"https://${INDEX_TOKEN}@host/simple\" for a token), set INDEX_TOKEN in "
                "the environment, and rotate the credential that was written in the file",
            )


def _from_table(root: Path, source: Path, table: Mapping[str, Any]) -> Config:
    deps = table.get("dependencies", {})
    index = table.get("index", {})
    code = table.get("code", {})
    image = table.get("image", {})
    audit = table.get("audit", {})
    config = Config(
        root=root,
        source=source,
        # [audit], [run] and require-signature say how to report, run and verify, not
        # what to lock: editing them must not stale the lock
        data={key: value for key, value in table.items() if key not in NOT_LOCK_INPUTS},
        base=table["base"],
        platform=table.get("platform", "linux/amd64"),
        resolver=table.get("resolver", "uv"),
        lockfile=table.get("lockfile", DEFAULT_LOCKFILE),
        requirements=tuple(deps.get("requirements", ())),
        pyproject_dependencies=bool(deps.get("pyproject", False)),
        pyproject_extras=tuple(sorted({_normalized(n) for n in deps.get("extras", ())})),
        build_from_source=tuple(sorted({_normalized(n)
                                        for n in deps.get("build-from-source", ())})),
        index=IndexConfig(
            url=index.get("url"),
            extra_urls=tuple(index.get("extra-urls", ())),
            find_links=tuple(index.get("find-links", ())),
            no_index=bool(index.get("no-index", False)),
            named=tuple(NamedIndex(entry["name"], entry["url"],
                                   tuple(sorted({_normalized(n) for n in entry["packages"]})))
                        for entry in index.get("named", ())),
        ),
        code_include=tuple(code.get("include", ())),
        code_exclude=tuple(code.get("exclude", ())),
        image=ImageConfig(
            workdir=image.get("workdir", "/app"),
            entrypoint=tuple(image.get("entrypoint", ())),
            cmd=tuple(image.get("cmd", ())),
            env=dict(image.get("env", {})),
        ),
        audit=AuditConfig(
            ignore=tuple(audit.get("ignore", ())),
            per_path_ignores=tuple((glob, tuple(ids)) for glob, ids
                                   in audit.get("per-path-ignores", {}).items()),
            fail_on=audit.get("fail-on"),
        ),
        require_signature=bool(table.get("require-signature", False)),
        run_outputs=str(table.get("run", {}).get("outputs", "outputs")),
        run_gpus=table.get("run", {}).get("gpus"),
    )
    _check_paths(config)
    return config


def _check_paths(config: Config) -> None:
    where = config.source_name
    if not config.requirements and not config.pyproject_dependencies:
        raise ConfigError(
            f"{where}: no dependency inputs",
            hint="set dependencies.requirements = [\"requirements.in\"] "
            "or dependencies.pyproject = true",
        )
    for i, name in enumerate(config.requirements):
        if not (config.root / name).is_file():
            raise ConfigError(
                f"{where}: dependencies.requirements[{i}] names {name!r}, "
                f"which does not exist in {config.root}",
                hint="create the file or fix the path (relative to the project root)",
            )
    if config.pyproject_dependencies and not (config.root / "pyproject.toml").is_file():
        raise ConfigError(
            f"{where}: dependencies.pyproject is true but {config.root}/pyproject.toml "
            "does not exist",
            hint="set dependencies.pyproject = false or add a pyproject.toml",
        )
    if config.pyproject_extras and not config.pyproject_dependencies:
        raise ConfigError(f"{where}: dependencies.extras names extras of pyproject.toml, but "
                          "dependencies.pyproject is false",
                          hint="set dependencies.pyproject = true to lock [project."
                          "dependencies] and these extras, or remove dependencies.extras")
    if config.index.no_index and not config.index.find_links:
        raise ConfigError(f"{where}: index.no-index is true but index.find-links is empty",
                          hint="add a wheel directory to index.find-links")
    _check_named(config.index, where)


def _normalized(name: str) -> str:
    # PEP 503 normalization, as packaging's canonicalize_name (not imported: the
    # pre-commit check reads the config and must start light)
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_named(index: IndexConfig, where: str) -> None:
    if index.named and index.no_index:
        raise ConfigError(f"{where}: index.no-index is true, but index.named lists indexes",
                          hint="remove index.no-index, or the [[index.named]] tables")
    seen: dict[str, str] = {}
    names = [entry.name for entry in index.named]
    for i, entry in enumerate(index.named):
        if names.count(entry.name) > 1:
            raise ConfigError(f"{where}: index.named[{i}].name {entry.name!r} is used twice",
                              hint="give each named index its own name")
        for package in entry.packages:
            if package in seen:
                raise ConfigError(
                    f"{where}: {package} is pinned to two named indexes, {seen[package]!r} "
                    f"and {entry.name!r}", hint="a package comes from one index only: "
                    "remove it from the packages of one of them")
            seen[package] = entry.name


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name} is not valid TOML: line {line} is not UTF-8 text",
            hint=f"save {path} as UTF-8",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path.name} is not valid TOML: {exc}",
            hint=f"fix the syntax in {path}",
        ) from exc
    except (RecursionError, MemoryError) as exc:  # tomllib recurses once per nesting level
        raise _too_deep(path) from exc
    if _depth(doc) > _MAX_DEPTH:
        raise _too_deep(path)
    return doc


def _too_deep(path: Path) -> ConfigError:
    return ConfigError(f"{path.name} nests arrays or tables more than {_MAX_DEPTH} levels deep",
                       hint=f"no reprolock setting nests that deep; fix {path}")


def _depth(doc: dict[str, Any]) -> int:
    """How deep arrays and tables nest, counted without recursion."""
    deepest = 0
    todo: list[tuple[dict[str, Any] | list[Any], int]] = [(doc, 1)]
    while todo:
        node, level = todo.pop()
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            break  # already too deep: no need to walk the rest
        children = list(node.values()) if isinstance(node, dict) else node
        todo += [(child, level + 1) for child in children if isinstance(child, dict | list)]
    return deepest

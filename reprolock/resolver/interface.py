"""What a resolver takes and gives."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock._internal.urls import expand_env, is_remote, redact, userinfo
from reprolock.errors import ResolverError
from reprolock.target import Target

if TYPE_CHECKING:
    from reprolock.config import Config


@dataclass(frozen=True)
class NamedIndexSettings:
    """A named index, its URL expanded (may hold credentials), and the packages that come
    from it and from nowhere else."""

    name: str
    url: str
    packages: tuple[str, ...]  # normalized names


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from, with ``${VAR}`` already expanded (may hold credentials)."""

    url: str | None = None
    extra_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # absolute directories or URLs
    no_index: bool = False
    named: tuple[NamedIndexSettings, ...] = ()

    def named_for(self, package: str) -> NamedIndexSettings | None:
        """The named index ``package`` (a normalized name) is pinned to, if any."""
        return next((n for n in self.named if package in n.packages), None)

    def options(self, names: IndexVariables) -> tuple[list[str], dict[str, str]]:
        """The command-line options and environment variables that give the tool these
        indexes: a list that holds a credential goes through the environment, which only
        this user can read, never through argv, which every local user reads in
        /proc/PID/cmdline."""
        argv: list[str] = ["--no-index"] if self.no_index else []
        env: dict[str, str] = {}
        lists = [("--index-url", names.index_url, " ",
                  [self.url] if self.url and not self.no_index else []),
                 ("--extra-index-url", names.extra_index_urls, " ",
                  [] if self.no_index else list(self.extra_urls)),
                 ("--find-links", names.find_links, names.find_links_separator,
                  list(self.find_links))]
        for option, variable, separator, values in lists:
            if not any(userinfo(v) for v in values):
                argv += [arg for value in values for arg in (option, value)]
                continue
            for value in values:
                if separator in value or (separator == " " and value != value.strip()):
                    raise ResolverError(
                        f"{redact(value)} holds {separator!r}, which separates the entries "
                        f"of {variable}, the variable that passes it with credentials",
                        hint="rename the directory or percent-encode the URL")
            env[variable] = separator.join(values)
        return argv, env

    def secrets(self) -> list[str]:
        return [u for u in (self.url, *self.extra_urls, *self.find_links,
                            *(n.url for n in self.named)) if u]


@dataclass(frozen=True)
class IndexVariables:
    """The environment variables a resolver reads in place of its index options."""

    index_url: str
    extra_index_urls: str  # space-separated
    find_links: str
    find_links_separator: str
    cleared: tuple[str, ...]  # other variables that would add indexes

    def environment(self, base: Mapping[str, str], given: Mapping[str, str]) -> dict[str, str]:
        """``base`` less every index variable (the user's own must not mix in), plus
        ``given``."""
        drop = {*self.cleared, self.index_url, self.extra_index_urls, self.find_links}
        return {**{k: v for k, v in base.items() if k not in drop}, **given}


@dataclass(frozen=True)
class ResolveRequest:
    root: Path
    inputs: tuple[Path, ...]  # requirement files, absolute
    target: Target
    index: IndexSettings
    preferred: str = ""  # earlier pins (requirements format) to keep unless upgraded
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    from_source: tuple[str, ...] = ()  # packages taken as sdists (built), all others wheels


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    hashes: tuple[str, ...]  # "sha256:<hex>", sorted
    via: tuple[str, ...]  # "-r requirements.in" or the names of dependents


@dataclass(frozen=True)
class Resolution:
    pins: tuple[Pin, ...]
    resolver: str
    resolver_version: str


class Resolver(abc.ABC):
    name: str

    @abc.abstractmethod
    def version(self) -> str:
        """The resolver's version, recorded in the lock."""

    @abc.abstractmethod
    def check_target(self, target: Target) -> None:
        """Raise if this resolver cannot resolve for ``target`` here."""

    @abc.abstractmethod
    def resolve(self, request: ResolveRequest) -> Resolution:
        """Pin every requirement of the inputs, with the hashes of all their files."""


def index_settings(config: Config) -> IndexSettings:
    """Where packages come from, with ``${VARS}`` expanded and find-links absolute."""
    index = config.index
    links = tuple(expand_env(link) if is_remote(expand_env(link))
                  else str(config.root / link) for link in index.find_links)
    return IndexSettings(
        url=expand_env(index.url) if index.url else None,
        extra_urls=tuple(expand_env(u) for u in index.extra_urls),
        find_links=links, no_index=index.no_index,
        named=tuple(NamedIndexSettings(n.name, expand_env(n.url), n.packages)
                    for n in index.named))


def index_credentials(config: Config) -> dict[str, str]:
    """Map ``scheme://host`` of each index that has credentials to the configured form
    (which may hold ${VARS}), so downloads from that host authenticate."""
    from urllib.parse import urlsplit

    found = {}
    for url in (config.index.url, *config.index.extra_urls,
                *(n.url for n in config.index.named)):
        parts = urlsplit(url or "")
        if "@" in parts.netloc:
            found[f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[1]}"] = \
                f"{parts.scheme}://{parts.netloc}"
    return found

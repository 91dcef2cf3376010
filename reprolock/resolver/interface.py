"""What a resolver takes and gives."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from reprolock.target import Target


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from, with ``${VAR}`` already expanded (may hold credentials)."""

    url: str | None = None
    extra_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # absolute directories or URLs
    no_index: bool = False

    def args(self) -> list[str]:
        """The options pip-compile and uv both understand."""
        argv: list[str] = []
        if self.no_index:
            argv.append("--no-index")
        elif self.url:
            argv += ["--index-url", self.url]
        for url in self.extra_urls if not self.no_index else ():
            argv += ["--extra-index-url", url]
        for link in self.find_links:
            argv += ["--find-links", link]
        return argv

    def secrets(self) -> list[str]:
        return [u for u in (self.url, *self.extra_urls, *self.find_links) if u]


@dataclass(frozen=True)
class ResolveRequest:
    root: Path
    inputs: tuple[Path, ...]  # requirement files, absolute
    target: Target
    index: IndexSettings
    preferred: str = ""  # earlier pins (requirements format) to keep unless upgraded
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()


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

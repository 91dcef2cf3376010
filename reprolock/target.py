"""The machine a lock is for, and which wheel of a release fits it best.

    >>> from reprolock.target import Platform, Target
    >>> t = Target(Platform.parse("linux/amd64"), "3.11.2", "glibc", "2.36")
    >>> t.abi, t.uv_platform
    ('cp311', 'x86_64-manylinux_2_36')
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from reprolock.errors import ConfigError

_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_UV_MANYLINUX = range(28, 41)  # uv knows x86_64-manylinux_2_28 .. _2_40 (and 2_17)


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or parts[0] != "linux" or parts[1] not in _MACHINES:
            raise ConfigError(
                f"unsupported platform {text!r}",
                hint="use linux/amd64 or linux/arm64",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @property
    def machine(self) -> str:
        return _MACHINES[self.arch]

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)


@dataclass(frozen=True)
class Target:
    platform: Platform
    python_version: str
    libc_family: str  # "glibc" or "musl"
    libc_version: str
    implementation: str = "cpython"

    @property
    def python_minor(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        major, minor = self.python_minor
        return f"cp{major}{minor}"

    @property
    def libc_minor(self) -> tuple[int, int]:
        major, minor = self.libc_version.split(".")[:2]
        return int(major), int(minor)

    def platform_tags(self) -> list[str]:
        machine = self.platform.machine
        major, newest = self.libc_minor
        if self.libc_family == "musl":
            return [f"musllinux_{major}_{m}_{machine}" for m in range(newest, -1, -1)] + [
                f"linux_{machine}"
            ]
        tags: list[str] = []
        for minor in range(newest, 4, -1):
            tags.append(f"manylinux_{major}_{minor}_{machine}")
            legacy = _LEGACY_MANYLINUX.get((major, minor))
            if legacy:
                tags.append(f"{legacy}_{machine}")
        return [*tags, f"linux_{machine}"]

    def tags(self) -> list[Tag]:
        return list(_tags(self))

    @property
    def uv_platform(self) -> str:
        machine = self.platform.machine
        if self.libc_family == "musl":
            return f"{machine}-unknown-linux-musl"
        _, minor = self.libc_minor
        if minor >= _UV_MANYLINUX.start:
            return f"{machine}-manylinux_2_{min(minor, _UV_MANYLINUX.stop - 1)}"
        if minor >= 17:
            return f"{machine}-manylinux_2_17"
        return f"{machine}-unknown-linux-gnu"

    def describe(self) -> str:
        return (f"{self.platform}, CPython {self.python_version} ({self.abi}), "
                f"{self.libc_family} {self.libc_version}")


@functools.cache
def _tags(target: Target) -> tuple[Tag, ...]:
    platforms = target.platform_tags()
    version = target.python_minor
    return (
        *cpython_tags(version, abis=[target.abi, "abi3", "none"], platforms=platforms),
        *compatible_tags(version, interpreter=target.abi, platforms=platforms),
    )


class HasFilename(Protocol):
    @property
    def filename(self) -> str: ...


F = TypeVar("F", bound=HasFilename)


def wheel_rank(filename: str, target: Target) -> int | None:
    """Lower is better; None when the wheel cannot be installed on ``target``."""
    try:
        _, _, _, file_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    priority = _priority(target)
    ranks = [priority[t] for t in file_tags if t in priority]
    return min(ranks) if ranks else None


@functools.cache
def _priority(target: Target) -> dict[Tag, int]:
    order: dict[Tag, int] = {}
    for i, tag in enumerate(_tags(target)):
        order.setdefault(tag, i)
    return order


def best_wheel(files: Iterable[F], target: Target) -> F | None:
    ranked = [
        (rank, f.filename, f)
        for f in files
        if f.filename.endswith(".whl") and (rank := wheel_rank(f.filename, target)) is not None
    ]
    if not ranked:
        return None
    return min(ranked, key=lambda item: (item[0], item[1]))[2]


def wheel_platforms(filenames: Sequence[str]) -> list[str]:
    """The platform tags offered by a release's wheels, for error messages."""
    found: set[str] = set()
    for name in filenames:
        try:
            _, _, _, file_tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        found.update(f"{t.interpreter}-{t.abi}-{t.platform}" for t in file_tags)
    return sorted(found)

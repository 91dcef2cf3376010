"""The one exception root of reprolock.

Every error a user can cause is a :class:`ReprolockError`. Its :meth:`diagnostics`
says what went wrong, where (file and field) and how to fix it; the CLI prints that
and exits with :attr:`exit_code` without a traceback (``--verbose`` shows one).
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_ERROR = 2


class ReprolockError(Exception):
    """Root of every error reprolock raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class ConfigError(ReprolockError):
    """The project's configuration is missing, malformed or invalid."""


class LockFileError(ReprolockError):
    """The lock file is missing, not JSON, invalid, or from another lockVersion."""


class ResolverError(ReprolockError):
    """The resolver could not produce pinned, hashed requirements."""


class IndexError_(ReprolockError):
    """A package index could not be read (unreachable, 401, malformed page)."""


class ArtifactError(ReprolockError):
    """No artifact fits the target, or an artifact's hash is wrong."""


class NotReproducibleError(ArtifactError):
    """Building a locked sdist again made another wheel than the lock records."""


class ImageSourceError(ReprolockError):
    """A base image reference is malformed, unreachable or does not match its digest."""


class ToolError(ReprolockError):
    """An external program (pip-compile, uv, syft, docker) failed or is missing."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        argv: Sequence[str] = (),
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.stderr = stderr

    def diagnostics(self) -> str:
        text = self.message
        tail = _last_lines(self.stderr, 25)
        if tail:
            text += "\n" + "\n".join(f"  | {line}" for line in tail)
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


def _last_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return lines[-count:]


class DiskFullError(ReprolockError):
    """A write failed for want of space or quota (ENOSPC, EDQUOT): the user's to fix, not a
    bug; the message names where it wrote and the hint where to make room."""


class CodeError(ReprolockError):
    """A file chosen as code cannot go into the image as it is: a symbolic link, or a
    path through one, that leads out of the project."""

"""The one exception root of reprolock.

Every error a user can cause is a :class:`ReprolockError`. Its :meth:`diagnostics`
says what went wrong, where (file and field) and how to fix it; the CLI prints that
and exits with :attr:`exit_code` without a traceback (``--verbose`` shows one).

Every exception class reprolock raises is defined here, so one import names them all and
an exit code is decided in one place: 0 success, 1 a finding (a failed verification,
drift), 2 anything else (usage, configuration, a tool). The one exception is the runtime
checker (``reprolock/runtime/check.py``), which ships into images without reprolock and
keeps its own standard-library error.
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


class UsageError(ReprolockError):
    """The command line is wrong: an unknown option or a value no option takes (exit 2)."""

    @classmethod
    def not_known(cls, option: str, value: str, choices: Sequence[str]) -> UsageError:
        """``--sbom-format 'x' is not known`` with the choices as the fix: every registry
        (resolvers, SBOM formats) refuses an unknown name in these words."""
        listed = " or ".join(filter(None, (", ".join(choices[:-1]), *choices[-1:])))
        return cls(f"{option} {value!r} is not known", hint=f"use {listed}")


class VerificationError(ReprolockError):
    """A signature, envelope, digest or recorded file does not check out: a finding, exit 1.
    ``verify`` reports it as the failure of one check and goes on with the others."""

    exit_code = EXIT_FINDING


class DriftError(ReprolockError):
    """The runtime check found drift: the run was refused (exit 1)."""

    exit_code = EXIT_FINDING


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


class PushError(ImageSourceError):
    """The registry refused or failed a push."""


class KeyFileError(ReprolockError):
    """A key file is missing, unreadable, of the wrong type, or the passphrase is wrong."""


class SignatureFileError(ReprolockError):
    """A signature file or Sigstore bundle that is not well-formed JSON (a broken input,
    exit 2; one that parses but does not verify is a VerificationError, exit 1)."""


class RunRecordError(ReprolockError):
    """A run record is missing, not JSON, or not a valid record (exit 2)."""


class HostError(ReprolockError):
    """This host cannot run the locked environment: no GPU driver for --gpus, or one
    older than the locked CUDA needs (exit 2, before anything starts)."""


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


class SbomError(ToolError):
    """The SBOM tool failed or printed something that is not the SBOM asked for."""


def _last_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return lines[-count:]


class DiskFullError(ReprolockError):
    """A write failed for want of space or quota (ENOSPC, EDQUOT): the user's to fix, not a
    bug; the message names where it wrote and the hint where to make room."""


class CodeError(ReprolockError):
    """A file chosen as code cannot go into the image as it is: a symbolic link, or a
    path through one, that leads out of the project."""


class KeylessError(ReprolockError):
    """Keyless (Sigstore) signing or verification could not run: no OIDC identity token, a
    token Sigstore refuses, or a Sigstore service (TUF, Fulcio, Rekor) out of reach (exit 2:
    nothing was checked; a bundle that does not verify is a VerificationError, exit 1)."""


class Terminated(BaseException):
    """The command was told to stop by a signal (SIGTERM from a scheduler's cancel or a CI
    job's stop, SIGHUP from a closed terminal). Raised in the main thread, so that what the
    command started is stopped and its temporary files removed on the way out. Like
    KeyboardInterrupt it is not an Exception: no ``except Exception`` (or ReprolockError)
    on the way may swallow it and go on. The exit code is 128 + the signal's number, as a
    shell reports a command killed by it."""

    def __init__(self, signum: int, name: str) -> None:
        self.message = (f"stopped by {name}: what this command had started was stopped, "
                        "and nothing half-written was left")
        super().__init__(self.message)
        self.exit_code = 128 + signum

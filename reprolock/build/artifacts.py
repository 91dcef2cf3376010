"""A content-addressed store of the lock's wheels: every file is checked by sha256
before it is used, whether it was just downloaded or read from the cache."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import requests

from reprolock._internal.urls import expand_env, redact, with_credentials
from reprolock.build.store import temp_file
from reprolock.errors import ArtifactError
from reprolock.lock.model import Package, checked

_CHUNK = 1 << 20


class ArtifactStore:
    def __init__(self, cache_dir: Path, *, project: Path, credentials: dict[str, str] | None = None,
                 session: requests.Session | None = None) -> None:
        self.root = cache_dir / "artifacts" / "sha256"
        self.project = project
        self.session = session or requests.Session()
        # redacted index URL prefix → the URL with credentials, from the config
        self.credentials = credentials or {}

    def path_for(self, sha256: str, filename: str) -> Path:
        """Content-addressed, but keeping the file name: installers parse it. Both come
        from the lock (or an index), so both are checked to be one path component: a
        name such as '../../x.whl' would write, and delete, outside the cache."""
        hint = "the lock or the index names a file that is not a wheel's; do not use it"
        checked(sha256, "sha256", "sha256", error=ArtifactError, hint=hint, owner="an artifact's")
        checked(filename, "wheel", "filename", error=ArtifactError, hint=hint,
                owner="an artifact's")
        return self.root / sha256 / filename

    def get(self, package: Package, *, progress: Callable[[int], None] | None = None) -> Path:
        """The verified wheel of ``package``: from the cache, the project or the index."""
        artifact = package.artifact
        cached = self.path_for(artifact.sha256, artifact.filename)
        if cached.is_file():
            if _sha256(cached) == artifact.sha256:
                return cached
            cached.unlink()  # a corrupt entry is discarded, never used
        if artifact.path is not None:
            checked(artifact.path, "wheel path", f"{package.name} artifact path",
                    error=ArtifactError, hint="run 'reprolock lock' to rewrite the lock")
            source = self.project / artifact.path
            if not source.is_file():
                raise ArtifactError(f"{artifact.filename}: the locked file {source} is missing",
                                    hint="restore it or run 'reprolock lock' again")
            self._store(source.open("rb"), artifact.sha256, artifact.filename, progress)
        else:
            self._download(artifact.url or "", artifact.sha256, artifact.filename, progress)
        return cached

    def _download(self, url: str, sha256: str, filename: str,
                  progress: Callable[[int], None] | None) -> None:
        real = self._with_credentials(url)
        try:
            response = self.session.get(real, stream=True, timeout=120)
        except requests.RequestException as exc:
            raise ArtifactError(f"cannot download {filename} from {redact(url)}: "
                                f"{exc.__class__.__name__}",
                                hint="check your network and the index") from exc
        if response.status_code != 200:
            raise ArtifactError(f"cannot download {filename} from {redact(url)}: HTTP "
                                f"{response.status_code}", hint="check the index and credentials")
        with response:
            self._store(response.raw, sha256, filename, progress, decode=True)

    def _with_credentials(self, url: str) -> str:
        # exact origin only: a string prefix handed the password to
        # https://pypi.corp.example.evil.net and to another port of the same host
        return with_credentials(url, [expand_env(u) for u in self.credentials.values()])

    def _store(self, stream: object, sha256: str, filename: str,
               progress: Callable[[int], None] | None, *, decode: bool = False) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # owned by this process: a killed download is swept at the next start
        tmp = str(temp_file(self.root))
        try:
            with open(tmp, "wb") as out:
                read = getattr(stream, "read")  # noqa: B009 - urllib3 and file objects alike
                if decode and hasattr(stream, "decode_content"):
                    stream.decode_content = True
                while chunk := read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            actual = digest.hexdigest()
            if actual != sha256:
                raise ArtifactError(
                    f"{filename} does not match the lock: expected sha256 {sha256}, got {actual}",
                    hint="the file on the index changed or was tampered with; do not use it. "
                    "If the change is expected, run 'reprolock lock --upgrade-package' for it")
            final = self.path_for(sha256, filename)
            if final.parent.exists() and not final.parent.is_dir():
                final.parent.unlink()  # not what this cache writes: discard it
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
            close = getattr(stream, "close", None)
            if close:
                close()


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


__all__ = ["ArtifactStore"]

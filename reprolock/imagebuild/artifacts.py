"""A content-addressed store of the lock's wheels and sdists: every file is checked by
sha256 before it is used, whether it was just downloaded, read from the cache, or (a
wheel the lock built from its sdist) built again."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from reprolock._internal.files import atomic_write_bytes
from reprolock._internal.http import body_chunks
from reprolock._internal.urls import expand_env, redact, with_credentials
from reprolock.errors import ArtifactError, NotReproducibleError
from reprolock.imagebuild.store import temp_file
from reprolock.lock.model import Artifact, Package, checked

if TYPE_CHECKING:
    from reprolock.imagebuild.sdist import SdistBuilder

_CHUNK = 1 << 20
MAX_ARTIFACT = 32 << 30  # with no size locked; the largest wheels on PyPI are a few GB


class _Body:
    """An HTTP body as a stream for _store, at most ``limit`` bytes as sent or decoded
    (reprolock._internal.http); a connection lost half way is an ArtifactError."""

    def __init__(self, response: requests.Response, filename: str, url: str,
                 limit: int | None) -> None:
        limit = MAX_ARTIFACT if limit is None else limit
        self._chunks = body_chunks(response, limit=limit, seconds=None,
                                   fail=lambda why: _failed(filename, url, limit, why))

    def read(self, _size: int) -> bytes:
        return next(self._chunks, b"")

    def close(self) -> None:
        self._chunks.close()


def _failed(filename: str, url: str, limit: int, why: str) -> ArtifactError:
    if why.startswith("it sent more than"):
        return ArtifactError(f"{redact(url)} sent more than the {limit} bytes of {filename}",
                             hint="the index is misbehaving, or the size it listed when the "
                             "lock was made was wrong: run 'reprolock lock' again; if this "
                             "repeats, do not use the index")
    return ArtifactError(f"downloading {filename} from {redact(url)} failed: {why}",
                         hint="try again")
# beside a wheel: its members matched its RECORD (the suffix names the check's version)
_RECORD_NOTE = ".record-checked-1"


class ArtifactStore:
    def __init__(self, cache_dir: Path, *, project: Path, credentials: dict[str, str] | None = None,
                 session: requests.Session | None = None,
                 sdists: SdistBuilder | None = None) -> None:
        self.root = cache_dir / "artifacts" / "sha256"
        self.project = project
        self.session = session or requests.Session()
        # redacted index URL prefix → the URL with credentials, from the config
        self.credentials = credentials or {}
        self.sdists = sdists  # builds the wheels of packages locked from their sdist

    def path_for(self, sha256: str, filename: str) -> Path:
        """Content-addressed, but keeping the file name: installers parse it. Both come
        from the lock (or an index), so both are checked to be one path component: a
        name such as '../../x.whl' would write, and delete, outside the cache."""
        hint = "the lock or the index names a file that is not a wheel's; do not use it"
        checked(sha256, "sha256", "sha256", error=ArtifactError, hint=hint, owner="an artifact's")
        kind = "wheel" if filename.endswith(".whl") else "sdist"
        checked(filename, kind, "filename", error=ArtifactError, hint=hint,
                owner="an artifact's")
        return self.root / sha256 / filename

    def record_checked(self, artifact: Artifact) -> bool:
        """Whether every member of this wheel was found to match its RECORD while an
        earlier layer was written. That is a fact of the wheel's bytes, which its sha256
        (checked at every use) fixes, so it is kept beside the wheel and not checked
        again (2.4 CPU-seconds of a cold gzip build of S2, measured by hand)."""
        return self._record_note(artifact).is_file()

    def note_record_checked(self, artifact: Artifact) -> None:
        with contextlib.suppress(OSError):  # a read-only cache only costs time
            atomic_write_bytes(self._record_note(artifact), b"")

    def _record_note(self, artifact: Artifact) -> Path:
        wheel = self.path_for(artifact.sha256, artifact.filename)
        return wheel.with_name(f"{wheel.name}{_RECORD_NOTE}")

    def get(self, package: Package, *, progress: Callable[[int], None] | None = None) -> Path:
        """The verified wheel of ``package``: from the cache, the project or the index;
        one built from its sdist is built again when not cached, and must come out the
        same."""
        if package.source is not None:
            return self.built(package, rebuild=False)
        return self.fetch(package.artifact, package.name, progress=progress)

    def fetch(self, artifact: Artifact, name: str, *,
              progress: Callable[[int], None] | None = None) -> Path:
        """The verified file ``artifact`` of package ``name`` (a wheel or an sdist)."""
        cached = self.path_for(artifact.sha256, artifact.filename)
        if cached.is_file():
            if _sha256(cached) == artifact.sha256:
                return cached
            cached.unlink()  # a corrupt entry is discarded, never used
        if artifact.path is not None:
            kind = "wheel path" if artifact.filename.endswith(".whl") else "sdist path"
            checked(artifact.path, kind, f"{name} artifact path",
                    error=ArtifactError, hint="run 'reprolock lock' to rewrite the lock")
            source = self.project / artifact.path
            if not source.is_file():
                raise ArtifactError(f"{artifact.filename}: the locked file {source} is missing",
                                    hint="restore it or run 'reprolock lock' again")
            self._store(source.open("rb"), artifact.sha256, artifact.filename, progress)
        elif artifact.url is not None:
            self._download(artifact.url, artifact.sha256, artifact.filename, progress,
                           limit=artifact.size)
        else:
            raise ArtifactError(f"{name}: {artifact.filename} is built, not fetched",
                                hint="this is a reprolock bug; please report it")
        return cached

    def built(self, package: Package, *, rebuild: bool) -> Path:
        """The wheel built from ``package``'s locked sdist: the cached one unless
        ``rebuild``, else built again from the sdist with the lock's build requirements;
        either way its sha256 must be the lock's."""
        source, artifact = package.source, package.artifact
        assert source is not None
        cached = self.path_for(artifact.sha256, artifact.filename)
        if not rebuild and cached.is_file() and _sha256(cached) == artifact.sha256:
            return cached
        if self.sdists is None:
            raise ArtifactError(f"{package.name}: its wheel is built from its sdist, and "
                                "this step cannot build", hint="run 'reprolock build'")
        sdist = self.fetch(source.sdist, package.name)
        with tempfile.TemporaryDirectory(prefix="reprolock-sdist-") as tmp:
            wheel = self.sdists.build(sdist, source.requires, Path(tmp), name=package.name,
                                      epoch=source.source_date_epoch)
            actual = _sha256(wheel)
            if actual != artifact.sha256 or wheel.name != artifact.filename:
                raise NotReproducibleError(
                    f"{package.name}: building {source.sdist.filename} again made {wheel.name} "
                    f"with sha256 {actual}; the lock records {artifact.filename} with sha256 "
                    f"{artifact.sha256}: the build is not reproducible here (it ran with "
                    f"Python {self.sdists.python()}; the lock's was built with Python "
                    f"{source.python} and {source.tool['name']} {source.tool['version']})",
                    hint="build with the Python the lock names; if that is what you did, the "
                    "sdist's build is not deterministic: pin a version that ships a wheel")
            self._store(wheel.open("rb"), actual, artifact.filename, None)
        return cached

    def download_unhashed(self, url: str, filename: str,
                          accepted: frozenset[str]) -> tuple[Path, str]:
        """Download a file its index serves with no hash, hash it, and keep it if the
        hash is one of ``accepted`` (the resolver's pins): its path and sha256."""
        actual = self._download(url, accepted, filename, None)
        return self.path_for(actual, filename), actual

    def keep(self, path: Path) -> tuple[str, int]:
        """Store the file at ``path`` (a wheel just built) under its sha256; that and its
        size."""
        sha256 = self._store(path.open("rb"), None, path.name, None)
        return sha256, path.stat().st_size

    @staticmethod
    def valid(path: Path, sha256: str) -> bool:
        return _sha256(path) == sha256

    def _download(self, url: str, sha256: str | frozenset[str], filename: str,
                  progress: Callable[[int], None] | None, *, limit: int | None = None,
                  ) -> str:
        """``limit``: the size the lock records, else :data:`MAX_ARTIFACT`: a server that
        never stops must not fill the disk before the hash is checked."""
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
            return self._store(_Body(response, filename, url, limit), sha256, filename,
                               progress)

    def _with_credentials(self, url: str) -> str:
        # exact origin only: a string prefix handed the password to
        # https://pypi.corp.example.evil.net and to another port of the same host
        return with_credentials(url, [expand_env(u) for u in self.credentials.values()])

    def _store(self, stream: object, sha256: str | frozenset[str] | None, filename: str,
               progress: Callable[[int], None] | None) -> str:
        """Copy ``stream`` into the store if its sha256 is ``sha256`` (or one of them; any,
        for None: a file made here); its sha256."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # owned by this process: a killed download is swept at the next start
        tmp = str(temp_file(self.root))
        try:
            with open(tmp, "wb") as out:
                read = getattr(stream, "read")  # noqa: B009 - urllib3 and file objects alike
                while chunk := read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            actual = digest.hexdigest()
            if sha256 is not None and actual not in (
                    {sha256} if isinstance(sha256, str) else sha256):
                raise _mismatch(filename, sha256, actual)
            final = self.path_for(actual, filename)
            if final.parent.exists() and not final.parent.is_dir():
                final.parent.unlink()  # not what this cache writes: discard it
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            return actual
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
            close = getattr(stream, "close", None)
            if close:
                close()


def _mismatch(filename: str, expected: str | frozenset[str], actual: str) -> ArtifactError:
    if isinstance(expected, str):
        return ArtifactError(
            f"{filename} does not match the lock: expected sha256 {expected}, got {actual}",
            hint="the file on the index changed or was tampered with; do not use it. "
            "If the change is expected, run 'reprolock lock --upgrade-package' for it")
    return ArtifactError(
        f"{filename}, which the index serves without a hash, has sha256 {actual}; the "
        f"resolver pinned {', '.join(sorted(expected))}", hint="the file changed between "
        "the resolution and this download, or the index serves different bytes to different "
        "clients: do not use it; lock again, and ask the index to serve hashes")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


__all__ = ["ArtifactStore"]

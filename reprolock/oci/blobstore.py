"""A content-addressed blob store, and the temporary files that feed it.

Writes go to a temporary file renamed into place, so an interrupted write leaves no
partial blob. A process killed outright (SIGKILL, a power cut) cannot clean up after
itself: its temporary files are removed when the next process opens the store. Each
temporary file names its owner, a file the writing process holds a lock on while it
lives; the kernel drops that lock when the process dies, however it dies, so a sweep
never takes a file that is still being written.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_write_bytes
from reprolock.errors import DiskFullError

#: Temporary files are ``.tmp-<owner>-<random>`` (and the atomic writer's ``..tmp-…``
#: beside them); entries are named by their hex digest, so the two are never confused.
TEMP_PREFIX = ".tmp-"
OWNER_PREFIX = ".owner-"
#: Other writers' temporary files carry no owner: older than this, their writer is gone.
STALE_SECONDS = 3600

_owners: dict[tuple[Path, int], str] = {}
_owner_fds: list[int] = []  # held open, and so locked, for the life of the process
_owners_mutex = threading.Lock()


@contextlib.contextmanager
def disk_space(where: Path, *, fix: str) -> Iterator[None]:
    """A full disk (or quota) while writing under ``where``: an error naming the path and
    the fix, instead of a bare OSError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFullError(f"{exc.strerror} while writing {exc.filename or where}",
                            hint=fix) from exc


def _owner(directory: Path) -> str:
    """This process's owner token in ``directory``, made on first use."""
    key = (directory, os.getpid())  # a forked child is an owner of its own
    with _owners_mutex:
        token = _owners.get(key)
        # the owner file goes with its directory (an output removed after a failure)
        if token is None or not (directory / f"{OWNER_PREFIX}{token}").exists():
            token = _owners[key] = _new_owner(directory)
        return token


def _new_owner(directory: Path) -> str:
    while True:
        fd, name = tempfile.mkstemp(dir=directory, prefix=OWNER_PREFIX)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a sweep may have taken the file before it was locked: then make another
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                _owner_fds.append(fd)
                # a clean exit leaves no owner file behind (in an output layout either)
                atexit.register(Path(name).unlink, missing_ok=True)
                return Path(name).name.removeprefix(OWNER_PREFIX)
        except FileNotFoundError:
            pass
        os.close(fd)


def temp_file(directory: Path) -> Path:
    """A new empty temporary file in ``directory``, safe from sweeps while we live."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=f"{TEMP_PREFIX}{_owner(directory)}-")
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def temporary(directory: Path) -> Iterator[Path]:
    """:func:`temp_file` for one block: gone afterwards unless it was renamed away."""
    path = temp_file(directory)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _alive(owner: Path) -> bool:
    try:
        fd = os.open(owner, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True  # locked: its process lives
    finally:
        os.close(fd)
    return False


def sweep_temps(directory: Path) -> None:
    """Remove the temporary files (and owner files) of processes that are gone."""
    try:
        names = [e.name for e in os.scandir(directory) if e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return
    alive: dict[str, bool] = {}
    for name in names:
        bare = name.lstrip(".")
        if bare.startswith("tmp-"):
            token = bare.removeprefix("tmp-").split("-", 1)[0]
        elif name.startswith(OWNER_PREFIX):
            token = name.removeprefix(OWNER_PREFIX)
        else:
            continue
        if token not in alive:
            alive[token] = _alive(directory / f"{OWNER_PREFIX}{token}")
        if not alive[token]:
            (directory / name).unlink(missing_ok=True)


def sweep_stale(directory: Path, *, prefix: str) -> None:
    """Remove ``prefix*`` temporary files no one has written to for an hour."""
    deadline = time.time() - STALE_SECONDS
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < deadline:
                os.unlink(entry.path)


class BlobStore:
    """Blobs named by their sha256 under ``directory/blobs/sha256`` (the layout of an
    OCI image layout, and of the build cache); writes are atomic, reads by digest."""

    def __init__(self, directory: Path, *, stamps: Path | None = None) -> None:
        self.root = directory / "blobs" / "sha256"
        self.root.mkdir(parents=True, exist_ok=True)
        sweep_temps(self.root)
        # Only the build cache keeps stamps (see :meth:`valid`), never a layout a user
        # hands in: its stamps would be the author's word.
        self.stamps = stamps

    def path(self, digest: str) -> Path:
        return self.root / digest.removeprefix("sha256:")

    def temp_path(self) -> Path:
        """A temporary file for a new entry: :meth:`adopt` it or unlink it."""
        return temp_file(self.root)

    def valid(self, digest: str) -> bool:
        """True if the blob is here and hashes to ``digest``; a blob that does not is
        removed.

        With stamps, a blob hashed once is not hashed again while its inode's size,
        mtime and ctime are unchanged: a code-only rebuild of a CUDA image re-hashed
        3 GB of layers to learn nothing. The kernel sets ctime on every change to the
        inode's data or metadata, and no call sets it back, so a blob rewritten in place
        (even with its mtime restored, or through a hard link in an output layout) is
        hashed again. The stamp does not defend against whoever can write the cache: the
        layer index beside it, which maps inputs to digests, is no more protected.
        """
        path = self.path(digest)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the stamp
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        with handle:
            before = os.fstat(handle.fileno())
            if not stat.S_ISREG(before.st_mode):
                return False
            if self._stamp_matches(digest, before):
                return True
            good = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest() == digest
            if good:
                self._write_stamp(digest, handle.fileno(), before)
        if not good:
            path.unlink(missing_ok=True)
        return good

    def _stamp_matches(self, digest: str, info: os.stat_result) -> bool:
        if self.stamps is None:
            return False
        try:
            with open(self.stamps / digest.removeprefix("sha256:"), "rb") as handle:
                return handle.read(256) == _stamp(info)
        except OSError:
            return False

    def _write_stamp(self, digest: str, fd: int, before: os.stat_result) -> None:
        if self.stamps is None:
            return
        # the blob was written without fsync (it was to be hashed on every read): make
        # it durable before a stamp vouches for it, or a power cut could leave a stamp
        # over a torn blob
        os.fsync(fd)
        after = os.fstat(fd)
        if _stamp(after) != _stamp(before):
            return  # changed while it was hashed: vouch for nothing
        self.stamps.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # a missing stamp only costs a hash next time
            atomic_write_bytes(self.stamps / digest.removeprefix("sha256:"), _stamp(after))

    def put_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.path(digest).is_file():
            with temporary(self.root) as tmp:
                tmp.write_bytes(data)
                os.replace(tmp, self.path(digest))
        return digest

    def adopt(self, tmp: Path, digest: str) -> None:
        os.replace(tmp, self.path(digest))

    def copy_in(self, stream: IO[bytes], digest: str) -> bool:
        """Store a stream under ``digest``; False (and nothing stored) if it hashes otherwise."""
        sha = hashlib.sha256()
        with temporary(self.root) as tmp:
            with open(tmp, "wb") as out:
                while chunk := stream.read(1 << 20):
                    sha.update(chunk)
                    out.write(chunk)
            if "sha256:" + sha.hexdigest() != digest:
                return False
            os.replace(tmp, self.path(digest))
            return True

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


def _stamp(info: os.stat_result) -> bytes:
    return (f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} "
            f"{info.st_ctime_ns}\n").encode()

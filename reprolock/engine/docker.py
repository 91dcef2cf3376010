"""The Docker Engine, through the docker SDK: connecting, errors with the fix, finding
images by label, reading an image's exact configuration from ``docker save``, loading
an archive, running containers.

The image source ``docker-daemon:``, the output ``--output docker`` and ``reprolock
run`` all come here, so that the engine's failures read the same whichever asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from reprolock._internal.tarsafe import open_tar
from reprolock.errors import ReprolockError, Terminated, ToolError
from reprolock.oci.contract import CODE_LABEL, ENV_LABEL, LOCK_LABEL, REVISION_LABEL

ENGINE_HINT = ("start the Docker Engine (for example 'dockerd --iptables=false --bridge=none "
               "&', or 'systemctl start docker'); without an engine, 'reprolock build --output "
               "oci:DIR' and 'reprolock verify --image oci:DIR' need none, nor does an "
               "oci-layout: or oci-archive: base")
GPU_HINT = ("--gpus needs the NVIDIA Container Toolkit in the Docker Engine "
            "(nvidia-container-runtime, then restart dockerd); or run without --gpus")


def connect(*, error: type[ReprolockError] = ToolError) -> Any:
    """The docker SDK client, or ``error`` (a ToolError unless the caller names its own
    kind) that says how to start the engine."""
    try:
        import docker  # slow to import; only when an engine is really used

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises many unrelated types for "no engine"
        raise error(f"cannot reach the Docker Engine: {exc}", hint=ENGINE_HINT) from exc
    return client


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """A failure of the engine or of the docker SDK while doing ``what``, as a ToolError
    (exit 2) with a hint, not an internal error."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.DockerException as exc:
        text = str(getattr(exc, "explanation", None) or exc)
        hint = ("check the engine ('docker info') and the arguments; --verbose shows the "
                "traceback")
        if "device driver" in text or "nvidia" in text.lower():
            hint = GPU_HINT
        elif what.startswith("look up the image"):  # the engine's 400 on a malformed name
            hint = "pass --image NAME:TAG or an image ID that 'docker images' lists"
        raise ToolError(f"the Docker Engine could not {what}: {text}", hint=hint) from exc
    except requests.exceptions.RequestException as exc:
        raise ToolError(f"lost the Docker Engine while trying to {what}: {exc}",
                        hint=ENGINE_HINT) from exc


# -- images --------------------------------------------------------------------------------
def get_image(client: Any, name: str, *, error: type[ReprolockError] = ReprolockError,
              hint: str) -> Any:
    """The engine's image ``name``, or ``error`` with ``hint`` when it has none."""
    import docker.errors

    with engine_errors(f"look up the image {name!r}"):
        try:
            return client.images.get(name)
        except docker.errors.ImageNotFound as exc:
            raise error(f"the Docker Engine has no image {name!r}", hint=hint) from exc


def find_image(client: Any, *, lock_digest: str, code_tree: str, name: str | None,
               env_config: str | None = None, revision: str | None = None) -> Any:
    """The image to run: ``name`` (in the engine), else the one labelled with this lock
    and code (and, when the lock records it, with its environment image: builds of the
    same lock with another SOURCE_DATE_EPOCH carry the same lock and code labels)."""
    if name is not None:
        return get_image(client, name, hint="build it with 'reprolock build --output docker:"
                         "NAME:TAG', or pass an image that exists ('docker images')")
    with engine_errors("list the images"):
        labels = [f"{LOCK_LABEL}={lock_digest}", f"{CODE_LABEL}={code_tree}"]
        if env_config is not None:
            labels.append(f"{ENV_LABEL}={env_config}")
        found = client.images.list(filters={"label": labels})
    if not found:
        raise ReprolockError(
            "the Docker Engine holds no image built from this lock and code tree "
            f"(lock {lock_digest[:19]}…, code {code_tree[:19]}…)",
            hint="run 'reprolock build --output docker' first (or pass --image REF)")
    if len({image.id for image in found}) > 1 and revision is not None:
        # the same lock and code built from this commit and from a copy outside git (no
        # revision label): the image of this checkout is the one to run
        found = [i for i in found if i.labels.get(REVISION_LABEL) == revision] or found
    ids = sorted({image.id for image in found})
    if len(ids) > 1:  # same labels, different configs: other env or entrypoint; say so
        raise ReprolockError(f"{len(ids)} images carry this lock's and code's labels: "
                             f"{', '.join(i[:19] for i in ids)}",
                             hint="pass --image REF to choose one")
    return found[0]


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the SDK's ``docker save``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def save_stream(image: Any) -> IO[bytes]:
    """The image's ``docker save`` tar (unnamed) as a stream, never written to disk."""
    return io.BufferedReader(_Chunks(image.save(named=False)), 1 << 20)


def save_to(image: Any, path: Path) -> None:
    """Write the image's ``docker save`` tar (unnamed) to ``path``."""
    with open(path, "wb") as out:
        for chunk in image.save(named=False):
            out.write(chunk)


def remember_config(cache_dir: Path | None, data: bytes) -> None:
    """Keep an image configuration's exact bytes by their sha256 (the engine's image ID
    for its classic store), so that :func:`image_config` finds them without exporting
    the whole image; what is read back is checked against the ID it is asked for."""
    if cache_dir is None:
        return
    from reprolock._internal.files import atomic_write_bytes

    with contextlib.suppress(OSError):  # a read-only cache only costs time
        atomic_write_bytes(cache_dir / "engine-configs" /
                           f"{hashlib.sha256(data).hexdigest()}.json", data)


def _remembered(cache_dir: Path | None, image_id: str) -> dict[str, Any] | None:
    algorithm, _, want = image_id.partition(":")
    if cache_dir is None or algorithm != "sha256" or not re.fullmatch("[0-9a-f]{64}", want):
        return None
    try:
        data = (cache_dir / "engine-configs" / f"{want}.json").read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != want:
        return None  # not what this cache wrote: never used
    with contextlib.suppress(ValueError):
        found = json.loads(data)
        return found if isinstance(found, dict) else None
    return None


def image_config(image: Any, *, cache_dir: Path | None = None) -> dict[str, Any]:
    """The image's configuration exactly as stored: the engine's image ID is the digest
    of those bytes. The inspect API only shows a rewritten copy, so the config is read
    from the cache (bytes whose sha256 is the ID, which ``build --output docker`` and an
    earlier export left there), else from the ``docker save`` stream, which is not
    written anywhere and stops once found (for a multi-gigabyte image, after every layer
    before the config: that is what the cache spares)."""
    remembered = _remembered(cache_dir, str(image.id))
    if remembered is not None:
        return remembered
    algorithm, _, want = str(image.id).partition(":")
    small: dict[str, bytes] = {}  # manifest.json and configs, for engines whose image
    with engine_errors(f"export the image {want[:12]}"), open_tar(  # IDs are not config
            fileobj=save_stream(image), mode="r|") as tar:  # digests
        for member in tar:
            if not member.isfile() or member.size > (4 << 20):
                continue
            data = (tar.extractfile(member) or io.BytesIO()).read()
            if algorithm == "sha256" and hashlib.sha256(data).hexdigest() == want:
                remember_config(cache_dir, data)
                return dict(json.loads(data))
            if member.name.endswith(".json") or member.name.startswith("blobs/"):
                small[member.name] = data
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
        name = json.loads(small["manifest.json"])[0]["Config"]
        return dict(json.loads(small[name]))
    raise ToolError(f"cannot find the configuration of image {image.id} in its export",
                    hint="check the engine ('docker info'); 'reprolock verify --image "
                    "docker-daemon:REF' reads it the same way")


# The engine answers a load only once it has unpacked every layer: minutes for a CUDA
# image. The SDK's 60 s read timeout failed such loads that went on to succeed, so the
# wait scales with the archive (a disk writing 10 MB/s, at least 5 minutes).
LOAD_FLOOR_SECONDS = 300
LOAD_BYTES_PER_SECOND = 10_000_000


def load_timeout(size: int) -> float:
    return float(LOAD_FLOOR_SECONDS + size // LOAD_BYTES_PER_SECOND)


def load_archive(client: Any, archive: Path, *, timeout: float | None = None) -> set[str]:
    """``docker load`` the archive; the IDs of the images it loaded."""
    import requests

    size = archive.stat().st_size
    wait = load_timeout(size) if timeout is None else timeout
    previous, client.api.timeout = client.api.timeout, wait
    try:
        with open(archive, "rb") as handle:
            loaded = client.images.load(handle)
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        if not _timed_out(exc):
            raise ToolError(f"the Docker Engine closed the connection while loading: {exc}",
                            hint=_load_hint(str(exc))) from exc
        raise ToolError(
            f"the Docker Engine did not finish loading the image ({size / 1e9:.2f} GB) "
            f"within {wait:.0f} s", hint="it may still finish: 'docker images' lists it "
            "then; else check the engine's log and its disk ('docker system df')") from exc
    except Exception as exc:  # the SDK raises APIError, ImageLoadError and friends
        raise ToolError(f"docker load failed: {getattr(exc, 'explanation', None) or exc}",
                        hint=_load_hint(str(exc))) from exc
    finally:
        client.api.timeout = previous
    return {img.id for img in loaded}


def _timed_out(exc: BaseException) -> bool:
    """requests reports a wait that ran out during the upload as a ConnectionError
    holding the socket's TimeoutError."""
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return True
    return any(isinstance(arg, TimeoutError) for arg in _args(exc))


def _args(exc: BaseException) -> Iterator[object]:
    for arg in exc.args:
        yield arg
        if isinstance(arg, BaseException):
            yield from _args(arg)


def _load_hint(text: str) -> str:
    lowered = text.lower()
    if "manifest.json" in lowered or "repositories" in lowered:
        return ("the engine found no image in the archive (no manifest.json it could read); "
                "Docker 20.10 or newer reads the archives reprolock writes ('docker version' "
                "shows yours)")
    if "no space" in lowered:
        return "free space where the engine keeps its images ('docker system df')"
    return "read the engine's message above and its log ('journalctl -u docker')"


# -- containers ----------------------------------------------------------------------------
#: seconds a stopped run's command has between SIGTERM and SIGKILL (docker stop's default)
STOP_GRACE = 10


def device_requests(gpus: str | None) -> list[Any] | None:
    """The engine's device request for ``--gpus`` (``all`` or a count), or None."""
    if gpus is None:
        return None
    from docker.types import DeviceRequest

    count = -1 if gpus == "all" else int(gpus)
    return [DeviceRequest(count=count, capabilities=[["gpu"]])]


def run_container(client: Any, image: Any, argv: Sequence[str] | None, *,
                  volumes: Mapping[str, Any], env: Mapping[str, str], network: str,
                  gpus: str | None, capture: bool, stream: IO[bytes],
                  entrypoint: bool = True) -> tuple[int, bytes, bytes]:
    """Run a container of ``image`` and remove it; with ``capture``, its exit code,
    stdout and stderr apart, else its output streamed to ``stream`` as it comes."""
    with engine_errors(f"create a container of {image.id[:19]}"):
        container = client.containers.create(
            image.id, entrypoint=list(argv) if entrypoint and argv is not None else None,
            command=None, network_mode=network, volumes=dict(volumes),
            environment=dict(env), device_requests=device_requests(gpus), detach=True)
    try:
        with engine_errors(f"run a container of {image.id[:19]}"):
            container.start()
            if capture:
                status = container.wait()
                out = container.logs(stdout=True, stderr=False)
                err = container.logs(stdout=False, stderr=True)
                return int(status.get("StatusCode", 2)), out, err
            for chunk in container.logs(stream=True, follow=True):
                stream.write(chunk)
                stream.flush()
            status = container.wait()
            return int(status.get("StatusCode", 2)), b"", b""
    except Terminated:  # the command gets SIGTERM and STOP_GRACE seconds, as 'docker stop'
        with contextlib.suppress(Exception):
            container.stop(timeout=STOP_GRACE)
        raise
    finally:
        with contextlib.suppress(Exception):  # never hide what failed above
            container.remove(force=True)

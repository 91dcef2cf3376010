"""``reprolock verify --image REF``: a built image against the lock and the code.

Every blob is read and hashed against its descriptor, every layer's tar against the
config's diff_id. Its base layers must be the lock's base, its dependency layers (by
blob digest and diff_id) and configuration the environment image the lock records, its
code layer the files of the current code tree (unless ``--allow-code-drift``) and
nothing else, and with ``--key`` the build's signed provenance must name it. Labels
are claims: none of these checks believes one.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import sha256_file
from reprolock._internal.tarsafe import open_tar
from reprolock.config import Config
from reprolock.errors import VerificationError
from reprolock.image.blobs import check_layer
from reprolock.image.interface import ImageSource, ResolvedImage
from reprolock.image.reference import open_image
from reprolock.lock.model import Lock
from reprolock.oci.contract import (
    BASE_DIGEST_LABEL,
    CODE_LABEL,
    config_digest,
    environment_config,
    environment_config_digest,
    image_config,
    image_env,
    image_labels,
    iso_time,
)
from reprolock.target import Platform
from reprolock.verify.diff import BASE_LAYER, layer_changes
from reprolock.verify.lockchecks import _signature, _trusted, lock_checks
from reprolock.verify.report import Check, Report, attempt

if TYPE_CHECKING:
    from reprolock.image.registry_referrers import Attestation, Found
    from reprolock.inspection.codeset import CodeFile
    from reprolock.signing.dsse import VerifiedEnvelope
    from reprolock.signing.keys import TrustedKey

REBUILD = "rebuild the image: 'reprolock build --output …'"
#: What the files reprolock embeds under /.reprolock may weigh together (the lock is
#: the big one: about 5 MB for 2,000 packages).
EMBEDDED_LIMIT = 128 << 20


def verify_image(config: Config, reference: str, *, key: Path | None,
                 attestation: Path | None, allow_code_drift: bool,
                 progress: Callable[[str], None]) -> Report:
    lock, checks = lock_checks(config, default_cache_dir())
    trusted = _trusted(config, key)  # require-signature without --key: exit 1, says so
    if trusted is not None:
        checks.append(attempt("signature", lambda: _signature(config, trusted)))
    if lock.image is None:
        checks.append(Check("image", False, "the lock records no environment image to compare "
                            "with", fix="run 'reprolock lock' (without --no-build)"))
        return Report(tuple(checks))
    progress(f"reading {reference}")
    # a command-line path is the user's, from where they stand, as 'build --output' takes
    # it (a base in reprolock.toml is the project's, from its root)
    with open_image(reference, root=Path.cwd()) as source:  # a bad reference: exit 2
        image = source.resolve(Platform.parse(lock.target.platform))
        blobs, code = _read_layers(config, lock, source, image, progress)
    checks += [blobs, _base(lock, image), _dependencies(lock, image),
               _config(config, lock, image),
               _code(config, lock, image, code, allow_code_drift)]
    if key is not None:
        checks.append(attempt("provenance", lambda: _provenance(config, image, key,
                                                                attestation, source)))
    return Report(tuple(checks))


def _read_layers(config: Config, lock: Lock, source: ImageSource, image: ResolvedImage,
                 progress: Callable[[str], None]) -> tuple[Check, CodeLayer | None]:
    """Hash every layer against its blob digest and diff_id (one pass each), reading the
    files of the code layer on the way."""
    assert lock.image is not None
    total = sum(x.size for x in image.layers)
    progress(f"hashing {len(image.layers)} layers ({total / 1e6:.1f} MB) against their "
             "digests and diff_ids")
    code_index = len(lock.image.layers) if len(image.layers) > len(lock.image.layers) else None
    code: CodeLayer | None = None
    problems: list[str] = []
    for index, (desc, diff_id) in enumerate(zip(image.layers, image.diff_ids, strict=True)):
        reader = None
        if index == code_index:
            code = CodeLayer(config.image.workdir)
            reader = code.read
        problems += [f"layer {index + 1}: {p}" for p in
                     check_layer(source, desc, diff_id, read_tar=reader)]
    if problems:
        return Check("layers", False, "the image's layers are not what its manifest and "
                     "config say (edited or replaced blobs)", tuple(problems),
                     fix=REBUILD), code
    return Check("layers", True, f"{len(image.layers)} layers ({total / 1e6:.1f} MB) hashed: "
                 "each blob is its digest, each tar its diff_id"), code


def _layers(image: ResolvedImage) -> list[dict[str, Any]]:
    entries = [h for h in image.config.get("history", []) if not h.get("empty_layer")]
    holds = [str(h.get("created_by", "")).removeprefix("reprolock: ") for h in entries]
    # a base may keep no history: reprolock's own entries are the last ones
    holds = (["?"] * len(image.diff_ids) + holds)[-len(image.diff_ids):] if image.diff_ids \
        else []
    return [{"diffId": d, "digest": x.digest, "holds": h}
            for d, x, h in zip(image.diff_ids, image.layers, holds, strict=True)]


def _split(lock: Lock) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    assert lock.image is not None
    base = [x for x in lock.image.layers if x.get("holds") == BASE_LAYER]
    return base, [x for x in lock.image.layers if x.get("holds") != BASE_LAYER]


def _base(lock: Lock, image: ResolvedImage) -> Check:
    base, _ = _split(lock)
    actual = _layers(image)[: len(base)]
    labels = _labels(image)
    named = labels.get(BASE_DIGEST_LABEL)
    differences = []
    if named and named != lock.base.digest:
        differences.append(f"base digest {lock.base.digest} → {named}")
    differences += [line for line in layer_changes(base, actual, blobs=True)
                    if line.startswith("layer")]
    if differences:
        return Check("base", False, "the image's base is not the lock's base",
                     tuple(differences), fix=REBUILD)
    return Check("base", True, f"{len(base)} base layers of {lock.base.digest[:19]}…")


def _dependencies(lock: Lock, image: ResolvedImage) -> Check:
    base, deps = _split(lock)
    actual = _layers(image)[len(base): len(base) + len(deps)]
    differences = layer_changes(deps, actual, start=len(base), blobs=True)
    if differences:
        return Check("dependencies", False, "the image's dependency layers are not the lock's",
                     tuple(differences), fix=REBUILD)
    return Check("dependencies", True, f"{len(deps)} dependency layers as locked")


def _labels(image: ResolvedImage) -> dict[str, str]:
    return dict((image.config.get("config") or {}).get("Labels") or {})


def _config(config: Config, lock: Lock, image: ResolvedImage) -> Check:
    assert lock.image is not None
    digest = environment_config_digest(image.config)
    if digest == lock.image.config_digest:
        return Check("config", True, "the configuration is the locked environment's "
                     f"({digest[:19]}…) plus the code")
    return Check("config", False, "the image configuration differs from the locked "
                 "environment's", (f"environment config {lock.image.config_digest} → {digest}",
                                   *config_differences(config, lock, image.config)),
                 fix=REBUILD)


def config_differences(config: Config, lock: Lock, image_config: Mapping[str, Any]
                       ) -> list[str]:
    """The fields in which the image's configuration (less the code) differs from the
    locked environment's, one line each (``Env: PYTHONHASHSEED=0 → PYTHONHASHSEED=1``).
    The lock keeps only the digest of that configuration: it is made again from the
    lock, this config and the locked base, and compared field by field only when it has
    exactly that digest. Otherwise (a stale config, an unreadable base) the image's
    run-time fields are listed, all of them."""
    expected = expected_environment_config(config, lock)
    if expected is None:
        return config_fields(image_config)
    try:
        actual = environment_config(image_config)
    except (KeyError, TypeError, ValueError, AttributeError):
        return config_fields(image_config)
    return field_changes(expected, actual) or config_fields(image_config)


def expected_environment_config(config: Config, lock: Lock) -> dict[str, Any] | None:
    """The configuration of the environment image 'reprolock build' makes from this lock
    and config (by the rules the builder follows, :func:`reprolock.oci.contract.image_config`),
    or None unless its digest is the one the lock records."""
    from reprolock.errors import ReprolockError
    from reprolock.image.reference import open_source

    assert lock.image is not None
    try:
        with open_source(lock.base.reference, root=config.root) as source:
            base = source.resolve(Platform.parse(lock.target.platform))
    except ReprolockError:
        return None
    if base.identity != lock.base.digest:
        return None
    env = image_env(base.env, lock.image.prefix, config.image.env, lock.accelerator)
    expected = image_config(
        base.config, settings=config.image, env=[f"{k}={v}" for k, v in env.items()],
        labels=image_labels(lock), diff_ids=lock.image.diff_ids,
        holds=[str(x.get("holds")) for x in lock.image.layers if x.get("holds") != BASE_LAYER],
        created=iso_time(lock.image.source_date_epoch), architecture=lock.base.architecture)
    return expected if config_digest(expected) == lock.image.config_digest else None


def field_changes(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """``FIELD: locked → image`` for each field that differs; variables and labels one
    by one, unchanged fields not at all."""
    lines: list[str] = []
    run_expected = dict(expected.get("config") or {})
    run_actual = dict(actual.get("config") or {})
    for name in sorted(set(run_expected) | set(run_actual)):
        want, have = run_expected.get(name), run_actual.get(name)
        if want == have:
            continue
        if name == "Env" and _pairs(want) is not None and _pairs(have) is not None:
            lines += _mapping_changes("Env", _pairs(want) or {}, _pairs(have) or {}, "=")
        elif name == "Labels" and isinstance(want or {}, dict) and isinstance(have or {}, dict):
            lines += _mapping_changes("Labels", want or {}, have or {}, ": ")
        else:
            lines.append(f"{name}: {_show(want)} → {_show(have)}")
    for name in sorted((set(expected) | set(actual)) - {"config"}):
        want, have = expected.get(name), actual.get(name)
        if want == have:
            continue
        if name == "history" and isinstance(want, list) and isinstance(have, list):
            at = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b),
                      min(len(want), len(have)))
            lines.append(f"history[{at}]: {_show(want[at] if at < len(want) else None)} → "
                         f"{_show(have[at] if at < len(have) else None)}")
        elif name == "rootfs":
            lines.append("rootfs: the layers differ (see the base and dependencies checks)")
        else:
            lines.append(f"{name}: {_show(want)} → {_show(have)}")
    return lines


def _pairs(env: object) -> dict[str, str] | None:
    if env is None:
        return {}
    if not isinstance(env, list) or not all(isinstance(x, str) for x in env):
        return None
    return dict(item.partition("=")[::2] for item in env)


def _mapping_changes(field: str, want: Mapping[str, Any], have: Mapping[str, Any],
                     sep: str) -> list[str]:
    lines = []
    for key in sorted(set(want) | set(have)):
        if key not in have:
            lines.append(f"{field}: {key}{sep}{want[key]} removed")
        elif key not in want:
            lines.append(f"{field}: {key}{sep}{have[key]} added")
        elif want[key] != have[key]:
            lines.append(f"{field}: {key}{sep}{want[key]} → {key}{sep}{have[key]}")
    return lines


def _show(value: object) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)[:200]


def config_fields(config: Mapping[str, Any]) -> list[str]:
    """The run-time fields of an image configuration, one line each, for a report."""
    run = config.get("config") or {}
    return [f"{name}: {json.dumps(run.get(name))}" for name in
            ("Entrypoint", "Cmd", "WorkingDir", "Env") if run.get(name) is not None]


def _exact_code_layer(config: Config, lock: Lock, image: ResolvedImage) -> Check | None:
    """The code layer's bytes against the one 'reprolock build' writes for this checkout
    (by diff_id; the blob was hashed against it): no tar reader can then be fooled, since
    what is compared is what any reader reads. None when they are the same."""
    from reprolock.imagebuild.builder import Builder
    from reprolock.inspection.codeset import collect_code

    expected = Builder(config, lock, cache_dir=default_cache_dir(),
                       lock_bytes=config.lock_path.read_bytes()).code_layer(
        collect_code(config), image.env).diff_id
    if image.diff_ids[-1] == expected:
        return None
    return Check("code", False, "the code layer's bytes are not those 'reprolock build' writes "
                 "for this checkout", (f"code layer {image.diff_ids[-1]} → {expected}",),
                 fix="rebuild the image from this checkout, or pass --allow-code-drift")


class _Tail(io.RawIOBase):
    """Passes a stream through, keeping its last bytes and whether any byte past a given
    offset is not NUL (the offset is known only once tarfile has stopped)."""

    KEEP = 64 << 10  # more than tarfile's read-ahead (20 blocks)

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._last = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        self._last = (self._last + data)[-self.KEEP:]
        return n

    def ends_clean(self, end: int) -> bool:
        """The block at ``end`` (where tarfile saw the end) and everything after it, read
        or still to come, are NULs."""
        start = self.count - len(self._last)
        if end < start:
            return False  # tarfile read far past its end: not an archive reprolock wrote
        seen = self._last[end - start:]
        if len(seen) < 512 or seen.strip(b"\0"):
            return False
        while chunk := self._raw.read(1 << 20):
            self.count += len(chunk)
            if chunk.strip(b"\0"):
                return False
        return True


def _code(config: Config, lock: Lock, image: ResolvedImage, layer: CodeLayer | None,
          allow: bool) -> Check:
    from reprolock.inspection.codeset import collect_code

    assert lock.image is not None
    if layer is None or len(image.layers) != len(lock.image.layers) + 1:
        return Check("code", False, f"the image has {len(image.layers)} layers, not the "
                     f"{len(lock.image.layers)} of the locked environment and a code layer",
                     fix="verify the full image that 'reprolock build' writes")
    tree = collect_code(config).tree_digest
    built = layer.tree_digest
    from reprolock.runtime.basefiles import cached_base_record

    base = cached_base_record(config.root, lock, default_cache_dir())
    wrong = layer.problems(lock=config.lock_path.read_bytes(), prefix=lock.image.prefix,
                           records=lock.image.records, env=image.env, base=base)
    if wrong:
        return Check("code", False, "the code layer is not what 'reprolock build' writes",
                     tuple(wrong), fix=REBUILD)
    if built == tree and not allow:  # as read, the checkout's code: the bytes must be too
        exact = _exact_code_layer(config, lock, image)
        if exact is not None:
            return exact
    label = _labels(image).get(CODE_LABEL)
    lie = (f"; its label dev.reprolock.code.tree claims {label}" if label != built else "")
    if built == tree and not lie:
        return Check("code", True, f"the code layer's {len(layer.files)} files are the "
                     f"current code tree ({tree[:19]}…)")
    if allow:
        return Check("code", True, f"the code drifted: the code layer holds another tree "
                     f"({built[:19]}…, now {tree[:19]}…){lie}, allowed by "
                     "--allow-code-drift")
    return Check("code", False, "the code layer is not the current code tree",
                 (f"code tree {built} → {tree}", *([lie[2:]] if lie else [])),
                 fix="rebuild the image from this checkout, or pass --allow-code-drift")


class CodeLayer:
    """What a code layer holds, read from its tar stream: the code files (under the work
    directory), the files reprolock embeds (under /.reprolock/) and anything else (which
    a code layer must not hold: a .pth file in site-packages is not code)."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self._root = workdir.strip("/")
        self.files: list[CodeFile] = []
        self.embedded: dict[str, bytes] = {}
        self.strays: list[str] = []
        self._paths: set[str] = set()

    @property
    def tree_digest(self) -> str:
        from reprolock.inspection.codeset import tree_digest

        return tree_digest(self.files)

    def read(self, stream: IO[bytes]) -> None:
        tail = _Tail(stream)
        with open_tar(fileobj=tail, mode="r|") as tar:
            for member in tar:
                self._add(tar, member)
            end = tar.offset
        self.files.sort(key=lambda f: f.path)
        # Python's tarfile ends a stream quietly at a header it cannot read (and reads a
        # size field that starts with NUL as 0), where Docker's Go reader goes on and
        # unpacks more: the archive must end on a real end marker, and only NULs follow
        if not tail.ends_clean(end):
            self.strays.append("data past what Python's tarfile reads as the end of the "
                               "archive (an unreadable header, or entries after the end "
                               "marker), which Docker's tar reader would unpack")

    def _add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        from reprolock.inspection.codeset import CodeFile

        name = member.name.removeprefix("./").strip("/")
        rel = self._relative(name)
        if name != posixpath.normpath(name) or posixpath.basename(name).startswith(".wh."):
            self.strays.append(f"{member.name!r} (not a plain path)")
        elif member.isdir() and (rel is not None or name == ".reprolock"
                                 or f"{self._root}/".startswith(f"{name}/")):
            return
        elif rel is not None and rel in self._paths:
            self.strays.append(f"/{name} (twice)")
        elif rel is not None and member.issym():
            target = member.linkname
            self._paths.add(rel)
            self.files.append(CodeFile(rel, hashlib.sha256(target.encode()).hexdigest(),
                                       len(target), False, target))
        elif rel is not None and member.isfile():
            self._paths.add(rel)
            self.files.append(CodeFile(rel, _sha256_member(tar, member), member.size,
                                       bool(member.mode & 0o111)))
        elif name.startswith(".reprolock/") and member.isfile() and member.size + sum(
                map(len, self.embedded.values())) <= EMBEDDED_LIMIT:
            handle = tar.extractfile(member)
            self.embedded[name] = handle.read() if handle else b""
        else:
            self.strays.append(f"/{name} ({_kind(member)})")

    def _relative(self, name: str) -> str | None:
        if not self._root:
            return None if name == ".reprolock" or name.startswith(".reprolock/") else name
        return name[len(self._root) + 1:] if name.startswith(self._root + "/") else None

    def problems(self, *, lock: bytes, prefix: str, records: Mapping[str, str],
                 env: Mapping[str, str], base: Mapping[str, Any] | None = None) -> list[str]:
        """What differs from the code layer 'reprolock build' writes for these files."""
        from reprolock.inspection.codeset import CodeSet
        from reprolock.runtime.embed import image_files

        lines = [f"the code layer also writes {stray}" for stray in self.strays]
        code = CodeSet(tuple(self.files), self.tree_digest, None)
        expected = {f.path: f.data for f in image_files(
            lock_bytes=lock, code=code, workdir=self.workdir, prefix=prefix, records=records,
            env=env, base=base)}
        for path, data in expected.items():
            have = self.embedded.get(path)
            if have is None:
                lines.append(f"/{path} is missing")
            elif have != data:
                lines.append(f"/{path} is not the one 'reprolock build' writes for this lock, "
                             "this reprolock and the layer's code")
        lines += [f"the code layer also writes /{path}"
                  for path in sorted(set(self.embedded) - set(expected))]
        return lines


def _sha256_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    sha = hashlib.sha256()
    handle = tar.extractfile(member)
    while handle and (chunk := handle.read(1 << 20)):
        sha.update(chunk)
    return sha.hexdigest()


def _kind(member: tarfile.TarInfo) -> str:
    for test, kind in ((member.isdir, "a directory"), (member.issym, "a symbolic link"),
                       (member.islnk, "a hard link"), (member.isfile, "a file")):
        if test():
            return kind
    return "a device or fifo"


def _provenance(config: Config, image: ResolvedImage, key: Path,
                attestation: Path | None, source: ImageSource) -> str:
    """The build's signed provenance names this image and lock: for an image in a
    registry, the one attached to it there (the local file when the registry has none);
    otherwise the DSSE file and its Sigstore bundle (each one present)."""
    from reprolock.image.registry import RegistrySource
    from reprolock.image.registry_referrers import find_attestations
    from reprolock.signing.keys import load_trusted

    if image.manifest_digest is None:  # before any file: no attestation can name it
        raise VerificationError("the image source keeps no manifest digest (a Docker Engine "
                                 "image), so the attestation cannot name it",
                                 hint="verify the oci:, oci-archive: or registry: output")
    expected = {"image": image.manifest_digest,
                config.lockfile: "sha256:" + sha256_file(config.lock_path)}
    path = attestation or config.root / ".reprolock" / "build.dsse.json"
    trusted = load_trusted(key)
    if attestation is None and isinstance(source, RegistrySource):
        found = find_attestations(source.client, image.manifest_digest)
        if found.attestations:
            return _registry_provenance(found, image.manifest_digest, expected, trusted)
        if not path.is_file():
            raise VerificationError(
                f"no signed build provenance of {image.manifest_digest} in {source.ref} "
                f"(looked at {', '.join(found.looked)}) nor at {path}",
                hint="build with --sign-key and --output registry:… (attaches it), or pass "
                "--attestation FILE")
    return _file_provenance(path, expected, trusted)


def _file_provenance(path: Path, expected: Mapping[str, str],
                     trusted: list[TrustedKey]) -> str:
    from reprolock.signing.bundle import verify_envelope_files
    from reprolock.signing.dsse import check_subjects, read_envelope

    checked = verify_envelope_files(
        path, trusted,
        read=lambda p: read_envelope(p, hint="build with --sign-key, or pass --attestation "
                                     "FILE"),
        check=lambda _name, verified: check_subjects(verified.statement(), expected))
    return (f"signed by {checked.envelope.key.path.name}; the attestation names this image "
            f"and lock ({checked.describe()})")


def _registry_provenance(found: Found, digest: str, expected: Mapping[str, str],
                         trusted: list[TrustedKey]) -> str:
    """Every attestation of the image that claims a trusted key (its keyid) must verify;
    those that are build provenance must name this image and lock, and one must."""
    from reprolock.signing.provenance import SLSA_PROVENANCE

    names: list[str] = []
    signer = ""
    for item in found.attestations:
        where = ", ".join(item.where)
        other = next((s for s in item.subjects if s != digest), None)
        if other is not None:
            raise VerificationError(f"{item.where[0]} is attached to {digest} but refers to "
                                    f"{other}", hint="the registry's referrers of the image "
                                    "were tampered with; push the image and its provenance "
                                    "again ('reprolock build --sign-key … --output registry:…')")
        verified = _trusted_envelope(item, trusted, where)
        if verified is None:
            continue
        statement = verified.statement()
        if statement.get("predicateType") != SLSA_PROVENANCE:
            continue  # a run's statement, say: signed, but not the build's provenance
        _names(where, statement, expected)
        names.append(where)
        signer = verified.key.path.name
    if not names:
        raise VerificationError(
            f"none of the {len(found.attestations)} attestations of {digest} in the registry "
            f"(looked at {', '.join(found.looked)}) is build provenance signed by a trusted "
            "key", hint="build with --sign-key and the key you pass to --key, or pass "
            "--attestation FILE")
    return (f"signed by {signer}; the build provenance attached in the registry names this "
            f"image and lock ({'; '.join(names)})")


def _trusted_envelope(item: Attestation, trusted: list[TrustedKey],
                      where: str) -> VerifiedEnvelope | None:
    """The envelope, verified, if it claims a trusted key's id (then it must verify) or
    none (then it counts if it verifies: cosign writes no keyid); None if it is another
    signer's, which the registry may hold as well."""
    from reprolock._internal.jsonio import parse_json
    from reprolock.signing.dsse import verify_envelope

    envelope = parse_json(item.envelope, source=where, error=VerificationError,
                          hint="the attestation in the registry was changed after signing")
    signatures = envelope.get("signatures")
    ids = {str(s.get("keyid") or "") for s in signatures if isinstance(s, dict)} \
        if isinstance(signatures, list) else set()
    claims = bool(ids & {k.key_id for k in trusted})
    if not claims and ids and "" not in ids:
        return None
    try:
        return verify_envelope(envelope, trusted)
    except VerificationError as exc:
        if not claims:
            return None
        raise VerificationError(f"{where}: {exc.message}", hint=exc.hint) from None


def _names(where: str, statement: Mapping[str, Any], expected: Mapping[str, str]) -> None:
    from reprolock.signing.dsse import check_subjects

    try:
        check_subjects(statement, expected)
    except VerificationError as exc:
        raise VerificationError(f"{where}: {exc.message}", hint=exc.hint) from None


# environment_config_digest is re-exported for 'reprolock run' until it imports it from
# reprolock.oci.contract
__all__ = ["CodeLayer", "config_differences", "config_fields", "environment_config",
           "environment_config_digest", "expected_environment_config", "field_changes",
           "verify_image"]

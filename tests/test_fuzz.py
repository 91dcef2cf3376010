"""Malformed input never escapes: every command, fed random and structure-aware malformed
configs, locks, run records, signatures, public keys, envelopes and OCI layouts, exits 2
(or 1, where a bad signature or envelope is a finding) with one paragraph that starts
with ``error:``, never a traceback and never "internal error".

Each document starts VALID (a project locked, signed and built once for the module) and
is then broken one way: a key deleted, a value of another type (``[]``, ``{}``, ``null``,
huge numbers, control characters, lone surrogates, deep nesting), a key twice, bytes
that are not UTF-8, a truncation, random bytes. The commands run in-process
(``reprolock._entry.main`` with ``sys.argv`` patched): a hundred times faster than a
subprocess; a few cases run the real console script. Hypothesis is derandomized and
keeps no database, so CI sees the same examples on every run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tomllib
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reprolock import _entry
from reprolock.schemas import load_schema
from tests.support.buildproject import copy_project

PASSWORD = "fuzz-pw"
#: REPROLOCK_FUZZ_EXAMPLES=2000 REPROLOCK_FUZZ_RANDOM=1 hunts for new crashes; CI runs the
#: same few examples every time.
FUZZ = settings(max_examples=int(os.environ.get("REPROLOCK_FUZZ_EXAMPLES", "80")),
                deadline=None, derandomize=not os.environ.get("REPROLOCK_FUZZ_RANDOM"),
                database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def fuzz(share: float = 1.0) -> settings:
    """FUZZ with ``share`` of its examples, for the slower targets (the whole file runs in
    about a minute)."""
    return settings(FUZZ, max_examples=max(3, int(FUZZ.max_examples * share)))


# -- running the CLI ----------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str


class _Stream(io.TextIOWrapper):
    """A text stream with a ``.buffer``, as sys.stdout has (run streams bytes to it)."""

    def __init__(self) -> None:
        self._bytes = io.BytesIO()
        super().__init__(self._bytes, encoding="utf-8", errors="backslashreplace",
                         write_through=True)

    def text(self) -> str:
        self.flush()
        return self._bytes.getvalue().decode("utf-8", "backslashreplace")


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """The console script in-process; an escaped exception is recorded as the
    traceback a user would see."""
    argv = ("reprolock", *map(str, args))
    out, err = _Stream(), _Stream()
    with mock.patch.object(sys, "argv", list(argv)), mock.patch.dict(os.environ, env or {}), \
            redirect_stdout(out), redirect_stderr(err):
        try:
            _entry.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # what would escape to the user
            err.write(traceback.format_exc())
            code = 1
    return Outcome(argv, code, out.text(), err.text())


def assert_clean(outcome: Outcome, allowed: tuple[int, ...] = (2,)) -> None:
    """No traceback, no "internal error", an expected exit code, and an exit 2 explained
    in one paragraph starting with "error:"."""
    shown = f"{' '.join(outcome.argv)} → {outcome.code}\n{outcome.err}{outcome.out[:2000]}"
    assert "Traceback" not in outcome.err + outcome.out, shown
    assert "internal error" not in outcome.err, shown
    assert outcome.code in allowed, shown
    if outcome.code == 2:
        lines = [line for line in outcome.err.splitlines()
                 if not line.startswith(("· ", "warning:"))]
        message = "\n".join(lines).strip()
        assert message.startswith("error:"), shown
        assert sum(line.startswith("error:") for line in lines) == 1, shown
        assert "\n\n" not in message and "\n \n" not in message, shown


# -- the corpus: one valid project, signed, built, with a signed run record ---------------

@dataclass(frozen=True)
class Corpus:
    root: Path
    key: Path
    pub: Path
    record: Path
    image: Path  # an OCI layout holding the built image at tag v1

    @property
    def lock(self) -> Path:
        return self.root / "reprolock.lock.json"

    @property
    def config(self) -> Path:
        return self.root / "reprolock.toml"

    @property
    def attestation(self) -> Path:
        return self.root / ".reprolock" / "build.dsse.json"

    @property
    def envelope(self) -> Path:
        return self.record.with_name(self.record.stem + ".dsse.json")


def _record(root: Path) -> dict[str, Any]:
    """A valid run record of this project, as 'reprolock run' writes them."""
    from reprolock.config import load_config
    from reprolock.inspection.codeset import collect_code

    lock = (root / "reprolock.lock.json").read_bytes()
    model = root / "outputs" / "model.json"
    model.parent.mkdir(exist_ok=True)
    model.write_text('{"w": [0.5, 0.25]}\n')
    tree = collect_code(load_config(root)).tree_digest
    return {"recordVersion": 1, "generator": {"name": "reprolock", "version": "0"},
            "image": {"id": "sha256:" + "0" * 64}, "codeTree": tree,
            "command": ["python", "train.py"],
            "lock": {"path": "reprolock.lock.json", "inputsDigest": "x",
                     "digest": "sha256:" + hashlib.sha256(lock).hexdigest()},
            "network": "none", "started": "2024-01-01T00:00:00.0Z",
            "ended": "2024-01-01T00:00:01.0Z", "exitCode": 0,
            "check": {"ok": True, "mode": "full", "warnOnly": False, "failed": [],
                      "seconds": 1.0},
            "outputs": {"dir": "outputs", "files": [
                {"path": "model.json", "size": model.stat().st_size,
                 "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}]}}


@pytest.fixture(scope="module")
def corpus(build_project_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from reprolock.signing.blob import sign_file
    from reprolock.signing.keys import generate_keypair, load_signer
    from reprolock.workflows.run import sign_record

    base = tmp_path_factory.mktemp("fuzz")
    root = copy_project(build_project_template, base / "project")
    (base / "keys").mkdir()
    key, pub = generate_keypair(base / "keys" / "k", passphrase=PASSWORD.encode())
    signer = load_signer(key, passphrase=PASSWORD.encode())
    sign_file(root / "reprolock.lock.json", signer)
    image = base / "image"
    built = invoke("build", "-C", root, "-q", "-o", f"oci:{image}:v1", "--sign-key", key,
                   env={"REPROLOCK_KEY_PASSWORD": PASSWORD})
    assert built.code == 0, built.err
    record = base / "records" / "run.json"
    record.parent.mkdir()
    doc = _record(root)
    record.write_text(json.dumps(doc, indent=2))
    sign_record(doc, record, signer)
    corpus = Corpus(root, key, pub, record, image)
    for argv in (("lock", "--check", "-C", root),
                 ("verify", "-C", root, "--no-rebuild", "--key", pub,
                  "--attestation", corpus.attestation),
                 ("verify", "-C", root, "--run", record, "--key", pub),
                 ("verify", "-C", root, "--image", f"oci:{image}:v1")):
        sane = invoke(*argv)
        assert sane.code == 0, (argv, sane.err, sane.out)
    return corpus


@contextmanager
def restored(*paths: Path) -> Iterator[None]:
    """Put back every file as it was (and remove the ones that were not there)."""
    saved = {p: (p.read_bytes() if p.is_file() else None) for p in paths}
    try:
        yield
    finally:
        for path, data in saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)


# -- mutations ----------------------------------------------------------------------------

DEEP = "\x00deep\x00"  # replaced by deep nesting in the text, so no recursion builds it


def hostile_scalars() -> st.SearchStrategy[Any]:
    return st.sampled_from([
        None, True, 0, -1, 10**40, -(10**40), 1.5, 1e308, "", " ", "\x00\x1b[2J\r\n",
        "\udcff", "é☃𝄞\u202e\u200b", "a" * 70000, "../../../etc/passwd", "sha256:", "-",
        "\n\n", "NaN",
    ]) | st.text(max_size=20) | st.integers()


def hostile_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        hostile_scalars() | st.just([]) | st.just({}) | st.just(DEEP),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6)


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*here, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*here, index))
    return found


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _dumps(value: Any, dup: tuple[Any, ...] | None, here: tuple[Any, ...] = ()) -> str:
    """JSON text; the object at ``dup`` gets its first key again (with another value)."""
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}: {_dumps(v, dup, (*here, k))}" for k, v in value.items()]
        if here == dup and value:
            items.append(f"{json.dumps(next(iter(value)))}: 1")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dumps(v, dup, (*here, i)) for i, v in enumerate(value)) + "]"
    return json.dumps(value)


@dataclass(frozen=True)
class Mutation:
    """One way to break a document; its repr is the reproducer hypothesis prints."""

    kind: str
    path: tuple[Any, ...] = ()
    value: Any = None
    depth: int = 0
    at: float = 0.0
    raw: bytes = b""

    @property
    def structural(self) -> bool:
        """Breaks the JSON itself (not only what the schema allows)."""
        return self.kind in ("duplicate", "truncate", "not-utf8", "random", "bom", "utf16",
                             "nan", "top") or (self.kind == "deep" and self.depth > 64)


def json_mutations(doc: Any) -> st.SearchStrategy[Mutation]:
    paths = _paths(doc)
    objects = [p for p in paths if isinstance(_get(doc, p), dict) and _get(doc, p)]
    inner = [p for p in paths if p]
    depth = st.sampled_from([65, 100, 3000, 200_000]) | st.integers(1, 70)
    where = st.floats(0, 1)
    return st.one_of(
        st.builds(Mutation, st.just("replace"), st.sampled_from(paths), hostile_values()),
        st.builds(Mutation, st.just("delete"), st.sampled_from(inner)),
        st.builds(Mutation, st.just("add"), st.sampled_from(objects), hostile_values()),
        st.builds(Mutation, st.just("duplicate"), st.sampled_from(objects)),
        st.builds(Mutation, st.just("deep"), st.sampled_from(paths), depth=depth),
        st.builds(Mutation, st.sampled_from(["truncate", "not-utf8"]), at=where),
        st.builds(Mutation, st.sampled_from(["bom", "utf16"])),
        st.builds(Mutation, st.just("nan"), st.sampled_from(inner)),
        st.builds(Mutation, st.just("top"), value=st.sampled_from([[], None, "x", 1, [{}]])),
        st.builds(Mutation, st.just("random"), raw=st.binary(max_size=200)),
    )


def apply_json(doc: Any, m: Mutation) -> bytes:
    doc = json.loads(json.dumps(doc))
    dup = None
    if m.kind in ("replace", "add", "top"):
        value = m.value
        if m.kind == "add":
            value = {**_get(doc, m.path), "x-fuzz": m.value}
        doc = _set(doc, m.path, value)
    elif m.kind == "delete":
        parent = _get(doc, m.path[:-1])
        del parent[m.path[-1]]
    elif m.kind == "duplicate":
        dup = m.path
    elif m.kind == "deep":
        doc = _set(doc, m.path, DEEP)
    elif m.kind == "nan":
        doc = _set(doc, m.path, "\x00nan\x00")
    text = _dumps(doc, dup)
    if m.kind == "deep":
        text = text.replace(json.dumps(DEEP), "[" * m.depth + "]" * m.depth)
    text = text.replace(json.dumps(DEEP), "[" * 100 + "]" * 100)
    text = text.replace(json.dumps("\x00nan\x00"), "NaN")
    data = text.encode("utf-8", "surrogatepass")
    cut = int(len(data) * m.at)
    if m.kind == "truncate":
        return data[:cut]
    if m.kind == "not-utf8":
        return data[:cut] + b"\xff\xfe\xc3(" + data[cut:]
    if m.kind == "bom":
        return b"\xef\xbb\xbf" + data
    if m.kind == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if m.kind == "random":
        return m.raw
    return data


def invalid_for(schema: str, data: bytes) -> bool:
    """True when ``data`` is not a document the published schema allows (or not JSON)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return True
    try:
        jsonschema.validate(doc, load_schema(schema))
    except (jsonschema.ValidationError, RecursionError):
        return True
    return False


# -- configs ------------------------------------------------------------------------------

def toml_mutations(doc: dict[str, Any]) -> st.SearchStrategy[Mutation]:
    return json_mutations(doc) | st.builds(
        Mutation, st.sampled_from(["toml-deep-array", "toml-deep-table", "toml-dup",
                                   "toml-nul"]), depth=st.sampled_from([10, 500, 100_000]))


def apply_toml(doc: dict[str, Any], m: Mutation) -> bytes:
    """A TOML config broken by ``m``: JSON-level mutations are written as TOML where TOML
    can say them (no null), else as the broken bytes themselves."""
    base = tomli_w.dumps(doc).encode()
    if m.kind == "toml-deep-array":
        return b"x = " + b"[" * m.depth + b"]" * m.depth + b"\n" + base
    if m.kind == "toml-deep-table":
        return b"x = " + b"{a = " * m.depth + b"1" + b"}" * m.depth + b"\n" + base
    if m.kind == "toml-dup":
        return base + b"\nbase = \"x\"\n"
    if m.kind == "toml-nul":
        return b"# \x00\n" + base
    if m.kind in ("replace", "add", "delete") and m.path:
        mutated = json.loads(json.dumps(doc))
        try:
            if m.kind == "delete":
                del _get(mutated, m.path[:-1])[m.path[-1]]
            elif m.kind == "add":
                _set(mutated, m.path, {**_get(mutated, m.path), "x-fuzz": m.value})
            else:
                _set(mutated, m.path, m.value)
            return tomli_w.dumps(mutated).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):  # null or a non-TOML value: the JSON bytes instead
            pass
    return apply_json(doc, m)


CONFIG_COMMANDS: list[tuple[str, ...]] = [
    ("lock", "--check"), ("lock", "--check", "--json"), ("verify", "--no-rebuild", "-q"),
    ("export",), ("inspect", "--json"), ("lock", "--no-build", "--no-sbom", "-q"),
    ("audit", "--no-hadolint", "--format", "json"), ("run", "-q"),
]


def in_project(argv: tuple[str, ...], root: Path) -> tuple[str | Path, ...]:
    """``argv`` run on the project at ``root`` (audit takes it as its argument)."""
    return (*argv, root) if argv[0] == "audit" else (*argv, "-C", root)


@FUZZ
@given(data=st.data(), in_pyproject=st.booleans())
def test_malformed_config(corpus: Corpus, data: st.DataObject, in_pyproject: bool) -> None:
    doc = tomllib.loads(corpus.config.read_text())
    if in_pyproject:
        doc = {"project": {"name": "p", "version": "1"}, "tool": {"reprolock": doc}}
    m = data.draw(toml_mutations(doc), label="mutation")
    raw = apply_toml(doc, m)
    argv = data.draw(st.sampled_from(CONFIG_COMMANDS), label="command")
    pyproject = corpus.root / "pyproject.toml"
    broken = _config_invalid(raw, in_pyproject)
    if argv[0] in ("lock", "run") and "--check" not in argv and not broken:
        argv = ("lock", "--check")  # a valid config would resolve or run: not tested here
    with restored(corpus.config, pyproject, corpus.lock):
        if in_pyproject:
            corpus.config.unlink()
            pyproject.write_bytes(raw)
        else:
            corpus.config.write_bytes(raw)
        outcome = invoke(*in_project(argv, corpus.root))
    if argv[0] == "audit":  # audit needs no config, but one it cannot read is an error
        assert_clean(outcome, (1, 2) if broken and not _no_config(raw, in_pyproject)
                     else (0, 1, 2))
    else:
        assert_clean(outcome, (2,) if broken else (0, 1, 2))


def _no_config(raw: bytes, in_pyproject: bool) -> bool:
    """A pyproject.toml without a [tool.reprolock] table: the project has no config (audit
    also takes a pyproject.toml that does not parse as one without)."""
    if not in_pyproject:
        return False
    try:
        tool = tomllib.loads(raw.decode("utf-8")).get("tool")
    except (ValueError, RecursionError):
        return True
    return not (isinstance(tool, dict) and "reprolock" in tool)


def _config_invalid(raw: bytes, in_pyproject: bool) -> bool:
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
        if in_pyproject:
            doc = doc["tool"]["reprolock"]
        jsonschema.validate(doc, load_schema("config"))
    except Exception:  # anything that is not a valid config
        return True
    return False


@fuzz(0.25)
@given(raw=st.binary(max_size=300))
def test_random_bytes_as_config(corpus: Corpus, raw: bytes) -> None:
    with restored(corpus.config):
        corpus.config.write_bytes(raw)
        for argv in (("lock", "--check"), ("verify", "--no-rebuild", "-q")):
            outcome = invoke(*argv, "-C", corpus.root)
            assert_clean(outcome, (0, 1, 2) if not _config_invalid(raw, False) else (2,))


def test_malformed_config_under_audit(corpus: Corpus) -> None:
    """audit reports what it can; a config it cannot read is an error, not a crash."""
    for raw in (b"base = [[[[", b"\xff\xfe", b"x = " + b"[" * 5000 + b"]" * 5000,
                b"[audit]\nignore = 5\n", b"[audit]\nper-path-ignores = []\n"):
        with restored(corpus.config):
            corpus.config.write_bytes(raw)
            outcome = invoke("audit", corpus.root, "--no-hadolint", "--format", "json")
        assert_clean(outcome, (1, 2))


# -- locks --------------------------------------------------------------------------------

LOCK_COMMANDS: list[tuple[str, ...]] = [
    ("lock", "--check"), ("lock", "--check", "--json"), ("verify", "--no-rebuild", "-q"),
    ("verify", "--no-rebuild", "-q", "--json"), ("export", "--format", "requirements"),
    ("export", "--format", "pylock"), ("inspect", "--json"),
]


@FUZZ
@given(data=st.data())
def test_malformed_lock(corpus: Corpus, data: st.DataObject) -> None:
    doc = json.loads(corpus.lock.read_bytes())
    m = data.draw(json_mutations(doc), label="mutation")
    raw = apply_json(doc, m)
    broken = m.structural or invalid_for("lock", raw)
    # build and run must refuse a broken lock before any work (a valid one would build)
    commands = LOCK_COMMANDS + ([("build", "-q", "-o", f"oci:{corpus.root}/out-fuzz"),
                                 ("run", "-q")] if broken else [])
    argv = data.draw(st.sampled_from(commands), label="command")
    with restored(corpus.lock):
        corpus.lock.write_bytes(raw)
        outcome = invoke(*argv, "-C", corpus.root)
    if argv[0] == "inspect":  # inspect shows imports without a lock: any lock is optional
        assert_clean(outcome, (0, 2))
    else:
        assert_clean(outcome, (2,) if broken else (0, 1, 2))


# -- run records and their envelopes ------------------------------------------------------

@FUZZ
@given(data=st.data(), envelope=st.booleans())
def test_malformed_run_record(corpus: Corpus, data: st.DataObject, envelope: bool) -> None:
    target = corpus.envelope if envelope else corpus.record
    doc = json.loads(target.read_bytes())
    m = data.draw(json_mutations(doc), label="mutation")
    raw = apply_json(doc, m)
    with restored(target):
        target.write_bytes(raw)
        outcome = invoke("verify", "-C", corpus.root, "--run", corpus.record,
                         "--key", corpus.pub)
    if envelope:  # a bad envelope is a signature that does not verify: a finding
        assert_clean(outcome, (0, 1, 2) if _same_signed_content(doc, raw) else (1, 2))
    else:
        broken = m.structural or invalid_for("run-record", raw)
        assert_clean(outcome, (2,) if broken else (0, 1, 2))


def _same_signed_content(envelope: dict[str, Any], raw: bytes) -> bool:
    """``raw`` is still the envelope: strict JSON with the same payload, type and one
    signature (DSSE ignores the advisory keyid and unknown fields)."""
    from reprolock._internal.jsonio import parse_json
    from reprolock.errors import ReprolockError

    try:
        doc = parse_json(raw, source="envelope")
    except ReprolockError:
        return False
    signatures = doc.get("signatures")
    return (doc.get("payload") == envelope["payload"]
            and doc.get("payloadType") == envelope["payloadType"]
            and isinstance(signatures, list) and len(signatures) == 1
            and isinstance(signatures[0], dict)
            and signatures[0].get("sig") == envelope["signatures"][0]["sig"])


# -- signatures, keys and provenance ------------------------------------------------------

SIGNATURES = st.one_of(
    st.binary(max_size=300), st.sampled_from([b"", b"\xff\xfe\x00", b"=" * 10, b" \n",
                                              b"A" * 100_000, b"\x00" * 64]),
    st.binary(min_size=0, max_size=96).map(lambda b: base64.b64encode(b)))


@FUZZ
@given(sig=SIGNATURES)
def test_malformed_lock_signature(corpus: Corpus, sig: bytes) -> None:
    path = corpus.lock.with_name(corpus.lock.name + ".sig")
    with restored(path):
        path.write_bytes(sig)
        outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", corpus.pub)
    assert_clean(outcome, (1,))
    assert "✗ signature" in outcome.out


def test_huge_lock_signature_is_refused_without_reading_it_all(corpus: Corpus) -> None:
    path = corpus.lock.with_name(corpus.lock.name + ".sig")
    with restored(path):
        with open(path, "wb") as handle:
            handle.truncate(1 << 30)  # 1 GiB, sparse
        outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", corpus.pub)
    assert_clean(outcome, (1,))
    assert "larger than" in outcome.out


KEYS = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"\xff\xfe", b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
                     b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                     b"-----END ENCRYPTED PRIVATE KEY-----\n",
                     b"-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n",
                     b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                     b"-----BEGIN PUBLIC KEY-----\n" + b"QUFB" * 20000
                     + b"\n-----END PUBLIC KEY-----\n"]),
    st.binary(max_size=120).map(
        lambda b: b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(b)
        + b"\n-----END PUBLIC KEY-----\n"))


@fuzz(0.6)
@given(key=KEYS)
def test_malformed_public_key(corpus: Corpus, key: bytes, tmp_path_factory: pytest.TempPathFactory,
                              ) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-key.pub"
    path.write_bytes(key)
    outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", path)
    assert_clean(outcome, (2,))


def _fuzz_provenance(corpus: Corpus, data: st.DataObject, scope: tuple[str, ...]) -> None:
    doc = json.loads(corpus.attestation.read_bytes())
    m = data.draw(json_mutations(doc), label="mutation")
    raw = apply_json(doc, m)
    with restored(corpus.attestation):
        corpus.attestation.write_bytes(raw)
        outcome = invoke("verify", "-C", corpus.root, "-q", *scope, "--key", corpus.pub,
                         "--attestation", corpus.attestation)
    assert_clean(outcome, (0, 1, 2) if _same_signed_content(doc, raw) else (1, 2))


@fuzz(0.6)
@given(data=st.data())
def test_malformed_provenance(corpus: Corpus, data: st.DataObject) -> None:
    """The build's envelope, checked against the lock."""
    _fuzz_provenance(corpus, data, ("--no-rebuild",))


@fuzz(0.3)
@given(data=st.data())
def test_malformed_provenance_of_an_image(corpus: Corpus, data: st.DataObject) -> None:
    """The build's envelope, checked against the image (``verify --image --key``)."""
    _fuzz_provenance(corpus, data, ("--image", f"oci:{corpus.image}:v1"))


@fuzz(0.3)
@given(key=KEYS)
def test_malformed_private_key(corpus: Corpus, key: bytes,
                               tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.key"
    path.write_bytes(key)
    signature = corpus.lock.with_name(corpus.lock.name + ".sig")
    with restored(signature):
        outcome = invoke("sign", path, "-C", corpus.root,
                         env={"REPROLOCK_KEY_PASSWORD": PASSWORD})
    assert_clean(outcome, (2,))


@fuzz(0.6)
@given(data=st.data())
def test_malformed_provenance_payload(corpus: Corpus, data: st.DataObject) -> None:
    """A well-signed envelope whose statement is malformed: checked like any input."""
    from reprolock.signing.dsse import sign_envelope
    from reprolock.signing.keys import load_signer

    envelope = json.loads(corpus.attestation.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    m = data.draw(json_mutations(statement), label="mutation")
    signer = load_signer(corpus.key, passphrase=PASSWORD.encode())
    resigned = sign_envelope(apply_json(statement, m), signer)
    with restored(corpus.attestation):
        corpus.attestation.write_text(json.dumps(resigned))
        outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key",
                         corpus.pub, "--attestation", corpus.attestation)
    assert_clean(outcome, (0, 1, 2))


# -- OCI layouts ----------------------------------------------------------------------------

def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


@fuzz(0.3)
@given(data=st.data(), target=st.sampled_from(["index", "manifest", "config"]),
       repoint=st.booleans())
def test_malformed_oci_image(corpus: Corpus, data: st.DataObject, target: str,
                             repoint: bool) -> None:
    """index.json, the manifest or the config broken; the blob is stored under its new
    digest and the parents re-pointed (``repoint``) or overwritten in place."""
    layout = corpus.image
    index_path = layout / "index.json"
    index = json.loads(index_path.read_bytes())
    position = next(i for i, d in enumerate(index["manifests"])
                    if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1")
    manifest_path = _blob(layout, index["manifests"][position]["digest"])
    manifest = json.loads(manifest_path.read_bytes())
    config_path = _blob(layout, manifest["config"]["digest"])
    doc = {"index": index, "manifest": manifest,
           "config": json.loads(config_path.read_bytes())}[target]
    m = data.draw(json_mutations(doc), label="mutation")
    raw = apply_json(doc, m)
    touched = [index_path, manifest_path, config_path]
    new_blob = _blob(layout, hashlib.sha256(raw).hexdigest())
    with restored(*touched, new_blob):
        if target == "index":
            index_path.write_bytes(raw)
        elif not repoint:
            (manifest_path if target == "manifest" else config_path).write_bytes(raw)
        else:
            new_blob.write_bytes(raw)
            descriptor = {"digest": f"sha256:{hashlib.sha256(raw).hexdigest()}",
                          "size": len(raw)}
            if target == "config":
                manifest["config"].update(descriptor)
                manifest_raw = json.dumps(manifest).encode()
                manifest_blob = _blob(layout, hashlib.sha256(manifest_raw).hexdigest())
                touched.append(manifest_blob)
                manifest_blob.write_bytes(manifest_raw)
                descriptor = {"digest": f"sha256:{hashlib.sha256(manifest_raw).hexdigest()}",
                              "size": len(manifest_raw)}
            index["manifests"][position].update(descriptor)
            index_path.write_text(json.dumps(index))
        try:
            outcome = invoke("verify", "-C", corpus.root, "-q", "--image", f"oci:{layout}:v1")
        finally:
            if target == "config" and repoint:
                touched[-1].unlink(missing_ok=True)
    # re-pointed, a document with an annotation less is still a valid image
    rewritten = repoint or target == "index"
    assert_clean(outcome, (0, 1, 2) if rewritten and not m.structural else (1, 2))


# -- the real console script ----------------------------------------------------------------

def _script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reprolock", *map(str, args)],
                          capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("raw", [
    b'{"lockVersion": 1, "lockVersion": 1}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"lockVersion": 999, "generator": []}',
    b"\xff\xfe{}",
])
def test_console_script_on_malformed_locks(corpus: Corpus, raw: bytes) -> None:
    with restored(corpus.lock):
        corpus.lock.write_bytes(raw)
        for argv in (("lock", "--check"), ("verify", "--no-rebuild", "-q")):
            proc = _script(*argv, "-C", corpus.root)
            assert_clean(Outcome(tuple(argv), proc.returncode, proc.stdout, proc.stderr))


def _piped(command: str, reader: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(f"'{sys.executable}' -m reprolock {command} | {reader}; "
                          "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("command", ["audit --list-rules", "audit --explain RL101"])
def test_regression_broken_pipe_is_quiet(command: str) -> None:
    """_entry.py/cli.py: ``reprolock audit --list-rules | head -1`` printed "error: [Errno
    32] Broken pipe" and exited 2. Now nothing on stderr and, when the reader really went
    away first, 141 as for any program whose pipe closed (never 0: a finding cut short
    must not pass)."""
    head = _piped(command, "head -1")
    assert head.stdout.count("\n") == 1
    assert head.stderr == "" and head.returncode in (0, 141), head
    gone = _piped(command, "true")  # the reader exits before reprolock has started
    assert gone.stderr == "" and gone.returncode == 141, gone


def test_regression_broken_pipe_on_the_fast_check(corpus: Corpus) -> None:
    gone = _piped(f"lock --check --json -C '{corpus.root}'", "true")
    assert gone.stderr == "" and gone.returncode == 141, gone


# -- regressions: each distinct crash the fuzzer found ------------------------------------
# Each names the crash it was (before → after) and whose module held it.

#: A P-256 key's PEM is what keygen writes; this one is on secp112r1, which the
#: cryptography library cannot load at all (UnsupportedAlgorithm, not ValueError).
SECP112R1_PUB = (b"-----BEGIN PUBLIC KEY-----\n"
                 b"MDIwEAYHKoZIzj0CAQYFK4EEAAYDHgAEhmWzk37O9rZCSbhnNKV5Lu3pc645VAB9\n"
                 b"W4KFrw==\n-----END PUBLIC KEY-----\n")


def _resign(corpus: Corpus, statement: dict[str, Any] | bytes) -> None:
    """Write the attestation again, validly signed, around ``statement``."""
    from reprolock.signing.dsse import sign_envelope
    from reprolock.signing.keys import load_signer

    payload = statement if isinstance(statement, bytes) else json.dumps(statement).encode()
    signer = load_signer(corpus.key, passphrase=PASSWORD.encode())
    corpus.attestation.write_text(json.dumps(sign_envelope(payload, signer)))


def _statement(corpus: Corpus) -> dict[str, Any]:
    envelope = json.loads(corpus.attestation.read_bytes())
    doc: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return doc


def _verify_attestation(corpus: Corpus) -> Outcome:
    return invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", corpus.pub,
                  "--attestation", corpus.attestation)


def test_regression_signature_file_not_utf8(corpus: Corpus) -> None:
    """signing/blob.py: a .sig holding b"\\x80" was UnicodeDecodeError, "internal error"."""
    path = corpus.lock.with_name(corpus.lock.name + ".sig")
    with restored(path):
        path.write_bytes(b"\x80MEUCIQ==")
        outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", corpus.pub)
    assert_clean(outcome, (1,))
    assert "✗ signature: reprolock.lock.json.sig is not base64" in outcome.out


@pytest.mark.parametrize("subject", [
    [{"name": [], "digest": {"sha256": "ab"}}],  # TypeError: unhashable type: 'list'
    [{"name": "reprolock.lock.json", "digest": []}],  # AttributeError on .get
    {"name": "reprolock.lock.json"},  # iterated as a dict: keys are str, AttributeError
    7,  # TypeError: 'int' object is not iterable
])
def test_regression_attestation_with_malformed_subjects(corpus: Corpus, subject: Any) -> None:
    """signing/dsse.py check_subjects: subjects of the wrong shape were "internal error"."""
    with restored(corpus.attestation):
        _resign(corpus, {**_statement(corpus), "subject": subject})
        outcome = _verify_attestation(corpus)
    assert_clean(outcome, (1,))
    assert "✗ provenance: the statement" in outcome.out, outcome.out


@pytest.mark.parametrize("predicate", [[], "x", {"buildDefinition": []},
                                       {"buildDefinition": {"externalParameters": 5}}])
def test_regression_attestation_predicate_not_an_object(corpus: Corpus, predicate: Any) -> None:
    """verify/lockchecks.py _provenance: ``.get`` on a list was "internal error"."""
    with restored(corpus.attestation):
        _resign(corpus, {**_statement(corpus), "predicate": predicate})
        outcome = _verify_attestation(corpus)
    assert_clean(outcome, (1,))
    assert "✗ provenance: the attestation was made for other inputs (None" in outcome.out


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"x"', b"7"])
def test_regression_envelope_not_an_object(corpus: Corpus, raw: bytes) -> None:
    """signing/dsse.py verify_envelope: ``[]`` as an envelope was "internal error"
    (AttributeError: 'list' object has no attribute 'get'), for --attestation and --run."""
    with restored(corpus.attestation, corpus.envelope):
        corpus.attestation.write_bytes(raw)
        corpus.envelope.write_bytes(raw)
        provenance = _verify_attestation(corpus)
        record = invoke("verify", "-C", corpus.root, "--run", corpus.record,
                        "--key", corpus.pub)
    assert_clean(provenance, (1,))
    assert "is not a JSON object" in provenance.out
    assert_clean(record, (1, 2))


def test_regression_signed_statement_with_a_duplicate_key(corpus: Corpus) -> None:
    """signing/dsse.py statement: json.loads kept the last of two "subject" keys, so a
    signed statement could name one lock to one reader and another to reprolock."""
    statement = _statement(corpus)
    wrong = [{"name": "reprolock.lock.json", "digest": {"sha256": "0" * 64}}]
    text = json.dumps(statement)
    crafted = text[:-1] + ', "subject": ' + json.dumps(statement["subject"]) + "}"
    crafted = crafted.replace(json.dumps(statement["subject"]), json.dumps(wrong), 1)
    with restored(corpus.attestation):
        _resign(corpus, crafted.encode())
        outcome = _verify_attestation(corpus)
    assert_clean(outcome, (1,))
    assert 'has the key "subject" twice' in outcome.out


def test_regression_attestation_with_a_repeated_subject(corpus: Corpus) -> None:
    """signing/dsse.py check_subjects: two subjects of one name, the last one read."""
    statement = _statement(corpus)
    wrong = {"name": "reprolock.lock.json", "digest": {"sha256": "0" * 64}}
    with restored(corpus.attestation):
        _resign(corpus, {**statement, "subject": [wrong, *statement["subject"]]})
        outcome = _verify_attestation(corpus)
    assert_clean(outcome, (1,))
    assert "names the subject 'reprolock.lock.json' twice" in outcome.out


def test_regression_public_key_on_an_unsupported_curve(corpus: Corpus, tmp_path: Path) -> None:
    """signing/keys.py: UnsupportedAlgorithm (not a ValueError) was "internal error"."""
    key = tmp_path / "weird.pub"
    key.write_bytes(SECP112R1_PUB)
    outcome = invoke("verify", "-C", corpus.root, "--no-rebuild", "-q", "--key", key)
    assert_clean(outcome)
    assert f"{key} is not a PEM public key" in outcome.err


def test_regression_fast_check_reports_unexpected_errors(
        corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """_entry.py run_check: the pre-commit path caught only ReprolockError, so any other
    error was a Python traceback; now it is the same last resort as every command."""
    import reprolock.lock.check

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(reprolock.lock.check, "check_lock", broken)
    outcome = invoke("lock", "--check", "-C", corpus.root)
    assert outcome.code == 2 and "Traceback" not in outcome.err
    assert outcome.err.startswith("error: internal error (RecursionError: maximum recursion")


def test_regression_error_with_a_blank_line_stays_one_paragraph() -> None:
    """_entry.py report_error: a quoted value with a blank line split the error in two."""
    from reprolock._entry import report_error
    from reprolock.errors import ConfigError

    err = io.StringIO()
    with redirect_stderr(err):
        code = report_error(ConfigError("base = 'a\n\nb' is not valid", hint="fix it"))
    assert code == 2
    assert err.getvalue() == "error: base = 'a\nb' is not valid\n  fix: fix it\n"


@pytest.mark.parametrize("source", ["1" + "+1" * 100_000, "-" * 100_000 + "1",
                                    "x = 1\0\n"])
def test_regression_training_code_python_cannot_parse(corpus: Corpus, source: str) -> None:
    """inspection/imports.py scan_imports: a .py file nested past Python's limits was a
    RecursionError or MemoryError from ast.parse, "internal error" for inspect and lock;
    now the file is listed as one that does not parse, like a syntax error."""
    path = corpus.root / "deep.py"
    with restored(path):
        path.write_text(source)
        outcome = invoke("inspect", "--json", "-C", corpus.root)
        audit = invoke("audit", "--no-hadolint", "--format", "json", corpus.root)
    assert_clean(outcome, (0,))
    assert [e["path"] for e in json.loads(outcome.out)["syntaxErrors"]] == ["deep.py"]
    assert_clean(audit, (0, 1))


def test_regression_init_on_hostile_dockerfile_and_pyproject(tmp_path: Path) -> None:
    """inspection/project.py: a Dockerfile CMD of JSON nested 100,000 deep, or such a
    pyproject.toml, was a RecursionError in init's guess; now they are ignored as
    guesses that do not parse."""
    (tmp_path / "requirements.in").write_text("tinyml\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nCMD " + "[" * 100_000
                                          + "]" * 100_000 + "\n")
    (tmp_path / "pyproject.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    outcome = invoke("init", tmp_path, "--json")
    assert_clean(outcome, (0,))
    assert json.loads(outcome.out)["base"] == "python:3.11"


def test_regression_image_provenance_nested_deep(corpus: Corpus) -> None:
    """verify --image --key with an attestation nested 100,000 deep: RecursionError."""
    with restored(corpus.attestation):
        corpus.attestation.write_text("[" * 100_000 + "]" * 100_000)
        outcome = invoke("verify", "-C", corpus.root, "-q", "--image", f"oci:{corpus.image}:v1",
                         "--key", corpus.pub, "--attestation", corpus.attestation)
    assert_clean(outcome, (1, 2))


def test_regression_image_provenance_duplicate_key(corpus: Corpus) -> None:
    """verify --image --key took an envelope with "payloadType" twice (the last wins)."""
    text = corpus.attestation.read_text()
    with restored(corpus.attestation):
        corpus.attestation.write_text('{"payloadType": "x", ' + text.lstrip()[1:])
        outcome = invoke("verify", "-C", corpus.root, "-q", "--image", f"oci:{corpus.image}:v1",
                         "--key", corpus.pub, "--attestation", corpus.attestation)
    assert_clean(outcome, (1, 2))
    assert "twice" in outcome.out + outcome.err


# Crashes in other helpers' modules, found by this fuzzer and fixed there; kept as
# regressions of the whole command.

@pytest.mark.parametrize(("name", "raw"), [
    ("lock JSON nested 100,000 deep (lock/io.py)", b"[" * 100_000 + b"]" * 100_000),
    ("lockVersion 999 with a list as generator (lock/io.py)",
     b'{"lockVersion": 999, "generator": []}'),
    ("lockVersion 999 with a string as generator (lock/io.py)",
     b'{"lockVersion": 999, "generator": "x"}'),
    ("a duplicate key in the lock (lock/io.py)",
     b'{"lockVersion": 1, "lockVersion": 1}'),
])
def test_regression_fast_check_on_hostile_locks(corpus: Corpus, name: str, raw: bytes) -> None:
    with restored(corpus.lock):
        corpus.lock.write_bytes(raw)
        outcome = invoke("lock", "--check", "-C", corpus.root)
    assert_clean(outcome)
    assert "reprolock.lock.json" in outcome.err, name


@pytest.mark.parametrize("raw", [
    b"x = " + b"[" * 100_000 + b"]" * 100_000,  # config.py: RecursionError in tomllib
    b"x = " + b"{a = " * 100_000 + b"1" + b"}" * 100_000,
    b"base = \"\xff\"",
])
def test_regression_hostile_config(corpus: Corpus, raw: bytes) -> None:
    with restored(corpus.config):
        corpus.config.write_bytes(raw)
        for argv in (("lock", "--check"), ("export",), ("lock", "--no-build", "--no-sbom")):
            outcome = invoke(*argv, "-C", corpus.root)
            assert_clean(outcome)
            assert "reprolock.toml" in outcome.err


def test_regression_run_record_nested_deep_or_duplicated(corpus: Corpus) -> None:
    """verify/record.py: a record nested 100,000 deep was RecursionError; a duplicate
    "exitCode" was read as its last value."""
    text = corpus.record.read_text()
    for raw in ("[" * 100_000 + "]" * 100_000,
                text.replace('"exitCode": 0', '"exitCode": 3, "exitCode": 0')):
        with restored(corpus.record):
            corpus.record.write_text(raw)
            outcome = invoke("verify", "-C", corpus.root, "--run", corpus.record)
        assert_clean(outcome)
        assert "run.json" in outcome.err

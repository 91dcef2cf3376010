"""A trained model back to the environment that produced it: ``run --sign-key --data``
trains the example on the real Docker Engine, signs its outputs (OpenSSF Model Signing,
checked by the library's own CLI too), and ``verify --model`` walks the chain; one byte
flipped in the model, the run statement or the lock breaks it at that link."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli
from tests.test_run import _env, built  # noqa: F401  (the module's built example image)


def _chain(root: Path, key: Path) -> tuple[int, list[dict]]:
    proc = run_cli("verify", "-C", root, "--model", root / "outputs", "--key", key, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["checks"]


def _broken_at(checks: list[dict]) -> str:
    return next(c["name"] for c in checks if not c["ok"])


def _flip(path: Path, at: int) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    return data


def test_trained_model_verifies_back_to_the_lock(built: dict, tmp_path: Path) -> None:  # noqa: F811
    root = built["root"]
    assert run_cli("keygen", "-o", tmp_path / "k", env=_env()).returncode == 0
    key, pub = tmp_path / "k.key", tmp_path / "k.pub"
    assert run_cli("sign", key, "-C", root, env=_env()).returncode == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,0\n")
    proc = run_cli("run", "-C", root, "--sign-key", key, "--data", data, "--json", "-q",
                   "--", "sh", "-c", "cat /data/train.csv >/dev/null && "
                   "! touch /data/x 2>/dev/null && python train.py", env=_env())
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["data"][0]["mount"] == "/data"
    assert [f["path"] for f in record["data"][0]["files"]] == ["train.csv"]
    assert record["model"]["manifestDigest"].startswith("sha256:")
    outputs = root / "outputs"
    assert (outputs / "model.sig").is_file()

    # the library's own CLI accepts the signature
    lib = subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(outputs),
                          "--signature", str(outputs / "model.sig"), "--public_key", str(pub)],
                         capture_output=True, text=True, check=False)
    assert lib.returncode == 0, lib.stderr

    code, checks = _chain(root, pub)
    assert code == 0, checks
    assert [c["name"] for c in checks] == ["model-files", "model-signature", "run-statement",
                                           "image", "lock", "lock-signature"]

    model = outputs / "model.json"
    original = _flip(model, 5)
    code, checks = _chain(root, pub)
    assert code == 1 and _broken_at(checks) == "model-files", checks
    model.write_bytes(original)

    envelope_file = Path(record["envelope"])
    envelope = json.loads(envelope_file.read_text())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[40] ^= 1
    saved = envelope_file.read_bytes()
    envelope_file.write_text(json.dumps({**envelope,
                                         "payload": base64.b64encode(payload).decode()}))
    code, checks = _chain(root, pub)
    assert code == 1 and _broken_at(checks) == "run-statement", checks
    envelope_file.write_bytes(saved)

    lock = root / "reprolock.lock.json"
    original = _flip(lock, 30)
    code, checks = _chain(root, pub)
    assert code == 1 and _broken_at(checks) == "lock", checks
    lock.write_bytes(original)

    signature = outputs / "model.sig"
    original = signature.read_bytes()
    sig = json.loads(original)
    raw = bytearray(base64.b64decode(sig["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[10] ^= 1
    sig["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(raw).decode()
    signature.write_text(json.dumps(sig))
    code, checks = _chain(root, pub)
    assert code == 1 and _broken_at(checks) == "model-signature", checks
    signature.write_text('{"mediaType": 1, "mediaType": 2}')  # not one JSON document
    broken = run_cli("verify", "-C", root, "--model", outputs, "--key", pub)
    assert broken.returncode == 2 and "model.sig" in broken.stderr, broken.stderr
    assert "Traceback" not in broken.stderr
    signature.write_bytes(original)

    _image_changed_breaks_the_chain_at_the_image(built, root, pub, record)

    # verify --run checks the data the run read, when it is here
    ok = run_cli("verify", "-C", root, "--run", record["record"], "--key", pub)
    assert ok.returncode == 0 and "✓ data /data" in ok.stdout, ok.stdout + ok.stderr
    (data / "train.csv").write_text("x,y\n1,1\n")
    bad = run_cli("verify", "-C", root, "--run", record["record"], "--key", pub)
    assert bad.returncode == 1 and "train.csv changed since the run" in bad.stdout


def test_data_symlink_out_of_the_dir_is_refused(built: dict, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    (data / "leak").symlink_to("/etc/passwd")
    proc = run_cli("run", "-C", built["root"], "--data", data, "--", "true")
    assert proc.returncode == 2 and "outside the data directory" in proc.stderr


def test_data_mount_points_are_checked(built: dict, tmp_path: Path) -> None:  # noqa: F811
    proc = run_cli("run", "-C", built["root"], "--data", f"{tmp_path}:/outputs/x", "--", "true")
    assert proc.returncode == 2 and "overlaps /outputs" in proc.stderr
    proc = run_cli("run", "-C", built["root"], "--data", f"{tmp_path}:/a/../b", "--", "true")
    assert proc.returncode == 2 and "not a mount point" in proc.stderr


def _image_changed_breaks_the_chain_at_the_image(run_image: dict, root: Path, pub: Path,
                                                 record: dict) -> None:
    """One byte of the image changed: the engine names changed content by another ID, so
    the image under the run's tag is no longer the one the statement names."""
    import docker

    client = docker.from_env()
    name = run_image["name"]
    ran = client.images.get(name)
    assert ran.id == record["image"]["id"]
    container = client.containers.create(name, entrypoint=["true"])
    try:
        container.put_archive("/app", _tar("train.py", b"print('another model')\n"))
        # a new image of the changed files, with no parent: the one that ran can go
        repository, tag = name.split(":")
        client.api.import_image(src=b"".join(container.export()), repository=repository,
                                tag=tag)
    finally:
        container.remove()
    client.images.remove(ran.id, force=True)
    changed = client.images.get(name)
    try:
        assert changed.id != ran.id
        code, checks = _chain(root, pub)
        assert code == 1 and _broken_at(checks) == "image", checks
    finally:  # the same lock and code build the same image again, bit for bit
        client.images.remove(changed.id, force=True)
        rebuilt = run_cli("build", "-C", root, "-q", "-o", f"docker:{name}")
        assert rebuilt.returncode == 0, rebuilt.stderr
    assert client.images.get(name).id == ran.id


def _tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()

"""Signed provenance next to the image in a registry (issue 16): 'reprolock build
--sign-key --output registry:…' attaches it as an OCI 1.1 referrer and in cosign's
attestation tag, and 'verify --image registry:… --key' finds and checks it there.

The registry is Debian's docker-registry (distribution 2.8), which has no referrers API:
the referrers tag schema (``sha256-HEX``) is what lists the referrers there. The
referrers-API branch is tested through :class:`ReferrersProxy`, the one fake here: an
in-process HTTP server that passes every request to that real registry and answers
``GET /v2/NAME/referrers/DIGEST`` itself, from the manifests with a ``subject`` pushed
through it, as a registry with the API does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import sigstore_models.bundle.v1

from tests.support.buildproject import cli, copy_project

PASSWORD = {"REPROLOCK_KEY_PASSWORD": "pw"}
DSSE = "application/vnd.dsse.envelope.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SLSA = "https://slsa.dev/provenance/v1"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("referrers-cache")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A key pair (``k.key``, ``k.pub``) and a second one (``other.key``, ``other.pub``)."""
    work = tmp_path_factory.mktemp("keys")
    for name in ("k", "other"):
        proc = cli("keygen", "-o", work / name, cache=cache, env=PASSWORD)
        assert proc.returncode == 0, proc.stderr
    return work


@pytest.fixture
def project(build_project_template: Path, tmp_path: Path, keys: Path, cache: Path) -> Path:
    """The build project with its lock signed (verify --key checks the lock too)."""
    root = copy_project(build_project_template, tmp_path / "p")
    proc = cli("sign", keys / "k.key", "-C", root, cache=cache, env=PASSWORD)
    assert proc.returncode == 0, proc.stderr
    return root


def build(project: Path, cache: Path, ref: str, *extra: str | Path) -> str:
    """Build and push to ``registry:ref``; the image's manifest digest."""
    proc = cli("build", "-C", project, "--json", "-q", "-o", f"registry:{ref}", *extra,
               cache=cache, env=PASSWORD)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["manifestDigest"])


def verify(project: Path, cache: Path, ref: str, key: Path) -> tuple[int, dict[str, Any]]:
    proc = cli("verify", "-C", project, "--json", "--image", f"registry:{ref}", "--key", key,
               cache=cache)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, next(c for c in report["checks"] if c["name"] == "provenance")


def forget_local_provenance(project: Path) -> None:
    """Only the registry holds the provenance now: verify cannot fall back to the file."""
    for name in ("build.dsse.json", "build.sigstore.json"):
        (project / ".reprolock" / name).unlink()


def get(host: str, repo: str, reference: str, accept: str = OCI_MANIFEST) -> requests.Response:
    return requests.get(f"http://{host}/v2/{repo}/manifests/{reference}",
                        headers={"Accept": accept}, timeout=10)


def blob(host: str, repo: str, digest: str) -> bytes:
    response = requests.get(f"http://{host}/v2/{repo}/blobs/{digest}", timeout=10)
    assert response.status_code == 200
    return response.content


def tag_of(digest: str, suffix: str = "") -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


def push_blob(host: str, repo: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    done = requests.put(f"{location}{'&' if '?' in location else '?'}digest={digest}",
                        data=data, headers={"Content-Type": "application/octet-stream"},
                        timeout=10)
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def put_manifest(host: str, repo: str, reference: str, doc: dict[str, Any],
                 media_type: str = OCI_MANIFEST) -> dict[str, Any]:
    data = json.dumps(doc).encode()
    response = requests.put(f"http://{host}/v2/{repo}/manifests/{reference}", data=data,
                            headers={"Content-Type": media_type}, timeout=10)
    assert response.status_code == 201, response.text
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}


def artifact(host: str, repo: str, subject: str, data: bytes, artifact_type: str
             ) -> dict[str, Any]:
    """Push an artifact manifest of ``subject`` (by digest), as another tool would."""
    empty = push_blob(host, repo, b"{}")
    layer = push_blob(host, repo, data)
    size = len(get(host, repo, subject).content)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", **empty},
           "layers": [{"mediaType": artifact_type, **layer}],
           "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size}}
    desc = put_manifest(host, repo, "sha256:" + hashlib.sha256(
        json.dumps(doc).encode()).hexdigest(), doc)
    return {**desc, "artifactType": artifact_type}


# -- Debian's docker-registry: no referrers API ---------------------------------------------

def test_push_lists_the_provenance_at_the_fallback_tag_and_cosign_tag(
        project: Path, cache: Path, keys: Path, registry: str) -> None:
    digest = build(project, cache, f"{registry}/attached:v1", "--sign-key", keys / "k.key")
    assert requests.get(f"http://{registry}/v2/attached/referrers/{digest}",
                        timeout=10).status_code == 404  # the registry has no API
    index = get(registry, "attached", tag_of(digest), OCI_INDEX)
    assert index.status_code == 200
    entries = {m["artifactType"]: m for m in index.json()["manifests"]}
    assert set(entries) == {"application/spdx+json", DSSE, BUNDLE}
    referrer = get(registry, "attached", entries[DSSE]["digest"]).json()
    assert referrer["subject"]["digest"] == digest
    assert referrer["layers"][0]["annotations"] == {"predicateType": SLSA}
    envelope = blob(registry, "attached", referrer["layers"][0]["digest"])
    assert envelope == (project / ".reprolock" / "build.dsse.json").read_bytes()
    # cosign's form: an image whose layer is the same envelope, the predicate type named
    att = get(registry, "attached", tag_of(digest, ".att"))
    assert att.status_code == 200
    layers = att.json()["layers"]
    assert [(x["mediaType"], x["digest"]) for x in layers] == [
        (DSSE, referrer["layers"][0]["digest"])]
    assert layers[0]["annotations"] == {"dev.cosignproject.cosign/signature": "",
                                        "predicateType": SLSA}
    config = json.loads(blob(registry, "attached", att.json()["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [x["digest"] for x in layers]


def test_the_provenance_bundle_is_attached_as_cosign_v3_attaches_it(
        project: Path, cache: Path, keys: Path, registry: str) -> None:
    """cosign v3's form: a referrer whose artifactType and one layer are the Sigstore
    bundle, its content and predicate type annotated on the manifest and in the index."""
    digest = build(project, cache, f"{registry}/bundled:v1", "--sign-key", keys / "k.key")
    index = get(registry, "bundled", tag_of(digest), OCI_INDEX).json()
    entry = next(m for m in index["manifests"] if m["artifactType"] == BUNDLE)
    wanted = {"dev.sigstore.bundle.content": "dsse-envelope",
              "dev.sigstore.bundle.predicateType": SLSA}
    assert wanted.items() <= entry["annotations"].items()
    referrer = get(registry, "bundled", entry["digest"]).json()
    assert referrer["annotations"] == entry["annotations"]
    assert "org.opencontainers.image.created" in referrer["annotations"]
    assert referrer["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert referrer["subject"]["digest"] == digest
    (layer,) = referrer["layers"]
    assert layer["mediaType"] == BUNDLE
    data = blob(registry, "bundled", layer["digest"])
    assert data == (project / ".reprolock" / "build.sigstore.json").read_bytes()
    parsed = sigstore_models.bundle.v1.Bundle.from_json(data)  # Sigstore's own model
    assert parsed.dsse_envelope is not None
    assert parsed.dsse_envelope.payload_type == "application/vnd.in-toto+json"


def _only_bundles(registry: str, repo: str, digest: str) -> None:
    """Leave the image's attestations as cosign v3 alone would: the bundle referrer, no
    DSSE referrer, no .att tag."""
    index = get(registry, repo, tag_of(digest), OCI_INDEX).json()
    index["manifests"] = [m for m in index["manifests"] if m["artifactType"] != DSSE]
    put_manifest(registry, repo, tag_of(digest), index, OCI_INDEX)
    att = get(registry, repo, tag_of(digest, ".att"))
    response = requests.delete(f"http://{registry}/v2/{repo}/manifests/"
                               f"{att.headers['Docker-Content-Digest']}", timeout=10)
    assert response.status_code == 202, response.text


def test_verify_reads_the_provenance_from_its_bundle_referrer(
        project: Path, cache: Path, keys: Path, registry: str) -> None:
    ref = f"{registry}/bundleonly:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    forget_local_provenance(project)
    _only_bundles(registry, "bundleonly", digest)
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 0, check
    assert "attached in the registry" in check["detail"]
    assert ".att" not in check["detail"]
    code, check = verify(project, cache, ref, keys / "other.pub")
    assert code == 1, check


def test_a_tampered_bundle_referrer_fails(project: Path, cache: Path, keys: Path,
                                          registry: str) -> None:
    ref = f"{registry}/badbundle:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    forget_local_provenance(project)
    _only_bundles(registry, "badbundle", digest)
    _forge(registry, "badbundle", digest, kind=BUNDLE)
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 1
    assert "not valid for any trusted key" in check["detail"], check


def test_verify_finds_the_provenance_in_the_registry(project: Path, cache: Path, keys: Path,
                                                     registry: str) -> None:
    ref = f"{registry}/found:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    forget_local_provenance(project)
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 0, check
    assert "attached in the registry" in check["detail"]
    assert f"tag {tag_of(digest)}" in check["detail"]
    assert f"tag {tag_of(digest, '.att')}" in check["detail"]
    code, check = verify(project, cache, ref, keys / "other.pub")
    assert code == 1 and "signed by a trusted key" in check["detail"], check


def test_missing_provenance_names_the_places_looked_at(project: Path, cache: Path,
                                                       registry: str, keys: Path) -> None:
    ref = f"{registry}/unsigned:v1"
    digest = build(project, cache, ref)
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 1
    for place in ("the referrers API (this registry has none)", f"tag {tag_of(digest)}",
                  f"cosign's tag {tag_of(digest, '.att')}", "build.dsse.json"):
        assert place in check["detail"], check


def test_a_second_push_keeps_what_others_attached(project: Path, cache: Path, keys: Path,
                                                  registry: str) -> None:
    ref = f"{registry}/shared:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    # another tool attaches a signature of its own, in both places, as cosign would
    foreign = artifact(registry, "shared", digest, b'{"foreign": true}',
                       "application/vnd.example.signature")
    index = get(registry, "shared", tag_of(digest), OCI_INDEX).json()
    put_manifest(registry, "shared", tag_of(digest),
                 {**index, "manifests": [*index["manifests"], foreign]}, OCI_INDEX)
    att = get(registry, "shared", tag_of(digest, ".att")).json()
    other = push_blob(registry, "shared", b'{"payloadType":"x","payload":"","signatures":[]}')
    att["layers"].insert(0, {"mediaType": DSSE, **other})
    put_manifest(registry, "shared", tag_of(digest, ".att"), att)
    build(project, cache, ref, "--sign-key", keys / "k.key")  # signs anew: a new envelope
    entries = get(registry, "shared", tag_of(digest), OCI_INDEX).json()["manifests"]
    assert foreign in entries
    assert [e["artifactType"] for e in entries].count(DSSE) == 2  # the first build's too
    layers = get(registry, "shared", tag_of(digest, ".att")).json()["layers"]
    assert layers[0]["digest"] == other["digest"] and len(layers) == 3
    forget_local_provenance(project)
    code, check = verify(project, cache, ref, keys / "k.pub")  # the foreign ones ignored
    assert code == 0, check


def _forge(registry: str, repo: str, digest: str, kind: str = DSSE) -> dict[str, Any]:
    """The attached provenance (a DSSE envelope, or the one inside a Sigstore bundle) with
    one field of its statement changed, pushed as a referrer of the image and listed in
    the fallback index in place of the real one."""
    index = get(registry, repo, tag_of(digest), OCI_INDEX).json()
    entry = next(m for m in index["manifests"] if m["artifactType"] == kind)
    referrer = get(registry, repo, entry["digest"]).json()
    content = json.loads(blob(registry, repo, referrer["layers"][0]["digest"]))
    envelope = content["dsseEnvelope"] if kind == BUNDLE else content
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["gitCommit"] = "f" * 40
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    layer = push_blob(registry, repo, json.dumps(content).encode())
    referrer["layers"][0].update(layer)
    forged = put_manifest(registry, repo, "sha256:" + hashlib.sha256(
        json.dumps(referrer).encode()).hexdigest(), referrer)
    index["manifests"] = [m for m in index["manifests"] if m is not entry]
    index["manifests"].append({**forged, "artifactType": kind})
    put_manifest(registry, repo, tag_of(digest), index, OCI_INDEX)
    return referrer


def test_a_tampered_envelope_fails(project: Path, cache: Path, keys: Path,
                                   registry: str) -> None:
    ref = f"{registry}/tampered:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    forget_local_provenance(project)
    _forge(registry, "tampered", digest)
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 1
    assert "not valid for any trusted key" in check["detail"], check
    assert f"tag {tag_of(digest)}" in check["detail"]


def test_a_referrer_of_another_image_is_refused(project: Path, cache: Path, keys: Path,
                                                registry: str) -> None:
    """A valid provenance of image A listed as a referrer of image B (same repository)."""
    ref = f"{registry}/swapped:a"
    digest_a = build(project, cache, ref, "--sign-key", keys / "k.key")
    build(project, cache, f"{registry}/swapped:b", "--env-only")
    forget_local_provenance(project)
    digest_b = get(registry, "swapped", "b").headers["Docker-Content-Digest"]  # the env image
    assert digest_b != digest_a
    index = get(registry, "swapped", tag_of(digest_a), OCI_INDEX).json()
    entry = next(m for m in index["manifests"] if m["artifactType"] == DSSE)
    put_manifest(registry, "swapped", tag_of(digest_b),
                 {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}, OCI_INDEX)
    proc = cli("verify", "-C", project, "--json", "--image", f"registry:{registry}/swapped:b",
               "--key", keys / "k.pub", cache=cache)
    assert proc.returncode == 1, proc.stderr
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "provenance")
    assert f"refers to {digest_a}" in check["detail"], check


# -- a registry with the referrers API: the one fake, a proxy in front of the real one ------

class ReferrersProxy(ThreadingHTTPServer):
    """Passes every request to ``upstream`` (Debian's docker-registry) and answers the
    referrers API itself, from the manifests with a subject pushed through it."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.referrers: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[str] = []  # "METHOD path" of every request

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ReferrersProxy

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(f"GET {self.path}")
        if "/referrers/" in self.path:
            digest = self.path.rsplit("/", 1)[1].split("?")[0]
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                               "manifests": self.server.referrers.get(digest, [])}).encode()
            self._answer(200, {"Content-Type": OCI_INDEX}, body)
            return
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self.server.seen.append(f"PUT {self.path}")
        self._forward()

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("accept", "content-type", "content-range", "content-length")}
        headers["Host"] = self.server.host  # the registry's Location URLs name the proxy
        answer = requests.request(self.command, f"http://{self.server.upstream}{self.path}",
                                  data=body, headers=headers, timeout=30,
                                  allow_redirects=False)
        if self.command == "PUT" and "/manifests/" in self.path and answer.status_code == 201:
            self._index(body or b"", answer.headers.get("Docker-Content-Digest", ""))
        keep = ("content-type", "location", "docker-content-digest", "range",
                "docker-upload-uuid")
        self._answer(answer.status_code,
                     {k: v for k, v in answer.headers.items() if k.lower() in keep},
                     b"" if self.command == "HEAD" else answer.content,
                     length=answer.headers.get("Content-Length"))

    def _index(self, body: bytes, digest: str) -> None:
        doc = json.loads(body)
        subject = doc.get("subject")
        if isinstance(subject, dict):
            self.server.referrers.setdefault(subject["digest"], []).append(
                {"mediaType": doc.get("mediaType"), "digest": digest, "size": len(body),
                 "artifactType": doc.get("artifactType")})

    def _answer(self, status: int, headers: dict[str, str], body: bytes, *,
                length: str | None = None) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", length if length is not None else str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


@pytest.fixture
def proxy(registry: str) -> Iterator[ReferrersProxy]:
    server = ReferrersProxy(registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_registry_with_the_referrers_api_needs_no_fallback_tag(
        project: Path, cache: Path, keys: Path, proxy: ReferrersProxy, registry: str) -> None:
    ref = f"{proxy.host}/withapi:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    assert {e["artifactType"] for e in proxy.referrers[digest]} == {
        "application/spdx+json", DSSE, BUNDLE}
    assert get(registry, "withapi", tag_of(digest), OCI_INDEX).status_code == 404
    assert get(registry, "withapi", tag_of(digest, ".att")).status_code == 200  # cosign's
    forget_local_provenance(project)
    proxy.seen.clear()
    code, check = verify(project, cache, ref, keys / "k.pub")
    assert code == 0, check
    assert "(the referrers API)" in check["detail"]
    assert f"GET /v2/withapi/referrers/{digest}" in proxy.seen
    assert f"GET /v2/withapi/manifests/{tag_of(digest)}" not in proxy.seen  # not read


def test_many_bundles_without_a_statement_are_not_read_without_end(
        project: Path, cache: Path, keys: Path, registry: str) -> None:
    """A referrer whose layers are 65 Sigstore bundles of message signatures: each is a
    blob read whole, so they count towards the limit like envelopes (exit 2)."""
    ref = f"{registry}/manybundles:v1"
    digest = build(project, cache, ref, "--sign-key", keys / "k.key")
    forget_local_provenance(project)
    layers = [{"mediaType": BUNDLE, **push_blob(registry, "manybundles", json.dumps(
        {"mediaType": BUNDLE, "messageSignature": {"signature": str(i)}}).encode())}
        for i in range(65)]
    empty = push_blob(registry, "manybundles", b"{}")
    size = len(get(registry, "manybundles", digest).content)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", **empty},
           "layers": layers, "subject": {"mediaType": OCI_MANIFEST, "digest": digest,
                                         "size": size}}
    data = json.dumps(doc).encode()
    entry = {**put_manifest(registry, "manybundles",
                            "sha256:" + hashlib.sha256(data).hexdigest(), doc),
             "artifactType": BUNDLE}
    index = get(registry, "manybundles", tag_of(digest), OCI_INDEX).json()
    index["manifests"].insert(0, entry)
    put_manifest(registry, "manybundles", tag_of(digest), index, OCI_INDEX)
    proc = cli("verify", "-C", project, "--json", "--image", f"registry:{ref}", "--key",
               keys / "k.pub", cache=cache)
    assert proc.returncode == 2, proc.stdout
    assert "more than 64 attestations" in proc.stderr and "Traceback" not in proc.stderr

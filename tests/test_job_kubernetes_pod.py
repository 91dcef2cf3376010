"""``reprolock job --engine kubernetes``: the rendered Job's pod run as a kubelet would run
it, on the real Docker Engine, with the image pulled by digest from the real local registry.

No cluster runs here, so the test is the kubelet: it reads the manifests, writes the
ConfigMap's files into a directory (mode ``defaultMode``) bind-mounted read-only at its
``mountPath``, makes the ``emptyDir`` a Docker volume (backed by a host directory, as a
kubelet's emptyDir is one on the node) that both containers mount at /tmp, a host
directory for the PersistentVolumeClaim at /outputs, and runs the init container, then the
training container, each with exactly the manifest's ``image``, ``command``, ``workingDir``,
``env`` (its ``fieldRef``s resolved from the metadata the Job controller gives pod 0), a
read-only root and no privilege escalation. What it does not do: a second pod (one node,
one process: MASTER_ADDR is never resolved, so ``--network none``), admission policies,
Kueue.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli
from tests.support.services import docker_available, require

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
#: what the Job controller gives every pod of an indexed Job (Kubernetes 1.27+)
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
UID_LABEL = "batch.kubernetes.io/controller-uid"
REPORT = "reprolock-check.json"  # in the pod's /tmp
FIELD_PATH = re.compile(r"metadata\.(?P<kind>annotations|labels)\['(?P<key>[^']+)'\]")
# The module's fixtures start containers on the Docker Engine and build on the
# debootstrap-made base; 'registry' marks itself (FIXTURE_MARKERS).
pytestmark = [pytest.mark.docker, pytest.mark.debootstrap]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Path:
    """The example, locked and pushed to the local registry as ex:1."""
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    root = tmp_path_factory.mktemp("k8s") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs", "reprolock.lock.json.sig"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    locked = run_cli("lock", "--no-sbom", "-C", root)
    assert locked.returncode == 0, locked.stderr
    built = run_cli("build", "-C", root, "--output", f"registry:{registry}/ex:1")
    assert built.returncode == 0, built.stderr
    return root


@dataclass(frozen=True)
class Job:
    """The rendered job: its directory, reprolock's outcome and the parsed manifests."""

    directory: Path
    outcome: dict[str, Any]
    configmap: dict[str, Any]
    job: dict[str, Any]

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.job["spec"]["template"]
        return pod


@pytest.fixture(scope="module")
def job(project: Path, registry: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Job]:
    """The Kubernetes job of ex:1, its image pulled by digest as a kubelet pulls it."""
    import docker

    directory = tmp_path_factory.mktemp("k8s-job") / "job"
    proc = run_cli("job", "-C", project, "--engine", "kubernetes", "--name", "ex",
                   "--image", f"registry:{registry}/ex:1", "-o", directory, "--json")
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert sorted(outcome["files"]) == ["10-configmap.yaml", "20-service.yaml", "30-job.yaml"]
    manifests = {path: yaml.safe_load((directory / path).read_text())
                 for path in outcome["files"]}
    rendered = Job(directory, outcome, manifests["10-configmap.yaml"],
                   manifests["30-job.yaml"])
    client = docker.from_env()
    client.images.pull(outcome["image"])  # a repository@sha256: reference: that digest
    try:
        yield rendered
    finally:
        # held by another run on this engine (the same lock builds the same ID): kept
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(outcome["image"])


@dataclass(frozen=True)
class Exit:
    code: int
    stdout: str
    stderr: str
    image: str


class Kubelet:
    """One pod of the Job (completion index 0) on this Docker Engine."""

    def __init__(self, job: Job, node: Path, uid: str) -> None:
        import docker

        self.client = docker.from_env()
        self.job = job
        self.node = node  # the node's directories: the ConfigMap, the emptyDir, the PVC
        metadata = job.pod["metadata"]
        self.labels = {**metadata.get("labels", {}), UID_LABEL: uid}
        self.annotations = {**metadata.get("annotations", {}), INDEX_ANNOTATION: "0"}
        self.hostname = f"{job.job['metadata']['name']}-0"  # <job>-<index> with subdomain
        self.sources: dict[str, dict[str, Any]] = {}
        for volume in job.pod["spec"]["volumes"]:
            self.sources[volume["name"]] = self._volume(volume)

    @property
    def configmap_dir(self) -> Path:
        return self.node / "configmap"

    @property
    def empty_dir(self) -> Path:
        return self.node / "emptydir"

    @property
    def claim_dir(self) -> Path:
        return self.node / "pvc"

    def _volume(self, volume: dict[str, Any]) -> dict[str, Any]:
        """A Docker mount's source for a pod volume: a bind of a host directory, or a Docker
        volume over the emptyDir's host directory."""
        if "configMap" in volume:
            assert volume["configMap"]["name"] == self.job.configmap["metadata"]["name"]
            self._write_configmap(volume["configMap"].get("defaultMode", 0o644))
            return {"type": "bind", "source": str(self.configmap_dir)}
        if "emptyDir" in volume:
            self.empty_dir.mkdir(parents=True)
            self.empty_dir.chmod(0o1777)  # a kubelet's emptyDir is world-writable
            docker_volume = self.client.volumes.create(
                f"reprolock-test-{uuid.uuid4().hex[:12]}", driver="local",
                driver_opts={"type": "none", "o": "bind", "device": str(self.empty_dir)})
            return {"type": "volume", "source": docker_volume.name}
        assert "persistentVolumeClaim" in volume, volume
        self.claim_dir.mkdir(parents=True)
        return {"type": "bind", "source": str(self.claim_dir)}

    def _write_configmap(self, mode: int) -> None:
        self.configmap_dir.mkdir(parents=True)
        data = self.job.configmap.get("data", {})
        binary = self.job.configmap.get("binaryData", {})
        for key, text in data.items():
            (self.configmap_dir / key).write_bytes(text.encode("utf-8"))
        for key, encoded in binary.items():
            (self.configmap_dir / key).write_bytes(base64.b64decode(encoded))
        for path in self.configmap_dir.iterdir():
            path.chmod(mode)

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's env, with what the Job controller adds to an indexed Job's
        containers (JOB_COMPLETION_INDEX) and the fieldRefs resolved."""
        env = {"JOB_COMPLETION_INDEX": "0"}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            match = FIELD_PATH.fullmatch(item["valueFrom"]["fieldRef"]["fieldPath"])
            assert match is not None, item
            source = self.annotations if match["kind"] == "annotations" else self.labels
            env[item["name"]] = source[match["key"]]
        return env

    def run(self, container: dict[str, Any], injected: dict[str, str] | None = None) -> Exit:
        """The container as the manifest says (plus ``injected`` variables, as a mutating
        admission webhook adds them), to its end; removed afterwards."""
        import docker.types

        mounts = []
        for mount in container["volumeMounts"]:
            source = self.sources[mount["name"]]
            mounts.append(docker.types.Mount(mount["mountPath"], source["source"],
                                             type=source["type"],
                                             read_only=bool(mount.get("readOnly"))))
        context = container.get("securityContext", {})
        env = {**self.env(container), **(injected or {})}
        started = self.client.containers.run(
            container["image"], entrypoint=container["command"], command=[],
            working_dir=container["workingDir"], environment=env,
            mounts=mounts, read_only=bool(context.get("readOnlyRootFilesystem")),
            security_opt=[] if context.get("allowPrivilegeEscalation", True)
            else ["no-new-privileges"], hostname=self.hostname, network_mode="none",
            labels={"reprolock-test": "k8s-pod"}, detach=True)
        try:
            code = started.wait(timeout=300)["StatusCode"]
            out = started.logs(stdout=True, stderr=False).decode()
            err = started.logs(stdout=False, stderr=True).decode()
            image = started.attrs["Image"]  # the image ID (config digest) that ran
        finally:
            started.remove(force=True)
        return Exit(code, out, err, image)

    def close(self) -> None:
        for source in self.sources.values():
            if source["type"] == "volume":
                self.client.volumes.get(source["source"]).remove(force=True)


@pytest.fixture
def kubelet(job: Job, tmp_path: Path) -> Iterator[Kubelet]:
    node = Kubelet(job, tmp_path / "node", uid=str(uuid.uuid4()))
    try:
        yield node
    finally:
        node.close()


def containers(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = job.pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["reprolock-check"]
    assert [c["name"] for c in spec["containers"]] == ["train"]
    return spec["initContainers"][0], spec["containers"][0]


def test_the_manifests_name_the_pushed_image_by_digest(job: Job, registry: str) -> None:
    check, train = containers(job)
    digest = job.outcome["manifestDigest"]
    assert job.outcome["image"] == f"{registry}/ex@{digest}"
    for container in (check, train):
        assert container["image"] == job.outcome["image"]
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "--check-only" in check["command"] and f"/tmp/{REPORT}" in check["command"]
    assert train["command"][train["command"].index("--report") + 1] == f"/tmp/{REPORT}"


def test_the_pod_checks_once_then_trains_and_its_record_verifies(
        job: Job, kubelet: Kubelet, project: Path) -> None:
    check, train = containers(job)
    init = kubelet.run(check)
    assert init.code == 0, init.stderr
    assert "node 0: runtime check passed" in init.stderr
    assert init.image == job.job["metadata"]["annotations"]["reprolock.dev/config-digest"]
    report = json.loads((kubelet.empty_dir / REPORT).read_text())
    assert report["ok"] is True and "text" not in report

    trained = kubelet.run(train)
    assert trained.code == 0, trained.stderr
    assert trained.image == init.image
    assert trained.stdout.startswith("accuracy=0.9"), trained.stdout
    # the training container took the init container's report, not a check of its own:
    # the time it reports is the init container's, to the last digit of the record
    assert f"runtime check passed ({report['seconds']:.2f} s); starting python3 train.py" \
        in trained.stderr
    assert (kubelet.claim_dir / "model.json").is_file()
    records = sorted((kubelet.claim_dir / ".reprolock-runs").glob("*-node0.json"))
    assert len(records) == 1, records
    record = json.loads(records[0].read_text())
    assert record["check"]["seconds"] == report["seconds"]
    assert record["check"]["ok"] is True and record["exitCode"] == 0
    assert record["job"] == {**record["job"], "engine": "kubernetes", "node": 0,
                             "id": kubelet.labels[UID_LABEL], "host": kubelet.hostname,
                             "manifestDigest": job.outcome["manifestDigest"]}
    assert record["image"]["repoDigests"] == [job.outcome["image"]]
    assert [f["path"] for f in record["outputs"]["files"]] == ["model.json"]
    _verify_from_the_claim(project, kubelet.claim_dir, records[0], record)


def _verify_from_the_claim(project: Path, claim: Path, path: Path,
                           record: dict[str, Any]) -> None:
    """The record names the outputs by their claim: verify says they are not here until
    they are copied off the volume and named with --outputs."""
    assert record["outputs"]["dir"] == "pvc:ex-outputs"
    elsewhere = run_cli("verify", "-C", project, "--run", path)
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    assert "pvc:ex-outputs, which is not here" in elsewhere.stdout
    copied = project.parent / "copied-off-the-claim"
    shutil.copytree(claim, copied)
    verified = run_cli("verify", "-C", project, "--run", path, "--outputs", copied)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (copied / "model.json").write_text("{}")
    assert run_cli("verify", "-C", project, "--run", path, "--outputs", copied
                   ).returncode == 1


def test_the_training_container_refuses_a_failed_report(job: Job, kubelet: Kubelet) -> None:
    """Between the two containers, the report says the check failed: the training
    container believes it (it does not check again) and stops before training."""
    check, train = containers(job)
    assert kubelet.run(check).code == 0
    report = json.loads((kubelet.empty_dir / REPORT).read_text())
    report.update(ok=False, text="planted: the check failed on this node\n")
    (kubelet.empty_dir / REPORT).write_text(json.dumps(report))

    trained = kubelet.run(train)
    assert trained.code == 3, trained.stderr
    assert "the training was not started" in trained.stderr
    assert "planted: the check failed on this node" in trained.stderr
    assert "accuracy=" not in trained.stdout
    assert not (kubelet.claim_dir / "model.json").exists()
    (record,) = (kubelet.claim_dir / ".reprolock-runs").glob("*-node0.json")
    doc = json.loads(record.read_text())
    assert doc["exitCode"] == 3 and doc["check"]["ok"] is False
    assert doc["outputs"]["files"] == []


def test_drifted_expectations_stop_the_pod_in_its_init_container(
        job: Job, kubelet: Kubelet) -> None:
    """The ConfigMap expects another RECORD for one distribution than the image holds (as
    if the image were another build): the init container fails the pod (exit 3) naming
    it, and the training container never starts (restartPolicy Never, backoffLimit 0).
    The checker takes the lock's copy of the RECORD digests (runtime.json's 'records' is
    read only for a lock without them), so the change goes there."""
    assert job.pod["spec"]["restartPolicy"] == "Never"
    assert job.job["spec"]["backoffLimit"] == 0
    lock_path = kubelet.configmap_dir / "lock.json"
    lock = json.loads(lock_path.read_text())
    name = sorted(lock["image"]["records"])[0]  # distribution -> sha256: of its RECORD
    lock["image"]["records"][name] = "sha256:" + "0" * 64
    lock_path.chmod(0o644)
    lock_path.write_text(json.dumps(lock))
    lock_path.chmod(0o444)

    report = _failed_check(job, kubelet, {})
    assert any(f"{name}: RECORD was changed after the build" in problem
               for c in report["checks"] for problem in c["problems"]), report


def test_a_variable_injected_into_the_pod_stops_it_before_training(
        job: Job, kubelet: Kubelet) -> None:
    """A mutating admission webhook (or a PodPreset-like default) adds PYTHONPATH to the
    pod's containers: the init container names it and fails the pod."""
    report = _failed_check(job, kubelet, {"PYTHONPATH": "/tmp/site"})
    assert any("PYTHONPATH is set, but the image does not declare it" in problem
               for c in report["checks"] for problem in c["problems"]), report


def _failed_check(job: Job, kubelet: Kubelet, injected: dict[str, str]) -> dict[str, Any]:
    check, _ = containers(job)
    init = kubelet.run(check, injected)
    assert init.code == 3, init.stderr
    assert "the training will not start" in init.stderr
    report: dict[str, Any] = json.loads((kubelet.empty_dir / REPORT).read_text())
    assert report["ok"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert all(problem in init.stderr for c in failed for problem in c["problems"])
    assert not (kubelet.claim_dir / ".reprolock-runs").exists()
    return report

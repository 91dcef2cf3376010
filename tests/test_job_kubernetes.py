"""The Kubernetes engine of ``reprolock job``: the manifests it writes, checked against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields are errors) for the
oldest and the newest Kubernetes version supported, and field by field where the object is
a custom resource (JobSet, Kyverno, sigstore policy-controller). No cluster runs here."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reprolock.errors import ConfigError
from reprolock.jobs.interface import (
    CHECK_DIR,
    CHECK_REPORT,
    OUTPUTS_IN_CONTAINER,
    JobFile,
    JobSpec,
)
from reprolock.jobs.kubernetes import (
    CONFIGMAP_LIMIT,
    QUEUE_LABEL,
    KubernetesEngine,
    KubernetesOptions,
)
from reprolock.signing.provenance import SLSA_PROVENANCE

#: the oldest and the newest Kubernetes whose API the manifests must fit
KUBERNETES_VERSIONS = ("1.27", "1.37")
DIGEST = "sha256:" + hashlib.sha256(b"the manifest").hexdigest()
REPOSITORY = "registry.example:5000/ml/train"
IMAGE = f"{REPOSITORY}@{DIGEST}"
EXPECTATIONS = {
    "check.py": b"#!/usr/bin/env python3\nprint('check')\n",
    "jobrun.py": b"print('wrapper')\r\n",
    "lock.json": b'{"lockVersion": 1, "name": "caf\xc3\xa9"}\n',
    "code.json": b"{}",
    "runtime.json": b"",
    "weights.bin": bytes(range(256)),  # not UTF-8: binaryData
}


def _spec(**changes: Any) -> JobSpec:
    fields: dict[str, Any] = {
        "name": "train", "image": IMAGE, "manifest_digest": DIGEST,
        "config_digest": "sha256:" + "c" * 64, "python": "/usr/local/bin/python3.11",
        "workdir": "/app", "command": ("python", "train.py", "--epochs", "2"),
        "nodes": 2, "procs_per_node": 4, "gpus_per_node": 2, "master_port": 29400,
        "expectations": EXPECTATIONS}
    fields.update(changes)
    return JobSpec(**fields)


def _public_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


PUBLIC_PEM = _public_pem()


def _options(**changes: Any) -> KubernetesOptions:
    fields: dict[str, Any] = {"outputs_claim": "train-outputs", "namespace": "ml",
                              "queue": "team-a", "policy": "kyverno",
                              "public_key_pem": PUBLIC_PEM, "service_account": "trainer"}
    fields.update(changes)
    return KubernetesOptions(**fields)


def _render(spec: JobSpec | None = None, **options: Any) -> dict[str, dict[str, Any]]:
    files = KubernetesEngine(_options(**options)).render(spec or _spec())
    return {f.path: yaml.safe_load(f.data) for f in files}


def _by_kind(manifests: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [m for m in manifests.values() if m["kind"] == kind]
    return found


def _pod(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if any(m["kind"] == "JobSet" for m in manifests.values()):
        job_spec = _by_kind(manifests, "JobSet")["spec"]["replicatedJobs"][0]["template"]
        return dict(job_spec["spec"]["template"])
    return dict(_by_kind(manifests, "Job")["spec"]["template"])


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod["spec"]["initContainers"]
    yield from pod["spec"]["containers"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


VARIANTS = [
    pytest.param({}, id="queued-gpus"),
    pytest.param({"queue": None, "service_account": None}, id="plain"),
    pytest.param({"policy": "sigstore"}, id="sigstore"),
]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("options", VARIANTS)
def test_every_built_in_object_fits_the_kubernetes_api(version: str,
                                                       options: dict[str, Any]) -> None:
    manifests = _render(**options)
    built_in = [m for m in manifests.values() if m["apiVersion"] in ("v1", "batch/v1")]
    assert sorted(m["kind"] for m in built_in) == ["ConfigMap", "Job", "Service"]
    for manifest in built_in:
        assert kubernetes_validate.validate(manifest, version, strict=True) == version


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_a_jobsets_job_template_fits_the_kubernetes_api(version: str) -> None:
    """JobSet is a custom resource; its replicated job's template is a batch/v1 Job spec,
    so that part is checked against the Kubernetes schema as a Job."""
    manifests = _render(jobset=True)
    assert sorted(manifests) == ["10-configmap.yaml", "30-jobset.yaml",
                                 "policy/kyverno-clusterpolicy.yaml"]
    template = _by_kind(manifests, "JobSet")["spec"]["replicatedJobs"][0]["template"]
    as_job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train-node-0"},
              "spec": template["spec"]}
    assert kubernetes_validate.validate(as_job, version, strict=True) == version
    configmap = _by_kind(manifests, "ConfigMap")
    assert kubernetes_validate.validate(configmap, version, strict=True) == version


def test_a_manifest_that_breaks_the_schema_is_caught() -> None:
    """The validation above can fail: a misspelt field is refused in strict mode."""
    job = _by_kind(_render(), "Job")
    job["spec"]["completionMode"] = "Indexed"
    job["spec"]["template"]["spec"]["initContainer"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[0], strict=True)


def test_the_job_is_indexed_one_pod_per_node_and_fails_on_the_first_failure() -> None:
    job = _by_kind(_render(), "Job")
    assert job["metadata"]["namespace"] == "ml"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"],
            spec["backoffLimit"]) == ("Indexed", 2, 2, 0)
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["template"]["spec"]["serviceAccountName"] == "trainer"


@pytest.mark.parametrize("jobset", [False, True])
def test_every_container_runs_the_image_by_digest(jobset: bool) -> None:
    for container in _containers(_pod(_render(jobset=jobset))):
        assert container["image"] == IMAGE
        assert "@sha256:" in container["image"]
        assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("image", [
    f"{REPOSITORY}:v1",  # a tag only
    REPOSITORY,  # neither
    f"{REPOSITORY}@sha256:{'a' * 63}",  # not a whole digest
    f"oci:/tmp/layout@{DIGEST}",  # a layout on this machine: no kubelet can pull it
])
def test_an_image_not_pinned_by_a_registry_digest_is_refused(image: str) -> None:
    with pytest.raises(ConfigError, match="not a registry reference by digest"):
        KubernetesEngine(_options()).render(_spec(image=image))


def test_an_image_of_another_digest_than_the_locked_one_is_refused() -> None:
    other = "sha256:" + "d" * 64
    with pytest.raises(ConfigError, match="names digest sha256:d"):
        KubernetesEngine(_options()).render(_spec(image=f"{REPOSITORY}@{other}"))


def test_a_tag_beside_the_digest_is_kept_and_the_policy_names_the_repository() -> None:
    manifests = _render(_spec(image=f"{REPOSITORY}:v1@{DIGEST}"))
    rule = _by_kind(manifests, "ClusterPolicy")["spec"]["rules"][0]["verifyImages"][0]
    assert rule["imageReferences"] == [f"{REPOSITORY}@*", f"{REPOSITORY}:*"]


@pytest.mark.parametrize("jobset", [False, True])
def test_the_init_container_runs_the_check_before_the_wrapper(jobset: bool) -> None:
    spec = _spec(fast_check=True)
    pod = _pod(_render(spec, jobset=jobset))["spec"]
    (check,) = pod["initContainers"]
    (train,) = pod["containers"]
    assert check["command"] == spec.check_argv()
    assert "--fast" in check["command"]
    # the training container reads the report the init step left in the pod's /tmp
    assert train["command"] == spec.wrapper_argv(report=CHECK_REPORT)
    assert CHECK_REPORT in check["command"] and CHECK_REPORT.startswith("/tmp/")
    tmp = [{m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/tmp"] for c in (check, train)]
    assert tmp[0] == tmp[1] and {"name": tmp[0], "emptyDir": {}} in pod["volumes"]
    for container in (check, train):
        mount = {m["mountPath"]: m for m in container["volumeMounts"]}[CHECK_DIR]
        assert mount["readOnly"] is True
        assert container["workingDir"] == "/app"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["reprolock"]["configMap"]["name"] == "train-reprolock"
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}


def test_the_outputs_claim_is_mounted_in_the_training_container() -> None:
    pod = _pod(_render())["spec"]
    (train,) = pod["containers"]
    mount = {m["mountPath"]: m for m in train["volumeMounts"]}[OUTPUTS_IN_CONTAINER]
    volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "train-outputs"}


def test_the_configmap_holds_the_expectations_byte_for_byte() -> None:
    configmap = _by_kind(_render(), "ConfigMap")
    assert configmap["metadata"]["name"] == "train-reprolock"
    assert sorted(configmap["binaryData"]) == ["weights.bin"]
    back = {name: text.encode("utf-8") for name, text in configmap["data"].items()}
    back.update({name: base64.b64decode(data, validate=True)
                 for name, data in configmap["binaryData"].items()})
    assert back == EXPECTATIONS


def test_the_configmap_limit_is_one_mebibyte() -> None:
    def spec_of(size: int) -> JobSpec:
        return _spec(expectations={"check.py": b"#", "code.json": b"x" * (size - 1)})

    configmap = _by_kind(_render(spec_of(CONFIGMAP_LIMIT)), "ConfigMap")
    assert len(configmap["data"]["code.json"]) == CONFIGMAP_LIMIT - 1
    with pytest.raises(ConfigError, match=r"1048577 bytes, over the 1048576 byte \(1 MiB\)"):
        KubernetesEngine(_options()).render(spec_of(CONFIGMAP_LIMIT + 1))


@pytest.mark.parametrize("name", ["sub/check.py", ".", "..", "..data", "", "é.py",
                                  "x" * 254])
def test_a_file_name_that_cannot_be_a_configmap_key_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be a ConfigMap key"):
        KubernetesEngine(_options()).render(_spec(expectations={name: b""}))


_KEYS = st.from_regex(r"[a-z][-._a-zA-Z0-9]{0,30}", fullmatch=True)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=200).map(str.encode)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_KEYS, st.one_of(_TEXT, st.binary(max_size=200)), max_size=6))
@example({"a.py": "nel\x85ls\u2028ps\u2029cr\r\ncr\rbom\ufeff\x00 trail \n".encode(),
          "b.py": b"  indented\n\n\n", "c.txt": "caf\u00e9\n".encode()})
def test_any_expectations_round_trip_through_the_yaml(expectations: dict[str, bytes]) -> None:
    """Line breaks YAML reads its own way (CR, NEL, U+2028), a BOM, control characters:
    whatever the files hold, reading the manifest gives the same bytes back."""
    configmap = _by_kind(_render(_spec(expectations=expectations)), "ConfigMap")
    back = {name: text.encode("utf-8") for name, text in configmap["data"].items()}
    back.update({name: base64.b64decode(data, validate=True)
                 for name, data in configmap.get("binaryData", {}).items()})
    assert back == expectations


@pytest.mark.parametrize("jobset", [False, True])
def test_gpus_are_requested_per_node(jobset: bool) -> None:
    (train,) = _pod(_render(jobset=jobset))["spec"]["containers"]
    assert train["resources"] == {"limits": {"nvidia.com/gpu": 2}}
    (train,) = _pod(_render(_spec(gpus_per_node=1), gpu_resource="amd.com/gpu")
                    )["spec"]["containers"]
    assert train["resources"] == {"limits": {"amd.com/gpu": 1}}
    (train,) = _pod(_render(_spec(gpus_per_node=0)))["spec"]["containers"]
    assert "resources" not in train


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_a_queued_job_carries_the_kueue_label_and_starts_suspended(kind: str) -> None:
    queued = _by_kind(_render(jobset=kind == "JobSet"), kind)
    assert queued["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert queued["spec"]["suspend"] is True
    plain = _by_kind(_render(jobset=kind == "JobSet", queue=None), kind)
    assert QUEUE_LABEL not in plain["metadata"]["labels"]
    assert "suspend" not in plain["spec"]


def test_the_rendezvous_goes_through_the_headless_service() -> None:
    manifests = _render()
    service = _by_kind(manifests, "Service")
    pod = _pod(manifests)
    assert service["metadata"]["name"] == pod["spec"]["subdomain"] == "train"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["ports"][0]["port"] == 29400
    selector = service["spec"]["selector"].items()
    assert selector <= pod["metadata"]["labels"].items()
    env = _env(pod["spec"]["containers"][0])
    # an indexed Job's pod i is named <job>-i: index 0 is <job>-0 in the Service's domain
    assert env["MASTER_ADDR"] == "train-0.train"
    assert (env["MASTER_PORT"], env["WORLD_SIZE"], env["NNODES"], env["NPROC_PER_NODE"]
            ) == ("29400", "8", "2", "4")
    assert env["NODE_RANK"] == {"fieldRef": {
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    assert "JOB_COMPLETION_INDEX" not in env  # the Job controller sets it


def test_a_jobset_has_its_own_network_and_master_address() -> None:
    jobset = _by_kind(_render(jobset=True), "JobSet")
    assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
    assert jobset["spec"]["network"] == {"enableDNSHostnames": True, "subdomain": "train",
                                         "publishNotReadyAddresses": True}
    assert jobset["spec"]["failurePolicy"] == {"maxRestarts": 0}
    (replicated,) = jobset["spec"]["replicatedJobs"]
    assert (replicated["name"], replicated["replicas"]) == ("node", 1)
    job_spec = replicated["template"]["spec"]
    assert (job_spec["completionMode"], job_spec["completions"], job_spec["parallelism"],
            job_spec["backoffLimit"]) == ("Indexed", 2, 2, 0)
    env = _env(job_spec["template"]["spec"]["containers"][0])
    assert env["MASTER_ADDR"] == "train-node-0-0.train"


def test_the_job_names_the_image_and_the_lock() -> None:
    manifests = _render()
    lock_digest = "sha256:" + hashlib.sha256(EXPECTATIONS["lock.json"]).hexdigest()
    for found in (_by_kind(manifests, "Job")["metadata"]["annotations"],
                  _pod(manifests)["metadata"]["annotations"]):
        assert found == {"reprolock.dev/manifest-digest": DIGEST,
                         "reprolock.dev/config-digest": "sha256:" + "c" * 64,
                         "reprolock.dev/lock-digest": lock_digest}


@pytest.mark.parametrize("jobset", [False, True])
def test_the_output_is_the_same_bytes_every_time(jobset: bool) -> None:
    first = KubernetesEngine(_options(jobset=jobset)).render(_spec())
    reordered = dict(reversed(list(EXPECTATIONS.items())))
    second = KubernetesEngine(_options(jobset=jobset)).render(_spec(expectations=reordered))
    assert [(f.path, f.data) for f in first] == [(f.path, f.data) for f in second]
    assert all(isinstance(f, JobFile) and not f.executable for f in first)


def test_the_kyverno_policy_verifies_the_signed_provenance() -> None:
    policy = _by_kind(_render(), "ClusterPolicy")
    assert policy["apiVersion"] == "kyverno.io/v1"
    assert policy["metadata"]["name"].startswith("reprolock-registry-example-5000-ml-train-")
    assert policy["spec"]["validationFailureAction"] == "Enforce"
    (rule,) = policy["spec"]["rules"]
    assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
    (verify,) = rule["verifyImages"]
    assert verify["imageReferences"] == [f"{REPOSITORY}@*", f"{REPOSITORY}:*"]
    assert (verify["mutateDigest"], verify["verifyDigest"]) == (False, True)
    (attestation,) = verify["attestations"]
    assert attestation["type"] == SLSA_PROVENANCE == "https://slsa.dev/provenance/v1"
    (attestor,) = attestation["attestors"]
    keys = attestor["entries"][0]["keys"]
    assert keys["publicKeys"].encode() == PUBLIC_PEM
    assert keys["rekor"] == {"ignoreTlog": True}


def test_the_sigstore_policy_verifies_the_signed_provenance() -> None:
    manifests = _render(policy="sigstore")
    assert "policy/sigstore-clusterimagepolicy.yaml" in manifests
    policy = _by_kind(manifests, "ClusterImagePolicy")
    assert policy["apiVersion"] == "policy.sigstore.dev/v1beta1"
    assert policy["spec"]["images"] == [{"glob": f"{REPOSITORY}@*"},
                                        {"glob": f"{REPOSITORY}:*"}]
    (authority,) = policy["spec"]["authorities"]
    assert authority["key"]["data"].encode() == PUBLIC_PEM
    assert authority["attestations"] == [{"name": "slsa-provenance",
                                          "predicateType": SLSA_PROVENANCE}]
    assert "ctlog" not in authority  # no transparency log: the key signs locally


def test_the_policy_is_kept_apart_from_the_namespaced_objects() -> None:
    paths = sorted(_render())
    assert paths == ["10-configmap.yaml", "20-service.yaml", "30-job.yaml",
                     "policy/kyverno-clusterpolicy.yaml"]
    assert sorted(_render(policy="none", public_key_pem=None)) == paths[:3]


@pytest.mark.parametrize("policy", ["kyverno", "sigstore"])
def test_a_policy_without_a_public_key_is_refused(policy: str) -> None:
    with pytest.raises(ConfigError, match="needs the project's public key"):
        KubernetesEngine(_options(policy=policy, public_key_pem=None)).render(_spec())


def test_a_private_key_is_never_written_into_a_policy() -> None:
    private = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ConfigError, match="not one"):
        KubernetesEngine(_options(public_key_pem=private)).render(_spec())
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigError, match="P-256"):
        KubernetesEngine(_options(public_key_pem=other)).render(_spec())


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="'opa' is not known"):
        KubernetesEngine(_options(policy="opa")).render(_spec())


@pytest.mark.parametrize(("name", "jobset", "nodes"), [
    ("Train", False, 1),  # upper case
    ("0train", False, 1),  # a Service name starts with a letter
    ("t" * 61, False, 11),  # the pod of index 10, t…t-10, would be 64 characters
    ("t" * 55, True, 1),  # t…t-node-0-0 would be 64 characters
])
def test_a_name_kubernetes_cannot_use_is_refused(name: str, jobset: bool, nodes: int) -> None:
    with pytest.raises(ConfigError, match="job name"):
        KubernetesEngine(_options(jobset=jobset)).render(_spec(name=name, nodes=nodes))


def test_the_longest_pod_hostname_is_63_characters() -> None:
    job = _by_kind(_render(_spec(name="t" * 61, nodes=10)), "Job")
    assert len(f"{job['metadata']['name']}-9") == 63
    KubernetesEngine(_options(jobset=True)).render(_spec(name="t" * 54, nodes=1))

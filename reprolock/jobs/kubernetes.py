"""Kubernetes manifests for a locked image's training job.

    >>> engine = KubernetesEngine(KubernetesOptions(outputs_claim="runs", policy="none"))
    >>> files = engine.render(spec)                      # doctest: +SKIP
    >>> [f.path for f in files]                          # doctest: +SKIP
    ['10-configmap.yaml', '20-service.yaml', '30-job.yaml']

The plain-Kubernetes pattern for ``torchrun`` across pods: an indexed ``Job`` (one pod per
node, ``completions = parallelism = nodes``) whose pods share a headless ``Service`` as
their DNS subdomain, so index 0 is reachable as ``<name>-0.<name>``; or, with
``jobset=True``, a ``JobSet`` that makes both. Every pod first runs the runtime check as an
init container: a node whose environment drifted fails its pod, and ``backoffLimit: 0``
fails the job, before any training. The check's files are a ``ConfigMap`` mounted
read-only at :data:`~reprolock.jobs.interface.CHECK_DIR`.

The admission policy (a Kyverno ``ClusterPolicy`` or a sigstore policy-controller
``ClusterImagePolicy``) is written apart, under ``policy/``: a cluster administrator
applies it once, and ``kubectl create -f JOB_DIR`` (which does not descend into
``policy/``) stays a namespace user's command.

Manifests are YAML (PyYAML's safe dumper), keys sorted: the same spec gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reprolock.errors import ConfigError
from reprolock.jobs.interface import (
    CHECK_DIR,
    CHECK_REPORT,
    OUTPUTS_IN_CONTAINER,
    JobEngine,
    JobFile,
    JobSpec,
    job_environment,
)
from reprolock.signing.provenance import BUILD_TYPE, BUILDER_ID, SLSA_PROVENANCE

Manifest = dict[str, Any]
POLICIES = ("kyverno", "sigstore", "none")

#: the API server refuses a ConfigMap whose data and binaryData values exceed 1 MiB in all
CONFIGMAP_LIMIT = 1 << 20
#: the API server's default for an image named by digest; render refuses any other
#: reference, so an image already on the node is the same bytes
PULL_POLICY_BY_DIGEST = "IfNotPresent"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_LABEL = "reprolock.dev/job"
#: the replicated job of a JobSet; its pods are <name>-node-<job>-<index>
JOBSET_REPLICA = "node"
#: set on every Job's pods by the Job controller (Kubernetes 1.27+), one value per run
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
#: an indexed Job's pod's index, as an annotation (the env var is JOB_COMPLETION_INDEX)
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
TMP_DIR = "/tmp"

_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: what the API server takes as a ConfigMap key (a file name in the mounted directory)
_CONFIGMAP_KEY = re.compile(r"(?!\.\.)(?!\.$)[-._a-zA-Z0-9]{1,253}")
_DIGEST_REF = re.compile(r"(?P<repo>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class KubernetesOptions:
    """Where and how the job runs. ``outputs_claim`` names a PersistentVolumeClaim mounted
    at /outputs in every pod (ReadWriteMany when the job has more than one node);
    ``public_key_pem`` is the project's signing public key, for the admission policy."""

    outputs_claim: str
    namespace: str = "default"
    queue: str | None = None  # a Kueue LocalQueue in the namespace
    jobset: bool = False
    policy: str = "kyverno"  # one of POLICIES
    public_key_pem: bytes | None = None
    service_account: str | None = None
    gpu_resource: str = "nvidia.com/gpu"


class KubernetesEngine(JobEngine):
    name = "kubernetes"

    def __init__(self, options: KubernetesOptions) -> None:
        self.options = options

    def render(self, spec: JobSpec) -> Sequence[JobFile]:
        """The ConfigMap, then the Service and Job (or the JobSet), then the policy."""
        repository = _check(spec, self.options)
        configmap = _configmap(spec, self.options.namespace)
        if self.options.jobset:
            files = [_file("10-configmap.yaml", configmap),
                     _file("30-jobset.yaml", _jobset(spec, self.options))]
        else:
            files = [_file("10-configmap.yaml", configmap),
                     _file("20-service.yaml", _service(spec, self.options.namespace)),
                     _file("30-job.yaml", _job(spec, self.options))]
        policy = _policy(self.options, repository)
        if policy is not None:
            files.append(policy)
        return files


class _Dumper(yaml.SafeDumper):
    """Text of several lines (the check's files, a PEM key) as a literal block, readable
    in a review. Only ASCII is written as it is: YAML reads NEL (U+0085) inside a block
    as a line break, so non-ASCII text is a double-quoted scalar with escapes (PyYAML
    falls back to one wherever a block cannot hold the text exactly)."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                   style="|" if "\n" in text else None)


_Dumper.add_representer(str, _represent_str)


def dump(manifest: Manifest) -> bytes:
    """Sorted keys, block style, no line folding: the same spec gives the same bytes."""
    text = yaml.dump(manifest, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=False, width=1 << 30)
    return text.encode("ascii")


def _file(path: str, manifest: Manifest) -> JobFile:
    return JobFile(path, dump(manifest))


def _check(spec: JobSpec, options: KubernetesOptions) -> str:
    """The image's repository; refuses what a cluster would run wrongly or not at all."""
    _check_name(spec, options.jobset)
    if spec.nodes < 1 or spec.procs_per_node < 1 or spec.gpus_per_node < 0:
        raise ConfigError(f"a job of {spec.nodes} nodes, {spec.procs_per_node} processes and "
                          f"{spec.gpus_per_node} GPUs per node cannot run",
                          hint="pass at least one node and one process per node")
    if options.policy not in POLICIES:
        raise ConfigError(f"admission policy {options.policy!r} is not known",
                          hint=f"use {', '.join(POLICIES)}")
    return _image_repository(spec)


def _check_name(spec: JobSpec, jobset: bool) -> None:
    """A Service name (DNS-1035), and every pod's hostname at most 63 characters."""
    if not _DNS_LABEL.fullmatch(spec.name):
        raise ConfigError(f"job name {spec.name!r} is not a DNS-1035 label",
                          hint="use lower-case letters, digits and '-', starting with a letter")
    longest = _hostname(spec.name, spec.nodes - 1, jobset)
    if len(longest) > 63:
        raise ConfigError(f"job name {spec.name!r} is too long: its pod hostname "
                          f"{longest!r} would exceed 63 characters",
                          hint="choose a shorter job name")


def _image_repository(spec: JobSpec) -> str:
    """A kubelet pulls from a registry, and only a digest pins what it pulls."""
    match = _DIGEST_REF.fullmatch(spec.image)
    if match is None or spec.image.startswith("oci:"):
        raise ConfigError(f"image {spec.image!r} is not a registry reference by digest",
                          hint="push the image ('reprolock build --output registry:HOST/REPO') "
                          "and pass HOST/REPO@sha256:…; a tag can be moved to other bytes")
    if match["digest"] != spec.manifest_digest:
        raise ConfigError(f"image {spec.image} names digest {match['digest']}, but the locked "
                          f"image's manifest is {spec.manifest_digest}",
                          hint="pass the reference 'reprolock build' reported")
    return repository(match["repo"])


def _public_key(options: KubernetesOptions) -> str:
    """The key as SPKI PEM; anything else is refused, a private key above all (it would
    be published in a cluster-wide object)."""
    what = f"the {options.policy} admission policy"
    if not options.public_key_pem:
        raise ConfigError(f"{what} needs the project's public key",
                          hint="pass the .pub file 'reprolock keygen' wrote, or choose the "
                          "policy 'none'")
    try:
        key = serialization.load_pem_public_key(options.public_key_pem)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{what} needs a PEM public key; the key given is not one",
                          hint="pass the .pub file 'reprolock keygen' wrote, never the .key"
                          ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve,
                                                                        ec.SECP256R1):
        raise ConfigError(f"{what} needs an ECDSA P-256 public key, as reprolock signs with",
                          hint="pass the .pub file 'reprolock keygen' wrote")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def repository(name: str) -> str:
    """HOST/REPO without a tag (a port's ':' is before the last '/')."""
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


def _hostname(name: str, index: int, jobset: bool) -> str:
    return f"{name}-{JOBSET_REPLICA}-0-{index}" if jobset else f"{name}-{index}"


def _master_addr(spec: JobSpec, jobset: bool) -> str:
    return f"{_hostname(spec.name, 0, jobset)}.{spec.name}"


def _metadata(spec: JobSpec, namespace: str, name: str | None = None) -> Manifest:
    return {"name": name or spec.name, "namespace": namespace,
            "labels": {JOB_LABEL: spec.name}}


def _configmap(spec: JobSpec, namespace: str) -> Manifest:
    """Text files in data, the others base64 in binaryData; refused above the API
    server's limit, which counts the values' bytes (binaryData decoded)."""
    total = sum(len(blob) for blob in spec.expectations.values())
    if total > CONFIGMAP_LIMIT:
        raise ConfigError(f"the check's files are {total} bytes, over the {CONFIGMAP_LIMIT} "
                          "byte (1 MiB) limit of a Kubernetes ConfigMap",
                          hint="use --fast-check or a smaller code tree; or run the job "
                          "under Slurm, which mounts the files from disk")
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for name, blob in spec.expectations.items():
        if not _CONFIGMAP_KEY.fullmatch(name):
            raise ConfigError(f"check file {name!r} cannot be a ConfigMap key",
                              hint="name check files with letters, digits, '-', '_' and '.'")
        try:
            data[name] = blob.decode("utf-8")
        except UnicodeDecodeError:
            binary[name] = base64.b64encode(blob).decode("ascii")
    manifest: Manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": _metadata(spec, namespace, _configmap_name(spec)),
                          "immutable": True, "data": data}
    if binary:
        manifest["binaryData"] = binary
    return manifest


def _configmap_name(spec: JobSpec) -> str:
    return f"{spec.name}-reprolock"


def _service(spec: JobSpec, namespace: str) -> Manifest:
    """Headless, and publishing pods before they are ready: the workers resolve index 0
    while its init container still runs the check."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(spec, namespace),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {JOB_LABEL: spec.name},
                     "ports": [{"name": "rendezvous", "port": spec.master_port,
                                "targetPort": spec.master_port, "protocol": "TCP"}]}}


def _annotations(spec: JobSpec) -> dict[str, str]:
    lock = spec.expectations.get("lock.json")
    annotations = {"reprolock.dev/manifest-digest": spec.manifest_digest,
                   "reprolock.dev/config-digest": spec.config_digest}
    if lock is not None:
        annotations["reprolock.dev/lock-digest"] = "sha256:" + hashlib.sha256(lock).hexdigest()
    return annotations


def _job(spec: JobSpec, options: KubernetesOptions) -> Manifest:
    metadata = _metadata(spec, options.namespace)
    metadata["annotations"] = _annotations(spec)
    job_spec = _job_spec(spec, options, _master_addr(spec, jobset=False))
    job_spec["template"]["spec"]["subdomain"] = spec.name
    if options.queue is not None:
        metadata["labels"][QUEUE_LABEL] = options.queue
        job_spec["suspend"] = True  # Kueue admits it by unsuspending
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def _job_spec(spec: JobSpec, options: KubernetesOptions, master: str) -> Manifest:
    """Indexed, one pod per node; the first failed pod (a drifted node) fails the job."""
    return {"completionMode": "Indexed", "completions": spec.nodes,
            "parallelism": spec.nodes, "backoffLimit": 0,
            "template": {"metadata": {"labels": {JOB_LABEL: spec.name},
                                      "annotations": _annotations(spec)},
                         "spec": _pod_spec(spec, options, master)}}


def _jobset(spec: JobSpec, options: KubernetesOptions) -> Manifest:
    metadata = _metadata(spec, options.namespace)
    metadata["annotations"] = _annotations(spec)
    body: Manifest = {
        "failurePolicy": {"maxRestarts": 0},
        "network": {"enableDNSHostnames": True, "subdomain": spec.name,
                    "publishNotReadyAddresses": True},
        "replicatedJobs": [{"name": JOBSET_REPLICA, "replicas": 1, "template": {
            "spec": _job_spec(spec, options, _master_addr(spec, jobset=True))}}]}
    if options.queue is not None:
        metadata["labels"][QUEUE_LABEL] = options.queue
        body["suspend"] = True
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": metadata,
            "spec": body}


def _pod_spec(spec: JobSpec, options: KubernetesOptions, master: str) -> Manifest:
    mounts: list[Manifest] = [
        {"name": "reprolock", "mountPath": CHECK_DIR, "readOnly": True},
              {"name": "tmp", "mountPath": TMP_DIR}]
    check = _container(spec, "reprolock-check", spec.check_argv(), mounts, {})
    train = _container(spec, "train", spec.wrapper_argv(report=CHECK_REPORT),
                       [*mounts, {"name": "outputs", "mountPath": OUTPUTS_IN_CONTAINER}],
                       _environment(spec, master))
    if spec.gpus_per_node > 0:
        train["resources"] = {"limits": {options.gpu_resource: spec.gpus_per_node}}
    pod: Manifest = {
        "restartPolicy": "Never",
        "initContainers": [check], "containers": [train],
        "volumes": [
            {"name": "reprolock", "configMap": {"name": _configmap_name(spec),
                                                "defaultMode": 0o444}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "outputs", "persistentVolumeClaim": {"claimName": options.outputs_claim}},
        ]}
    if options.service_account is not None:
        pod["serviceAccountName"] = options.service_account
    return pod


def _container(spec: JobSpec, name: str, argv: list[str], mounts: list[Manifest],
               env: Mapping[str, Manifest]) -> Manifest:
    container: Manifest = {
        "name": name, "image": spec.image, "imagePullPolicy": PULL_POLICY_BY_DIGEST,
        "command": argv, "workingDir": spec.workdir, "volumeMounts": mounts,
        "securityContext": {"readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False}}
    if env:
        container["env"] = [{"name": key, **value} for key, value in sorted(env.items())]
    return container


def _environment(spec: JobSpec, master: str) -> dict[str, Manifest]:
    """The rendezvous variables. The Job controller sets JOB_COMPLETION_INDEX, the rank
    the wrapper reads, in every container of an indexed Job's pod; NODE_RANK is the same
    index, from the pod's annotation. REPROLOCK_JOB_ID is one value for every pod of a run,
    where HOSTNAME differs per pod."""
    env: dict[str, Manifest] = {key: {"value": value}
                                for key, value in job_environment(spec).items()}
    env["MASTER_ADDR"] = {"value": master}
    env["NODE_RANK"] = {"valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}}
    env["REPROLOCK_JOB_ID"] = {"valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}}}
    return env


def _policy(options: KubernetesOptions, repository: str) -> JobFile | None:
    if options.policy == "none":
        return None
    key = _public_key(options)
    if options.policy == "kyverno":
        return _file("policy/kyverno-clusterpolicy.yaml", _kyverno(repository, key))
    return _file("policy/sigstore-clusterimagepolicy.yaml", _sigstore(repository, key))


def policy_name(repository: str) -> str:
    """One policy per image repository, whichever job writes it: applying it again from
    another job of the same repository changes nothing."""
    slug = re.sub(r"[^a-z0-9]+", "-", repository.lower()).strip("-")[:40].strip("-")
    return f"reprolock-{slug}-{hashlib.sha256(repository.encode()).hexdigest()[:8]}"


def _policy_metadata(repository: str) -> Manifest:
    return {"name": policy_name(repository),
            "annotations": {"reprolock.dev/repository": repository}}


def _images(repository: str) -> list[str]:
    """The repository by any digest or tag: a tag is matched so that it is refused."""
    return [f"{repository}@*", f"{repository}:*"]


def _kyverno(repository: str, key: str) -> Manifest:
    """Verifies the signed SLSA provenance, not a cosign image signature: reprolock signs
    only the provenance, whose subject is the image's digest. Rekor and the CT log are not
    consulted: the key signs locally, with no transparency log entry. Kyverno, like the
    policy-controller, reads attestations at cosign's tag (sha256-<hex>.att), not from
    OCI 1.1 referrers, where 'reprolock build' attaches them (docs/kubernetes.md)."""
    attestor = {"entries": [{"keys": {"publicKeys": key, "rekor": {"ignoreTlog": True},
                                      "ctlog": {"ignoreSCT": True}}}]}
    condition = {"all": [
        {"key": "{{ buildDefinition.buildType }}", "operator": "Equals", "value": BUILD_TYPE},
        {"key": "{{ runDetails.builder.id }}", "operator": "Equals", "value": BUILDER_ID}]}
    rule = {"name": "reprolock-provenance",
            "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "verifyImages": [{
                "imageReferences": _images(repository), "type": "Cosign",
                "mutateDigest": False, "verifyDigest": True, "required": True,
                "attestations": [{"type": SLSA_PROVENANCE, "attestors": [attestor],
                                  "conditions": [condition]}]}]}
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": _policy_metadata(repository),
            "spec": {"validationFailureAction": "Enforce", "background": False,
                     "webhookTimeoutSeconds": 30, "rules": [rule]}}


def _sigstore(repository: str, key: str) -> Manifest:
    """An authority with attestations checks them, not an image signature (see
    :func:`_kyverno`); without ``ctlog`` the policy-controller skips the transparency log."""
    return {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy",
            "metadata": _policy_metadata(repository),
            "spec": {"mode": "enforce",
                     "images": [{"glob": glob} for glob in _images(repository)],
                     "authorities": [{
                         "name": "reprolock", "key": {"data": key, "hashAlgorithm": "sha256"},
                         "attestations": [{"name": "slsa-provenance",
                                           "predicateType": SLSA_PROVENANCE}]}]}}

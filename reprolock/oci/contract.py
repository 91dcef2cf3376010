"""What a reprolock image promises, in one place: its labels, where the virtual
environment lives, its environment variables, and the configuration of its environment
image (the image less the code) whose digest the lock records.

The builder writes images by these rules; ``verify --image`` and ``run`` check images by
them. Both sides call the same functions, so a change to the rules changes both.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reprolock.oci.canonical import canonical_json, sha256_digest

if TYPE_CHECKING:
    from reprolock.config import Config, ImageConfig
    from reprolock.lock.model import Accelerator, Lock

LABEL_PREFIX = "dev.reprolock"
INPUTS_LABEL = f"{LABEL_PREFIX}.inputs.digest"
LOCK_LABEL = f"{LABEL_PREFIX}.lock.digest"
CODE_LABEL = f"{LABEL_PREFIX}.code.tree"
#: On the full image: the config digest of its environment image (the lock records it),
#: by which 'reprolock run' picks the image of this lock.
ENV_LABEL = f"{LABEL_PREFIX}.environment.config"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
REVISION_LABEL = "org.opencontainers.image.revision"
#: The labels the full image has and its environment image has not.
CODE_LABELS = (CODE_LABEL, LOCK_LABEL, ENV_LABEL, REVISION_LABEL)
#: Where the virtual environment is, unless the lock records another prefix.
DEFAULT_PREFIX = "/opt/venv"
#: Run-time fields an image inherits from its base when the project sets none.
INHERITED = ("User", "StopSignal", "ExposedPorts", "Volumes", "Shell")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def venv_prefix(lock: Lock) -> str:
    """Where the lock's image has its virtual environment."""
    return lock.image.prefix if lock.image else DEFAULT_PREFIX


def image_env(base_env: Mapping[str, str], prefix: str, declared: Mapping[str, str],
              accelerator: Accelerator | None = None) -> dict[str, str]:
    """The image's environment: the base's, the venv first on PATH, no .pyc written at
    run time, a fixed hash seed unless declared otherwise, what the NVIDIA container
    toolkit reads for a CUDA lock, then the declared variables."""
    env = dict(base_env)
    path = env.get("PATH", DEFAULT_PATH)
    env["PATH"] = f"{prefix}/bin:{path}"
    env["VIRTUAL_ENV"] = prefix
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc appears after the build either
    env.setdefault("PYTHONHASHSEED", "0")
    if accelerator is not None and accelerator.kind == "cuda" and accelerator.cuda:
        env.update(cuda_env(env, accelerator.cuda))
    env.update(declared)
    return dict(sorted(env.items()))


_REQUIRE = re.compile(r"cuda>=(\d+(?:\.\d+)*)")


def cuda_env(base_env: Mapping[str, str], cuda: str) -> dict[str, str]:
    """NVIDIA_REQUIRE_CUDA makes the container toolkit refuse a driver too old for the
    wheels' CUDA when the container starts (a base's own stricter requirement, for its
    toolkit, is kept); all GPUs, compute and utility (nvidia-smi), unless the base says."""
    required = f"cuda>={cuda}"
    have = _REQUIRE.search(base_env.get("NVIDIA_REQUIRE_CUDA", ""))
    if have and _numbers(have.group(1)) >= _numbers(cuda):
        required = base_env["NVIDIA_REQUIRE_CUDA"]
    return {"NVIDIA_REQUIRE_CUDA": required,
            "NVIDIA_VISIBLE_DEVICES": base_env.get("NVIDIA_VISIBLE_DEVICES", "all"),
            "NVIDIA_DRIVER_CAPABILITIES": base_env.get("NVIDIA_DRIVER_CAPABILITIES",
                                                       "compute,utility")}


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def locked_env(config: Config, prefix: str, base_env: Mapping[str, str],
               accelerator: Accelerator | None = None) -> dict[str, str]:
    """The environment variables the build gives the image (less PATH, of which the
    runtime checker checks that it starts with the venv)."""
    env = image_env(base_env, prefix, config.image.env, accelerator)
    env.pop("PATH", None)
    return env


def env_pairs(config: Mapping[str, Any]) -> dict[str, str]:
    """The variables an image configuration sets (``Env``), as a mapping."""
    pairs = (config.get("config") or {}).get("Env") or []
    return dict(str(item).split("=", 1) for item in pairs if "=" in str(item))


def iso_time(epoch: int) -> str:
    """The ``created`` time of an image made at ``epoch`` (SOURCE_DATE_EPOCH)."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_labels(lock: Lock, *, code_tree: str | None = None, lock_digest: str | None = None,
                 revision: str | None = None) -> dict[str, str]:
    """The labels reprolock adds; the code's (``code_tree`` and the rest) on the full
    image only."""
    labels = {BASE_DIGEST_LABEL: lock.base.digest, BASE_NAME_LABEL: lock.base.reference,
              INPUTS_LABEL: lock.inputs_digest}
    if code_tree is not None:
        labels[CODE_LABEL] = code_tree
        if lock_digest:
            labels[LOCK_LABEL] = lock_digest
        if revision:
            labels[REVISION_LABEL] = revision
    return labels


def image_config(base: Mapping[str, Any], *, settings: ImageConfig, env: Sequence[str],
                 labels: Mapping[str, str], diff_ids: Sequence[str], holds: Sequence[str],
                 created: str, architecture: str) -> dict[str, Any]:
    """The configuration of an image on the base whose configuration is ``base``: the
    project's ``[image]`` settings, variables ``env``, ``labels`` added to the base's,
    and one history entry per layer of ours (``holds``: what each holds)."""
    inherited = dict(base.get("config") or {})
    run: dict[str, Any] = {
        **{k: v for k, v in inherited.items() if k in INHERITED},
        "Env": list(env),
        "WorkingDir": settings.workdir,
        "Labels": {**dict(inherited.get("Labels") or {}), **labels},
    }
    if settings.entrypoint:
        run["Entrypoint"] = list(settings.entrypoint)
        if settings.cmd:
            run["Cmd"] = list(settings.cmd)
    elif settings.cmd:
        run["Cmd"] = list(settings.cmd)
    elif inherited.get("Cmd"):
        run["Cmd"] = inherited["Cmd"]
    config: dict[str, Any] = {
        "architecture": str(base.get("architecture", "")) or architecture,
        "os": str(base.get("os", "")) or "linux",
        "created": created,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [*base.get("history", []),
                    *({"created": created, "created_by": f"reprolock: {held}",
                       "comment": "reprolock"} for held in holds)],
    }
    if base.get("variant"):
        config["variant"] = str(base["variant"])
    return config


def environment_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The environment image's config, derived from the full image's: the same less the
    code layer, its history entry and the labels that name the code."""
    env = json.loads(json.dumps(config))
    labels = (env.get("config") or {}).get("Labels") or {}
    for name in CODE_LABELS:
        labels.pop(name, None)
    env["rootfs"]["diff_ids"] = env["rootfs"]["diff_ids"][:-1]
    env["history"] = env.get("history", [])[:-1]
    return dict(env)


def config_bytes(config: Mapping[str, Any]) -> bytes:
    """An image configuration's bytes as the builder writes them: its digest is what the
    lock records and what verify and run recompute (through :func:`config_digest`)."""
    return canonical_json(config)


def config_digest(config: Mapping[str, Any]) -> str:
    """The digest of ``config`` written by :func:`config_bytes`."""
    return sha256_digest(config_bytes(config))


def environment_config_digest(config: Mapping[str, Any]) -> str:
    """The digest the lock records (``image.configDigest``) for an image whose full
    configuration is ``config``."""
    return config_digest(environment_config(config))

"""The GPU contract of a lock: which CUDA the locked wheels were built for, and the oldest
NVIDIA driver that runs it, derived from the locked packages alone (names, versions and
local version labels), so that a run can refuse a host whose driver is too old before it
starts anything.

    >>> cuda_of_packages([("torch", "2.6.0+cu126")]).cuda
    '12.6'
    >>> minimum_driver("12.6")
    '525.60.13'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from reprolock.lock.model import Accelerator

#: The oldest Linux driver for each CUDA major under NVIDIA's minor version
#: compatibility (CUDA Toolkit release notes, "CUDA Driver" table, footnote: minor
#: version compatibility). A wheel built with CUDA X.Y runs on any driver at least this.
_MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
_LOCAL_CUDA = re.compile(r"\+cu(\d{2,3})$")  # torch 2.6.0+cu126: CUDA 12.6
_RUNTIME = re.compile(r"^nvidia-cuda-runtime(?:-cu(\d+))?$")
_CUDNN = re.compile(r"^nvidia-cudnn(?:-cu\d+)?$")
_NCCL = re.compile(r"^nvidia-nccl(?:-cu\d+)?$")
_TOOLKIT = ("cuda-toolkit", "nvidia-cuda-runtime")


def minimum_driver(cuda: str) -> str | None:
    return _MIN_DRIVER.get(cuda.split(".")[0])


def cuda_of_packages(packages: Iterable[tuple[str, str]]) -> Accelerator:
    """The accelerator the locked ``(name, version)`` pairs need."""
    found: dict[str, tuple[str, str]] = {}  # what -> (version, evidence)
    for name, version in packages:
        public, _, _ = version.partition("+")
        local = _LOCAL_CUDA.search(version)
        if local and name in ("torch", "torchvision", "torchaudio"):
            digits = local.group(1)
            found.setdefault("cuda", (f"{digits[:-1]}.{digits[-1]}", f"{name} {version}"))
        elif name in _TOOLKIT or _RUNTIME.match(name):
            found["cuda"] = (".".join(public.split(".")[:2]), f"{name} {version}")
        elif _CUDNN.match(name):
            found["cudnn"] = (public, f"{name} {version}")
        elif _NCCL.match(name):
            found["nccl"] = (public, f"{name} {version}")
    if "cuda" not in found:
        return Accelerator("cpu")
    cuda = found["cuda"][0]
    return Accelerator("cuda", cuda, minimum_driver(cuda),
                       found.get("cudnn", (None, ""))[0], found.get("nccl", (None, ""))[0],
                       tuple(sorted(evidence for _, evidence in found.values())))


#: built together, for one CUDA (or CPU): their local version labels must agree
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")


def torch_family_problem(packages: Iterable[tuple[str, str]]) -> str | None:
    """Why the locked torch family mixes builds (``torch 2.6.0+cu126`` beside
    ``torchvision 0.21.0+cpu``, or beside PyPI's ``0.21.0``, which is another CUDA's
    build), or None."""
    labels = {name: version.partition("+")[2] or "(none)" for name, version in packages
              if name in TORCH_FAMILY}
    if len(set(labels.values())) <= 1:
        return None
    shown = ", ".join(f"{name} +{label}" if label != "(none)" else f"{name} (no local label)"
                      for name, label in sorted(labels.items()))
    return (f"the torch family is locked from different builds ({shown}): their binaries "
            "are built together for one CUDA and do not load across builds")


_PLAIN = re.compile(r"\d+\.\d+(?:\.\d+)?")


def base_cuda(env: Mapping[str, str]) -> str | None:
    """The CUDA toolkit a base image says it carries (``CUDA_VERSION``, as NVIDIA's
    images set it); only a plain version counts: the base is an input like any other."""
    value = env.get("CUDA_VERSION", "")
    return value if _PLAIN.fullmatch(value) else None


def with_base(found: Accelerator, toolkit: str | None) -> tuple[Accelerator, str | None]:
    """``found`` (from the wheels) with the base's CUDA toolkit; and a warning when the
    two CUDA majors differ. A CPU-only set of wheels on a CUDA base takes the base's."""
    if toolkit is None:
        return found, None
    minor = ".".join(toolkit.split(".")[:2])
    if found.kind != "cuda" or found.cuda is None:
        return Accelerator("cuda", minor, minimum_driver(minor),
                           evidence=(f"base CUDA_VERSION {toolkit}",), base_cuda=toolkit), None
    drivers = [d for d in (found.min_driver, minimum_driver(minor)) if d]
    merged = dataclasses.replace(found, base_cuda=toolkit,
                                 min_driver=max(drivers, key=_numbers) if drivers else None)
    if found.cuda.split(".")[0] == minor.split(".")[0]:
        return merged, None
    return merged, (f"the locked wheels are built for CUDA {found.cuda}, but the base image "
                    f"carries the CUDA {toolkit} toolkit: pick a base with CUDA "
                    f"{found.cuda.split('.')[0]}.x, or wheels for CUDA {minor.split('.')[0]}.x "
                    "(the driver must run both)")


def driver_problem(driver: str, accelerator: Accelerator) -> str | None:
    """Why the host's ``driver`` cannot run the lock's CUDA, or None."""
    if accelerator.kind != "cuda" or accelerator.min_driver is None:
        return None
    if _numbers(driver) >= _numbers(accelerator.min_driver):
        return None
    return (f"the NVIDIA driver here is {driver}, and the locked wheels need CUDA "
            f"{accelerator.cuda}, which needs driver {accelerator.min_driver} or newer")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


__all__ = ["TORCH_FAMILY", "base_cuda", "cuda_of_packages", "driver_problem", "minimum_driver",
           "torch_family_problem", "with_base"]

"""The host's NVIDIA driver and GPUs, read before a GPU run starts anything: through NVML
(the official ``nvidia-ml-py`` binding, when installed) or ``nvidia-smi``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from reprolock._internal.proc import run
from reprolock.errors import ToolError


@dataclass(frozen=True)
class HostGpus:
    driver: str  # e.g. 580.65.06
    gpus: tuple[tuple[str, str], ...]  # (model, compute capability) per device
    source: str  # nvml or nvidia-smi

    def to_json(self) -> dict[str, object]:
        return {"driver": self.driver, "source": self.source,
                "gpus": [{"model": m, "computeCapability": c} for m, c in self.gpus]}


def host_gpus() -> HostGpus | None:
    """The driver and devices here; None when there is no NVIDIA driver."""
    found = _nvml()
    return found if found is not None else _nvidia_smi()


def _nvml() -> HostGpus | None:
    try:
        import pynvml  # type: ignore[import-not-found]  # nvidia-ml-py, optional
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound and kin: no driver loaded
        return None
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            devices.append((_text(pynvml.nvmlDeviceGetName(handle)), f"{major}.{minor}"))
        return HostGpus(driver, tuple(devices), "nvml")
    finally:
        pynvml.nvmlShutdown()


def _nvidia_smi() -> HostGpus | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = run([binary, "--query-gpu=driver_version,name,compute_cap",
                    "--format=csv,noheader"], what="nvidia-smi")
    except ToolError:
        return None  # installed, but no driver answers: as good as none
    rows = [[cell.strip() for cell in line.split(",")]
            for line in done.stdout.splitlines() if line.strip()]
    rows = [row for row in rows if len(row) == 3]
    if not rows:
        return None
    return HostGpus(rows[0][0], tuple((row[1], row[2]) for row in rows), "nvidia-smi")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["HostGpus", "host_gpus"]

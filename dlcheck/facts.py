"""Everything `dlcheck check` judges, collected once: the typed record the checks read.

The checks (dlcheck/checks/) are pure functions of a Facts: no NVML, no subprocess, no
environment lookups. So every broken machine can be described as a Facts and tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlcheck import frameworks, gpu, system


@dataclass(frozen=True)
class Facts:
    host: str
    system: system.SystemFacts
    kernel: system.KernelFacts
    env: system.Environment
    gpu: gpu.GpuInventory
    frameworks: dict[str, frameworks.ProbeResult] | None  # None: not probed (--no-frameworks)
    frameworks_skipped: str | None = None  # why the probes were not run, if they were wanted

    @property
    def usable_gpus(self) -> list[gpu.GpuRecord]:
        return self.gpu.usable

    @property
    def has_gpu_hardware(self) -> bool:
        """Any sign of an NVIDIA GPU: a PCI function, the kernel module, a device node, NVML."""
        return bool(
            self.kernel.pci_gpus
            or self.kernel.nvidia_module_loaded
            or self.kernel.device_nodes.nvidiactl
            or self.gpu.gpus
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": {"hostname": self.host},
            "system": self.system,
            "kernel": self.kernel,
            "driver": self.gpu.driver,
            "nvml": self.gpu.nvml,
            "gpus": self.gpu.gpus,
            "frameworks": self.frameworks,
        }


def collect(
    *,
    probe_frameworks: bool,
    probe_timeout: float,
    show_ids: bool = False,
    roots: system.Roots | None = None,
    on_probing: Callable[[], None] | None = None,
) -> Facts:
    """Host, kernel, NVML and (unless told not to) the framework probes.

    The probes start first and run while NVML is read. When NVML does not respond, the probes
    are stopped: CUDA would hang in the same driver, and the diagnosis must not wait for them.
    """
    from dlcheck import children

    host_facts = system.collect(roots)
    kernel = system.kernel_side(roots)
    env = system.environment()
    if not probe_frameworks:
        return Facts(system.hostname(), host_facts, kernel, env, gpu.collect(show_ids), None)
    if on_probing is not None:
        on_probing()
    with children.scratch("probe") as scratch:
        probes = frameworks.start_probes(scratch)
        inventory = gpu.collect(show_ids)
        if inventory.nvml.error == "not_responding":
            frameworks.stop_probes(probes)
            return Facts(system.hostname(), host_facts, kernel, env, inventory, None,
                         "NVML does not respond; CUDA in the framework probes would hang on "
                         "the same driver")  # fmt: skip
        results = frameworks.wait_probes(probes, probe_timeout)
    return Facts(system.hostname(), host_facts, kernel, env, inventory, results)

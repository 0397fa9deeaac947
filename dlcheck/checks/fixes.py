"""Install commands that follow the driver and the GPU, for this interpreter.

A fix must not lead to the next FAIL: on a GPU machine, the PyTorch wheel named is one whose
kernels cover every GPU's compute capability and whose CUDA this driver can run (compat.json);
where none can, the fix says to upgrade the driver first, or that no current wheel exists.
"""

from __future__ import annotations

from dlcheck import compat
from dlcheck.facts import Facts
from dlcheck.frameworks import REGISTRY


def pip(facts: Facts) -> str:
    return f"{facts.system.python_executable} -m pip"


def install(name: str, facts: Facts, gpu: bool) -> str:
    """The command that installs framework `name` right for this machine."""
    if not gpu:
        return f"{pip(facts)} install {REGISTRY[name].cpu_install}"
    if name == "torch":
        return torch_gpu(facts)
    if name == "tensorflow":
        return tensorflow_gpu(facts)
    if name == "jax":
        return _after_driver(facts, "525.60.13", f"{pip(facts)} install 'jax[cuda12]'")
    return f"{pip(facts)} install {REGISTRY[name].cpu_install}"


def torch_gpu(facts: Facts) -> str:
    capabilities = sorted({g["compute_cap"] for g in facts.usable_gpus if g["compute_cap"]})
    wheels = compat.torch_wheels_covering(capabilities)
    if not wheels:
        return (
            f"No current PyTorch wheel supports compute capability {', '.join(capabilities)}: "
            "install an older PyTorch release built for it "
            "(https://pytorch.org/get-started/previous-versions/)"
        )
    driver = facts.gpu.driver.version
    # Best: a wheel whose CUDA release this driver shipped with (no minor-version-compatibility
    # caveats); else one it runs through minor-version compatibility; else upgrade first.
    clean = [w for w in wheels if driver is None or compat.driver_meets(driver, w["cuda"], True)]
    runnable = clean or [w for w in wheels if compat.driver_meets(driver, w["cuda"])]
    wheel = (runnable or wheels)[0]
    command = f"{pip(facts)} install --force-reinstall torch --index-url {wheel['index_url']}"
    if runnable:
        return command
    needed = compat.min_driver_for_cuda(wheel["cuda"])["family_min"]
    return _upgrade_first(driver, needed, command)


def tensorflow_gpu(facts: Facts) -> str:
    tested = compat.data()["tensorflow_tested"]
    command = (
        f"{pip(facts)} uninstall -y tensorflow-cpu; "
        + tested["install_cuda"].replace("pip", pip(facts), 1)
    )
    return _after_driver(facts, tested["min_driver"], command)


def _after_driver(facts: Facts, needed: str, command: str) -> str:
    driver = facts.gpu.driver.version
    if driver and compat.version_tuple(driver) < compat.version_tuple(needed):
        return _upgrade_first(driver, needed, command)
    return command


def _upgrade_first(driver: str | None, needed: str, command: str) -> str:
    return (
        f"Upgrade the NVIDIA driver first (have {driver or 'none'}, need >= {needed}: "
        f"ansible-playbook playbooks/driver.yml, or your distribution's driver), then: {command}"
    )

"""The running JupyterLab starts a kernel (REST API, password login) that computes."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.jupyter


def run(kernel, code):
    outcome = kernel.execute(code, timeout=180)
    assert outcome.ok, f"kernel {kernel.name} raised {outcome.error}\n{outcome.traceback}"
    return outcome


def test_kernel_runs_code(kernel, record_property):
    outcome = run(kernel, "import sys\nprint(sum(range(10)))\nprint(sys.executable)")
    total, executable = outcome.stdout.split()
    assert total == "45"
    # Which kernel answered, for the reports (verify.yml asks for the registered one).
    record_property("kernel", kernel.name)
    record_property("kernel_python", executable)


def test_kernel_errors_come_back(kernel):
    outcome = kernel.execute("1 / 0")
    assert outcome.error == "ZeroDivisionError: division by zero"


def test_kernel_has_the_frameworks(kernel, frameworks):
    code = (
        "import importlib, json\n"
        f"names = {frameworks!r}\n"
        "found = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        found[n] = importlib.import_module(n).__version__\n"
        "    except Exception as e:\n"
        "        found[n] = None\n"
        "print(json.dumps(found))"
    )
    found = json.loads(run(kernel, code).stdout)
    missing = [name for name, version in found.items() if not version]
    assert not missing, f"kernel {kernel.name} cannot import {missing}"


@pytest.mark.gpu
def test_kernel_computes_on_the_gpu(kernel, gpu_count):
    code = (
        "import json, torch\n"
        "a = torch.randn(512, 512)\n"
        "torch.backends.cuda.matmul.allow_tf32 = False\n"
        "got = (a.cuda() @ a.cuda()).cpu()\n"
        "print(json.dumps({'count': torch.cuda.device_count(),\n"
        "                  'name': torch.cuda.get_device_name(0),\n"
        "                  'close': bool(torch.allclose(got, a @ a, rtol=1e-3, atol=1e-3))}))"
    )
    report = json.loads(run(kernel, code).stdout)
    assert report["count"] == gpu_count, "the Jupyter kernel sees fewer GPUs (PrivateDevices=?)"
    assert report["close"], f"GPU matmul in the kernel differs from CPU on {report['name']}"

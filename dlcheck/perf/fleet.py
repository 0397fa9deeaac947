"""Turn a `dlcheck perf --json` report into what other views need: one fleet-table cell,
and each GPU's measured throughput (for the IMDB bench to print next to its epoch time).

Input is untrusted (a file fetched from a host): anything malformed gives a cell
that says so, never an exception.
"""

from __future__ import annotations

from typing import Any

# The matmul shown as "the" GPU throughput: the dtype training uses most, if measured.
HEADLINE_ORDER = ("matmul_bf16", "matmul_fp16", "matmul_tf32", "matmul_fp32")


def gpu_throughput(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per GPU: index, name, status, headline matmul, memory GB/s, likely cause.

    [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "status": "PASS",
      "matmul": {"test": "matmul_bf16", "tflops": 741.9, "of_expected": 0.99},
      "memory_gbps": 2810.4, "likely_cause": None}, ...]
    """
    data = _data(report)
    if data is None:
        return []
    rows = []
    for gpu in data.get("gpus") or []:
        if not isinstance(gpu, dict):
            continue
        tests = {t.get("name"): t for t in gpu.get("tests") or [] if isinstance(t, dict)}
        matmul = next((tests[n] for n in HEADLINE_ORDER if _measured(tests.get(n))), None)
        memory = tests.get("memory_copy")
        cause = next((c for c in gpu.get("causes") or []
                      if isinstance(c, dict) and c.get("status") == "WARN"), None)  # fmt: skip
        rows.append({
            "index": gpu.get("index"),
            "name": gpu.get("name"),
            "status": gpu.get("status"),
            "matmul": None if matmul is None else {
                "test": matmul["name"],
                "tflops": matmul["measured"],
                "of_expected": matmul.get("of_expected"),
            },
            "memory_gbps": memory.get("measured") if _measured(memory) else None,
            "likely_cause": cause.get("code") if cause else None,
        })  # fmt: skip
    return rows


def fleet_summary(report: dict[str, Any]) -> dict[str, Any]:
    """{"status", "cell", "gpus", "cpu"}: `cell` is one line for a fleet table's perf column.

    PASS: 2 GPUs, bf16 742/738 TFLOP/s
    FAIL: GPU 1 matmul_bf16 at 41% of expected (power_limit_lowered); 1 more slow
    CPU only: FP32 GEMM 195 GFLOP/s (118% of computed peak)
    """
    data = _data(report)
    if data is None:
        return {"status": None, "cell": "perf: unreadable report", "gpus": [], "cpu": None}
    gpus = gpu_throughput(report)
    cpu = _cpu(data.get("cpu"))
    status = data.get("status") if data.get("status") in ("PASS", "WARN", "FAIL") else None
    slow = [g for g in gpus if g["status"] in ("WARN", "FAIL")]
    if slow:
        first = min(slow, key=lambda g: (g["status"] != "FAIL", g["index"] or 0))
        cell = f"{first['status']}: GPU {first['index']} {_shortfall(first, data)}"
        if first["likely_cause"]:
            cell += f" ({first['likely_cause']})"
        if len(slow) > 1:
            cell += f"; {len(slow) - 1} more slow"
    elif gpus:
        rates = [g["matmul"] for g in gpus if g["matmul"]]
        dtype = rates[0]["test"].removeprefix("matmul_") if rates else None
        same = rates and all(r["test"] == rates[0]["test"] for r in rates)
        shown = "/".join(f"{r['tflops']:.0f}" for r in rates) if same else None
        cell = f"{status or 'PASS'}: {len(gpus)} GPU{'s' if len(gpus) != 1 else ''}"
        if shown:
            cell += f", {dtype} {shown} TFLOP/s"
    elif cpu and cpu.get("gemm_gflops") is not None:
        share = f" ({cpu['of_peak']:.0%} of computed peak)" if cpu.get("of_peak") else ""
        cell = f"CPU only: FP32 GEMM {cpu['gemm_gflops']:.0f} GFLOP/s{share}"
    else:
        cell = "perf: nothing measured"
    return {"status": status, "cell": cell, "gpus": gpus, "cpu": cpu}


def _shortfall(gpu: dict[str, Any], data: dict[str, Any]) -> str:
    """The worst test of that GPU as 'matmul_bf16 at 41% of expected'."""
    record = next((g for g in data.get("gpus") or [] if g.get("index") == gpu["index"]), {})
    tests = [t for t in record.get("tests") or [] if isinstance(t, dict)
             and t.get("status") in ("WARN", "FAIL")]  # fmt: skip
    if not tests:
        return str(record.get("message") or "slow")[:80]
    worst = min(tests, key=lambda t: (t.get("status") != "FAIL", t.get("of_expected") or 0))
    if isinstance(worst.get("of_expected"), (int, float)):
        return f"{worst['name']} at {worst['of_expected']:.0%} of expected"
    return f"{worst['name']}: {str(worst.get('message') or '')[:60]}"


def _cpu(cpu: Any) -> dict[str, Any] | None:
    if not isinstance(cpu, dict):
        return None
    gemms = [t for t in cpu.get("tests") or [] if isinstance(t, dict)
             and str(t.get("name", "")).startswith("gemm_fp32") and _measured(t)]  # fmt: skip
    best = max(gemms, key=lambda t: t["measured"], default=None)
    return {
        "status": cpu.get("status"),
        "gemm_gflops": best["measured"] if best else None,
        "of_peak": best.get("of_peak") if best else None,
    }


def _data(report: Any) -> dict[str, Any] | None:
    """The data part of an envelope ({"command": "perf", "data": ...}) or a bare data dict."""
    if not isinstance(report, dict):
        return None
    if "data" in report and isinstance(report["data"], dict):
        if report.get("command") not in (None, "perf"):
            return None
        report = report["data"]
    return report if isinstance(report.get("gpus"), list) else None


def _measured(test: Any) -> bool:
    return isinstance(test, dict) and isinstance(test.get("measured"), (int, float))

"""Facts (the record `dlcheck check` judges) for a faked machine: fake /proc and /sys trees,
the fake NVML, and framework probe documents, through the real collectors."""

from __future__ import annotations

from typing import Any

from dlcheck import children, facts, frameworks, gpu, system


def probe_results(documents: dict[str, Any]) -> dict[str, frameworks.ProbeResult]:
    """Probe documents as if each child had printed it (validated like the real ones)."""
    results = {}
    for name, doc in documents.items():
        ended = children.ChildResult("ok", 0, 0.1, "", None, {"installed": True, **doc}, None)
        results[name] = frameworks.ProbeResult.from_child(name, ended)
    return results


def make_facts(roots: system.Roots, fw: dict[str, Any] | None = None,
               environ: dict[str, str] | None = None) -> facts.Facts:  # fmt: skip
    """Facts of the machine `roots` describes, NVML as the installed fake says."""
    return facts.Facts(
        host="testhost",
        system=system.collect(roots, environ),
        kernel=system.kernel_side(roots, environ),
        env=system.environment(environ),
        gpu=gpu.collect(),
        frameworks=None if fw is None else probe_results(fw),
    )

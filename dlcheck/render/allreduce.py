"""The human view of `dlcheck allreduce`, laid out like nccl-tests' table."""

from __future__ import annotations

from dlcheck.allreduce import AllreduceResult
from dlcheck.models import Report
from dlcheck.render import Output


def render(report: Report, out: Output) -> None:
    result: AllreduceResult = report.data
    lines = [f"all_reduce SUM float32, backend {result.backend}, {result.ranks} ranks"]
    if result.median_time_us is not None:
        lines.append(
            f"{'size(B)':>12} {'count':>10} {'time(us)':>10} {'algbw(GB/s)':>12} "
            f"{'busbw(GB/s)':>12} {'#wrong':>7}"
        )
        lines.append(
            f"{result.size_bytes:>12} {result.elements:>10} {result.median_time_us:>10.1f} "
            f"{result.algbw_gbps:>12.2f} {result.busbw_gbps:>12.2f} {result.wrong_elements:>7}"
        )
        lines += [f"  {device}" for device in result.devices]
    lines.append(f"{result.status}{': ' + result.reason if result.reason else ''}")
    out.write("\n".join(lines) + "\n")

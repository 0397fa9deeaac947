"""The human view of `dlcheck allreduce`, laid out like nccl-tests' table, then each node pair."""

from __future__ import annotations

from dlcheck.allreduce import AllreduceResult
from dlcheck.models import Report
from dlcheck.render import Output


def render(report: Report, out: Output) -> None:
    result: AllreduceResult = report.data
    if result.nnodes > 1 and not result.nodes:  # the nodes never met: only this one is known
        ranks = f"{result.ranks} rank(s) on node {result.node_rank} of {result.nnodes}"
    else:
        ranks = f"{result.ranks} ranks" + (f" on {result.nnodes} nodes" if result.nnodes > 1
                                           else "")  # fmt: skip
    lines = [f"all_reduce SUM float32, backend {result.backend}, {ranks}"]
    for node in result.nodes if result.nnodes > 1 else ():
        link = f"{node.link_speed_mbps} Mb/s" if node.link_speed_mbps else "speed unknown"
        lines.append(f"  node {node.node_rank}: {node.hostname}, {node.ranks} rank(s), "
                     f"{node.address or '?'} on {node.interface or '?'} ({link})")
    if result.median_time_us is not None:
        lines.append(
            f"{'group':>12} {'size(B)':>12} {'count':>10} {'time(us)':>10} "
            f"{'algbw(GB/s)':>12} {'busbw(GB/s)':>12} {'#wrong':>7}"
        )
        lines.append(
            f"{'all':>12} {result.size_bytes:>12} {result.elements:>10} "
            f"{result.median_time_us:>10.1f} {result.algbw_gbps:>12.2f} "
            f"{result.busbw_gbps:>12.2f} {result.wrong_elements:>7}"
        )
        for pair in result.pairs:
            label = f"{pair.nodes[0]}+{pair.nodes[1]}"
            lines.append(
                f"{label:>12} {result.size_bytes:>12} {result.elements:>10} "
                f"{pair.median_time_us:>10.1f} {pair.algbw_gbps:>12.2f} "
                f"{pair.busbw_gbps:>12.2f} {pair.wrong_elements:>7}"
            )
        if result.nnodes == 1:
            lines += [f"  {device}" for device in result.devices]
    lines.append(f"{result.status}{': ' + result.reason if result.reason else ''}")
    out.write("\n".join(lines) + "\n")
    if result.fix:
        out.fixes([(result.slow_node or "all-reduce", result.fix)])

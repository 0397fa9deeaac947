"""Benchmark: a verified rerun of site.yml, this tree against another git revision (default main).

    .venv/bin/python -m tests.playbooks.rerun_benchmark [--baseline main] [--runs 3]

Boots two fresh Debian 12 hosts, converges one with the baseline's playbooks and one with this
tree's (at the same time, same variables as the CI converge), then reruns each in turn, `--runs`
times, alternating, so both see the same machine load. Prints every rerun's seconds and recap,
the medians and their ratio. Needs root, the nspawn tools and network, like the converge test;
about 12 minutes on a 2-core machine. Not a test: numbers for docs/playbooks.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.hosts import nspawn
from tests.playbooks.ansible_runner import RECAP, REPO, ansible_env, tool
from tests.playbooks.test_converge import LOCAL_WHEELS, ci_vars


def playbook(tree: Path, inventory: Path, *args: str) -> tuple[float, dict]:
    started = time.monotonic()
    result = subprocess.run(
        [tool("ansible-playbook"), str(tree / "playbooks/site.yml"), "-i", str(inventory), *args],
        cwd=tree,
        env=ansible_env(ANSIBLE_CONFIG=str(tree / "ansible.cfg")),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.monotonic() - started
    recap = {
        m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        for m in RECAP.finditer(result.stdout)
    }
    if result.returncode != 0:
        raise SystemExit(f"site.yml failed in {tree}:\n{result.stdout[-3000:]}")
    return seconds, recap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=3, help="reruns of each (alternating)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rerun-bench-", dir="/var/tmp"))
    baseline = work / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(baseline), options.baseline],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    trees = {"baseline": baseline, "this tree": REPO}
    binds = {str(LOCAL_WHEELS): "/srv/wheelhouse/cp311"} if LOCAL_WHEELS.is_dir() else {}
    try:
        with nspawn.boot_hosts(2, prefix="rb", binds_ro=binds) as hosts:
            inventories = {}
            for (label, tree), host in zip(trees.items(), hosts, strict=True):
                reports = work / f"reports-{host.name}"
                settings = ci_vars(reports, secrets.token_urlsafe(12))
                settings["dlcheck_source_dir"] = str(tree)
                path = work / f"{host.name}.yml"
                inventories[label] = nspawn.write_inventory([host], path, host_vars=settings)
            print("converging both hosts (at once)...", flush=True)
            procs = {
                label: subprocess.Popen(
                    [
                        tool("ansible-playbook"),
                        str(tree / "playbooks/site.yml"),
                        "-i",
                        str(inventories[label]),
                    ],
                    cwd=tree,
                    env=ansible_env(ANSIBLE_CONFIG=str(tree / "ansible.cfg")),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for label, tree in trees.items()
            }
            if any(proc.wait() != 0 for proc in procs.values()):
                raise SystemExit("a converge failed; rerun it by hand to see why")
            seconds: dict[str, list[float]] = {label: [] for label in trees}
            for run in range(1, options.runs + 1):
                for label, tree in trees.items():
                    took, recap = playbook(tree, inventories[label])
                    seconds[label].append(took)
                    (counts,) = recap.values()
                    line = f"run {run} {label:10s} {took:6.1f} s  changed={counts['changed']}"
                    print(line, flush=True)
            medians = {label: statistics.median(values) for label, values in seconds.items()}
            print(json.dumps({"seconds": seconds, "median_s": medians}, indent=1))
            old, new = medians["baseline"], medians["this tree"]
            label = f"median rerun: {options.baseline} {old:.1f} s, this tree {new:.1f} s"
            print(f"{label} ({old / new:.2f}x)")
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, capture_output=True
        )


if __name__ == "__main__":
    main()

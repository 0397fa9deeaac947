"""`dlcheck perf`: is every GPU (and the CPU) as fast as its datasheet says, and if not, why?

runner.run(PerfOptions) -> PerfResult measures in child processes and judges (verdicts.py)
against the datasheet table (skus.json, via skus.py) or the CPU's computed peak (cpu.py);
fleet.py turns a --json report into a fleet cell and per-GPU throughput. docs/perf.md.
"""

"""What changed on each host between two runs: state, checks, GPUs, versions, speed.

A change is only reported where both runs hold the fact: a host that was unreachable in one
run shows its state transition, not every GPU "lost" and every framework "removed".

Speed, "beyond noise", from the reports themselves:
- benchmark (bench.json): each (implementation, device) row carries its timed epochs. A row is
  slower when every epoch of the new run took longer than every epoch of the old one (the two
  ranges do not overlap) AND its median epoch is at least MIN_CHANGE slower. The epochs of one
  run are repeats of the same work, so their range is that host's noise at that moment; the
  floor covers what moves between runs and not within one (clocks, other load).
- perf (perf.json): each test carries the low/high of its timed repeats; slower when the new
  high is below the old low, and the median at least MIN_CHANGE lower.
- a row or test without a recorded range falls back to NO_RANGE_CHANGE on the medians.
- a benchmark that dlcheck bench itself flagged as run on a busy machine (load average over
  half the cores) is not judged: on a shared machine the medians of three runs were 2.4x
  apart (docs/fleet.md), which says nothing about the host's hardware.
Faster by the same rules is reported too, as "better".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlcheck.fleet.hosts import STATES, HostRow

MIN_CHANGE = 0.10  # 10 %: see docs/fleet.md for the run-to-run spread measured on one host
NO_RANGE_CHANGE = 0.25
_STATUS_RANK = {"PASS": 0, "INFO": 0, "SKIP": 0, "WARN": 1, "FAIL": 2}
WORSE, BETTER, CHANGED = "worse", "better", "changed"


@dataclass(frozen=True)
class Change:
    host: str
    kind: str  # host | state | check | gpu | driver | cuda | framework | smoke | bench | perf
    subject: str  # which one: a check code, a GPU id, a framework, "torch on cpu"
    before: str | None  # None: absent then
    after: str | None  # None: absent now
    effect: str  # worse | better | changed
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def line(self) -> str:
        """One line for a person: 'framework torch: 2.13.0 -> not installed'."""
        text = f"{self.kind} {self.subject}: {self.before or '-'} -> {self.after or '-'}"
        return f"{text} ({self.detail})" if self.detail else text


def compare(before: list[HostRow], after: list[HostRow]) -> list[Change]:
    """Every change between two runs' rows, host by host (sorted), most serious kind first."""
    old = {row.host: row for row in before}
    new = {row.host: row for row in after}
    changes: list[Change] = []
    for host in sorted(old.keys() | new.keys()):
        if host not in old:
            changes.append(Change(host, "host", "inventory", None, new[host].state, CHANGED,
                                  "new in this run"))  # fmt: skip
        elif host not in new:
            changes.append(Change(host, "host", "inventory", old[host].state, None, CHANGED,
                                  "not in this run"))  # fmt: skip
        else:
            changes.extend(host_changes(old[host], new[host]))
    return changes


def host_changes(old: HostRow, new: HostRow) -> list[Change]:
    host, found = new.host, []
    if old.state != new.state:
        found.append(Change(host, "state", "state", old.state, new.state,
                            _ranked(STATES.index(old.state), STATES.index(new.state))))  # fmt: skip
    if old.verdict is not None and new.verdict is not None:  # both runs have dlcheck's report
        found += _checks(host, old, new)
        found += _gpus(host, old, new)
        for kind in ("driver", "cuda"):
            before, after = getattr(old, kind), getattr(new, kind)
            if before != after:
                found.append(Change(host, kind, kind, before, after, CHANGED))
        found += _frameworks(host, old.versions or {}, new.versions or {})
    if old.smoke and new.smoke:
        for test in sorted(set(new.smoke_failed) - set(old.smoke_failed)):
            found.append(Change(host, "smoke", test, "passed", "failed", WORSE))
        for test in sorted(set(old.smoke_failed) - set(new.smoke_failed)):
            found.append(Change(host, "smoke", test, "failed", "passed", BETTER))
    if old.bench and new.bench and not (old.bench_busy or new.bench_busy):
        found += _bench(host, old.bench, new.bench)
    if old.perf_tests and new.perf_tests:
        found += _perf(host, old.perf_tests, new.perf_tests)
    return found


def _ranked(before: int, after: int) -> str:
    return WORSE if after > before else BETTER if after < before else CHANGED


def _checks(host: str, old: HostRow, new: HostRow) -> list[Change]:
    """Checks whose status moved; a check absent in one run counts as PASS there (a new
    dlcheck may add passing checks: not news)."""
    before = {c["code"]: c["status"] for c in old.checks}
    after = {c["code"]: c for c in new.checks}
    found = []
    for code in sorted(before.keys() | after.keys()):
        was = before.get(code, "PASS")
        now = after[code]["status"] if code in after else "PASS"
        if was == now:
            continue
        effect = _ranked(_STATUS_RANK[was], _STATUS_RANK[now])
        detail = after[code]["message"] if code in after and now != "PASS" else (
            "appeared" if code not in before else "cleared")  # fmt: skip
        found.append(Change(host, "check", code, was if code in before else None,
                            now if code in after else None, effect, detail))  # fmt: skip
    return found


def _gpus(host: str, old: HostRow, new: HostRow) -> list[Change]:
    before = {g["id"]: g for g in old.gpu_list}
    after = {g["id"]: g for g in new.gpu_list}
    found = []
    for gpu_id in sorted(before.keys() - after.keys()):
        gpu = before[gpu_id]
        found.append(Change(host, "gpu", gpu_id, f"{gpu['name']} (index {gpu['index']})", None,
                            WORSE, "lost"))  # fmt: skip
    for gpu_id in sorted(after.keys() - before.keys()):
        gpu = after[gpu_id]
        found.append(Change(host, "gpu", gpu_id, None, f"{gpu['name']} (index {gpu['index']})",
                            CHANGED, "added"))  # fmt: skip
    return found


def _frameworks(host: str, old: dict[str, str | None], new: dict[str, str | None]
                ) -> list[Change]:  # fmt: skip
    found = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        effect = WORSE if now is None else BETTER if was is None else CHANGED
        detail = "removed" if now is None else "installed" if was is None else "version"
        found.append(Change(host, "framework", name, was or "not installed",
                            now or "not installed", effect, detail))  # fmt: skip
    return found


def _bench(host: str, old: list[dict], new: list[dict]) -> list[Change]:
    before = {(r["impl"], r["device"]): r for r in old}
    found = []
    for row in new:
        key = (row["impl"], row["device"])
        was = before.get(key)
        if was is None or was["median_epoch_s"] is None:
            continue
        subject = f"{key[0]} on {key[1]}"
        if row["median_epoch_s"] is None:
            found.append(Change(host, "bench", subject, f"{was['median_epoch_s']:.3g} s/epoch",
                                "no result", WORSE, row["error"] or "the row failed"))  # fmt: skip
            continue
        # Seconds: lower is better, so "slower" is the new range above the old one.
        verdict = _beyond_noise(was["median_epoch_s"], row["median_epoch_s"],
                                (was["min_epoch_s"], was["max_epoch_s"]),
                                (row["min_epoch_s"], row["max_epoch_s"]), higher_is_better=False)
        if verdict:
            effect, detail = verdict
            found.append(Change(host, "bench", subject, f"{was['median_epoch_s']:.3g} s/epoch",
                                f"{row['median_epoch_s']:.3g} s/epoch", effect, detail))
    return found


def _perf(host: str, old: list[dict], new: list[dict]) -> list[Change]:
    before = {(t["device"], t["test"]): t for t in old}
    found = []
    for test in new:
        was = before.get((test["device"], test["test"]))
        if was is None:
            continue
        verdict = _beyond_noise(was["measured"], test["measured"], (was["low"], was["high"]),
                                (test["low"], test["high"]), higher_is_better=True)
        if verdict:
            effect, detail = verdict
            unit = test["unit"]
            found.append(Change(host, "perf", f"{test['device']} {test['test']}",
                                f"{was['measured']:.4g} {unit}", f"{test['measured']:.4g} {unit}",
                                effect, detail))  # fmt: skip
    return found


def _beyond_noise(old: float, new: float, old_range: tuple, new_range: tuple,
                  higher_is_better: bool) -> tuple[str, str] | None:  # fmt: skip
    """(effect, why) when `new` differs from `old` beyond noise (module docstring), else None."""
    if old <= 0 or new <= 0:
        return None
    ratio = new / old
    ranged = all(isinstance(v, (int, float)) for v in (*old_range, *new_range))
    floor = MIN_CHANGE if ranged else NO_RANGE_CHANGE
    if abs(ratio - 1) < floor:
        return None
    went_up = ratio > 1
    if ranged:
        apart = new_range[0] > old_range[1] if went_up else new_range[1] < old_range[0]
        if not apart:
            return None
        why = (f"{ratio - 1:+.0%}; range {_span(new_range)} vs {_span(old_range)} before: "
               "no overlap")  # fmt: skip
    else:
        why = f"{ratio - 1:+.0%}; no spread recorded, over the {floor:.0%} floor"
    effect = BETTER if went_up == higher_is_better else WORSE
    return effect, why


def _span(values: tuple) -> str:
    return f"{values[0]:.3g}-{values[1]:.3g}"

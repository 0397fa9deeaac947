"""The CPU's computed peak from recorded /proc/cpuinfo text and sysfs trees."""

import pytest

from dlcheck.perf import cpu


def cpuinfo(model, vendor, family, number, flags, mhz, cores, threads_per_core=1, key="flags"):
    """/proc/cpuinfo for one package: `cores` cores x `threads_per_core` logical CPUs."""
    blocks = []
    for processor in range(cores * threads_per_core):
        blocks.append(
            "\n".join(
                [
                    f"processor\t: {processor}",
                    f"vendor_id\t: {vendor}",
                    f"cpu family\t: {family}",
                    f"model\t\t: {number}",
                    f"model name\t: {model}",
                    f"cpu MHz\t\t: {mhz}",
                    "physical id\t: 0",
                    f"core id\t\t: {processor % cores}",
                    f"{key}\t\t: {flags}",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


ZEN4_VM = cpuinfo(
    "AMD EPYC", "AuthenticAMD", 25, 17, "fpu sse2 avx avx2 fma avx512f avx512_bf16", "2596.134", 2
)  # this CI machine: KVM, no cpufreq
XEON = cpuinfo(
    "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "GenuineIntel",
    6,
    106,
    "fpu sse2 avx avx2 fma avx512f avx512dq",
    "2900.000",
    4,
    threads_per_core=2,
)
ZEN1 = cpuinfo(
    "AMD EPYC 7601 32-Core Processor", "AuthenticAMD", 23, 1, "sse2 avx avx2 fma", "1200.000", 4
)
OLD = cpuinfo("Intel(R) Core(TM)2 Duo CPU", "GenuineIntel", 6, 15, "fpu sse sse2", "2400.000", 2)


@pytest.fixture
def sysfs(tmp_path):
    """An empty /sys/devices/system/cpu (a VM without cpufreq) and cgroup root."""
    (tmp_path / "cpu" / "cpu0").mkdir(parents=True)
    (tmp_path / "cgroup").mkdir()
    return tmp_path


def facts(text, sysfs, allowed=None):
    return cpu.collect(text, allowed, sysfs=sysfs / "cpu", cgroup=sysfs / "cgroup")


def test_zen4_vm_like_this_machine(sysfs):
    f = facts(ZEN4_VM, sysfs, {0, 1})
    peak = cpu.peak(f)
    assert (f.cores, f.threads, f.frequency_mhz) == (2, 2, 2596.134)
    assert "cpu MHz" in f.frequency_source and "VM" in f.frequency_source
    # Zen 4 executes AVX-512 on 256-bit pipes: 32 FP32 FLOP/cycle, not 64.
    assert (peak.vector_isa, peak.flops_per_cycle_fp32) == ("avx512f", 32)
    assert peak.gflops_fp32 == pytest.approx(2 * 2.596134 * 32, abs=0.1)
    assert peak.gflops_fp64 == pytest.approx(peak.gflops_fp32 / 2, abs=0.1)
    assert "Zen 4" in peak.basis


def test_xeon_counts_physical_cores_and_reads_the_nominal_clock(sysfs):
    f = facts(XEON, sysfs, set(range(8)))
    peak = cpu.peak(f)
    assert (f.cores, f.threads) == (4, 8)  # SMT siblings add no FMA units
    assert f.frequency_mhz == 2900.0 and "model name" in f.frequency_source
    assert peak.flops_per_cycle_fp32 == 64 and "Silver" in peak.basis
    assert peak.gflops_fp32 == pytest.approx(4 * 2.9 * 64)


def test_cpufreq_max_wins_and_affinity_limits_cores(sysfs):
    (sysfs / "cpu" / "cpu0" / "cpufreq").mkdir()
    (sysfs / "cpu" / "cpu0" / "cpufreq" / "cpuinfo_max_freq").write_text("3200000\n")
    (sysfs / "cpu" / "cpu0" / "cpufreq" / "scaling_governor").write_text("powersave\n")
    f = facts(ZEN1, sysfs, {0, 1})  # taskset to 2 of the 4 cores
    assert (f.cores, f.frequency_mhz, f.governor) == (2, 3200.0, "powersave")
    assert "cpuinfo_max_freq" in f.frequency_source
    assert cpu.peak(f).flops_per_cycle_fp32 == 16  # Zen 1: 128-bit FMA datapaths


def test_cgroup_quota_caps_the_cores(sysfs):
    (sysfs / "cgroup" / "cpu.max").write_text("150000 100000\n")
    f = facts(XEON, sysfs, set(range(8)))
    assert f.quota_cpus == 1.5
    assert cpu.peak(f).gflops_fp32 == pytest.approx(1.5 * 2.9 * 64)
    (sysfs / "cgroup" / "cpu.max").write_text("max 100000\n")
    assert facts(XEON, sysfs, set(range(8))).quota_cpus is None


def test_old_and_unknown_cpus(sysfs):
    assert cpu.peak(facts(OLD, sysfs, {0, 1})).flops_per_cycle_fp32 == 8
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\nCPU part\t: 0xd0c\n"
    f = facts(arm, sysfs, {0})
    peak = cpu.peak(f)
    assert peak.vector_isa == "neon" and peak.gflops_fp32 is None  # no clock: no peak
    assert "no clock" in peak.basis
    assert cpu.peak(facts("", sysfs, {0})).gflops_fp32 is None

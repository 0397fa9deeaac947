"""`dlcheck` as a real process, with NVML faked at its one seam:

    python -m tests.fakes.run_dlcheck SCENARIO [dlcheck arguments...]

SCENARIO is a name in tests.fakes.nvml.SCENARIOS, or "real" for the machine's own NVML. For
tests that need the real process: signals, a closed stdout, the exit without waiting for a
thread stuck in the (fake) driver.
"""

from __future__ import annotations

import sys

from dlcheck import cli, nvml


def main() -> None:
    name, args = sys.argv[1], sys.argv[2:]
    if name != "real":
        from tests.fakes.nvml import FakePynvml, scenario

        fake = FakePynvml(scenario(name))
        nvml._import_pynvml = lambda: fake
    sys.argv = ["dlcheck", *args]
    cli.main()


if __name__ == "__main__":
    main()

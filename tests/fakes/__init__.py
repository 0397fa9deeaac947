"""Fakes for the seams that cannot be real without a GPU: NVML, the host's /proc /sys /dev, probes."""

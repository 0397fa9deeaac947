"""Fakes for the seams that cannot be real without a GPU: NVML, /proc /sys /dev, probes."""

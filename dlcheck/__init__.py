"""dlcheck: is this machine ready for deep learning on its NVIDIA GPU?"""

__version__ = "0.1.0"

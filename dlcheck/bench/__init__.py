"""`dlcheck bench`: the IMDB network of Deep Learning with Python as a CPU-vs-GPU benchmark."""

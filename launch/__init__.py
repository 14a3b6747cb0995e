"""Launching: the `asymptote` command line; local, accelerate, DeepSpeed and SLURM launchers."""

"""How many intra-op threads torch uses on the CPU, chosen so that a busy neighbour cannot stall training.

torch's CPU kernels run on an OpenMP pool whose threads meet at a barrier after every parallel
region. With as many threads as cores, one other busy process makes every region wait for the
thread it preempted: on 2 cores an iteration of the demo went from 0.89 s to 15.8 s while another
process used one core (bench/README.md, "Threads"). With half the cores, a neighbour takes the
other half and the run slows by less than 2x; alone, it loses little, because the tiny models
here spend much of a step in Python between kernels.

The choice, in order: the recipe's `resources.cpu_threads`; else the OMP_NUM_THREADS environment
variable (torchrun sets it to 1 per process); else half the cores this process may run on, divided
among the node's processes (LOCAL_WORLD_SIZE under torchrun), at least 1.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and SLURM restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def auto_threads(cores: int | None = None, local_processes: int | None = None) -> int:
    """Half the available cores, shared by the node's processes, at least 1."""
    cores = available_cores() if cores is None else cores
    if local_processes is None:
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // (2 * max(local_processes, 1)))


def choose_threads(setting: int | None, environ: dict[str, str] | None = None) -> tuple[int, str]:
    """(threads, why): the recipe's setting, else OMP_NUM_THREADS, else :func:`auto_threads`."""
    environ = os.environ if environ is None else environ
    if setting is not None:
        return setting, "resources.cpu_threads"
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        try:
            value = int(omp)
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS={omp!r} is not a whole number of threads; unset it or give e.g. 1") from None
        if value >= 1:
            return value, "OMP_NUM_THREADS"
    return auto_threads(), f"auto: half of {available_cores()} cores per process"


def set_torch_threads(setting: int | None) -> tuple[int, str]:
    """Apply :func:`choose_threads` to torch's intra-op pool; returns what was chosen and why."""
    import torch

    threads, why = choose_threads(setting)
    # torch._C's own function: once a vLLM CPU worker has started in this process, torch.set_num_threads
    # is vLLM's no-op ("CPU backend doesn't allow to use torch.set_num_threads after the thread binding");
    # the engines here never bind threads (VLLM_CPU_OMP_THREADS_BIND=nobind, rl/rollout/vllm.py)
    torch._C.set_num_threads(threads)
    return threads, why


def adopt_torch_threads() -> int:
    """Give the calling thread torch's thread count; call it first in a thread that runs torch or vLLM ops.

    OpenMP keeps its thread count per thread, and torch applies its own (set_torch_threads) to a
    thread lazily, at the thread's first torch query or parallel op. A thread whose first OpenMP
    user is a vLLM C++ op sees OpenMP's process default instead (the core count): vLLM's CPU
    attention then plans a step for 2 threads and runs it on torch's 1, and aborts ("Check failed:
    input->metadata->thread_num == thread_num (2 vs. 1)"). Asking torch for its count applies it.
    (torch.set_num_threads would not do: vLLM's CPU worker replaces it with a no-op.) The vllm engine
    calls this at the start of every generate, from whichever thread calls it."""
    import torch

    return torch.get_num_threads()

"""Where a process trains and in what number format: ``--precision``, the GPU of each
``--workers`` process, and what Accelerate holds on to between the trials of one invocation.
"""

from __future__ import annotations

import os

from lipo.errors import ConfigError

# Our names -> Accelerate's ``mixed_precision``. bf16/fp16 autocast the forward pass; the
# weights, optimiser state and loss stay in fp32.
PRECISIONS = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
LAUNCHER_ENV = "ACCELERATE_MIXED_PRECISION"  # set by `accelerate launch` (from its config)


def default_precision(cuda: bool, bf16_supported: bool) -> str:
    """bf16 on a GPU that has it (half the activation memory, the same exponent range as
    fp32: no loss scaling); fp32 elsewhere (CPU autocast to bf16 is slower than fp32)."""
    return "bf16" if cuda and bf16_supported else "fp32"


def resolve_precision(
    flag: str | None, cuda: bool, bf16_supported: bool, launcher: str | None = None
) -> str:
    """``--precision``, else what `accelerate launch` was told (bf16/fp16; its 'no' is its
    default, not a choice), else the machine's default. Combinations that would silently
    train in another format are refused: Accelerate runs fp16 on a CPU as plain fp32."""
    chosen = flag or {"bf16": "bf16", "fp16": "fp16"}.get((launcher or "").lower())
    if chosen is None:
        return default_precision(cuda, bf16_supported)
    if chosen not in PRECISIONS:
        raise ConfigError(f"--precision {chosen}: expected one of {', '.join(PRECISIONS)}")
    if chosen == "fp16" and not cuda:
        raise ConfigError(
            "--precision fp16 needs a CUDA GPU and none is visible here: use bf16 or fp32 on a CPU"
        )
    if chosen == "bf16" and cuda and not bf16_supported:
        raise ConfigError("--precision bf16: this GPU has no bfloat16 support: use fp16 or fp32")
    return chosen


def machine_precision(flag: str | None, probe_gpu: bool = True) -> str:
    """``resolve_precision`` for this machine and launcher. ``probe_gpu=False``: check the
    flag without asking the GPU for its bf16 support (which starts CUDA in this process)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and (bf16_native() if probe_gpu else True)
    return resolve_precision(flag, cuda, bf16, os.environ.get(LAUNCHER_ENV))


def bf16_native() -> bool:
    """Hardware bf16 (Ampere and later); older GPUs emulate it, slower than fp32."""
    import torch

    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.4 has no emulation flag
        return torch.cuda.is_bf16_supported()


def visible_gpus(gpus: int, visible: str | None) -> list[str]:
    """The ids of the GPUs this process sees: its own CUDA_VISIBLE_DEVICES (``visible``),
    when set, else 0 .. gpus-1."""
    ids = [i.strip() for i in (visible or "").split(",") if i.strip()] or list(
        map(str, range(gpus))
    )
    return ids[:gpus]


def worker_count(workers: int | None, per_gpu: int | None, gpus: int) -> int:
    """K: ``--workers K``, else ``--workers-per-gpu N`` times the GPUs (N workers per GPU)."""
    if per_gpu is not None and gpus <= 0:
        raise ConfigError(
            f"--workers-per-gpu {per_gpu}: no CUDA GPU is visible here; use "
            "--workers K to start K workers on the CPU"
        )
    if workers is None:
        return per_gpu * gpus if per_gpu is not None else 1
    return workers


def gpu_per_worker(
    workers: int, gpus: int, visible: str | None = None, per_gpu: int | None = None
) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each ``--workers`` process, round robin over the GPUs this
    process sees: worker i on GPU i mod G, so K workers above the GPU count share them as
    evenly as they can (`mini` and `small` use a few percent of an H100: one trial per GPU
    leaves it idle). Each worker holds its own model and CUDA context (~0.5 GB).
    ``per_gpu``: at most that many workers on one GPU. None: no GPU here, the workers train
    on the CPU."""
    if gpus <= 0:
        return [None] * workers
    ids = visible_gpus(gpus, visible)
    if per_gpu is not None and workers > per_gpu * len(ids):
        raise ConfigError(
            f"--workers {workers} with --workers-per-gpu {per_gpu}: this machine "
            f"has {len(ids)} GPU{'s' if len(ids) > 1 else ''}, room for "
            f"{per_gpu * len(ids)} workers"
        )
    return [ids[i % len(ids)] for i in range(workers)]


def worker_envs(
    base: dict[str, str],
    workers: int,
    gpus: int,
    cores: int | None = None,
    per_gpu: int | None = None,
) -> list[dict[str, str]]:
    """Each worker's environment: ``base`` with its own CUDA_VISIBLE_DEVICES and its share of
    the CPU cores as its thread count."""
    assigned = gpu_per_worker(workers, gpus, base.get("CUDA_VISIBLE_DEVICES"), per_gpu)
    base = {**base, **worker_threads(base, workers, cores)}
    return [base if gpu is None else {**base, "CUDA_VISIBLE_DEVICES": gpu} for gpu in assigned]


def placement_table(envs: list[dict[str, str]]) -> str:
    """What ``--workers`` prints before starting them: each worker's GPU and threads, and how
    many workers share each GPU."""
    gpus = [env.get("CUDA_VISIBLE_DEVICES") for env in envs]
    lines = ["worker  CUDA_VISIBLE_DEVICES  threads  workers on that GPU"]
    for i, (env, gpu) in enumerate(zip(envs, gpus)):
        shared = str(gpus.count(gpu)) if gpu is not None else "-"
        lines.append(
            f"{i:<7} {gpu if gpu is not None else '(CPU)':<21} "
            f"{env.get('OMP_NUM_THREADS', '-'):<8} {shared}"
        )
    return "\n".join(lines)


def inference_device(name: str | None = "auto"):
    """``--device``: auto (the first visible GPU, else the CPU), cpu, cuda or cuda:N. A GPU
    asked for and not there is an error, not a silent run on the CPU."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and (count == 0 or (device.index or 0) >= count):
        raise ConfigError(
            f"--device {name}: {count or 'no'} CUDA GPU{'' if count == 1 else 's'} "
            "visible here: use --device cpu (or auto)"
        )
    return device


def loader_options(device) -> dict:
    """DataLoader settings for batches bound for ``device``. On a GPU: pinned host memory (the
    copy to the GPU runs asynchronously) and two processes padding the next batches while the
    GPU computes. On the CPU none: the collate would take cores from the model itself."""
    if getattr(device, "type", device) != "cuda":
        return {}
    return {"pin_memory": True, "num_workers": 2}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def worker_threads(base: dict[str, str], workers: int, cores: int | None) -> dict[str, str]:
    """Each of K workers gets cores // K threads: torch otherwise starts one thread per core
    in every worker, and K workers on the same cores slow each other down far more than K
    times. A thread count the user set (OMP_NUM_THREADS) is kept."""
    if "OMP_NUM_THREADS" in base:
        return {}
    cores = cores or len(os.sched_getaffinity(0))
    threads = str(max(1, cores // workers))
    return {name: threads for name in THREAD_VARIABLES}


def release(accelerator) -> None:
    """Forget a finished trial's model, optimiser, scheduler and loaders. Accelerate keeps a
    reference to everything ``prepare`` returned (for ``save_state``), so without this every
    trial of an invocation stays alive until the process ends: N trials, N models and their
    AdamW moments on the GPU, and each later trial's saved state holding all of them. Call
    it once the trial's own references are gone: it collects garbage (the autocast wrapper
    makes each prepared model a reference cycle) and empties the CUDA cache."""
    accelerator.free_memory()

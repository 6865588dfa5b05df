"""Accelerate, set up once for every entry point (the launcher, ``pretrain``, the search and
the final phase): the accelerator, its teardown, rank 0's values on every rank, and quiet logs.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any


def quieten(main_process: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(
        level=logging.WARNING if main_process else logging.ERROR,
        format="%(levelname)s: %(message)s",
    )
    import transformers

    transformers.logging.set_verbosity_error()


def make_accelerator(precision: str = "fp32"):
    """Accelerate starts gloo for several CPU processes only when told cpu=True: without a
    GPU, torchrun's 2 processes would otherwise each train alone. ``precision``: one of
    ``lipo.runtime.devices.PRECISIONS``, resolved for this machine (``machine_precision``)."""
    import torch
    from accelerate import Accelerator

    from lipo.runtime.devices import PRECISIONS

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        cpu=several and not torch.cuda.is_available(), mixed_precision=PRECISIONS[precision]
    )


def close_accelerator(accelerator) -> None:
    """Every rank waits for the others before the process group goes: a rank that tore down
    gloo while rank 0 was still finishing its MLflow run aborted ("terminate called without
    an active exception") and failed a run whose work was all done."""
    accelerator.wait_for_everyone()
    accelerator.end_training()


def broadcast(accelerator, value: Any) -> Any:
    """rank 0's ``value`` on every rank (a no-op in one process)."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]

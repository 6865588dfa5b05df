"""`--max-minutes`: masked-LM training stops at a step every rank agrees on, the first
multiple of log_every past the deadline, and says it ran out of time."""

import time

from accelerate import Accelerator

from lipo.masked_lm.loop import MaskedLM, MLMSettings
from lipo.training.resume import Progress


def objective(minutes: float) -> MaskedLM:
    settings = MLMSettings(max_minutes=minutes, log_every=4)
    found = MaskedLM(
        None,
        None,
        settings,
        lambda metrics, step: None,
        "t",
        total_steps=100,
        done_steps=0,
        accelerator=Accelerator(cpu=True),
    )
    found.flush = lambda step: None  # no batches ran: nothing to log
    return found


def stops_at(found: MaskedLM) -> int | None:
    for step in range(1, 101):
        if found.after_step(Progress(step=step)):
            return step
    return None


def test_past_the_deadline_it_stops_at_the_next_log_step():
    late = objective(minutes=1e-6)
    time.sleep(0.01)
    assert stops_at(late) == 4 and late.out_of_time and late.finished(Progress(step=4))


def test_within_the_deadline_it_runs_to_the_last_step():
    on_time = objective(minutes=60)
    assert stops_at(on_time) == 100 and not on_time.out_of_time

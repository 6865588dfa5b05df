"""Every training example, every epoch: the baseline."""

from lipo.strategies.surface import Trial
from lipo.training.fit import FitResult


def train(run: Trial) -> FitResult:
    model = run.new_model()
    return run.fit(model, run.split.train)

"""Every training example, every epoch: the baseline."""
from lipo.training.fit import FitResult


def train(run) -> FitResult:
    model = run.new_model()
    return run.fit(model, run.split.train)

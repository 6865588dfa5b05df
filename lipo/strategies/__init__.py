"""Which examples, in what order. Each module has ``train(run) -> FitResult``, where ``run``
is a ``lipo.experiment.TrialRun`` that builds models and loaders and calls ``fit``."""
from lipo.registry import Registry

STRATEGIES = Registry("strategy", "lipo.strategies",
                      {"all": "all_examples", "mlm": "mlm_adapt", "curriculum": "curriculum",
                       "active": "active", "influence": "influence"})

"""Which examples, in what order. Each module has ``train(run) -> FitResult``, where ``run``
is a ``lipo.experiment.TrialRun`` that builds models and loaders and calls ``fit``.
A strategy with controls names them in ``CONTROLS``: the knobs that turn it into the
comparison it must beat (``python launch.py --study influence --final --control random-k``)."""
from lipo.errors import ConfigError
from lipo.registry import Registry

STRATEGIES = Registry("strategy", "lipo.strategies",
                      {"all": "all_examples", "mlm": "mlm_adapt", "curriculum": "curriculum",
                       "active": "active", "influence": "influence"})


def control_knobs(strategy: str, name: str) -> dict:
    """The strategy knobs of control ``name``, as ``strategy.KNOB`` overrides."""
    controls = getattr(STRATEGIES.get(strategy), "CONTROLS", {})
    if not controls:
        having = [s for s in STRATEGIES if getattr(STRATEGIES.get(s), "CONTROLS", None)]
        raise ConfigError(f"--control: strategy {strategy!r} has no control; the strategies "
                          f"with controls are {', '.join(having)}")
    if name not in controls:
        raise ConfigError(f"--control {name}: strategy {strategy!r} has the controls "
                          f"{', '.join(controls)}")
    return {f"strategy.{k}": v for k, v in controls[name].items()}

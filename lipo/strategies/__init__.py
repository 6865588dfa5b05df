"""Which examples, in what order. Each module has ``train(run) -> FitResult``, where ``run``
is a ``lipo.training.trial_run.TrialRun`` that builds models and loaders and calls ``fit``.
A strategy with controls names them in ``CONTROLS``: the knobs that turn it into the
comparison it must beat (``python launch.py --study influence --final --control random-k``).

Adding one: a module with ``train`` and one ``STRATEGIES.register`` line. The line also
states, without importing the module (the CLI's help must not load torch), the names of its
``CONTROLS`` (``controls=``, kept equal to the module's by a test) and whether the report
plots the CSV files its runs log (``plots=True``)."""

from lipo.errors import ConfigError
from lipo.registry import Registry

STRATEGIES = Registry("strategy", __name__, group="lipo.strategies")
STRATEGIES.register("all", ".all_examples")
STRATEGIES.register("mlm", "lipo.masked_lm.adapt")
STRATEGIES.register("curriculum", ".curriculum", controls=("no-curriculum",), plots=True)
STRATEGIES.register("active", ".active", controls=("random-acquisition", "one-shot"), plots=True)
STRATEGIES.register("influence", ".influence", controls=("random-k",), plots=True)


def control_names(strategy: str) -> tuple[str, ...]:
    """The controls a strategy declared at registration."""
    return tuple(STRATEGIES.entry(strategy).about.get("controls", ()))


def plotted() -> list[str]:
    """The strategies whose logged CSV files the report draws."""
    return STRATEGIES.having("plots")


def control_knobs(strategy: str, name: str) -> dict:
    """The strategy knobs of control ``name``, as ``strategy.KNOB`` overrides."""
    controls = getattr(STRATEGIES.get(strategy), "CONTROLS", {})
    if not controls:
        raise ConfigError(
            f"--control: strategy {strategy!r} has no control; the strategies "
            f"with controls are {', '.join(STRATEGIES.having('controls'))}"
        )
    if name not in controls:
        raise ConfigError(
            f"--control {name}: strategy {strategy!r} has the controls {', '.join(controls)}"
        )
    return {f"strategy.{k}": v for k, v in controls[name].items()}


# --pool names the external pool file for the strategies that read one; any strategy accepts it
SHARED_KNOBS = ("pool",)


def knobs(defaults: dict, cfg) -> dict:
    """A strategy's knobs: its ``KNOBS`` with the run's ``strategy.*`` settings over them. A
    setting the strategy does not have is an error that names it: a typo in a study file
    would otherwise train with the default and nobody would know."""
    unknown = sorted(set(cfg.strategy_args) - set(defaults) - set(SHARED_KNOBS))
    if unknown:
        have = ", ".join(f"strategy.{k}" for k in defaults) or "none"
        raise ConfigError(
            f"strategy {cfg.strategy!r} has no knob "
            f"{', '.join('strategy.' + k for k in unknown)} (its knobs: {have})"
        )
    return {**defaults, **{k: v for k, v in cfg.strategy_args.items() if k in defaults}}


def check_knobs(cfg) -> None:
    """Every ``strategy.*`` and ``adapter.*`` setting of ``cfg`` is one its strategy and
    adapter have: checked before training, so a misspelt knob fails at once."""
    from lipo.adapters import check_knobs as check_adapter

    knobs(getattr(STRATEGIES.get(cfg.strategy), "KNOBS", {}), cfg)
    check_adapter(cfg.adapter, cfg.adapter_args)

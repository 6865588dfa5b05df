"""Which knobs mattered: fANOVA over the trials MLflow recorded (the report's figure)."""

from __future__ import annotations

import optuna


def param_importances(observations: list[tuple[dict, float]]) -> dict[str, float]:
    """fANOVA importance of each knob for one study, rebuilt from what MLflow recorded of its
    completed trials: (params, best val/mse) pairs. Numbers become a float range over the
    values seen (log-scaled when they span more than a decade), anything else a category;
    knobs that never varied are left out. Empty with fewer than 3 trials."""
    distributions = observed_distributions([params for params, _ in observations])
    if len(observations) < 3 or not distributions:
        return {}
    study = optuna.create_study()
    for params, value in observations:
        values = {k: as_value(params[k], d) for k, d in distributions.items()}
        study.add_trial(
            optuna.trial.create_trial(params=values, distributions=distributions, value=value)
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # a seeded random forest
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {k: float(v) for k, v in found.items()}


def as_value(text, distribution):
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        return float(text)
    return str(text)


def observed_distributions(records: list[dict]) -> dict:
    found = {}
    for key in set().union(*records) if records else ():
        if any(key not in r for r in records):
            continue
        seen = sorted({str(r[key]) for r in records})
        if len(seen) < 2:
            continue
        try:
            low, high = min(map(float, seen)), max(map(float, seen))
            found[key] = optuna.distributions.FloatDistribution(
                low, high, log=low > 0 and high / low > 10
            )
        except ValueError:
            found[key] = optuna.distributions.CategoricalDistribution(seen)
    return found

"""Curriculum learning: short (easy) SMILES first, the pool growing to the whole training set.
``start``: the fraction of the training set (easiest first) seen in epoch 1; ``frac``: the share
of the epochs after which every molecule is seen."""

STRATEGY = "curriculum"
ADAPTER = "full"
TRIALS = 6
EPOCHS = 6
DEFAULTS = {"patience": 3}


def space(trial) -> dict:
    return {
        "strategy.pacing": trial.suggest_categorical("strategy.pacing", ["linear", "root", "step"]),
        "strategy.frac": trial.suggest_float("strategy.frac", 0.2, 0.8),
        "strategy.start": trial.suggest_float("strategy.start", 0.1, 0.5),
        "strategy.difficulty": trial.suggest_categorical(
            "strategy.difficulty", ["tokens", "heavy_atoms"]
        ),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
    }

"""Active learning: grow a labelled subset by MC-dropout uncertainty, retraining each round."""

STRATEGY = "active"
ADAPTER = "full"
TRIALS = 4
EPOCHS = 5
DEFAULTS = {"patience": 3, "strategy.initial": 500, "strategy.rounds": 3}


def space(trial) -> dict:
    return {
        "strategy.acquire": trial.suggest_categorical("strategy.acquire", [128, 256, 512]),
        "strategy.passes": trial.suggest_categorical("strategy.passes", [5, 10, 20]),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "dropout": trial.suggest_float("dropout", 0.05, 0.3),
    }

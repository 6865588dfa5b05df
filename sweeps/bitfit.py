"""BitFit: only the encoder's bias terms and the regression head train."""

STRATEGY = "all"
ADAPTER = "bitfit"
TRIALS = 6
EPOCHS = 6
DEFAULTS = {"patience": 3}


def space(trial) -> dict:
    return {
        "lr": trial.suggest_float("lr", 1e-3, 3e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.2),
        "weight_decay": trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
    }

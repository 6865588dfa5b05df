"""Masked-LM domain adaptation on the training SMILES, then full fine-tuning."""

STRATEGY = "mlm"
ADAPTER = "full"
TRIALS = 6
EPOCHS = 6
DEFAULTS = {"patience": 3}


def space(trial) -> dict:
    return {
        "strategy.mlm_epochs": trial.suggest_int("strategy.mlm_epochs", 1, 5),
        "strategy.mask_prob": trial.suggest_float("strategy.mask_prob", 0.1, 0.25),
        "strategy.mlm_lr": trial.suggest_float("strategy.mlm_lr", 1e-4, 2e-3, log=True),
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
    }

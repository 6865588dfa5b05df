"""Baseline: the encoder with a regression head, every weight fine-tuned on all examples."""

STRATEGY = "all"
ADAPTER = "full"
# On a 2-core CPU alone: 1921 s with `mini` (30,500 pre-training steps; 3 trials complete, 3
# pruned at epochs 4, 5 and 2), 1314 s with mini-22500 (2 complete). 12 epochs, not 6: the
# best trial's val/mse was still falling at epoch 6 (0.554; 0.519 at 12, same settings, on
# mini-13500), and still at 12 on `mini` (0.473, 0.493, 0.474, 0.454 at epochs 9-12). The
# median pruner stops the trials that trail early; the complete ones cost about 520 s each.
TRIALS = 6
EPOCHS = 12
DEFAULTS = {"patience": 3}


def space(trial) -> dict:
    return {
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-4, 0.1, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "warmup_frac": trial.suggest_float("warmup_frac", 0.0, 0.2),
        # randomised SMILES: per training molecule and epoch; averaged in evaluation
        "augment": trial.suggest_categorical("augment", [0, 1, 2]),
        "tta": trial.suggest_categorical("tta", [0, 4]),
    }

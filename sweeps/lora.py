"""LoRA: low-rank updates of the attention (optionally feed-forward) weights; head trained."""

STRATEGY = "all"
ADAPTER = "lora"
# Sized for a 2-core CPU: LoRA trains ~10x fewer weights than the baseline, but each step still
# runs the whole encoder forward and backward, so an epoch costs about as much.
TRIALS = 8
EPOCHS = 6
DEFAULTS = {"patience": 3}


def space(trial) -> dict:
    r = trial.suggest_categorical("adapter.r", [2, 4, 8, 12, 16, 32, 64])
    return {
        "adapter.r": r,
        "adapter.alpha": r * trial.suggest_categorical("alpha_over_r", [0.5, 1, 2, 4]),
        "adapter.dropout": trial.suggest_float("adapter.dropout", 0.0, 0.2),
        "adapter.targets": trial.suggest_categorical(
            "adapter.targets", ["qkv", "attention", "all"]
        ),
        "adapter.use_dora": trial.suggest_categorical("adapter.use_dora", [False, True]),
        "adapter.use_rslora": trial.suggest_categorical("adapter.use_rslora", [False, True]),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "epochs": trial.suggest_int("epochs", 4, EPOCHS),
        "dropout": trial.suggest_float("dropout", 0.0, 0.2),
        # randomised SMILES: per training molecule and epoch; averaged in evaluation
        "augment": trial.suggest_categorical("augment", [0, 1, 2]),
        "tta": trial.suggest_categorical("tta", [0, 4]),
    }

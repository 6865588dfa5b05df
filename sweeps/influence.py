"""Influence selection: add the external molecules predicted to lower the validation loss."""

STRATEGY = "influence"
ADAPTER = "full"
TRIALS = 4
EPOCHS = 6
DEFAULTS = {"patience": 3, "strategy.method": "lissa"}


def space(trial) -> dict:
    # Only k varies by default, so the influence scores are computed once for the study.
    return {"strategy.k": trial.suggest_categorical("strategy.k", K_GRID)}


# 273: every molecule of the default pool (300, less the 27 already in Lipophilicity). The
# original study's 278 is more than that: it would select the same 273 (lipo.data.pool.check_k).
K_GRID = [16, 32, 64, 100, 150, 273]

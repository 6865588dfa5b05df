"""LoRA: rank-16 updates of the attention and feed-forward weights; head trained."""

STRATEGY = "all"
ADAPTER = "lora"
# LoRA trains a fifth of the weights, but each step still runs the whole encoder forward and
# backward, plus the low-rank products beside it. PEFT also draws a dropout mask on the input of
# each of the 24 targeted layers a step, and torch's CPU mask draw is slow: a LoRA step cost
# 1.39x the full fine-tune's with adapter dropout 0.05 and 1.02x without (bench/adapter_cost.py,
# `mini`, batch 16). So no adapter dropout; the encoder's own (0.1) still regularises.
#
# The settings that cost an epoch and that a 3-trial search cannot afford to explore are fixed
# where validation put them: rank 16 on attention and feed-forward, batch 16, two randomised
# SMILES a molecule and epoch, test-time augmentation 4. On `mini-30500` that choice
# reached val/mse 0.501 in 12 epochs, against 0.572 for the random first draw of a wider space
# (attention only, batch 32, no tta); rank hardly changes the cost (r8 1.41x, r32 1.48x). At 6
# epochs over ranks 2-64 and lr up to 1e-2 the search had chosen rank 4 at lr 6.3e-3 (test MSE
# 0.584 against the full fine-tune's 0.400, mini-13500's card). DoRA and rsLoRA stay knobs a
# study file can draw (`adapter.use_dora`, `adapter.use_rslora`); DoRA costs more per step.
# Trial 0 trains the recipe `mini`'s 4-trial search chose (alpha 32, lr 6.75e-4, head dropout
# 0.189: val/mse 0.5015 at epoch 11); TPE draws the next two around it, and the median pruner
# stops those that trail it. A trial run to the end costs 530 to 670 s on a 2-core CPU, one
# pruned at epoch 2 about 115 s: 772 s alone on an Intel Xeon (trial 0 complete in 532 s, val/mse
# 0.5015 again; trials 1 and 2 pruned at epoch 2; mini's card). The 4-trial search with a
# random first trial took 1687 s there (trials 0 and 2 complete, 1 and 3 pruned at epochs 2 and
# 4), past the 20-minute bound; on `mini-30500`, 1093 s (one trial complete, three pruned).
TRIALS = 3
FIRST_TRIAL = {"adapter.alpha": 32, "lr": 6.75e-4, "dropout": 0.189}
EPOCHS = 12
DEFAULTS = {
    "patience": 3,
    "adapter.r": 16,
    "adapter.targets": "all",
    "adapter.dropout": 0.0,
    "batch_size": 16,
    "augment": 2,  # randomised SMILES: per training molecule and epoch
    "tta": 4,  # averaged in evaluation
}


def space(trial) -> dict:
    return {
        "adapter.alpha": trial.suggest_categorical("adapter.alpha", [16, 32]),
        "lr": trial.suggest_float("lr", 3e-4, 2e-3, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.2),
    }

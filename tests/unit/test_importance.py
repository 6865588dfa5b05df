"""Parameter importances rebuilt from MLflow's string params, as the report sees them."""

import random

from lipo.search.importance import param_importances


def observations(n=10):
    rng = random.Random(0)
    found = []
    for _ in range(n):
        lr, dropout = 10 ** rng.uniform(-4, -2), rng.uniform(0.0, 0.3)
        use_dora = rng.choice([True, False])
        params = {
            "lr": str(lr),
            "dropout": str(dropout),
            "adapter.use_dora": str(use_dora),
            "seed": "0",
        }  # a setting that never varied is not a knob
        found.append((params, abs(lr - 1e-3) * 1000 + 0.01 * dropout))
    return found


def test_the_knob_that_drives_the_loss_ranks_first():
    ranked = param_importances(observations())
    assert list(ranked)[0] == "lr"
    assert set(ranked) == {"lr", "dropout", "adapter.use_dora"}
    assert abs(sum(ranked.values()) - 1.0) < 1e-6


def test_too_few_trials_or_no_varying_knob_gives_nothing():
    assert param_importances(observations(2)) == {}
    same = [({"lr": "0.001"}, 0.5), ({"lr": "0.001"}, 0.6), ({"lr": "0.001"}, 0.7)]
    assert param_importances(same) == {}

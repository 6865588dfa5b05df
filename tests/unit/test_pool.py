import numpy as np
import pytest
from accelerate import Accelerator

from lipo.config import RunConfig
from lipo.data.pool import load_pool
from lipo.data.splits import make_split
from lipo.errors import DataError
from lipo.training.trial_run import TrialRun, Workspace


@pytest.fixture(scope="module")
def workspace(molecules):
    return Workspace(molecules, make_split("random", molecules, 0), "t")


def run_with(ws, pool):
    return TrialRun(
        RunConfig(strategy_args={"pool": str(pool)} if pool else {}), ws, Accelerator(cpu=True)
    )


def test_default_pool_drops_lipophilicity_molecules(workspace):
    pool = load_pool(run_with(workspace, None))
    assert 250 < len(pool) < 300  # 300 molecules, 27 of them Lipophilicity's (ignoring stereo)
    assert not set(pool["smiles"]) & set(workspace.mols.smiles)
    assert np.isfinite(pool["label"]).all()


@pytest.mark.parametrize(
    "text, message", [("", "the file is empty"), ("SMILES,Label\n", "no data rows")]
)
def test_empty_pool_is_one_line(tmp_path, workspace, text, message):
    path = tmp_path / "pool.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_pool(run_with(workspace, path))


def test_a_temporary_extension_leaves_later_positions_unchanged(workspace):
    # The influence scores extend the table with the pool; the retrain's positions (and so
    # its batch order) must not depend on whether the scores came from the cache.
    run = TrialRun(RunConfig(backbone="tiny"), workspace, Accelerator(cpu=True))
    run.new_model()
    size, labels = len(run.data), np.array([1.0, 2.0], dtype=np.float32)
    with run.extended(["CCO", "c1ccccc1"], labels) as positions:
        assert positions.tolist() == [size, size + 1]
        assert run.data.targets[size:].tolist() == labels.tolist()
    assert len(run.data) == size and len(run.data.targets) == size
    assert run.extend(["CCN"], labels[:1]).tolist() == [size]


def test_the_influence_k_grid_holds_no_k_above_the_pool(workspace):
    """Above the pool's size every k selects the whole pool: one setting trained twice."""
    from sweeps.influence import K_GRID

    assert max(K_GRID) <= len(load_pool(run_with(workspace, None)))


def test_a_k_above_the_pool_is_an_error_naming_the_sizes(workspace):
    from lipo.data.pool import check_k
    from lipo.errors import ConfigError

    pool = load_pool(run_with(workspace, None))
    check_k(pool, len(pool))
    with pytest.raises(ConfigError, match=f"strategy.k=278 is more than the {len(pool)} pool"):
        check_k(pool, 278)

"""``--workers K`` above the GPU count: round robin over the GPUs, or ``--workers-per-gpu N``;
the table the launcher prints at start. The device count is a number handed in, so these run
on a CPU as they would on a machine with one or two GPUs."""

import pytest

from lipo.cli import parser
from lipo.errors import ConfigError
from lipo.runtime.devices import gpu_per_worker, placement_table, worker_count, worker_envs
from lipo.runtime.workers import worker_argv


@pytest.mark.parametrize(
    "workers, gpus, expected",
    [
        (2, 1, ["0", "0"]),
        (4, 1, ["0"] * 4),
        (8, 1, ["0"] * 8),
        (2, 2, ["0", "1"]),
        (4, 2, ["0", "1", "0", "1"]),
        (8, 2, ["0", "1"] * 4),
    ],
)
def test_workers_above_the_gpu_count_go_round_robin(workers, gpus, expected):
    envs = worker_envs({"PATH": "/bin"}, workers, gpus, cores=16)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == expected
    table = placement_table(envs)
    print(f"\n--workers {workers} on {gpus} fake GPU(s):\n{table}")
    rows = table.splitlines()[1:]
    assert len(rows) == workers
    assert [row.split()[1] for row in rows] == expected
    assert all(row.split()[3] == str(expected.count(row.split()[1])) for row in rows)


def test_round_robin_uses_the_gpus_this_process_was_given():
    assert gpu_per_worker(3, 2, visible="5,7") == ["5", "7", "5"]


def test_workers_per_gpu_alone_starts_n_on_each_gpu():
    assert worker_count(None, 3, gpus=2) == 6
    assert worker_count(None, None, gpus=2) == 1 and worker_count(5, None, gpus=2) == 5
    with pytest.raises(ConfigError, match="--workers-per-gpu 2: no CUDA GPU is visible"):
        worker_count(None, 2, gpus=0)


def test_workers_per_gpu_caps_the_workers_on_one_gpu():
    assert gpu_per_worker(4, 2, per_gpu=2) == ["0", "1", "0", "1"]
    with pytest.raises(
        ConfigError,
        match=r"--workers 5 with --workers-per-gpu 2: this "
        r"machine has 2 GPUs, room for 4 workers",
    ):
        gpu_per_worker(5, 2, per_gpu=2)


def test_cpu_workers_show_in_the_table():
    envs = worker_envs({"PATH": "/bin"}, 2, gpus=0, cores=4)
    assert placement_table(envs).splitlines()[1:] == [
        "0       (CPU)                 2        -",
        "1       (CPU)                 2        -",
    ]


def test_the_workers_command_line_drops_both_flags():
    argv = ["--study", "lora", "--workers-per-gpu", "3", "--workers=4", "--trials", "8"]
    assert worker_argv(argv) == ["--study", "lora", "--trials", "8"]
    args = parser().parse_args(["--study", "lora", "--workers-per-gpu", "3"])
    assert args.workers_per_gpu == 3 and args.workers is None


def test_workers_per_gpu_on_a_cpu_stops_the_launcher(capsys, tmp_path, monkeypatch):
    import torch

    from lipo.cli import main

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    monkeypatch.chdir(tmp_path)
    assert main(["--study", "baseline", "--backbone", "tiny", "--workers-per-gpu", "2"]) == 2
    assert "--workers-per-gpu 2: no CUDA GPU is visible" in capsys.readouterr().err
    assert not (tmp_path / "mlruns").exists()  # nothing opened before the check

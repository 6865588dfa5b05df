"""--precision and --workers on GPUs, decided without a GPU: the rules are functions of what
the machine has (CUDA, bf16 support, GPU count), so every case runs on a CPU."""

import pytest

from lipo.cli import main
from lipo.errors import ConfigError
from lipo.runtime.devices import default_precision, gpu_per_worker, resolve_precision, worker_envs


@pytest.mark.parametrize(
    "cuda, bf16, expected",
    [(True, True, "bf16"), (True, False, "fp32"), (False, False, "fp32"), (False, True, "fp32")],
)
def test_default_precision(cuda, bf16, expected):
    assert default_precision(cuda, bf16) == expected
    assert resolve_precision(None, cuda, bf16) == expected


@pytest.mark.parametrize(
    "flag, launcher, cuda, expected",
    [
        ("fp32", "bf16", True, "fp32"),  # the flag wins over `accelerate launch --mixed_precision`
        (None, "fp16", True, "fp16"),  # the launcher's explicit choice is kept
        (None, "no", True, "bf16"),  # 'no' is the launcher config's default, not a choice
        (None, "BF16", False, "bf16"),  # bf16 autocast runs on a CPU too
        ("bf16", None, False, "bf16"),
    ],
)
def test_flag_then_launcher_then_default(flag, launcher, cuda, expected):
    assert resolve_precision(flag, cuda, True, launcher) == expected


def test_fp16_without_gpu_is_refused():
    # Accelerate would accept it and silently train in fp32 on a CPU.
    with pytest.raises(ConfigError, match="--precision fp16 needs a CUDA GPU"):
        resolve_precision("fp16", cuda=False, bf16_supported=False)
    with pytest.raises(ConfigError, match="--precision bf16: this GPU has no bfloat16"):
        resolve_precision("bf16", cuda=True, bf16_supported=False)


@pytest.mark.parametrize(
    "workers, gpus, visible, expected",
    [
        (2, 4, None, ["0", "1"]),
        (4, 4, None, ["0", "1", "2", "3"]),
        (2, 2, "5,7", ["5", "7"]),  # the GPUs this process was given, not 0 and 1
        (1, 2, "GPU-a1, GPU-b2", ["GPU-a1"]),
        (3, 0, None, [None, None, None]),  # no GPU: every worker on the CPU, as before
    ],
)
def test_one_gpu_per_worker(workers, gpus, visible, expected):
    assert gpu_per_worker(workers, gpus, visible) == expected


def test_worker_envs_differ_only_in_their_gpu():
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "2,3"}
    envs = worker_envs(base, 2, gpus=2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "3"]
    assert all(e["PATH"] == "/bin" for e in envs) and base["CUDA_VISIBLE_DEVICES"] == "2,3"
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert worker_envs({"PATH": "/bin"}, 2, gpus=0, cores=2) == [{"PATH": "/bin", **threads}] * 2


def test_workers_share_the_cores_without_oversubscribing_them():
    def threads(workers, cores, **base):
        return {e["OMP_NUM_THREADS"] for e in worker_envs(base, workers, gpus=0, cores=cores)}

    assert threads(1, 16) == {"16"} and threads(2, 16) == {"8"} and threads(3, 16) == {"5"}
    assert threads(4, 2) == {"1"}  # never zero
    assert threads(2, 16, OMP_NUM_THREADS="3") == {"3"}  # the user's choice stands


def test_fp16_flag_on_this_cpu_fails_before_training(capsys, tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: fp16 is allowed here")
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--workers", "2"]):
        argv = ["--study", "baseline", "--backbone", "tiny", "--precision", "fp16", *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--precision fp16 needs a CUDA GPU" in err and err.count("\n") == 1
    assert not (tmp_path / "mlruns").exists()  # nothing started

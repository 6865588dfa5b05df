"""The pre-training command recorded in a model card names files, not this machine's folders."""

from lipo.masked_lm.pretrain import portable_command


def test_absolute_paths_become_file_names():
    command = portable_command(
        [
            "--size",
            "mini",
            "--corpus",
            "/work/shared/data/m.csv.gz:2",
            "--out=/tmp/pretrain-mini",
            "--limit",
            "600",
            "rel/c.csv",
        ]
    )
    assert command == (
        "python launch.py pretrain --size mini --corpus m.csv.gz:2 "
        "--out=pretrain-mini --limit 600 rel/c.csv"
    )

"""`pretrain --init`: which encoder it starts from and at what size, or a clear error."""

import json

import pytest

from lipo.errors import ConfigError
from lipo.masked_lm.continued import resolve_size, starting_point, total_steps_after
from lipo.models.backbones import SHIPPED


def test_a_shipped_name_starts_from_the_packaged_encoder():
    start = starting_point("mini")
    assert start.folder == SHIPPED / "mini" and start.size == "mini"
    assert start.describe().startswith(f"mini ({start.total_steps} steps; model.safetensors ")


def continued(folder, card: dict):
    folder.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (folder / name).write_bytes(b"{}")
    (folder / "lipo_card.json").write_text(json.dumps(card))
    return starting_point(str(folder))


def test_the_steps_a_continued_encoder_names_count_every_run_before_it(tmp_path):
    """A card names the weights it continued by all their steps, not by the last run's."""
    first = continued(tmp_path / "first", {"steps": 5500, "total_steps": 5500})
    assert first.describe().startswith("first (5500 steps; ")
    assert total_steps_after(first, 8000) == {"total_steps": 13500}
    # a card from before total_steps: its continued_from names the run it continued
    older = continued(
        tmp_path / "older",
        {"steps": 8000, "continued_from": "mini (5500 steps; model.safetensors ab)"},
    )
    assert older.total_steps == 13500 and older.describe().startswith("older (13500 steps; ")
    assert total_steps_after(older, 9000) == {"total_steps": 22500}
    assert total_steps_after(None, 300) == {"total_steps": 300}
    unknown = continued(tmp_path / "unknown", {})
    assert unknown.total_steps is None and unknown.describe().startswith("unknown (? steps; ")
    assert total_steps_after(unknown, 10) == {}


def test_the_size_is_the_starting_encoders_unless_it_disagrees():
    start = starting_point("mini")
    assert resolve_size(None, start, "small") == "mini"
    assert resolve_size("mini", start, "small") == "mini"
    assert resolve_size(None, None, "small") == "small"
    with pytest.raises(ConfigError, match="--size small disagrees with --init mini"):
        resolve_size("small", start, "small")


def test_a_folder_without_an_encoder_is_named_in_the_error(tmp_path):
    with pytest.raises(ConfigError, match=f"--init {tmp_path}: .* model.safetensors"):
        starting_point(str(tmp_path))

"""`pretrain --init`: which encoder it starts from and at what size, or a clear error."""

import pytest

from lipo.errors import ConfigError
from lipo.masked_lm.continued import resolve_size, starting_point
from lipo.models.backbones import SHIPPED


def test_a_shipped_name_starts_from_the_packaged_encoder():
    start = starting_point("mini")
    assert start.folder == SHIPPED / "mini" and start.size == "mini"
    assert start.describe().startswith(f"mini ({start.card['steps']} steps; model.safetensors ")


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

"""MoLFormer's configuration: the published ``config.json`` keys, read by our own class.

The defaults are the published MoLFormer-XL (vocabulary 2362, width 768, 12 layers of 12 heads,
feed-forward as wide as the model, 32 random features per head), except ``deterministic_eval``:
True here, because with False every evaluation pass redraws the attention's random features
and the same molecule gets a different prediction each time.
"""

from __future__ import annotations

from transformers import PretrainedConfig

# Keys of the hub's config.json that point at its remote code; never followed on our path.
REMOTE_CODE_KEYS = ("auto_map", "architectures")


class MoLFormerConfig(PretrainedConfig):
    model_type = "molformer"

    def __init__(
        self,
        vocab_size: int = 2362,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 768,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        embedding_dropout_prob: float = 0.2,
        max_position_embeddings: int = 202,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        linear_attention_eps: float = 1e-6,
        num_random_features: int = 32,
        feature_map_kernel: str = "relu",
        deterministic_eval: bool = True,
        pad_token_id: int = 2,
        **kwargs,
    ):
        # The published weights keep a decoder of their own (converted untied): never tie it.
        kwargs["tie_word_embeddings"] = False
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"MoLFormer: hidden_size {hidden_size} is not a multiple of "
                f"num_attention_heads {num_attention_heads}"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.embedding_dropout_prob = embedding_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.linear_attention_eps = linear_attention_eps
        self.num_random_features = num_random_features
        self.feature_map_kernel = feature_map_kernel
        self.deterministic_eval = deterministic_eval

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_published(cls, values: dict, **overrides) -> "MoLFormerConfig":
        """From a hub config.json's contents, without its remote-code pointers."""
        kept = {k: v for k, v in values.items() if k not in REMOTE_CODE_KEYS + ("model_type",)}
        return cls(**{**kept, **overrides})

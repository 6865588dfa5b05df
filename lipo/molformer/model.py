"""The MoLFormer encoder, written for lipo from the MoLFormer paper (Ross et al. 2022) and the
public model code: linear attention over positive random features of rotary-embedded queries
and keys, post-norm BERT-style layers, and a final LayerNorm.

Module names are the published checkpoint's (``embeddings.word_embeddings``,
``encoder.layer.N.attention.self.query`` ... ``output.LayerNorm``, ``LayerNorm``), so its
safetensors load by name; the rotary tables are computed, not stored, as in the checkpoint.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput

from lipo.molformer.config import MoLFormerConfig

ROTARY_BASE = 10000.0


@lru_cache(maxsize=32)
def rotary_tables(head_size: int, length: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """cos and sin of position x frequency, each frequency used for both halves of a head."""
    inv_freq = 1.0 / ROTARY_BASE ** (
        torch.arange(0, head_size, 2, device=device).float() / head_size
    )
    angles = torch.outer(torch.arange(length, device=device).float(), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, half-split layout: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s)."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


class RandomFeatureMap(nn.Module):
    """phi(x) = kernel(x W): W holds blocks of random orthogonal directions, each scaled to the
    length of a Gaussian vector (generalised random features). A training pass draws its own W;
    evaluation uses the stored ``weight`` when ``deterministic`` (else a fresh draw too).

    Unlike the public code, a training draw does not replace the stored ``weight``: evaluation
    always uses the checkpoint's features, so a run's validation predictions, its saved adapter
    (which never holds the base's buffers) and ``predict`` all see the same W."""

    def __init__(self, head_size: int, n_features: int, kernel: str, deterministic: bool):
        super().__init__()
        self.head_size, self.n_features = head_size, n_features
        self.kernel = ACT2FN[kernel]
        self.deterministic = deterministic
        self.register_buffer("weight", self.draw())

    def draw(self, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        blocks = []
        for _ in range(math.ceil(self.n_features / self.head_size)):
            gaussian = torch.randn(
                self.head_size, self.head_size, device=device, generator=generator
            )
            orthogonal, _ = torch.linalg.qr(gaussian)
            blocks.append(orthogonal * gaussian.norm(dim=1).unsqueeze(0))
        return torch.cat(blocks, dim=1)[:, : self.n_features].contiguous()  # safetensors: no views

    def features(self, fixed: bool) -> torch.Tensor:
        return self.weight if fixed else self.draw(self.weight.device).to(self.weight.dtype)

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self.kernel(x @ weight)


class LinearSelfAttention(nn.Module):
    """softmax(q k^T) v replaced by phi(q) (phi(k)^T v) / (phi(q) . sum phi(k)): linear in
    the sequence length (the features summarise every key once)."""

    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        width = config.hidden_size
        self.heads, self.head_size = config.num_attention_heads, config.head_size
        self.eps = config.linear_attention_eps
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.feature_map = RandomFeatureMap(
            config.head_size,
            config.num_random_features,
            config.feature_map_kernel,
            config.deterministic_eval,
        )

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_size).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = (self.split_heads(layer(hidden)) for layer in (self.query, self.key, self.value))
        cos, sin = rotary_tables(self.head_size, hidden.shape[1], hidden.device)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        # One draw per pass, shared by queries and keys; MC dropout leaves this module in eval.
        w = self.feature_map.features(fixed=self.feature_map.deterministic and not self.training)
        q, k = self.feature_map(rotate(q, cos, sin), w), self.feature_map(rotate(k, cos, sin), w)
        if mask is not None:  # padding keys contribute nothing to any query
            k = k * mask[:, None, :, None].to(k.dtype)
        summary = k.transpose(-1, -2) @ v  # (batch, heads, features, head_size)
        norm = (q @ k.sum(dim=-2).unsqueeze(-1)).clamp(min=self.eps)
        context = (q @ summary) / norm
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.heads * self.head_size)


class AddNorm(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): BERT's post-norm sublayer output."""

    def __init__(self, width_in: int, config: MoLFormerConfig):
        super().__init__()
        self.dense = nn.Linear(width_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.self = LinearSelfAttention(config)
        self.output = AddNorm(config.hidden_size, config)

    def forward(self, hidden, mask):
        return self.output(self.self(hidden, mask), hidden)


class FeedForwardIn(nn.Module):
    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = FeedForwardIn(config)
        self.output = AddNorm(config.intermediate_size, config)

    def forward(self, hidden, mask):
        attended = self.attention(hidden, mask)
        return self.output(self.intermediate(attended), attended)


class Encoder(nn.Module):
    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden, mask, keep_all: bool):
        states = [hidden]
        for layer in self.layer:
            hidden = layer(hidden, mask)
            states.append(hidden)
        return hidden, (tuple(states) if keep_all else None)


class Embeddings(nn.Module):
    """Token embeddings only: positions enter through the rotary attention."""

    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.dropout = nn.Dropout(config.embedding_dropout_prob)

    def forward(self, input_ids):
        return self.dropout(self.word_embeddings(input_ids))


class MoLFormerPreTrainedModel(PreTrainedModel):
    config_class = MoLFormerConfig
    base_model_prefix = "molformer"  # the published masked-LM checkpoint's prefix

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation (the published model's); under transformers 5 nn.init is
        guarded so that weights loaded from a checkpoint are left alone."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if (
                isinstance(module, nn.Embedding)
                and module.padding_idx is not None
                and not getattr(module.weight, "_is_hf_initialized", False)
            ):
                module.weight[module.padding_idx].zero_()
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class MoLFormerModel(MoLFormerPreTrainedModel):
    """Embeddings -> encoder -> LayerNorm; ``pooler_output`` is the mean over real tokens."""

    def __init__(self, config: MoLFormerConfig):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        **_ignored,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden, states = self.encoder(
            self.embeddings(input_ids), attention_mask, output_hidden_states
        )
        hidden = self.LayerNorm(hidden)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if not return_dict:
            return (hidden, pooled) + ((states,) if states is not None else ())
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=states
        )


class LMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> decoder to the vocabulary (no bias), as published."""

    def __init__(self, config: MoLFormerConfig):
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.act = ACT2FN[config.hidden_act]
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.transform.LayerNorm(self.act(self.transform.dense(hidden)))
        return self.decoder(hidden)


class MoLFormerForMaskedLM(MoLFormerPreTrainedModel):
    def __init__(self, config: MoLFormerConfig):
        super().__init__(config)
        self.molformer = MoLFormerModel(config)
        self.lm_head = LMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_ignored,
    ) -> MaskedLMOutput:
        hidden = self.molformer(input_ids, attention_mask).last_hidden_state
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:  # -100 marks positions without a target
            loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        return MaskedLMOutput(loss=loss, logits=logits)

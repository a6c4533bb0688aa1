"""Video transformers: TimeSformer (divided space-time attention) and ViViT (factorised encoder).

Attention is ``nn.MultiheadAttention`` and every dense layer an ``nn.Linear``, so the DST
engine finds all projections (the packed ``in_proj_weight``, ``out_proj``, MLP, patch
embedding, head) and leaves position embeddings, class tokens and LayerNorms dense.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange, reduce, repeat

from vidsparse.models.registry import ClipSpec, register_model


class SelfAttention(nn.Module):
    """The pre-norm attention branch of a transformer block: LayerNorm -> MHA -> dropout.

    Returns the branch output; the caller adds the residual.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return self.drop(self.attn(x, x, x, need_weights=False)[0])


class FeedForward(nn.Module):
    """The pre-norm MLP branch: LayerNorm -> Linear -> GELU -> Linear, dropout after each."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(self.norm(x))))
        return self.drop(self.fc2(x))


class EncoderBlock(nn.Module):
    """A pre-norm ViT encoder block: ``x + attn(x)``, then ``x + mlp(x)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class DividedSpaceTimeBlock(nn.Module):
    """TimeSformer's block (Bertasius et al. 2021, Fig. 1 "T+S"): temporal, spatial, MLP.

    Tokens are ``B x (1 + T*N) x D``: the class token, then patches ordered frame by frame.
    Temporal attention runs over the T tokens at one spatial position (class token not
    included) and is followed by ``temporal_fc``, a linear map of its output; the paper's
    121.4M parameters for divided attention include this layer. Spatial attention runs over
    one frame's N patches plus a copy of the class token; the class token's updates from
    the T frames are averaged. Frames exchange information only through temporal attention
    and, from one block to the next, through the shared class token.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.temporal = SelfAttention(dim, num_heads, dropout)
        self.temporal_fc = nn.Linear(dim, dim)
        self.spatial = SelfAttention(dim, num_heads, dropout)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        cls, patches = x[:, :1], x[:, 1:]
        batch = x.shape[0]

        xt = rearrange(patches, "b (t n) d -> (b n) t d", t=frames)
        xt = self.temporal_fc(self.temporal(xt))
        patches = patches + rearrange(xt, "(b n) t d -> b (t n) d", b=batch)

        xs = rearrange(patches, "b (t n) d -> (b t) n d", t=frames)
        xs = torch.cat([repeat(cls, "b 1 d -> (b t) 1 d", t=frames), xs], dim=1)
        xs = self.spatial(xs)
        cls = cls + reduce(xs[:, :1], "(b t) 1 d -> b 1 d", "mean", t=frames)
        patches = patches + rearrange(xs[:, 1:], "(b t) n d -> b (t n) d", t=frames)

        x = torch.cat([cls, patches], dim=1)
        return x + self.mlp(x)


def _check_geometry(model: str, frames: int, size: int, patch_size: int, embed_dim: int,
                    num_heads: int, tubelet: int = 1) -> None:
    if size % patch_size:
        raise ValueError(f"{model}: size {size} is not a multiple of patch_size {patch_size}")
    if frames % tubelet:
        raise ValueError(f"{model}: frames {frames} is not a multiple of tubelet {tubelet}")
    if embed_dim % num_heads:
        raise ValueError(f"{model}: embed_dim {embed_dim} is not a multiple of "
                         f"num_heads {num_heads}")


def _check_clip(model: nn.Module, x: torch.Tensor) -> None:
    # Position embeddings are sized at construction, so a clip of another size cannot be
    # told apart from a bug downstream; say so here, with both shapes.
    expected = (model.in_chans, model.frames, model.size, model.size)
    if x.dim() != 5 or tuple(x.shape[1:]) != expected:
        shape = ", ".join(map(str, expected))
        raise ValueError(f"{type(model).__name__} was built for clips of shape (B, {shape}), "
                         f"got {tuple(x.shape)}; build it with frames= and size= matching the clip")


def _init_vit_weights_(model: nn.Module, embeddings: list[nn.Parameter]) -> None:
    """ViT's initialisation: truncated normal (std 0.02) weights and embeddings, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            # The packed q/k/v projection is a bare Parameter, not an nn.Linear.
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for p in embeddings:
        nn.init.trunc_normal_(p, std=0.02)


class TimeSformer(nn.Module):
    """TimeSformer with divided space-time attention (Bertasius et al. 2021).

    Each frame is cut into ``patch_size`` x ``patch_size`` patches (a Conv3d with temporal
    kernel 1); a class token, a learned spatial position embedding and a learned temporal
    embedding are added; ``depth`` :class:`DividedSpaceTimeBlock` s follow; the head reads
    the class token. Defaults are the published TimeSformer (ViT-B/16, 8 x 224 x 224).

    Args:
        num_classes: outputs of the linear head.
        frames, size: the clip the model is built for (``B x C x frames x size x size``);
            other clip sizes raise ``ValueError``.
        patch_size: spatial patch side.
        embed_dim, depth, num_heads, mlp_ratio: transformer width, blocks, heads, MLP width.
        dropout: after the embeddings, each attention output and each MLP layer.
        in_chans: input channels.

    Example:
        >>> model = TimeSformer(num_classes=10, frames=4, size=32, embed_dim=64, depth=2,
        ...                     num_heads=4)
        >>> model(torch.randn(2, 3, 4, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 400, frames: int = 8, size: int = 224,
                 patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 in_chans: int = 3):
        super().__init__()
        _check_geometry("TimeSformer", frames, size, patch_size, embed_dim, num_heads)
        self.in_chans, self.frames, self.size = in_chans, frames, size
        num_patches = (size // patch_size) ** 2
        self.patch_embed = nn.Conv3d(in_chans, embed_dim, (1, patch_size, patch_size),
                                     stride=(1, patch_size, patch_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, frames, embed_dim))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            DividedSpaceTimeBlock(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        _init_vit_weights_(self, [self.cls_token, self.pos_embed, self.time_embed])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised class token, ``B x embed_dim``."""
        _check_clip(self, x)
        x = rearrange(self.patch_embed(x), "b d t h w -> b t (h w) d")
        x = x + self.pos_embed[:, None, 1:] + self.time_embed[:, :, None]
        x = rearrange(x, "b t n d -> b (t n) d")
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self.drop(torch.cat([cls, x], dim=1))
        for block in self.blocks:
            x = block(x, self.frames)
        return self.norm(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class ViViT(nn.Module):
    """ViViT, factorised encoder (Arnab et al. 2021, "Model 2").

    The clip is cut into ``tubelet`` x ``patch_size`` x ``patch_size`` tubelets (a Conv3d).
    A spatial ViT encoder (class token, spatial position embedding, ``depth`` blocks) runs
    on each temporal index separately, with the same weights for every index; its class
    outputs form a sequence of ``frames // tubelet`` tokens that a temporal encoder (its own
    class token and temporal position embedding, ``temporal_depth`` blocks) reads; the head
    reads the temporal class token. Defaults are ViViT-B FE at 32 x 224 x 224.

    Args:
        num_classes: outputs of the linear head.
        frames, size: the clip the model is built for (``B x C x frames x size x size``);
            other clip sizes raise ``ValueError``.
        patch_size, tubelet: spatial side and temporal length of a tubelet.
        embed_dim, depth, temporal_depth, num_heads, mlp_ratio: width, spatial blocks,
            temporal blocks, heads, MLP width.
        dropout: after the embeddings, each attention output and each MLP layer.
        in_chans: input channels.

    Example:
        >>> model = ViViT(num_classes=10, frames=4, size=32, embed_dim=64, depth=2,
        ...               temporal_depth=1, num_heads=4)
        >>> model(torch.randn(2, 3, 4, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 400, frames: int = 32, size: int = 224,
                 patch_size: int = 16, tubelet: int = 2, embed_dim: int = 768, depth: int = 12,
                 temporal_depth: int = 4, num_heads: int = 12, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, in_chans: int = 3):
        super().__init__()
        _check_geometry("ViViT", frames, size, patch_size, embed_dim, num_heads, tubelet)
        self.in_chans, self.frames, self.size = in_chans, frames, size
        num_patches = (size // patch_size) ** 2
        self.patch_embed = nn.Conv3d(in_chans, embed_dim, (tubelet, patch_size, patch_size),
                                     stride=(tubelet, patch_size, patch_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, 1 + frames // tubelet, embed_dim))
        self.drop = nn.Dropout(dropout)
        self.spatial_blocks = nn.ModuleList(
            EncoderBlock(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.spatial_norm = nn.LayerNorm(embed_dim)
        self.temporal_blocks = nn.ModuleList(
            EncoderBlock(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(temporal_depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        _init_vit_weights_(self, [self.cls_token, self.pos_embed, self.temporal_cls_token,
                                  self.temporal_pos_embed])

    def spatial_features(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial encoder's class output per temporal index: ``B x frames//tubelet x D``."""
        _check_clip(self, x)
        batch = x.shape[0]
        x = rearrange(self.patch_embed(x), "b d t h w -> (b t) (h w) d")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.drop(x)
        for block in self.spatial_blocks:
            x = block(x)
        return rearrange(self.spatial_norm(x[:, 0]), "(b t) d -> b t d", b=batch)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised temporal class token, ``B x embed_dim``."""
        x = self.spatial_features(x)
        cls = self.temporal_cls_token.expand(x.shape[0], -1, -1)
        x = self.drop(torch.cat([cls, x], dim=1) + self.temporal_pos_embed)
        for block in self.temporal_blocks:
            x = block(x)
        return self.norm(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _built_clip(model: nn.Module) -> ClipSpec:
    # Position embeddings are sized from frames and size: only that clip fits.
    shape = (model.frames, model.size, model.size)
    return ClipSpec(low=shape, high=shape, channels=model.in_chans,
                    hint="build it with frames= and size= matching the clip")


# Tiny variants keep the architecture and shrink width, depth and clip to train on a CPU.
_TINY = dict(frames=8, size=64, patch_size=16, embed_dim=64, depth=2, num_heads=4)


@register_model("timesformer", family="transformer", input_size=(8, 224, 224),
                test_input=(4, 64, 64), test_kwargs={"frames": 4, "size": 64, "depth": 2},
                head=["head"], clip=_built_clip)
def timesformer(num_classes: int = 400, **kwargs) -> nn.Module:
    """TimeSformer-Base, divided space-time attention: ViT-B/16, 8 x 224 x 224 (~121.6M)."""
    return TimeSformer(num_classes=num_classes, **kwargs)


@register_model("timesformer_tiny", family="transformer", input_size=(8, 64, 64),
                test_input=(8, 64, 64), test_kwargs={}, head=["head"], clip=_built_clip)
def timesformer_tiny(num_classes: int = 400, **kwargs) -> nn.Module:
    return TimeSformer(num_classes=num_classes, **{**_TINY, **kwargs})


@register_model("vivit", family="transformer", input_size=(32, 224, 224),
                test_input=(4, 64, 64),
                test_kwargs={"frames": 4, "size": 64, "depth": 2, "temporal_depth": 1},
                head=["head"], clip=_built_clip)
def vivit(num_classes: int = 400, **kwargs) -> nn.Module:
    """ViViT-B factorised encoder: 12 spatial + 4 temporal layers, 32 x 224 x 224 (~115.1M)."""
    return ViViT(num_classes=num_classes, **kwargs)


@register_model("vivit_tiny", family="transformer", input_size=(8, 64, 64),
                test_input=(8, 64, 64), test_kwargs={}, head=["head"], clip=_built_clip)
def vivit_tiny(num_classes: int = 400, **kwargs) -> nn.Module:
    return ViViT(num_classes=num_classes, **{**_TINY, "temporal_depth": 1, **kwargs})

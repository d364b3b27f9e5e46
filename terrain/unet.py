"""The terrain model's network in torch: the consistency-models U-Net
(guided-diffusion's UNetModel: scale-shift ResBlocks that also down- and
up-sample, multi-head self-attention from 32x32 down) of
``adaptive-terrain-diffusion``, with a continuous difficulty label embedded
like the timestep.

``TerrainUNet`` is the raw network F(c_in x, c_noise, difficulty); the EDM /
consistency preconditioning that makes it a denoiser is in
:mod:`terrain.denoiser` (pure torch) and in ComfyUI's model sampling
(``nodes/terrain_model.py``).  Layer names are the exported model's
(``network.`` dropped), so its weights load as they are.

``operations`` supplies Conv2d, Linear and GroupNorm: torch's own here,
ComfyUI's ``comfy.ops`` classes (weight casting, low-VRAM offload) when
ComfyUI builds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class TorchOps:
    Conv2d = nn.Conv2d
    Linear = nn.Linear
    GroupNorm = nn.GroupNorm


@dataclass(frozen=True)
class UNetConfig:
    """The exported model's hyper-parameters (read off its weights)."""

    in_channels: int = 1
    out_channels: int = 1
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 1, 2, 3, 4)
    num_res_blocks: int = 4
    attention_resolutions: tuple[int, ...] = (4, 8, 16)  # down-sampling factors with attention
    num_head_channels: int = 32
    label_dim: int = 1


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """guided-diffusion's sinusoidal embedding: cos then sin."""
    half = dim // 2
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=dtype, device=t.device) / half)
    args = t[:, None].to(dtype) * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def normed(norm, x):
    """GroupNorm at float32 precision or better, as the exported model."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return norm(x.float()).type(x.dtype)
    return norm(x)


def _norm(channels, ops, dtype, device):
    # a bare GroupNorm keeps the exported names (in_layers.0.weight ...)
    return ops.GroupNorm(32, channels, eps=1e-5, dtype=dtype, device=device)


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int, ops, up=False, down=False,
                 dtype=None, device=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.in_layers = nn.Sequential(_norm(channels, ops, **kw), nn.SiLU(),
                                       ops.Conv2d(channels, out_channels, 3, padding=1, **kw))
        self.up, self.down = up, down
        self.emb_layers = nn.Sequential(nn.SiLU(), ops.Linear(emb_channels, 2 * out_channels, **kw))
        self.out_layers = nn.Sequential(_norm(out_channels, ops, **kw), nn.SiLU(), nn.Dropout(0.0),
                                        ops.Conv2d(out_channels, out_channels, 3, padding=1, **kw))
        self.skip_connection = nn.Identity() if out_channels == channels else \
            ops.Conv2d(channels, out_channels, 1, **kw)

    def resample(self, x, size=None):
        if self.up:  # to the size of the skip it meets next (odd sizes: ComfyUI's UNet does the same)
            return F.interpolate(x, size=size or (2 * x.shape[-2], 2 * x.shape[-1]), mode="nearest")
        if self.down:
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x, emb, size=None):
        norm, act, conv = self.in_layers
        h = conv(self.resample(act(normed(norm, x)), size))
        x = self.resample(x, size)
        scale, shift = self.emb_layers(emb).type(h.dtype)[..., None, None].chunk(2, dim=1)
        out_norm, out_act, _, out_conv = self.out_layers
        h = normed(out_norm, h) * (1 + scale) + shift
        return self.skip_connection(x) + out_conv(out_act(h))


class AttentionBlock(nn.Module):
    """Self-attention over the pixels (QKVAttention: q, k, v split first,
    then heads of ``head_channels``)."""

    def __init__(self, channels: int, head_channels: int, ops, dtype=None, device=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.heads = channels // head_channels
        self.norm = _norm(channels, ops, **kw)
        self.qkv = ops.Conv2d(channels, 3 * channels, 1, **kw)
        self.proj_out = ops.Conv2d(channels, channels, 1, **kw)

    def forward(self, x, emb=None):
        b, c, h, w = x.shape
        qkv = self.qkv(normed(self.norm, x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # (b, heads, hw, ch)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj_out(a.transpose(-1, -2).reshape(b, c, h, w))


class Block(nn.ModuleList):
    def forward(self, x, emb, size=None):
        for layer in self:
            x = layer(x, emb, size) if isinstance(layer, ResBlock) else layer(x, emb)
        return x


class TerrainUNet(nn.Module):
    """F(x_in, c_noise, difficulty) -> (B, out_channels, H, W).

    ``timesteps`` is the noise condition c_noise = 250 log(sigma) of the
    exported model; :meth:`forward_comfy` takes ComfyUI's EDM timestep
    0.25 log(sigma) instead."""

    def __init__(self, config: UNetConfig = UNetConfig(), ops=TorchOps, dtype=None, device=None):
        super().__init__()
        self.config, self.dtype = config, dtype or torch.float32
        kw = dict(dtype=dtype, device=device)
        mc = config.model_channels
        emb = 4 * mc
        self.time_embed = nn.Sequential(ops.Linear(mc, emb, **kw), nn.SiLU(), ops.Linear(emb, emb, **kw))
        self.label_emb = nn.Sequential(ops.Linear(config.label_dim, emb, **kw), nn.SiLU(), ops.Linear(emb, emb, **kw))

        def res(cin, cout, **updown):
            return ResBlock(cin, emb, cout, ops, **updown, **kw)

        def attn(channels):
            return AttentionBlock(channels, config.num_head_channels, ops, **kw)

        ch = config.channel_mult[0] * mc
        self.input_blocks = nn.ModuleList([nn.ModuleList([ops.Conv2d(config.in_channels, ch, 3, padding=1, **kw)])])
        chans, ds = [ch], 1
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers = [res(ch, mult * mc)]
                ch = mult * mc
                if ds in config.attention_resolutions:
                    layers.append(attn(ch))
                self.input_blocks.append(Block(layers))
                chans.append(ch)
            if level != len(config.channel_mult) - 1:
                self.input_blocks.append(Block([res(ch, ch, down=True)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Block([res(ch, ch), attn(ch), res(ch, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = [res(ch + chans.pop(), mc * mult)]
                ch = mc * mult
                if ds in config.attention_resolutions:
                    layers.append(attn(ch))
                if level and i == config.num_res_blocks:
                    layers.append(res(ch, ch, up=True))
                    ds //= 2
                self.output_blocks.append(Block(layers))
        self.out = nn.Sequential(_norm(ch, ops, **kw), nn.SiLU(), ops.Conv2d(ch, config.out_channels, 3, padding=1, **kw))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, difficulty: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(x.dtype))
        emb = emb + self.label_emb(difficulty.reshape(x.shape[0], -1).to(x.dtype))
        h = self.input_blocks[0][0](x)
        skips = [h]
        for block in self.input_blocks[1:]:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, emb, tuple(skips[-1].shape[-2:]) if skips else None)
        norm, act, conv = self.out
        return conv(act(normed(norm, h)))

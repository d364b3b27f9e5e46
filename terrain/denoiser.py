"""The trained terrain denoiser in plain torch (no ComfyUI): the U-Net with
the consistency model's EDM preconditioning.

    D(x, sigma, d) = clamp(c_skip x + c_out F(c_in x, 250 log sigma, d), -1, 1)
    c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2)
    c_out  = (sigma - sigma_min) sd / sqrt(sigma^2 + sd^2)
    c_in   = 1 / sqrt(sigma^2 + sd^2)

sd = 0.5, sigma_min = 0.002 (the consistency boundary condition D = x at
sigma_min), sigma from 0.002 to 80; d is the difficulty in [0, 1] (the
package's labels 1..100 as (label - 1) / 99).  Heights live in [-1, 1]
(see :mod:`terrain.render`); the native window is 128 x 128.

This is the demo's and the benchmarks' denoiser (the pack's ``fusion``
code drives it as the ComfyUI nodes drive a MODEL); in ComfyUI the same
network runs inside ComfyUI's model classes (``nodes/terrain_model.py``).
"""

from __future__ import annotations

import torch

from .unet import TerrainUNet, UNetConfig
from .weights import load_state_dict

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
SIGMA_DATA = 0.5
NATIVE = 128
NUM_LABELS = 100


def difficulty_label(label: float) -> float:
    """The package's difficulty label (1..100) as the model's input (0..1)."""
    if not 1 <= label <= NUM_LABELS:
        raise ValueError(f"difficulty = {label} must lie in 1..{NUM_LABELS}")
    return (label - 1) / (NUM_LABELS - 1)


def preconditioning(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA, sigma_min: float = SIGMA_MIN):
    """(c_skip, c_out, c_in) of the consistency model."""
    c_skip = sigma_data ** 2 / ((sigma - sigma_min) ** 2 + sigma_data ** 2)
    c_out = (sigma - sigma_min) * sigma_data / (sigma ** 2 + sigma_data ** 2) ** 0.5
    c_in = 1 / (sigma ** 2 + sigma_data ** 2) ** 0.5
    return c_skip, c_out, c_in


def karras_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = 7.0):
    """Karras et al.'s schedule with a final 0, as ComfyUI's ``karras``."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv ** rho, torch.zeros(1, dtype=torch.float64)]).float()


class TerrainDenoiser(torch.nn.Module):
    """D(x, sigma) for (B, 1, h, w) windows at one difficulty (a float in
    [0, 1], or a (B,) tensor)."""

    channels = 1

    def __init__(self, unet: TerrainUNet, difficulty: float | torch.Tensor = 0.5, clamp: bool = True):
        super().__init__()
        self.unet, self.difficulty, self.clamp = unet, difficulty, clamp
        self.window = (NATIVE, NATIVE)

    @classmethod
    def load(cls, difficulty: float = 0.5, dtype=torch.float32, device="cpu") -> "TerrainDenoiser":
        sd, _ = load_state_dict()
        unet = TerrainUNet(UNetConfig(), dtype=dtype, device=device)
        unet.load_state_dict(sd, strict=True)
        return cls(unet.eval().requires_grad_(False), difficulty)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, difficulty=None) -> torch.Tensor:
        """Preconditioning in ``x``'s dtype, the network in its own."""
        sigma = torch.as_tensor(sigma, device=x.device).to(x.dtype).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        d = self.difficulty if difficulty is None else difficulty
        d = torch.as_tensor(d, device=x.device).to(x.dtype).reshape(-1)
        d = d.expand(x.shape[0]) if d.numel() == 1 else d
        c_skip, c_out, c_in = (c.view(-1, 1, 1, 1) for c in preconditioning(sigma))
        dtype = self.unet.dtype
        out = self.unet((x * c_in).to(dtype), (250.0 * sigma.log()).to(dtype), d.to(dtype)).to(x.dtype)
        denoised = c_skip * x + c_out * out
        return denoised.clamp(-1, 1) if self.clamp else denoised

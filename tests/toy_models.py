"""Small deterministic window denoisers for the core tier: nonlinear, with
spatial mixing, so that windows disagree on their overlaps as a real model's
do."""

import torch


def conv_denoiser(channels: int = 4, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    kernel = torch.randn(channels, channels, 3, 3, generator=g, dtype=dtype) * 0.3

    def model_fn(x, sigma, *window_info):
        s = sigma.view(-1, 1, 1, 1).to(x.dtype)
        mixed = torch.tanh(torch.nn.functional.conv2d(x, kernel.to(x), padding=1))
        # a window-position-dependent term: the model sees where the window's
        # border is, which is what makes neighbouring windows disagree
        ramp = torch.linspace(-1, 1, x.shape[-1], dtype=x.dtype, device=x.device)
        return (x + s * mixed) / (1 + s**2) + 0.1 * s / (1 + s) * ramp

    return model_fn


def euler_sample(denoise, x, sigmas):
    """k-diffusion's Euler sampler on a whole-latent denoiser
    ``denoise(x, sigma, step, num_steps)``."""
    num_steps = len(sigmas) - 1
    for i in range(num_steps):
        sigma = sigmas[i]
        d = (x - denoise(x, sigma.expand(x.shape[0]), i, num_steps)) / sigma
        x = x + d * (sigmas[i + 1] - sigma)
    return x


def karras_sigmas(n, sigma_min=0.03, sigma_max=14.6, rho=7.0, dtype=torch.float64):
    ramp = torch.linspace(0, 1, n, dtype=dtype)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv**rho, torch.zeros(1, dtype=dtype)])

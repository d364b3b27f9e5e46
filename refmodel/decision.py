"""When does the reference denoiser decide? Curves over sigma.

Two views of the same question:

* `responsibility_entropy`: draw x0 from the prior, add noise of level sigma,
  and look at the posterior over mixture components: its entropy (nats; log K
  means undecided, 0 means one-hot), the mean largest responsibility, and how
  often the most responsible component is the one x0 was drawn from.
* `commitment_curve`: run an actual sampler (Euler on the Karras schedule,
  like ComfyUI's `euler` + `karras`) and measure at each step how far the
  current x0 estimate still is from the final image, separately for the head
  coefficients (layout: low frequencies) and the tail (texture).
"""

import math

import torch

from .prior import SIGMA_MAX, SIGMA_MIN, to_coefficients


def karras_sigmas(steps, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, rho=7.0, dtype=torch.float64):
    """k-diffusion's get_sigmas_karras: `steps` sigmas then a final 0."""
    ramp = torch.linspace(0, 1, steps, dtype=dtype)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def entropy(resp):
    """Entropy (nats) of each row of a responsibility matrix."""
    return -(resp * resp.clamp_min(1e-30).log()).sum(-1)


@torch.no_grad()
def responsibility_entropy(denoiser, sigmas, n=512, seed=0):
    """Mean entropy, max responsibility and argmax accuracy per sigma.

    Returns a dict of float64 tensors shaped like `sigmas`, plus `log_k`.
    """
    x0, k = denoiser.sample_prior(n, seed=seed, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    rows = []
    for sigma in torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1):
        resp = denoiser.responsibilities(x0 + sigma * noise, sigma)
        rows.append(torch.stack([entropy(resp).mean(), resp.max(1).values.mean(),
                                 (resp.argmax(1) == k).double().mean()]))
    table = torch.stack(rows)
    return {"sigma": torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1),
            "entropy": table[:, 0], "max_resp": table[:, 1], "accuracy": table[:, 2],
            "log_k": math.log(denoiser.prior.components)}


@torch.no_grad()
def sample_euler(denoiser, x, sigmas, callback=None):
    """k-diffusion's sample_euler (no churn): x <- x + (sigma' - sigma) (x - D) / sigma."""
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised, resp = denoiser.denoise(x, sigma)
        if callback is not None:
            callback(i, sigma, denoised, resp)
        x = x + (sigmas[i + 1] - sigma) * (x - denoised) / sigma
    return x


@torch.no_grad()
def commitment_curve(denoiser, n=64, steps=30, seed=0):
    """Per step of an Euler/Karras run: how decided the x0 estimate already is.

    head_change / tail_change: ||c(x0_hat_i) - c(x0_final)|| / ||c(x0_final) - c(mean)||
    over the head (layout) and tail (texture) coefficients c, averaged over
    windows; 1 means nothing of the final content is known yet, 0 means final.
    agreement: fraction of windows whose most responsible component already is
    the one most responsible at the last step.
    """
    prior = denoiser.prior
    h, w = denoiser.window
    generator = torch.Generator().manual_seed(seed)
    sigmas = karras_sigmas(steps)
    x = torch.randn(n, denoiser.channels, h, w, generator=generator, dtype=torch.float64) * sigmas[0]
    estimates, resps = [], []
    x = sample_euler(denoiser, x, sigmas,
                     callback=lambda i, s, d, r: (estimates.append(d), resps.append(r)))
    final = to_coefficients(x, prior)
    mean = to_coefficients(denoiser.prior_mean(dtype=torch.float64)[None], prior)
    r = prior.rank

    def relative(c, part):
        return ((c[:, part] - final[:, part]).norm(dim=1) / (final[:, part] - mean[:, part]).norm(dim=1)).mean()

    head, tail = slice(0, r), slice(r, None)
    final_component = resps[-1].argmax(1)
    curve = {"sigma": sigmas[:-1], "head_change": [], "tail_change": [], "entropy": [], "agreement": []}
    for estimate, resp in zip(estimates, resps):
        c = to_coefficients(estimate, prior)
        curve["head_change"].append(relative(c, head))
        curve["tail_change"].append(relative(c, tail))
        curve["entropy"].append(entropy(resp).mean())
        curve["agreement"].append((resp.argmax(1) == final_component).double().mean())
    for name in ("head_change", "tail_change", "entropy", "agreement"):
        curve[name] = torch.stack(curve[name])
    return curve


def commit_sigma(sigmas, max_resp, threshold=0.9):
    """Largest sigma at which the mean max responsibility reaches `threshold`
    (sigmas in decreasing order); None if it never does."""
    for sigma, value in zip(sigmas.tolist(), max_resp.tolist()):
        if value >= threshold:
            return sigma
    return None

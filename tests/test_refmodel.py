"""The reference denoiser is the exact posterior mean of its prior.

Most checks use small priors built by hand (no photos needed) and compare the
fast eigenbasis path against independent computations: dense covariances with
torch.linalg.solve, numerical integration in 2-D, and Tweedie's formula via
autograd. The photo-fitted prior is checked at a small size when
scikit-image is installed.
"""

import math

import pytest
import torch

from refmodel import latent as latent_space
from refmodel.decision import commit_sigma, responsibility_entropy
from refmodel.prior import (MixturePrior, PriorConfig, ReferenceDenoiser, dct_matrix, fit_prior,
                            from_coefficients, load_prior, prior_mean, sample_prior, to_coefficients)


def _orthogonal(n, generator):
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def random_prior(channels=2, window=(2, 3), components=3, rank=4, seed=0):
    """A mixture with every parameter random (well separated means, varied
    spectra), in the same parametrisation the photo fit produces."""
    g = torch.Generator().manual_seed(seed)
    h, w = window
    d = channels * h * w
    k = components
    return MixturePrior(
        colour=_orthogonal(channels, g),
        dct_h=dct_matrix(h), dct_w=dct_matrix(w),
        order=torch.randperm(d, generator=g),
        tail_var=torch.rand(d - rank, generator=g, dtype=torch.float64) * 2 + 0.1,
        log_weight=torch.log_softmax(torch.randn(k, generator=g, dtype=torch.float64), 0),
        head_mean=torch.randn(k, rank, generator=g, dtype=torch.float64) * 3,
        head_eigvec=torch.stack([_orthogonal(rank, g) for _ in range(k)]),
        head_eigval=torch.rand(k, rank, generator=g, dtype=torch.float64) * 4 + 0.05,
        tail_gain=torch.rand(k, generator=g, dtype=torch.float64) + 0.2,
    )


def dense_posterior_mean(prior, x, sigma):
    """E[x0 | x] from explicit d x d covariances in pixel space."""
    d = x[0].numel()
    basis = from_coefficients(torch.eye(d, dtype=torch.float64), prior).reshape(d, d).T  # x = B z
    r = prior.rank
    means, covs = [], []
    for k in range(prior.components):
        cov_z = torch.zeros(d, d, dtype=torch.float64)
        v, e = prior.head_eigvec[k], prior.head_eigval[k]
        cov_z[:r, :r] = v @ torch.diag(e) @ v.T
        cov_z[r:, r:] = torch.diag(prior.tail_gain[k] * prior.tail_var)
        mean_z = torch.cat([prior.head_mean[k], torch.zeros(d - r, dtype=torch.float64)])
        means.append(basis @ mean_z)
        covs.append(basis @ cov_z @ basis.T)
    out = []
    for xi, s in zip(x.reshape(x.shape[0], d), sigma):
        log_w, post = [], []
        for k in range(prior.components):
            noisy = covs[k] + s ** 2 * torch.eye(d, dtype=torch.float64)
            diff = xi - means[k]
            sol = torch.linalg.solve(noisy, diff)
            log_w.append(prior.log_weight[k] - 0.5 * (diff @ sol + torch.logdet(noisy) + d * math.log(2 * math.pi)))
            post.append(means[k] + covs[k] @ sol)
        w = torch.softmax(torch.stack(log_w), 0)
        out.append((w[:, None] * torch.stack(post)).sum(0))
    return torch.stack(out).reshape(x.shape)


def test_coefficients_round_trip():
    prior = random_prior(channels=3, window=(4, 5))
    x = torch.randn(6, 3, 4, 5, dtype=torch.float64)
    z = to_coefficients(x, prior)
    assert torch.allclose(from_coefficients(z, prior), x, atol=1e-12)
    assert torch.allclose(z.norm(dim=1), x.flatten(1).norm(dim=1), atol=1e-12)  # orthonormal


@pytest.mark.parametrize("sigma", [0.03, 0.5, 2.0, 14.6])
def test_matches_dense_posterior(sigma):
    prior = random_prior()
    denoiser = ReferenceDenoiser.from_prior(prior)
    x0, _ = sample_prior(prior, 5, torch.Generator().manual_seed(1))
    x = x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = dense_posterior_mean(prior, x, torch.full((5,), sigma, dtype=torch.float64))
    assert torch.allclose(denoiser(x, sigma), expected, atol=1e-9, rtol=1e-9)


def test_per_window_sigmas_match_dense_posterior():
    prior = random_prior(channels=3, window=(2, 2), components=4, rank=5, seed=3)
    denoiser = ReferenceDenoiser.from_prior(prior)
    sigma = torch.tensor([0.05, 0.7, 3.0, 12.0], dtype=torch.float64)
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 3
    assert torch.allclose(denoiser(x, sigma), dense_posterior_mean(prior, x, sigma), atol=1e-9)


def test_matches_numerical_integration_in_two_dimensions():
    """d = 2 (one head and one tail coordinate): integrate x0 p(x0) N(x; x0, s^2)
    on a grid, with no Gaussian algebra at all."""
    prior = random_prior(channels=1, window=(1, 2), components=3, rank=1, seed=5)
    denoiser = ReferenceDenoiser.from_prior(prior)
    grid = torch.linspace(-16, 16, 1201, dtype=torch.float64)
    g1, g2 = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([g1.flatten(), g2.flatten()], 1).reshape(-1, 1, 1, 2)
    # The prior density at sigma = 0 is the noisy marginal with sigma -> 0.
    log_p0 = denoiser.log_density(points, 0.0)
    for sigma, x in [(0.7, (1.0, -2.0)), (2.5, (4.0, 3.0)), (6.0, (-5.0, 0.5))]:
        xt = torch.tensor(x, dtype=torch.float64)
        log_lik = -((points.reshape(-1, 2) - xt) ** 2).sum(1) / (2 * sigma ** 2)
        w = torch.softmax(log_p0 + log_lik, 0)
        expected = (w[:, None] * points.reshape(-1, 2)).sum(0)
        got = denoiser(xt.reshape(1, 1, 1, 2), sigma).reshape(2)
        assert torch.allclose(got, expected, atol=1e-6), (sigma, got, expected)


def test_tweedie_formula():
    """E[x0 | x] = x + sigma^2 grad log p_sigma(x): the posterior mean and the
    noisy marginal are computed by different code paths."""
    prior = random_prior(channels=3, window=(3, 3), components=4, rank=6, seed=6)
    denoiser = ReferenceDenoiser.from_prior(prior)
    x = (torch.randn(3, 3, 3, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2).requires_grad_()
    sigma = torch.tensor([0.3, 1.5, 9.0], dtype=torch.float64)
    (grad,) = torch.autograd.grad(denoiser.log_density(x, sigma).sum(), x)
    tweedie = x + sigma[:, None, None, None] ** 2 * grad
    assert torch.allclose(denoiser(x.detach(), sigma), tweedie, atol=1e-9)


def test_limits_in_sigma():
    prior = random_prior(channels=3, window=(4, 4), components=5, rank=8, seed=8)
    denoiser = ReferenceDenoiser.from_prior(prior)
    x0, _ = sample_prior(prior, 8, torch.Generator().manual_seed(9))
    # sigma -> 0: a point of the prior's support is its own denoised estimate.
    assert torch.allclose(denoiser(x0, 1e-5), x0, atol=1e-6)
    # sigma -> infinity: the data say nothing, the estimate is the prior mean.
    noisy = x0 + 1e7 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    assert torch.allclose(denoiser(noisy, 1e7), prior_mean(prior).expand_as(x0), atol=1e-4)


def test_sigma_shapes_and_batch_independence():
    prior = random_prior(channels=4, window=(3, 3), components=3, rank=5, seed=11)
    denoiser = ReferenceDenoiser.from_prior(prior)
    x = torch.randn(4, 4, 3, 3, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    reference = denoiser(x, 1.3)
    for sigma in (torch.tensor(1.3, dtype=torch.float64), torch.full((4,), 1.3), torch.full((4, 1, 1, 1), 1.3)):
        assert torch.allclose(denoiser(x, sigma), reference, atol=1e-6)
    one_by_one = torch.cat([denoiser(x[i:i + 1], 1.3) for i in range(4)])
    assert torch.allclose(one_by_one, reference, atol=1e-12)
    with pytest.raises(ValueError):
        denoiser(x, torch.ones(3))
    with pytest.raises(ValueError):
        denoiser(torch.zeros(1, 4, 3, 4), 1.0)


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_and_device_preserved(dtype, device):
    prior = random_prior(channels=4, window=(4, 4), components=3, rank=6, seed=13)
    denoiser = ReferenceDenoiser.from_prior(prior)
    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(14)).to(device=device, dtype=dtype)
    sigma = torch.tensor([0.5, 5.0], device=device, dtype=dtype)
    out = denoiser(x, sigma)
    assert out.dtype == dtype and out.device.type == device
    exact = denoiser(x.double().cpu(), sigma.double().cpu())
    tolerance = 5e-2 if dtype == torch.bfloat16 else 1e-4
    assert torch.allclose(out.double().cpu(), exact, atol=tolerance, rtol=tolerance)


def test_differentiable_in_x():
    """Multi-Scale Diffusion differentiates through D: check the gradient,
    also after a first call made under inference mode."""
    prior = random_prior(channels=3, window=(2, 3), components=3, rank=4, seed=16)
    denoiser = ReferenceDenoiser.from_prior(prior)
    x = torch.randn(2, 3, 2, 3, generator=torch.Generator().manual_seed(17), dtype=torch.float64)
    with torch.inference_mode():
        denoiser(x, 1.0)
    with torch.enable_grad():
        assert torch.autograd.gradcheck(lambda v: denoiser(v, torch.tensor([0.4, 3.0], dtype=torch.float64)),
                                        (x.clone().requires_grad_(),))
        y = denoiser(x.float().requires_grad_(), 1.0)   # float32 path after the float64 one
        y.sum().backward()


@pytest.mark.parametrize("channels", [3, 4])
def test_latent_encode_decode(channels):
    g = torch.Generator().manual_seed(15)
    rgb = 0.3 + 0.4 * torch.rand(2, 3, 16, 24, generator=g, dtype=torch.float64)
    z = latent_space.encode(rgb, channels, downsample=4)
    assert z.shape == (2, channels, 4, 6)
    # The exact decode is the pseudo-inverse: encoding it again gives z back.
    assert torch.allclose(latent_space.encode(latent_space.decode(z, 4, smooth=False), channels, 4), z, atol=1e-10)
    smooth = latent_space.decode(z[0], 4)
    assert smooth.shape == (3, 16, 24) and 0 <= smooth.min() and smooth.max() <= 1
    # Unbatched input, and a size that is not a multiple of the block.
    assert latent_space.encode(rgb[0, :, :15, :23], channels, 4).shape == (channels, 3, 5)


# ----------------------------------------------------------------------------
# The photo-fitted prior (small, so that fitting takes a few seconds)

SMALL = dict(window=8, channels=4, components=4, rank=8, seed=0, photos=("chelsea", "coffee"))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    pytest.importorskip("skimage")
    cache = tmp_path_factory.mktemp("refmodel-cache")
    config = PriorConfig(**SMALL)
    prior = load_prior(config, cache_dir=str(cache), memory=False)
    return config, prior, str(cache)


def test_fitted_prior_is_cached_and_deterministic(fitted):
    config, prior, cache = fitted
    files = list(__import__("pathlib").Path(cache).glob("*.npz"))
    assert [f.name for f in files] == [config.key() + ".npz"]
    reloaded = load_prior(config, cache_dir=cache, memory=False)   # from disk
    refitted = fit_prior(config)                                    # from scratch
    for name, value in prior.arrays().items():
        assert (reloaded.arrays()[name] == value).all(), name
        assert torch.allclose(torch.from_numpy(value).double(), torch.from_numpy(refitted.arrays()[name]).double(),
                              atol=1e-8), name


def test_fitted_prior_data_scale_and_limits(fitted):
    config, prior, _ = fitted
    denoiser = ReferenceDenoiser(**SMALL, prior=prior)
    x0, _ = denoiser.sample_prior(64, seed=1, dtype=torch.float64)
    # Latents like SD's: roughly zero mean, unit scale.
    assert abs(float(x0.mean())) < 0.5 and 0.5 < float(x0.std()) < 2.0
    assert torch.allclose(denoiser(x0, 1e-4), x0, atol=1e-3)
    far = denoiser(x0 + 1e6 * torch.randn_like(x0), 1e6)
    assert torch.allclose(far, denoiser.prior_mean(dtype=torch.float64).expand_as(x0), atol=1e-2)


def test_fitted_prior_decides_as_sigma_falls(fitted):
    """Undecided at sigma_max, decided by sigma_min, and monotone in between.
    (Where exactly it commits is a measured property, reported by
    `python -m refmodel`, not a test threshold.)"""
    _, prior, _ = fitted
    denoiser = ReferenceDenoiser(**SMALL, prior=prior)
    sigmas = torch.tensor([14.6, 4.0, 1.0, 0.3, 0.03], dtype=torch.float64)
    curve = responsibility_entropy(denoiser, sigmas, n=256)
    assert (curve["entropy"][1:] <= curve["entropy"][:-1] + 1e-3).all()
    assert curve["entropy"][0] > 0.5 * curve["log_k"]
    assert curve["max_resp"][-1] > 0.99 and curve["accuracy"][-1] > 0.95
    assert commit_sigma(curve["sigma"], curve["max_resp"]) >= 0.3

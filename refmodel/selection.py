"""How the number of components K and the head rank r were chosen.

By leave-one-photo-out held-out likelihood, the one criterion that does not
look at what the prior is for (panoramas, seams, timing): fit the prior to
all photos but one and score the windows of the held-out photo with the exact
density log p(x) (sigma = 0), in nats per dimension; higher is better.
"""

import torch

from .patches import load_photos, patch_bank
from .prior import fit_prior, log_density, window_stride


def heldout_log_likelihood(config, photos=None, chunk=256):
    """Per held-out photo: the mean log p(x) / d of its windows (list of float)."""
    photos = photos if photos is not None else load_photos()
    scores = []
    for i, held_out in enumerate(photos):
        prior = fit_prior(config, photos=[p for j, p in enumerate(photos) if j != i])
        windows, _ = patch_bank([held_out], config.window, config.channels, config.downsample,
                                window_stride(config.window))
        log_p = torch.cat([log_density(batch, 0.0, prior) for batch in windows.split(chunk)])
        scores.append(float(log_p.mean()) / config.dim)
    return scores

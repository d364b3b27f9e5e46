"""Report on the reference model: cache build, call timing, decision curves.

    python -m refmodel [--window 32] [--channels 4] [--rebuild]
    python -m refmodel --select [--window 32] [--components 4,8,16,32] [--ranks 8,16,32,64]

--rebuild fits into a temporary cache directory to time a cold build without
touching the real cache. --select prints the leave-one-photo-out held-out
log-likelihood (nats per dimension) for each (K, r): how the defaults were chosen.
"""

import argparse
import os
import tempfile
import time

import torch

from .decision import commit_sigma, commitment_curve, karras_sigmas, responsibility_entropy
from .prior import PriorConfig, ReferenceDenoiser, default_cache_dir, load_prior


def _time_call(denoiser, n, dtype, per_window_sigma, repeats=30):
    h, w = denoiser.window
    x = torch.randn(n, denoiser.channels, h, w, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3
    sigma = torch.linspace(0.1, 10, n, dtype=dtype) if per_window_sigma else torch.tensor(3.0, dtype=dtype)
    denoiser(x, sigma)
    start = time.perf_counter()
    for _ in range(repeats):
        denoiser(x, sigma)
    return (time.perf_counter() - start) / repeats * 1e3


def select(args):
    from .patches import load_photos
    from .selection import heldout_log_likelihood
    photos = load_photos()
    for rank in (int(v) for v in args.ranks.split(",")):
        for components in (int(v) for v in args.components.split(",")):
            config = PriorConfig(window=args.window, channels=args.channels, components=components, rank=rank)
            start = time.perf_counter()
            scores = heldout_log_likelihood(config, photos)
            print(f"K={components:3d} r={rank:3d}: held-out {sum(scores) / len(scores):+.4f} nats/dim "
                  f"(per photo {' '.join(f'{v:+.3f}' for v in scores)}) [{time.perf_counter() - start:.0f} s]",
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--select", action="store_true")
    parser.add_argument("--components", default="4,8,16,32")
    parser.add_argument("--ranks", default="8,16,32,64")
    args = parser.parse_args()
    if args.select:
        select(args)
        return

    config = PriorConfig(window=args.window, channels=args.channels)
    if args.rebuild:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            prior = load_prior(config, cache_dir=tmp, memory=False)
            print(f"cold cache build: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    prior = load_prior(config, memory=False)
    print(f"load from {default_cache_dir()}: {time.perf_counter() - start:.3f} s "
          f"({os.path.join(default_cache_dir(), config.key())}.npz)")
    denoiser = ReferenceDenoiser(window=args.window, channels=args.channels, prior=prior)
    print(f"prior: K={prior.components} components, head rank r={prior.rank}, d={config.dim}, "
          f"weights {[round(v, 3) for v in prior.log_weight.exp().tolist()]}")
    print(f"torch threads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    for dtype in (torch.float32, torch.float64):
        for n in (16, 64):
            shared = _time_call(denoiser, n, dtype, False)
            varied = _time_call(denoiser, n, dtype, True)
            print(f"call {str(dtype)[6:]:8s} N={n:3d}: {shared:6.2f} ms (one sigma), {varied:6.2f} ms (per-window sigmas)")

    sigmas = torch.cat([karras_sigmas(30)[:-1], torch.tensor([0.01])])
    curve = responsibility_entropy(denoiser, sigmas, n=1024)
    print(f"\nresponsibilities for x0 ~ prior, x = x0 + sigma eps (log K = {curve['log_k']:.3f} nats):")
    print("   sigma  entropy  max_resp  accuracy")
    for row in zip(*(curve[k].tolist() for k in ("sigma", "entropy", "max_resp", "accuracy"))):
        print("  {:6.3f}   {:6.3f}    {:6.3f}    {:6.3f}".format(*row))
    for threshold in (0.5, 0.9, 0.99):
        print(f"mean max responsibility >= {threshold}: from sigma = {commit_sigma(curve['sigma'], curve['max_resp'], threshold)}")

    steps = commitment_curve(denoiser, n=128, steps=30)
    print("\nEuler / Karras, 30 steps, 128 windows: distance of the x0 estimate from the final sample")
    print("  step   sigma  head(layout)  tail(texture)  entropy  agreement")
    for i, row in enumerate(zip(*(steps[k].tolist() for k in ("sigma", "head_change", "tail_change", "entropy", "agreement")))):
        print("  {:4d}  {:6.3f}     {:6.3f}        {:6.3f}      {:6.3f}    {:6.3f}".format(i, *row))


if __name__ == "__main__":
    main()

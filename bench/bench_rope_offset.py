"""Does telling a DiT window where it sits in the panorama help?

A window of a RoPE model sees its tokens at positions 0..w, as if it were a
whole image.  This measures, on ComfyUI's Flux class with random weights
(bench_sampler's flux-small: 128-d heads, Flux's axes), what offsetting the
image tokens' RoPE positions to the window's place changes:

* how much one window's prediction moves, and
* how much two neighbouring windows disagree on their overlap (what
  MultiDiffusion averages away) with and without the offsets.

The offset is put in with a forward pre-hook on the model's position
embedder, for this measurement only.

  python bench/bench_rope_offset.py [--std 0.06]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_sampler  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--std", type=float, default=0.06, help="std of the random weights")
    args = parser.parse_args()
    bench_sampler.boot(False)
    base = bench_sampler.build_flux("flux-small").model
    dm = base.diffusion_model
    torch.manual_seed(0)
    for p in dm.parameters():
        torch.nn.init.normal_(p, std=args.std)
    tokens, shift = 32, {"dx": 0}

    def offset_image_tokens(module, inputs):
        (ids,) = inputs
        ids = ids.clone()
        ids[:, tokens:, 2] += shift["dx"]  # text first, then the image tokens
        return (ids,)

    dm.pe_embedder.register_forward_pre_hook(offset_image_tokens)
    context, pooled = torch.randn(1, tokens, 4096), torch.randn(1, 768)
    height, width, window, stride = 32, 96, 32, 16  # latent pixels
    sigma = torch.tensor([0.7])
    x = torch.randn(1, 16, height, width)

    def predict(left, offset):
        shift["dx"] = left // 2 if offset else 0  # 2x2 patches
        with torch.inference_mode():
            return base.apply_model(x[..., left:left + window], sigma, c_crossattn=context, y=pooled,
                                    guidance=torch.tensor([3.5]))

    for offset in (False, True):
        gaps = []
        for left in range(0, width - window, stride):
            a, b = predict(left, offset)[..., stride:], predict(left + stride, offset)[..., :window - stride]
            gaps.append(((a - b).norm() / a.norm()).item())
        print(f"positions {'offset' if offset else 'per window'}: neighbours disagree on their overlap by "
              f"{sum(gaps) / len(gaps):.5e} (relative)")
    for left in (16, 32, 64):
        a, b = predict(left, False), predict(left, True)
        print(f"window at latent column {left}: offsetting its positions by {left // 2} tokens moves its "
              f"prediction by {((a - b).norm() / a.norm()).item():.2e} (relative)")


if __name__ == "__main__":
    main()

"""The panorama sampler of this checkout against the same sampler at another
git revision: the largest relative difference between the two latents, per
configuration, on the same random-weight model (real ComfyUI classes).

  python bench/compare_revision.py 4e7faff        # e.g. the last revision before the context handler

The other revision is checked out into a temporary git worktree, loaded as a
second pack beside this one, and removed afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CONFIGS = {  # name: (mode, cross_count, multiscale, latent height, sampler)
    "multidiffusion": ("multidiffusion", 1, False, 16, "dpmpp_2m"),
    "twindiffusion, cross sampling": ("twindiffusion", 2, False, 16, "dpmpp_2m"),
    "feathered, cross sampling": ("twindiffusion_feathered", 2, False, 16, "dpmpp_2m"),
    "multi-scale, cfg 1": ("twindiffusion", 1, True, 32, "euler"),
}


def load_pack(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py", submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision")
    parser.add_argument("--arch", default="tiny-sd15")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import bench_sampler as bench
    ours = bench.boot(False)
    with tempfile.TemporaryDirectory() as tmp:
        other_path = Path(tmp) / "pack"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(other_path), args.revision],
                       check=True)
        try:
            other = load_pack("comfyui_panorama_diffusion_other", other_path)
            import torch
            model = bench.build_model(args.arch, False)
            cond = ([[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1)), {}]],
                    [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(2)), {}]])
            for name, (mode, cross, msd, height, sampler_name) in CONFIGS.items():
                cfg = 1.0 if msd else 5.0
                outs = []
                for pack in (other, ours):
                    nodes = bench.pack_nodes(pack)
                    plan = bench.call(nodes["CrossSamplingScheduler"], 128, 32, cross, 0, False)[0]
                    multiscale = bench.call(nodes["MultiScaleGuidance"], 2, 10.0, "cosine", "bilinear")[0] \
                        if msd else None
                    latent = {"samples": torch.zeros(1, 4, height, 48)}
                    with torch.inference_mode():
                        outs.append(bench.call(
                            nodes["TwinCropFusionSampler"], model, 3, args.steps, cfg, sampler_name, "karras",
                            cond[0], cond[1], latent, 1.0, mode, 1.0, 0.5, 4, plan, multiscale)[0]["samples"])
                gap = float((outs[1] - outs[0]).abs().max() / outs[0].abs().max())
                print(f"{name:32} max relative difference {gap:.1e}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(other_path)], check=True)


if __name__ == "__main__":
    main()

"""MultiDiffusion against the peer, ComfyUI-TiledDiffusion, on the same
windows, model and sampler: the largest difference between the two latents,
and the wall time of each over the other and over the sum of its own model
calls (timed by a DIFFUSION_MODEL wrapper, the same for both), medians of
interleaved repeats.

  git clone https://github.com/shiimizu/ComfyUI-TiledDiffusion /tmp/ComfyUI-TiledDiffusion
  python bench/bench_peer.py --peer /tmp/ComfyUI-TiledDiffusion

Window placement is the same for both when (width - window) is a multiple of
the stride (window - overlap); the defaults are chosen so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class ModelTimer:
    """DIFFUSION_MODEL wrapper: the time spent in the model itself."""

    def __init__(self, sync):
        self.sync, self.seconds, self.calls = sync, 0.0, 0

    def __call__(self, executor, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        out = executor(*args, **kwargs)
        self.sync()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def load_peer(path: Path):
    spec = importlib.util.spec_from_file_location("peer_tiled_diffusion", path / "__init__.py",
                                                  submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.NODE_CLASS_MAPPINGS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, required=True, help="a ComfyUI-TiledDiffusion checkout")
    parser.add_argument("--arch", default="tiny-sd15")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    import bench_sampler as bench
    pack = bench.boot(args.gpu)
    peer = load_peer(args.peer.expanduser().resolve())
    import torch
    import comfy.model_management
    import comfy.patcher_extension
    import nodes
    device = comfy.model_management.get_torch_device()
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    model = bench.build_model(args.arch, args.gpu)
    fusion = sys.modules["comfyui_panorama_diffusion.fusion"]
    plan = fusion.WindowPlan(args.window // 8, args.stride // 8, 1, None, False)
    cond = ([[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1)), {}]],
            [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(2)), {}]])
    latent = {"samples": torch.zeros(1, 4, args.height // 8, args.width // 8)}

    def timed(m):
        timer = ModelTimer(sync)
        m = m.clone()
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "bench", timer)
        return m, timer

    def ours():
        m, timer = timed(model)
        sampler = bench.pack_nodes(pack)["TwinCropFusionSampler"]
        out = bench.call(sampler, m, 0, args.steps, 5.0, "euler", "normal", cond[0], cond[1], latent, 1.0,
                         "multidiffusion", 1.0, 0.5, args.view_batch_size, plan, None)[0]["samples"]
        return out, timer

    def theirs():
        tiled = peer["TiledDiffusion"]().apply(model, "MultiDiffusion", args.window, args.window,
                                               args.window - args.stride, args.view_batch_size)[0]
        m, timer = timed(tiled)
        out = nodes.common_ksampler(m, 0, args.steps, 5.0, "euler", "normal", cond[0], cond[1], latent)[0]["samples"]
        return out, timer

    runs = {"ours": [], "peer": []}
    with torch.inference_mode():
        ours(), theirs()  # warm-up
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            for name, run in (("ours", ours), ("peer", theirs)):
                sync()
                start = time.perf_counter()
                out, timer = run()
                sync()
                runs[name].append((time.perf_counter() - start, timer.seconds, timer.calls, out))
    wall = {name: statistics.median(r[0] for r in rs) for name, rs in runs.items()}
    floor = {name: statistics.median(r[0] / r[1] for r in rs) for name, rs in runs.items()}
    a, b = runs["ours"][0][3], runs["peer"][0][3]
    figures = {
        "device": str(device), "arch": args.arch, "size": f"{args.height}x{args.width}", "window": args.window,
        "stride": args.stride, "view_batch_size": args.view_batch_size, "steps": args.steps,
        "repeats": args.repeats,
        "max_abs_difference": float((a - b).abs().max()), "max_rel_difference": float((a - b).abs().max() / b.abs().max()),
        "ours_over_peer_time": wall["ours"] / wall["peer"],
        "ours_over_floor": floor["ours"], "peer_over_floor": floor["peer"],
        "model_calls": {name: rs[0][2] for name, rs in runs.items()},
        "seconds": wall,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

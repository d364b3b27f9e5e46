"""Benchmark of the panorama sampler on real ComfyUI model classes with random
weights: ratios measured side by side in one run (the machine is noisy).

  python bench/bench_sampler.py                  # CPU, reduced SD1.5 architecture
  python bench/bench_sampler.py --arch sd15 --gpu --width 2048 --height 512 --steps 50
  python bench/bench_sampler.py --arch flux-small --width 1024 --height 256 --window 256 --stride 64 --msd-height 512

Reports, for the same windows:
  twin / md      TwinCropFusionSampler (Crop Fusion) over plain MultiDiffusion
  twin / floor   the sampler's wall time over the summed time of its model calls
  cross 2x / 1x  c = 2 at twice the view stride over c = 1 at the base stride
                 (window evaluations and time)
  msd / md       Multi-Scale Guidance over plain MultiDiffusion (time, peak memory)
  ours / ref     our fusion core over the paper's reference loop (windows one at
                 a time, as in its code) driving the same UNet
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMFYUI = Path(os.environ.get("COMFYUI_PATH", "~/ComfyUI")).expanduser()

ARCHS = {
    # SD1.5's blocks (CLIP-L context, cross-attention, 64-channel heads) at 128
    # channels and two levels deep: a CPU runs a step in seconds
    "tiny-sd15": dict(image_size=32, in_channels=4, out_channels=4, model_channels=128, num_res_blocks=[1, 1],
                      channel_mult=[1, 2], transformer_depth=[1, 1], transformer_depth_output=[1, 1, 1, 1],
                      transformer_depth_middle=1, context_dim=768, num_head_channels=64,
                      use_linear_in_transformer=False, use_spatial_transformer=True),
    # SD1.5's real UNet (860M parameters): for a GPU
    "sd15": dict(image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[2] * 4,
                 channel_mult=[1, 2, 4, 4], transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                 transformer_depth_output=[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1], transformer_depth_middle=1,
                 context_dim=768, num_heads=8, num_head_channels=-1, use_linear_in_transformer=False,
                 use_spatial_transformer=True, legacy=False),
}

# DiTs: ComfyUI's Flux class (double and single stream blocks, RoPE, RMSNorm
# q/k norms, modulation), T5-XXL and CLIP-L widths for the conditioning
FLUX_ARCHS = {
    "flux-small": dict(hidden_size=512, num_heads=4, depth=2, depth_single_blocks=4),  # 128-d heads as Flux
    "flux": dict(hidden_size=3072, num_heads=24, depth=19, depth_single_blocks=38),  # Flux.1-dev: for a GPU
}
FLUX_COMMON = dict(image_model="flux", in_channels=16, out_channels=16, patch_size=2, vec_in_dim=768,
                   context_in_dim=4096, mlp_ratio=4.0, axes_dim=[16, 56, 56], theta=10000, qkv_bias=True,
                   guidance_embed=True)


def boot(gpu: bool):
    sys.path.insert(0, str(COMFYUI))
    import comfy.cli_args
    comfy.cli_args.args.cpu = not gpu
    import nodes  # noqa: F401  ComfyUI's
    spec = importlib.util.spec_from_file_location("comfyui_panorama_diffusion", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pack
    spec.loader.exec_module(pack)
    return pack


def pack_nodes(pack) -> dict:
    """Node id -> class, for this revision of the pack (V3, registered by
    comfy_entrypoint) or an older one (V1, NODE_CLASS_MAPPINGS at the root)."""
    return getattr(pack, "NODE_CLASS_MAPPINGS", None) or pack.nodes.NODE_CLASS_MAPPINGS


def call(cls, *args) -> tuple:
    """A node's outputs, whichever schema it is written in."""
    if hasattr(cls, "define_schema"):
        return tuple(cls.execute(*args).result)
    return getattr(cls(), cls.FUNCTION)(*args)


def build_flux(arch: str):
    import torch
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models
    torch.manual_seed(0)
    base = comfy.supported_models.Flux({**FLUX_COMMON, **FLUX_ARCHS[arch]}).get_model({})
    for p in base.diffusion_model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return comfy.model_patcher.ModelPatcher(base, comfy.model_management.get_torch_device(),
                                            comfy.model_management.unet_offload_device())


def build_model(arch: str, gpu: bool):
    import torch
    import comfy.ops
    import comfy.sd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    if arch in FLUX_ARCHS:
        return build_flux(arch)
    config = ARCHS[arch]
    torch.manual_seed(0)
    unet = UNetModel(**config, dtype=torch.float32, device="cpu", operations=comfy.ops.manual_cast)
    for p in unet.parameters():
        torch.nn.init.normal_(p, std=0.02)
    if arch != "sd15":
        claim_reduced_sd15()
    return comfy.sd.load_diffusion_model_state_dict(dict(unet.state_dict()))


def claim_reduced_sd15():
    """ComfyUI's SD15 config insists on 320 channels; a subclass without that
    constraint, first in the list, lets the reduced UNet load as SD1.5 (its
    model class, sampling and latent format stay ComfyUI's)."""
    import comfy.supported_models as sm
    if getattr(sm.models[0], "bench_reduced", False):
        return
    relaxed = {k: v for k, v in sm.SD15.unet_config.items() if k not in ("model_channels", "transformer_depth")}
    sm.models.insert(0, type("BenchReducedSD15", (sm.SD15,), {"unet_config": relaxed, "bench_reduced": True}))


class ModelCallTimer:
    """A unet wrapper (ComfyUI calls it per window batch, under the panorama's
    context handler): times every model call (with a device sync) and counts
    window evaluations."""

    def __init__(self, sync):
        self.sync, self.seconds, self.evaluations, self.calls = sync, 0.0, 0, 0

    def __deepcopy__(self, memo):
        # ModelPatcher.clone() deep-copies model_options; the counts must
        # stay with the one timer the benchmark reads
        return self

    def __call__(self, apply_model, args):
        self.sync()
        start = time.perf_counter()
        out = apply_model(args["input"], args["timestep"], **args["c"])
        self.sync()
        self.seconds += time.perf_counter() - start
        self.evaluations += args["input"].shape[0] // len(args["cond_or_uncond"])
        self.calls += 1
        return out


def run_sampler(pack, model, latent, cond, steps, mode, plan, multiscale, sync, view_batch_size):
    import torch
    timer = ModelCallTimer(sync)
    timed = model.clone()
    timed.set_model_unet_function_wrapper(timer)
    sampler = pack_nodes(pack)["TwinCropFusionSampler"]
    sync()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    call(sampler, timed, 0, steps, 5.0, "euler", "normal", cond[0], cond[1], latent, 1.0, mode, 1.0, 0.5,
         view_batch_size, plan, multiscale)
    sync()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return dict(wall=wall, model=timer.seconds, evaluations=timer.evaluations, calls=timer.calls, peak_mib=peak)


def reference_loop(model, x, sigmas, window, stride, cond, lam=1.0, tau=0.5):
    """The paper's reference algorithm (its panorama.py, 1-D, c = 1), windows
    one at a time, on the same ComfyUI model and Euler steps."""
    import torch
    base = model.model
    steps = len(sigmas) - 1
    starts = list(range(0, x.shape[-1] - window + 1, stride))
    context = torch.cat(cond)
    for i in range(steps):
        sigma = sigmas[i]
        value, count = torch.zeros_like(x), torch.zeros_like(x)
        previous = None
        for idx, start in enumerate(starts):
            view = x[..., start:start + window].repeat(2, 1, 1, 1)
            d = base.apply_model(view, sigma.repeat(2), c_crossattn=context)
            d = d[1:] + 5.0 * (d[:1] - d[1:])
            if idx > 0 and i < int(tau * steps):
                overlap = window - stride
                d[..., :overlap] = (previous[..., stride:] + lam * d[..., :overlap]) / (1 + lam)
            value[..., start:start + window] += d
            count[..., start:start + window] += 1
            previous = d
        denoised = value / count
        x = x + (x - denoised) / sigma * (sigmas[i + 1] - sigma)
    return x


def ours_on_same_unet(pack, model, x, sigmas, window, stride, cond, view_batch_size):
    import torch
    fusion = sys.modules["comfyui_panorama_diffusion.fusion"]
    base = model.model
    context = torch.cat(cond)
    denoiser = fusion.PanoramaDenoiser(fusion.WindowPlan(window, stride, 1, None, False),
                                       fusion.FusionSettings(view_batch_size=view_batch_size))

    def model_fn(xw, sw, views, ids):
        n = xw.shape[0]
        both = base.apply_model(xw.repeat(2, 1, 1, 1), sw.repeat(2), c_crossattn=context.repeat_interleave(n, 0))
        return both[n:] + 5.0 * (both[:n] - both[n:])

    steps = len(sigmas) - 1
    for i in range(steps):
        sigma = sigmas[i]
        d = denoiser(model_fn, x, sigma.expand(1), i, steps)
        x = x + (x - d) / sigma * (sigmas[i + 1] - sigma)
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="tiny-sd15", choices=[*ARCHS, *FLUX_ARCHS])
    parser.add_argument("--gpu", action="store_true", help="let ComfyUI use the GPU")
    parser.add_argument("--width", type=int, default=512, help="panorama width in pixels")
    parser.add_argument("--height", type=int, default=128, help="panorama height in pixels")
    parser.add_argument("--window", type=int, default=128, help="window size in pixels")
    parser.add_argument("--stride", type=int, default=32, help="base view stride in pixels")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--msd-height", type=int, default=256, help="panorama height for the MSD comparison")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    pack = boot(args.gpu)
    import torch
    import comfy.model_management
    if not args.gpu:
        torch.set_num_threads(os.cpu_count() or 1)
    device = comfy.model_management.get_torch_device()
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    model = build_model(args.arch, args.gpu)
    fusion = sys.modules["comfyui_panorama_diffusion.fusion"]
    plan = lambda stride, c: fusion.WindowSettings(args.window, stride, c, 0, False)
    dit = args.arch in FLUX_ARCHS
    channels = 16 if dit else 4
    latent = {"samples": torch.zeros(1, channels, args.height // 8, args.width // 8)}
    tall = {"samples": torch.zeros(1, channels, args.msd_height // 8, args.width // 8)}
    if dit:  # T5 tokens and CLIP's pooled vector
        cond = tuple([[torch.randn(1, 256, 4096), {"pooled_output": torch.randn(1, 768)}]] for _ in range(2))
    else:
        cond = ([[torch.randn(1, 77, 768), {}]], [[torch.randn(1, 77, 768), {}]])
    msd = fusion.MultiScaleSettings()
    configs = {
        "md": (latent, "multidiffusion", plan(args.stride, 1), None),
        "twin": (latent, "twindiffusion", plan(args.stride, 1), None),
        "cross1x": (latent, "twindiffusion", plan(args.stride, 1), None),
        "cross2x": (latent, "twindiffusion", plan(2 * args.stride, 2), None),
        "md_tall": (tall, "multidiffusion", plan(args.stride, 1), None),
        "msd_tall": (tall, "multidiffusion", plan(args.stride, 1), msd),
    }
    with torch.inference_mode():  # as in ComfyUI's executor
        run_sampler(pack, model, latent, cond, 1, "twindiffusion", plan(args.stride, 1), None, sync, 4)  # warm-up
        results = {name: [] for name in configs}
        for _ in range(args.repeats):  # interleaved, so drift hits every config alike
            for name, (lat, mode, p, ms) in configs.items():
                results[name].append(run_sampler(pack, model, lat, cond, args.steps, mode, p, ms, sync,
                                                 args.view_batch_size))
        ref_t, ours_t, ref_gap = [float("nan")], [float("nan")], None
        if not dit:  # the reference loop drives a UNet
            sigmas = model.get_model_object("model_sampling").sigmas
            schedule = torch.linspace(float(sigmas[-1]), float(sigmas[0]), args.steps + 1).flip(0)
            schedule[-1] = 0
            x = torch.randn(1, 4, args.height // 8, args.width // 8) * schedule[0]
            ref_t, ours_t = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                ref = reference_loop(model, x, schedule, args.window // 8, args.stride // 8, [c[0][0] for c in cond])
                sync()
                ref_t.append(time.perf_counter() - start)
                start = time.perf_counter()
                ours = ours_on_same_unet(pack, model, x, schedule, args.window // 8, args.stride // 8,
                                         [c[0][0] for c in cond], args.view_batch_size)
                sync()
                ours_t.append(time.perf_counter() - start)
            ref_gap = ((ours - ref).abs().max() / ref.abs().max()).item()

    med = lambda name, key: statistics.median(r[key] for r in results[name])
    figures = {
        "device": str(device), "arch": args.arch, "size": f"{args.height}x{args.width}", "window": args.window,
        "stride": args.stride, "steps": args.steps, "repeats": args.repeats,
        "twin_over_md": med("twin", "wall") / med("md", "wall"),
        "twin_over_floor": med("twin", "wall") / med("twin", "model"),
        "md_over_floor": med("md", "wall") / med("md", "model"),
        "cross2x_over_1x_evaluations": med("cross2x", "evaluations") / med("cross1x", "evaluations"),
        "cross2x_over_1x_time": med("cross2x", "wall") / med("cross1x", "wall"),
        "msd_over_md_time": med("msd_tall", "wall") / med("md_tall", "wall"),
        "msd_size": f"{args.msd_height}x{args.width}",
        "ours_over_reference_time": statistics.median(ours_t) / statistics.median(ref_t),
        "ours_vs_reference_max_rel_diff": ref_gap,
        "seconds": {name: med(name, "wall") for name in configs},
        "evaluations": {name: med(name, "evaluations") for name in configs},
    }
    if device.type == "cuda":
        figures["msd_over_md_peak_memory"] = med("msd_tall", "peak_mib") / med("md_tall", "peak_mib")
        figures["peak_mib"] = {name: med(name, "peak_mib") for name in configs}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Peak memory of the panorama sampler: Multi-Scale Guidance against plain
MultiDiffusion, and how it grows with view_batch_size and with the panorama.

  python bench/bench_memory.py              # CPU: peak resident memory
  python bench/bench_memory.py --gpu        # CUDA: torch.cuda.max_memory_allocated
  python bench/bench_memory.py --estimate   # ComfyUI's estimate for model loading, SDXL 1024x8192
  python bench/bench_memory.py --estimate-video   # the same for a 2560x704x33 Wan 2.2 5B video

ComfyUI decides how much of a model to keep on the GPU from the memory it
expects sampling to need; the pack tells it the latent of one window batch.
--estimate prints that figure for the panorama and for the window batch the
pack reports (SDXL, ComfyUI's own config and model class on the meta device,
so no weights are needed).

Each configuration runs in a fresh process (the CPU allocator keeps what it
once took, so one process cannot measure two peaks).  On the CPU a thread
samples the resident set every 2 ms while the sampler runs; the figure is the
peak above the resident set just before sampling (model loaded, warm-up
done), i.e. what sampling itself adds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class PeakSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = resident_mib(), True

    def run(self):
        while self.running:
            self.peak = max(self.peak, resident_mib())
            time.sleep(0.002)

    def stop(self) -> float:
        self.running = False
        self.join()
        return max(self.peak, resident_mib())


def measure(args) -> dict:
    """One configuration, in this process."""
    sys.path.insert(0, str(HERE))
    import bench_sampler as bench
    pack = bench.boot(args.gpu)
    import torch
    import comfy.model_management
    device = comfy.model_management.get_torch_device()
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    model = bench.build_model(args.arch, args.gpu)
    fusion = sys.modules["comfyui_panorama_diffusion.fusion"]
    plan = fusion.WindowPlan(args.window // 8, args.stride // 8, 1, None, False)
    cond = ([[torch.randn(1, 77, 768), {}]], [[torch.randn(1, 77, 768), {}]])
    latent = {"samples": torch.zeros(1, 4, args.height // 8, args.width // 8)}
    multiscale = fusion.MultiScaleSettings() if args.method == "msd" else None
    with torch.inference_mode():
        small = {"samples": torch.zeros(1, 4, args.window // 8, args.window // 8)}
        bench.run_sampler(pack, model, small, cond, 1, "multidiffusion", plan, None, sync, 1)  # warm-up
        before = resident_mib()
        sampler = PeakSampler()
        sampler.start()
        result = bench.run_sampler(pack, model, latent, cond, args.steps, "multidiffusion", plan, multiscale, sync,
                                   args.view_batch_size)
        peak = sampler.stop()
    out = {"method": args.method, "size": f"{args.height}x{args.width}", "view_batch_size": args.view_batch_size,
           "seconds": result["wall"]}
    if result["peak_mib"] is not None:
        out["peak_mib"] = result["peak_mib"]
    else:
        out["peak_mib"] = peak - before
    return out


SDXL_UNET = dict(  # SDXL's UNet as ComfyUI detects it from sd_xl_base_1.0
    use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
    num_classes="sequential", adm_in_channels=2816, in_channels=4, model_channels=320, num_res_blocks=[2, 2, 2],
    transformer_depth=[0, 0, 2, 2, 10, 10], channel_mult=[1, 2, 4], transformer_depth_middle=10,
    use_linear_in_transformer=True, context_dim=2048, num_head_channels=64,
    transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10], use_temporal_attention=False,
    use_temporal_resblock=False)


def told_estimates(family: str, unet: dict, windows: dict, whole: list, view_batch_size: int) -> tuple:
    """(the window batch ComfyUI is told, its estimate told the whole latent,
    its estimate told that batch), in bytes, for ComfyUI's ``family`` with
    ``unet`` built on the meta device (no weights), patched with ``windows``."""
    sys.path.insert(0, str(HERE))
    import bench_sampler as bench
    bench.boot(False)
    import torch
    import comfy.model_patcher
    import comfy.sampler_helpers
    import comfy.supported_models
    adapter = sys.modules["comfyui_panorama_diffusion.nodes.adapter"]
    fusion = sys.modules["comfyui_panorama_diffusion.fusion"]
    model = getattr(comfy.supported_models, family)(dict(unet)).get_model({}, device="meta")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"),
                                               offload_device=torch.device("cpu"))
    panorama = adapter.patch_model(patcher, fusion.WindowSettings(**windows),
                                   fusion.FusionSettings(view_batch_size=view_batch_size))
    conds = {"positive": [{"model_conds": {}}], "negative": [{"model_conds": {}}]}
    batch = panorama.model_options["context_handler"].window_batch_shape(whole)
    before, _ = comfy.sampler_helpers.estimate_memory(patcher, whole, conds)
    after, _ = comfy.sampler_helpers.estimate_memory(patcher, batch, conds)
    return batch, before, after


def estimate(width: int, height: int, view_batch_size: int) -> dict:
    """ComfyUI's memory estimate for sampling an SDXL panorama, as told the
    whole latent and as told the pack's window batch."""
    whole = [1, 4, height // 8, width // 8]
    batch, before, after = told_estimates("SDXL", SDXL_UNET, dict(cross_count=2), whole, view_batch_size)
    return {"model": "SDXL", "size": f"{height}x{width}", "view_batch_size": view_batch_size,
            "latent_told_before": whole, "latent_told_after": batch,
            "estimate_mib_before": before / 2**20, "estimate_mib_after": after / 2**20}


# Wan 2.2 TI2V 5B as ComfyUI's detection reads it from the checkpoint (48-channel latent at 16x, 1x2x2 patches).
WAN22_5B = dict(image_model="wan2.1", model_type="t2v", dim=3072, in_dim=48, out_dim=48, num_heads=24,
                num_layers=30, ffn_dim=14336, freq_dim=256, text_dim=4096, patch_size=(1, 2, 2))


def estimate_video(width: int, height: int, frames: int, window: int, view_batch_size: int) -> dict:
    """ComfyUI's memory estimate for a wide Wan 2.2 5B video, as told the
    whole latent and as told the pack's window batch (windows of every
    frame)."""
    whole = [1, 48, (frames - 1) // 4 + 1, height // 16, width // 16]
    batch, before, after = told_estimates("WAN22_T2V", WAN22_5B, dict(window=window, cross_count=1), whole,
                                          view_batch_size)
    return {"model": "Wan 2.2 TI2V 5B", "size": f"{width}x{height}x{frames}", "window": window,
            "view_batch_size": view_batch_size, "latent_told_before": whole, "latent_told_after": batch,
            "estimate_mib_before": before / 2**20, "estimate_mib_after": after / 2**20}


CONFIGS = [  # (method, width, view_batch_size)
    ("md", 512, 4), ("msd", 512, 4),
    ("md", 1024, 4), ("msd", 1024, 4),
    ("msd", 512, 1), ("msd", 512, 8),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="tiny-sd15")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--estimate", action="store_true", help="ComfyUI's memory estimate, SDXL 1024x8192")
    parser.add_argument("--estimate-video", action="store_true",
                        help="ComfyUI's memory estimate, Wan 2.2 TI2V 5B, 2560x704, 33 frames, 1280 px windows")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "WIDTH", "VIEW_BATCH_SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.estimate_video:
        rows = [estimate_video(2560, 704, 33, 1280, vbs) for vbs in (1, 2)]
        for row in rows:
            print(f"{row['model']} {row['size']}, {row['window']} px windows, view_batch_size "
                  f"{row['view_batch_size']}: ComfyUI's estimate {row['estimate_mib_before']:.0f} MiB for the video "
                  f"{row['latent_told_before']}, {row['estimate_mib_after']:.0f} MiB for the window batch "
                  f"{row['latent_told_after']}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    if args.estimate:
        rows = [estimate(8192, 1024, vbs) for vbs in (1, 4, 8)]
        for row in rows:
            print(f"SDXL {row['size']}, view_batch_size {row['view_batch_size']}: ComfyUI's estimate "
                  f"{row['estimate_mib_before']:.0f} MiB for the panorama {row['latent_told_before']}, "
                  f"{row['estimate_mib_after']:.0f} MiB for the window batch {row['latent_told_after']}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    if args.one:
        args.method, args.width, args.view_batch_size = args.one[0], int(args.one[1]), int(args.one[2])
        print("RESULT " + json.dumps(measure(args)), flush=True)
        return
    rows = []
    for method, width, vbs in CONFIGS:
        command = [sys.executable, __file__, "--one", method, str(width), str(vbs), "--arch", args.arch,
                   "--height", str(args.height), "--window", str(args.window), "--stride", str(args.stride),
                   "--steps", str(args.steps)] + (["--gpu"] if args.gpu else [])
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        row = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
        print(f"{row['method']:4} {row['size']:9} view_batch_size {row['view_batch_size']}: "
              f"peak +{row['peak_mib']:.0f} MiB, {row['seconds']:.1f} s", flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

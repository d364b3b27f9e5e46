"""A check that the panorama sampling path stays at the floor: each window
plan's run costs no more than the model calls it makes, and Twin + Cross
Sampling at twice the stride costs no more than 0.56x the peer's
(ComfyUI-TiledDiffusion) MultiDiffusion at the base stride.

Plans, through KSampler (Panorama) in one ComfyUI host (``COMFYUI_PATH``):
MultiDiffusion and TwinDiffusion at the base stride, Twin + Cross Sampling
c = 2 at twice the stride, shifted windows (golden, side by side), shifted
windows with a quarter-window overlap and blend = feathered, and sphere
views (Panorama Windows (Sphere), defaults) on a 2:1 latent; the peer's
MultiDiffusion + ComfyUI's KSampler at the base stride; ComfyUI's plain
KSampler on one window.

The model: SD1.5's blocks at reduced width (``bench_sampler.py``'s
``tiny-sd15``: 128 channels, two levels, CLIP-L context, random weights) at
SD1.5's native 512 px windows (64x64 latent), cfg 5 (both branches, 8
window samples per call of 4 windows).  A call then takes about a second
on one CPU thread, so the model dominates a step as it does in real use
(SD1.5's full UNet would take ~12 s a window here; at bench_sampler's
128 px windows a call is ~30 ms and ComfyUI's own per-call work becomes a
visible part of it).

Times: every run is timed as a whole and through one DIFFUSION_MODEL
wrapper around every model call (the model alone), both as wall time and
as the process's CPU time (one torch thread: CPU time leaves out the time
the thread waits for a core on a shared machine; the check uses it, wall
time is printed beside it).  The pack's overhead is what a run spends
outside its model calls, less what ComfyUI's own sampler spends outside the
model in a plain KSampler run on one window with the same steps, sampler
and cfg (noise, sigmas, the sampler's steps, one calc_cond_batch a step):

    overhead = (run - model calls - (plain run - plain model calls)) / model calls

ComfyUI's calc_cond_batch work for a plan's further window batches is left
in the overhead (charged to the pack).  Medians over interleaved repeats.
Exits 1 when a plan's overhead exceeds 3 % or Twin + Cross at 2x over the
peer's MultiDiffusion exceeds 0.56 (that check is skipped, saying so,
without a peer checkout).

  export COMFYUI_PATH=~/ComfyUI-0.33; py=~/.cache/comfy-panorama/venv-comfyui-0.33.0/bin/python
  $py bench/check_floor.py --peer /tmp/ComfyUI-TiledDiffusion --json out/floor-0.33.json --md out/floor-0.33.md
  export COMFYUI_PATH=~/ComfyUI; py=~/.cache/comfy-panorama/venv-comfyui-0.3.64/bin/python
  $py bench/check_floor.py --peer /tmp/ComfyUI-TiledDiffusion --json out/floor-0.3.64.json --md out/floor-0.3.64.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

OVERHEAD_LIMIT, PEER_LIMIT = 0.03, 0.56


class ModelTimer:
    """DIFFUSION_MODEL wrapper: wall and CPU time inside the model."""

    def __init__(self, sync):
        self.sync, self.wall, self.cpu, self.calls, self.samples = sync, 0.0, 0.0, 0, 0

    def __deepcopy__(self, memo):  # a clone keeps the one timer the check reads
        return self

    def __call__(self, executor, *args, **kwargs):
        self.sync()
        wall, cpu = time.perf_counter(), time.process_time()
        out = executor(*args, **kwargs)
        self.sync()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.calls += 1
        self.samples += args[0].shape[0]
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, default=Path("/tmp/ComfyUI-TiledDiffusion"))
    parser.add_argument("--arch", default="tiny-sd15")
    parser.add_argument("--window", type=int, default=512, help="px")
    parser.add_argument("--width", type=int, default=2048, help="crop plans' panorama, px")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--stride", type=int, default=128, help="base view stride, px (window / 4)")
    parser.add_argument("--sphere-height", type=int, default=1408, help="sphere views' 2:1 latent height, px")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="normal")
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="plan keys (plain is always run)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    args = parser.parse_args(argv)

    import bench_sampler as bench
    pack = bench.boot(False)
    import torch
    import comfy.model_management
    import comfy.patcher_extension
    import nodes
    if args.threads:
        torch.set_num_threads(args.threads)
    peer = None
    if (args.peer / "__init__.py").exists():
        import bench_peer
        peer = bench_peer.load_peer(args.peer.expanduser().resolve())
    device = comfy.model_management.get_torch_device()
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    model = bench.build_model(args.arch, False)
    pn = bench.pack_nodes(pack)
    g = torch.Generator().manual_seed(0)
    cond = ([[torch.randn(1, 77, 768, generator=g), {}]], [[torch.randn(1, 77, 768, generator=g), {}]])
    h, w, win, s = args.height // 8, args.width // 8, args.window // 8, args.stride // 8
    strip = {"samples": torch.zeros(1, 4, h, w)}
    sphere_latent = {"samples": torch.zeros(1, 4, args.sphere_height // 8, args.sphere_height // 4)}
    one = {"samples": torch.zeros(1, 4, win, win)}

    def timed(m):
        timer = ModelTimer(sync)
        m = m.clone()
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "check_floor", timer)
        return m, timer

    def ours(mode, windows, latent):
        def run():
            m, timer = timed(model)
            bench.call(pn["TwinCropFusionSampler"], m, 0, args.steps, args.cfg, args.sampler, args.scheduler,
                       cond[0], cond[1], latent, 1.0, mode, 1.0, 0.5, args.view_batch_size, windows, None)
            return timer
        return run

    def plain():
        m, timer = timed(model)
        nodes.common_ksampler(m, 0, args.steps, args.cfg, args.sampler, args.scheduler, cond[0], cond[1], one)
        return timer

    def peer_md():
        tiled = peer["TiledDiffusion"]().apply(model, "MultiDiffusion", args.window, args.window,
                                               args.window - args.stride, args.view_batch_size)[0]
        m, timer = timed(tiled)
        nodes.common_ksampler(m, 0, args.steps, args.cfg, args.sampler, args.scheduler, cond[0], cond[1], strip)
        return timer

    crops = lambda stride, c=1, blend="mean": bench.call(pn["CrossSamplingScheduler"], args.window, stride, c, 0,
                                                          False, blend)[0]
    shifted = lambda stride, blend: bench.call(pn["PanoramaShiftedWindows"], args.window, stride, "golden", 0, False,
                                               blend)[0]
    sphere = bench.call(pn["PanoramaSphereWindows"], args.window, 0.0, 0.25, 0, "golden", 2)[0]
    q = args.window // 4
    plans = {
        "md": (f"MultiDiffusion, stride {args.stride}", ours("multidiffusion", crops(args.stride), strip)),
        "twin": (f"TwinDiffusion, stride {args.stride}", ours("twindiffusion", crops(args.stride), strip)),
        "cross2x": (f"Twin + Cross Sampling c=2, stride {2 * args.stride}",
                    ours("twindiffusion", crops(2 * args.stride, 2), strip)),
        "shift": ("shifted, golden, side by side", ours("twindiffusion", shifted(0, "mean"), strip)),
        "shift_feathered": (f"shifted, golden, stride {args.window - q}, feathered",
                            ours("twindiffusion", shifted(args.window - q, "feathered"), strip)),
        "sphere": (f"sphere views (90 degrees, overlap 0.25, golden), 2:1 latent "
                   f"{args.sphere_height}x{2 * args.sphere_height} px",
                   ours("twindiffusion", sphere, sphere_latent)),
    }
    if args.only:
        plans = {k: v for k, v in plans.items() if k in args.only}
    if peer is not None:
        plans["peer_md"] = (f"peer MultiDiffusion, overlap {args.window - args.stride} (stride {args.stride})", peer_md)
    runs = {"plain": ("ComfyUI KSampler, one window", plain), **plans}
    results = {key: [] for key in runs}
    started = time.perf_counter()
    with torch.inference_mode():
        for key, (_, run) in runs.items():  # warm-up
            run()
        for repeat in range(args.repeats):
            keys = list(runs) if repeat % 2 == 0 else list(runs)[::-1]
            for key in keys:
                sync()
                wall, cpu = time.perf_counter(), time.process_time()
                timer = runs[key][1]()
                sync()
                results[key].append({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                                     "model_wall": timer.wall, "model_cpu": timer.cpu, "calls": timer.calls,
                                     "samples": timer.samples})
                r = results[key][-1]
                print(f"repeat {repeat} {key}: {r['wall']:.2f} s wall / {r['model_wall']:.2f} model, "
                      f"{r['cpu']:.2f} s CPU / {r['model_cpu']:.2f} model, {r['calls']} calls", file=sys.stderr,
                      flush=True)

    med = lambda key, field: statistics.median(r[field] for r in results[key])
    comfy_cpu = med("plain", "cpu") - med("plain", "model_cpu")
    comfy_wall = med("plain", "wall") - med("plain", "model_wall")
    rows, failures = [], []
    for key, (label, _) in runs.items():
        row = {"key": key, "label": label, "calls": results[key][0]["calls"],
               "window_samples": results[key][0]["samples"],
               **{f: med(key, f) for f in ("wall", "cpu", "model_wall", "model_cpu")}}
        row["over_model_cpu"] = row["cpu"] / row["model_cpu"]
        row["over_model_wall"] = row["wall"] / row["model_wall"]
        row["overhead_cpu"] = (row["cpu"] - row["model_cpu"] - comfy_cpu) / row["model_cpu"]
        row["overhead_wall"] = (row["wall"] - row["model_wall"] - comfy_wall) / row["model_wall"]
        row["per_repeat_overhead_cpu"] = [(r["cpu"] - r["model_cpu"] - comfy_cpu) / r["model_cpu"]
                                          for r in results[key]]
        if key in plans and not key.startswith("peer") and row["overhead_cpu"] > OVERHEAD_LIMIT:
            failures.append(f"{label}: {row['overhead_cpu']:.1%} over its model calls (limit "
                            f"{OVERHEAD_LIMIT:.0%})")
        rows.append(row)
    peer_ratio = None
    if peer is not None and "cross2x" in plans:
        peer_ratio = {"cpu": med("cross2x", "cpu") / med("peer_md", "cpu"),
                      "wall": med("cross2x", "wall") / med("peer_md", "wall"),
                      "calls": (results["cross2x"][0]["samples"], results["peer_md"][0]["samples"])}
        if peer_ratio["cpu"] > PEER_LIMIT:
            failures.append(f"Twin + Cross at 2x: {peer_ratio['cpu']:.3f}x the peer's MultiDiffusion (limit "
                            f"{PEER_LIMIT})")
    host = comfy_version()
    lines = [f"ComfyUI {host}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {device}; "
             f"{args.arch} at {args.window} px windows, crops on {args.height}x{args.width} px, {args.steps} "
             f"{args.sampler} steps ({args.scheduler}), cfg {args.cfg:g}, view_batch_size {args.view_batch_size}; "
             f"medians of {args.repeats} interleaved repeats; {time.perf_counter() - started:.0f} s in all. "
             f"ComfyUI's own sampler overhead (plain KSampler, one window): {comfy_cpu:.3f} s CPU "
             f"({comfy_wall:.3f} s wall) per run.", "",
             "| plan | model calls (window samples) | CPU s | model CPU s | CPU / model | pack overhead (CPU) "
             "| wall s | wall / model | pack overhead (wall) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['label']} | {row['calls']} ({row['window_samples']}) | {row['cpu']:.2f} | "
                     f"{row['model_cpu']:.2f} | {row['over_model_cpu']:.3f} | "
                     + ("(reference)" if row["key"] == "plain" else f"{row['overhead_cpu']:+.1%}")
                     + f" | {row['wall']:.2f} | {row['over_model_wall']:.3f} | "
                     + ("(reference)" if row["key"] == "plain" else f"{row['overhead_wall']:+.1%}") + " |")
    lines.append("")
    if peer_ratio:
        lines.append(f"Twin + Cross c=2 at stride {2 * args.stride} / the peer's MultiDiffusion at stride "
                     f"{args.stride}: {peer_ratio['cpu']:.3f} CPU time ({peer_ratio['wall']:.3f} wall), window "
                     f"samples {peer_ratio['calls'][0]} / {peer_ratio['calls'][1]} = "
                     f"{peer_ratio['calls'][0] / peer_ratio['calls'][1]:.3f} (limit {PEER_LIMIT})")
    else:
        lines.append(f"Twin + Cross at 2x against the peer: skipped (no peer checkout at {args.peer})")
    lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
    text = "\n".join(lines)
    print("\n" + text)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "host": host,
                                         "comfy_overhead_cpu": comfy_cpu, "comfy_overhead_wall": comfy_wall,
                                         "rows": rows, "peer_ratio": peer_ratio, "failures": failures,
                                         "runs": results}, indent=1))
    return 1 if failures else 0


def comfy_version() -> str:
    try:
        import comfyui_version
        return comfyui_version.__version__
    except ImportError:
        return os.environ.get("COMFYUI_PATH", "?")


if __name__ == "__main__":
    sys.exit(main())

"""Shifted windows (SpotDiffusion-style) next to our fixed-grid plans and the
peer, ComfyUI-TiledDiffusion, on the trained terrain model inside a ComfyUI
host, everything side by side in one process (seed by seed, methods
interleaved, so the machine's load spreads over all of them):

A  txt2img strip (128 x 384 px, 128 px windows): ours MultiDiffusion and
   TwinDiffusion at stride 32, Crop Fusion + Cross Sampling c = 2 at stride
   64, ours shifted windows (golden, random; stride = window), the peer's
   MultiDiffusion on the same windows (overlap = window - stride) and the
   peer's SpotDiffusion (overlap 0, random shift).
B  single-window 360 (128 x 256 px, window 256): wrap seam ratio (step across
   the wrap column over the median interior step, on the relief picture;
   ~1 = seamless) for a plain single window, our wrap (the one window turned
   around the circle every step), multi-window wrap (window 128, stride 32)
   for reference, our shifted windows on the circle and the peer's
   SpotDiffusion (whose roll is circular).
C  upscale (tiled img2img): A's TwinDiffusion strip, bilinear 2x to
   256 x 768, img2img at denoise 0.4 with windows 128 / stride 64: ours (KSampler
   (Panorama), TwinDiffusion) against the peer's MultiDiffusion + KSampler.
D  memory of one step of an 8K-wide upscale (8192 x 1024 px, latent
   128 x 1024) on SD1.5's real UNet with random weights, ours against the
   peer at view_batch_size 4, each in a fresh process: peak resident memory
   above the loaded model (CPU), or torch.cuda.max_memory_allocated (GPU).
   A CPU needs ~47 s per 4-window batch, so the step is cut after
   ``--memory-batches`` window batches (the panorama-sized buffers are all
   made before the first one; each batch repeats the last).

Every sampler is ComfyUI's (euler, karras, cfg 1, 8 steps by default; the
same noise for every method of a seed).  Window evaluations are counted, and
model time summed, by one APPLY_MODEL wrapper for all (the terrain U-Net has no DIFFUSION_MODEL hook).  Seams are
measured where no plan puts them in particular: the worst column-to-column
step over the median step on the relief picture ("worst step"), and also by
the seam score on the fixed grid's edges (multiples of the base stride) and
LPIPS (AlexNet) between adjacent window-size crops (demo/terrain.py's
protocol).  Mean ± std over seeds.

The peer assumes 8 image px per latent px; the terrain model has 1, so the
peer gets tile_width = 8 * window and tile_overlap = 8 * overlap (its tiles
are then the same latent windows as ours).

  git clone https://github.com/shiimizu/ComfyUI-TiledDiffusion /tmp/ComfyUI-TiledDiffusion
  export COMFYUI_PATH=~/ComfyUI-0.33; py=~/.cache/comfy-panorama/venv-comfyui-0.33.0/bin/python
  $py bench/bench_shifted.py --peer /tmp/ComfyUI-TiledDiffusion --threads 1 --quick   # smoke: 1 seed, A-C
  # the README's tables (1 thread on 2 shared cores: 36, 10 and 5 minutes)
  $py bench/bench_shifted.py --peer /tmp/ComfyUI-TiledDiffusion --threads 1 --parts A B C --seeds 6 \\
      --upscale-seeds 2 --json out/shifted.json --md out/shifted.md
  $py bench/bench_shifted.py --peer /tmp/ComfyUI-TiledDiffusion --threads 1 --parts B --seeds 8 \\
      --json out/shifted_B.json --md out/shifted_B.md
  $py bench/bench_shifted.py --peer /tmp/ComfyUI-TiledDiffusion --threads 1 --parts D \\
      --json out/shifted_memory.json --md out/shifted_memory.md

Without the node PanoramaShiftedWindows (an older revision) its rows are
skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHIFTED = "PanoramaShiftedWindows"


class Counter:
    """APPLY_MODEL wrapper: window evaluations, model calls and model time
    (optionally stops the run after ``stop_after`` calls)."""

    def __init__(self, sync, stop_after: int | None = None):
        self.sync, self.stop_after = sync, stop_after
        self.seconds, self.calls, self.evaluations = 0.0, 0, 0

    def __deepcopy__(self, memo):  # a clone keeps the one counter the bench reads
        return self

    def __call__(self, executor, *args, **kwargs):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise StopSampling()
        self.sync()
        start = time.perf_counter()
        out = executor(*args, **kwargs)
        self.sync()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.evaluations += args[0].shape[0]
        return out


class StopSampling(Exception):
    pass


def boot(peer_path: Path, gpu: bool = False):
    sys.path.insert(0, str(HERE))
    import bench_sampler
    import bench_peer
    pack = bench_sampler.boot(gpu)
    peer = bench_peer.load_peer(peer_path.expanduser().resolve())
    if str(ROOT) not in sys.path:  # demo/, perceptual/, refmodel/ for the scores (after ComfyUI's own modules)
        sys.path.append(str(ROOT))
    return bench_sampler, pack, peer


# ----------------------------------------------------------------------------
# seam and coherence measures on relief pictures (1, 3, H, W) in [0, 1]


def worst_step(image, dim: int) -> float:
    """The largest mean step between neighbouring columns (dim -1) or rows
    (dim -2) over the median one: a seam anywhere shows, wherever the
    windows were."""
    n = image.shape[dim]
    steps = (image.narrow(dim, 1, n - 1) - image.narrow(dim, 0, n - 1)).abs().double()
    other = [d for d in range(image.ndim) if d != dim % image.ndim]
    steps = steps.mean(dim=other)
    return float(steps.max() / steps.median().clamp_min(1e-12))


def grid_edges(length: int, stride: int) -> list[int]:
    return list(range(stride, length, stride))


def coherence(image, stride: int, wrap: bool = False) -> dict:
    import torch
    from demo.terrain import crops
    from perceptual import lpips
    from refmodel import metrics as seam_metrics
    height, width = image.shape[-2:]
    out = {"worst_step_x": worst_step(image, -1),
           "seam": float(seam_metrics.seam_score(image[0].double(), grid_edges(width, stride),
                                                 grid_edges(height, stride) if height > 128 else ()))}
    if height > 128:
        out["worst_step_y"] = worst_step(image, -2)
    pairs, _ = seam_metrics.adjacent_crop_pairs(height, width, 128, stride)
    first, second = crops(image, pairs)
    with torch.no_grad():
        out["lpips_alex"] = float(lpips(first, second, "alex").mean())
    return out


# ----------------------------------------------------------------------------
# the methods: each (seed, latent dict) -> (latent tensor, Counter)


class Methods:
    def __init__(self, args, bench, pack, peer):
        import torch
        import comfy.model_management
        self.torch, self.args, self.bench, self.peer = torch, args, bench, peer
        self.nodes = bench.pack_nodes(pack)
        device = comfy.model_management.get_torch_device()
        self.sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
        terrain = sys.modules["comfyui_panorama_diffusion.nodes.terrain_model"]
        self.model = terrain.load_terrain_model()
        self.cond = bench.call(self.nodes["PanoramaTerrainDifficulty"], args.difficulty)[0]
        self.has_shifted = SHIFTED in self.nodes

    def timed(self, model):
        import comfy.patcher_extension
        counter = Counter(self.sync)
        m = model.clone()
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "bench_shifted", counter)
        return m, counter

    def windows(self, window, stride, cross_count=1, wrap=False):
        return self.bench.call(self.nodes["CrossSamplingScheduler"], window, stride, cross_count, 0, wrap)[0]

    def shifted(self, window, stride, shift, seed, wrap=False):
        # inputs in order: window_size, view_stride, shift, shift seed, wrap_around
        return self.bench.call(self.nodes[SHIFTED], window, stride, shift, seed, wrap)[0]

    def ours(self, mode, windows_fn, denoise=1.0):
        """KSampler (Panorama); ``windows_fn(seed)`` gives its windows input."""
        def run(seed, latent, steps):
            m, counter = self.timed(self.model)
            out = self.bench.call(self.nodes["TwinCropFusionSampler"], m, seed, steps, 1.0, self.args.sampler,
                                  self.args.scheduler, self.cond, self.cond, latent, denoise, mode, 1.0, 0.5,
                                  self.args.view_batch_size, windows_fn(seed), None)[0]
            return out["samples"], counter
        return run

    def plain(self, denoise=1.0):
        """ComfyUI's KSampler on the whole latent (one window)."""
        import nodes
        def run(seed, latent, steps):
            m, counter = self.timed(self.model)
            out = nodes.common_ksampler(m, seed, steps, 1.0, self.args.sampler, self.args.scheduler, self.cond,
                                        self.cond, latent, denoise=denoise)[0]
            return out["samples"], counter
        return run

    def theirs(self, method, window, overlap, denoise=1.0, spot=None):
        """The peer's TiledDiffusion (+ SpotDiffusionParams) and ComfyUI's
        KSampler; sizes in latent px, given to the peer times 8."""
        import nodes
        def run(seed, latent, steps):
            tiled = self.peer["TiledDiffusion"]().apply(self.model, method, 8 * window, 8 * window, 8 * overlap,
                                                        self.args.view_batch_size)[0]
            if spot is not None:
                tiled = self.peer["SpotDiffusionParams_TiledDiffusion"]().apply(tiled, spot, seed)[0]
            m, counter = self.timed(tiled)
            out = nodes.common_ksampler(m, seed, steps, 1.0, self.args.sampler, self.args.scheduler, self.cond,
                                        self.cond, latent, denoise=denoise)[0]
            return out["samples"], counter
        return run


def configurations(args, m: Methods) -> dict[str, list[tuple[str, str, object]]]:
    """part -> [(key, label, run)]"""
    s = args.stride
    strip = [
        ("ours_md", f"ours MultiDiffusion, stride {s}", m.ours("multidiffusion", lambda seed: m.windows(128, s))),
        ("ours_twin", f"ours TwinDiffusion, stride {s}", m.ours("twindiffusion", lambda seed: m.windows(128, s))),
        ("ours_cross", f"ours Twin + Cross Sampling c=2, stride {2 * s}",
         m.ours("twindiffusion", lambda seed: m.windows(128, 2 * s, 2))),
    ]
    if m.has_shifted:
        strip += [
            ("ours_shift_golden", "ours shifted windows, golden, stride 128",
             m.ours(args.shift_mode, lambda seed: m.shifted(128, 0, "golden", seed))),
            ("ours_shift_random", "ours shifted windows, random, stride 128",
             m.ours(args.shift_mode, lambda seed: m.shifted(128, 0, "random", seed))),
        ]
    strip += [
        ("peer_md", f"peer MultiDiffusion, overlap {128 - s}", m.theirs("MultiDiffusion", 128, 128 - s)),
        ("peer_spot", "peer SpotDiffusion, overlap 0, random", m.theirs("SpotDiffusion", 128, 0, spot="random")),
    ]
    circle = [
        ("plain", "plain single window, no wrap (KSampler)", m.plain()),
        ("ours_wrap", "ours wrap, window 256 (turned every step)",
         m.ours("twindiffusion", lambda seed: m.windows(256, 0, 1, True))),
    ]
    if m.has_shifted:
        circle += [
            ("ours_wrap_random", "ours shifted, random, window 256, wrap",
             m.ours("twindiffusion", lambda seed: m.shifted(256, 0, "random", seed, True))),
            ("ours_shift128_wrap", "ours shifted, golden, window 128, stride 128, wrap",
             m.ours(args.shift_mode, lambda seed: m.shifted(128, 0, "golden", seed, True))),
        ]
    circle += [
        ("ours_multi_wrap", f"ours multi-window wrap, window 128, stride {s} (Twin)",
         m.ours("twindiffusion", lambda seed: m.windows(128, s, 1, True))),
        ("peer_spot", "peer SpotDiffusion, window 128, overlap 0 (circular roll)",
         m.theirs("SpotDiffusion", 128, 0, spot="random")),
    ]
    u = args.upscale_stride
    upscale = [
        ("ours_twin", f"ours TwinDiffusion (KSampler (Panorama)), stride {u}",
         m.ours("twindiffusion", lambda seed: m.windows(128, u), denoise=args.denoise)),
        ("peer_md", f"peer MultiDiffusion + KSampler, overlap {128 - u}",
         m.theirs("MultiDiffusion", 128, 128 - u, denoise=args.denoise)),
    ]
    return {"A": strip, "B": circle, "C": upscale}


# ----------------------------------------------------------------------------
# running and reporting


def mean_std(values, fmt="{:.3f}") -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def run_one(run, seed, latent, steps, sync):
    sync()
    start = time.perf_counter()
    out, counter = run(seed, latent, steps)
    sync()
    return out, {"seed": seed, "seconds": time.perf_counter() - start, "model_seconds": counter.seconds,
                 "calls": counter.calls, "evaluations": counter.evaluations}


def sample_parts(args) -> dict:
    bench, pack, peer = boot(args.peer)
    import torch
    import torch.nn.functional as F
    from demo.terrain import picture_of
    from fusion.wrap import seam_ratio
    if args.threads:
        torch.set_num_threads(args.threads)
    m = Methods(args, bench, pack, peer)
    if not m.has_shifted:
        print(f"note: node {SHIFTED} not registered by this revision of the pack: its rows are skipped",
              file=sys.stderr)
    configs = {part: rows for part, rows in configurations(args, m).items() if part in args.parts}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    upscale_seeds = seeds[:args.upscale_seeds]
    rows = {part: {key: [] for key, _, _ in cs} for part, cs in configs.items()}
    strip = {"samples": torch.zeros(1, 1, 128, args.width)}
    circle = {"samples": torch.zeros(1, 1, 128, 256)}
    started = time.perf_counter()
    with torch.inference_mode():
        # warm-up: every method once, two steps, on its part's size
        for part, cs in configs.items():
            latent = {"A": strip, "B": circle, "C": {"samples": torch.zeros(1, 1, 256, 2 * args.width)}}[part]
            for key, _, run in cs:
                run(0, latent, 2)
        for seed in seeds:
            source = None
            for part, cs in configs.items():
                if part == "C" and seed not in upscale_seeds:
                    continue
                if part == "C":
                    if source is None:  # C without A: the source strip is sampled here (not timed)
                        source, _ = m.ours("twindiffusion", lambda s: m.windows(128, args.stride))(seed, strip,
                                                                                                    args.steps)
                    big = F.interpolate(source.float(), scale_factor=2, mode="bilinear", align_corners=False)
                    latent = {"samples": big.clamp(-1, 1)}
                else:
                    latent = circle if part == "B" else strip
                for key, _, run in cs:
                    out, row = run_one(run, seed, latent, args.steps, m.sync)
                    if part == "A" and key == "ours_twin":
                        source = out
                    heights = out.float()  # the model's height space: smoother than the hillshade
                    if part == "B":
                        image = picture_of(out, wrap=True)
                        row.update(seam_ratio=seam_ratio(image, -1), worst_step_x=worst_step(image, -1),
                                   seam_ratio_heights=seam_ratio(heights, -1))
                    else:
                        stride = args.upscale_stride if part == "C" else args.stride
                        row.update(coherence(picture_of(out), stride), worst_step_x_heights=worst_step(heights, -1))
                    rows[part][key].append(row)
                    print(f"seed {seed} {part} {key}: {row['seconds']:.1f} s, {row['evaluations']} evals, "
                          + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                      if k in ("seam_ratio", "seam_ratio_heights", "worst_step_x", "seam", "lpips_alex")),
                          file=sys.stderr, flush=True)
            if args.json:  # keep what is done if the run is stopped
                write_json(args, configs, rows, None)
    total = time.perf_counter() - started
    return {"configs": configs, "rows": rows, "seconds": total, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "shifted_node": m.has_shifted}


def table(part, configs, rows, baseline) -> str:
    base = {r["seed"]: r["seconds"] for r in rows.get(baseline, [])}
    ratio_name = {"A": "time / ours MD", "C": "time / peer MD"}.get(part)
    heights = any("worst_step_x_heights" in r for rs in rows.values() for r in rs)  # not in older JSON
    if part == "B":
        head = ["method", "window evals / image", "seconds", "time / model calls", "wrap seam ratio (relief)",
                "wrap seam ratio (heights)", "worst step / median (relief)"]
    else:
        head = ["method", "window evals / image", "seconds", ratio_name, "time / model calls", "worst step x",
                *(["worst step y"] if part == "C" else []), *(["worst step x (heights)"] if heights else []),
                "seam score (grid edges)", "LPIPS alex (adjacent)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, _ in configs:
        rs = rows[key]
        if not rs:
            continue
        cells = [label, f"{statistics.mean(r['evaluations'] for r in rs):.0f}",
                 mean_std([r["seconds"] for r in rs], "{:.1f}")]
        if part != "B":
            cells.append(mean_std([r["seconds"] / base[r["seed"]] for r in rs if r["seed"] in base], "{:.2f}"))
        cells.append(mean_std([r["seconds"] / r["model_seconds"] for r in rs], "{:.3f}"))
        if part == "B":
            cells += [mean_std([r["seam_ratio"] for r in rs], "{:.2f}"),
                      mean_std([r.get("seam_ratio_heights") for r in rs], "{:.2f}"),
                      mean_std([r["worst_step_x"] for r in rs], "{:.2f}")]
        else:
            cells.append(mean_std([r["worst_step_x"] for r in rs], "{:.2f}"))
            if part == "C":
                cells.append(mean_std([r.get("worst_step_y") for r in rs], "{:.2f}"))
            if heights:
                cells.append(mean_std([r.get("worst_step_x_heights") for r in rs], "{:.2f}"))
            cells += [mean_std([r["seam"] for r in rs]), mean_std([r["lpips_alex"] for r in rs])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TITLES = {
    "A": "A. txt2img strip {h}x{w} px, 128 px windows",
    "B": "B. 360 at one window: 128x256 px, window 256 (seam ratio across the wrap column; ~1 = seamless)",
    "C": "C. upscale: A's TwinDiffusion strip bilinear 2x to {h2}x{w2}, img2img denoise {denoise}, windows 128",
    "D": "D. peak memory, one step of an 8192x1024 px upscale (SD1.5 UNet, random weights, latent 128x1024)",
}


def report(args, result, memory) -> str:
    out = []
    if result:
        count = len({r["seed"] for part in result["rows"].values() for rs in part.values() for r in rs})
        upscale = f" (C: {min(args.upscale_seeds, count)})" if "C" in result["configs"] else ""
        out.append(f"{count} seed(s) from {args.first_seed}{upscale}, {args.steps} "
                   f"{args.sampler} steps ({args.scheduler}), cfg 1, difficulty {args.difficulty:g}, "
                   f"view_batch_size {args.view_batch_size}; shifted rows in mode {args.shift_mode}; mean ± std "
                   f"over seeds; {result['seconds']:.0f} s in all, torch {result['torch']}, "
                   f"{result['threads']} thread(s)")
        for part, configs in result["configs"].items():
            title = TITLES[part].format(h=128, w=args.width, h2=256, w2=2 * args.width, denoise=args.denoise)
            baseline = {"A": "ours_md", "C": "peer_md"}.get(part)
            out += ["", f"**{title}**", "", table(part, configs, result["rows"][part], baseline)]
        if not result["shifted_node"]:
            out += ["", f"(node {SHIFTED} absent in this revision: shifted rows skipped)"]
    if memory:
        out += ["", f"**{TITLES['D']}**", "",
                "| sampler | peak above loaded model (MiB) | measure | windows per call | model calls run |",
                "|---|---|---|---|---|"]
        for row in memory:
            out.append(f"| {row['label']} | {row['peak_mib']:.0f} | {row['measure']} | {row['window_batch']} | "
                       f"{row['calls']} |")
    return "\n".join(out)


def write_json(args, configs, rows, memory, extra=None):
    payload = {"args": {k: str(v) for k, v in vars(args).items()},
               "labels": {part: {key: label for key, label, _ in cs} for part, cs in (configs or {}).items()},
               "rows": rows, "memory": memory, **(extra or {})}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))


# ----------------------------------------------------------------------------
# D: memory, one process per sampler


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_one(args) -> dict:
    """One sampler's peak, in this process (SD1.5 UNet, random weights)."""
    bench, pack, peer = boot(args.peer, args.gpu)
    sys.path.insert(0, str(HERE))
    from bench_memory import PeakSampler
    import torch
    import comfy.model_management
    import comfy.patcher_extension
    import nodes
    if args.threads:
        torch.set_num_threads(args.threads)
    device = comfy.model_management.get_torch_device()
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    model = bench.build_model("sd15", args.gpu)
    pack_nodes = bench.pack_nodes(pack)
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 77, 768, generator=g), {}]]
    window, stride, vbs = 512, 128, args.view_batch_size  # px; the peer's overlap = window - stride

    def sampler(latent, steps, counter, batch):
        m = model.clone()
        if args.memory_one == "peer":
            m = peer["TiledDiffusion"]().apply(m, "MultiDiffusion", window, window, window - stride, batch)[0]
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "bench_shifted", counter)
        try:
            if args.memory_one == "peer":
                nodes.common_ksampler(m, 0, steps, 1.0, "euler", "karras", cond, cond, latent, denoise=0.4)
            else:
                windows = bench.call(pack_nodes["CrossSamplingScheduler"], window, stride, 1, 0, False)[0]
                bench.call(pack_nodes["TwinCropFusionSampler"], m, 0, steps, 1.0, "euler", "karras", cond, cond,
                           latent, 0.4, "twindiffusion", 1.0, 0.5, batch, windows, None)
        except StopSampling:
            pass

    with torch.inference_mode():
        small = {"samples": torch.zeros(1, 4, 64, 64)}
        sampler(small, 1, Counter(sync), 1)  # warm-up: model loaded, one window
        latent = {"samples": torch.randn(1, 4, 128, 1024, generator=g)}
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            before_cuda = torch.cuda.memory_allocated()
        before = resident_mib()
        peak_thread = PeakSampler()
        peak_thread.start()
        counter = Counter(sync, stop_after=args.memory_batches)
        start = time.perf_counter()
        sampler(latent, 1, counter, vbs)
        seconds = time.perf_counter() - start
        peak = peak_thread.stop()
    if device.type == "cuda":
        figure, measure = (torch.cuda.max_memory_allocated() - before_cuda) / 2**20, "torch.cuda max allocated"
    else:
        figure, measure = peak - before, "CPU peak RSS (2 ms sampling)"
    label = ("ours KSampler (Panorama), TwinDiffusion" if args.memory_one == "ours"
             else "peer MultiDiffusion + KSampler")
    return {"sampler": args.memory_one, "label": label, "peak_mib": figure, "measure": measure,
            "before_mib": before, "window_batch": counter.evaluations // max(counter.calls, 1),
            "calls": counter.calls, "seconds": seconds, "window_px": window, "stride_px": stride,
            "device": str(device)}


def memory_parts(args) -> list[dict]:
    rows = []
    for which in ("ours", "peer"):
        command = [sys.executable, __file__, "--memory-one", which, "--peer", str(args.peer),
                   "--threads", str(args.threads), "--view-batch-size", str(args.view_batch_size),
                   "--memory-batches", str(args.memory_batches)] + (["--gpu"] if args.gpu else [])
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"memory run of {which} failed")
        row = json.loads(lines[-1][7:])
        print(f"D {which}: peak +{row['peak_mib']:.0f} MiB ({row['measure']}), {row['calls']} calls of "
              f"{row['window_batch']} windows, {row['seconds']:.0f} s", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, default=Path("/tmp/ComfyUI-TiledDiffusion"),
                        help="a ComfyUI-TiledDiffusion checkout")
    parser.add_argument("--parts", nargs="+", choices=("A", "B", "C", "D"), default=["A", "B", "C", "D"])
    parser.add_argument("--seeds", type=int, default=8, help="seeds for A and B (default 8)")
    parser.add_argument("--upscale-seeds", type=int, default=2,
                        help="of those, how many also run C (default 2; C costs ~4x A per seed)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one seed (A, B, C): a smoke test")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--difficulty", type=float, default=50.0)
    parser.add_argument("--width", type=int, default=384, help="strip width in px (A), 128 px high")
    parser.add_argument("--stride", type=int, default=32, help="base view stride in px (A and B)")
    parser.add_argument("--upscale-stride", type=int, default=64, help="view stride in px for C")
    parser.add_argument("--denoise", type=float, default=0.4, help="C's img2img denoise")
    parser.add_argument("--shift-mode", default="multidiffusion",
                        help="KSampler (Panorama) mode for the shifted plans (default multidiffusion: averaging)")
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--memory-batches", type=int, default=2,
                        help="D: window batches run before the step is cut (CPU: ~47 s each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu", action="store_true", help="D on CUDA (A-C run on the CPU)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--memory-one", choices=("ours", "peer"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_one:
        print("RESULT " + json.dumps(memory_one(args)), flush=True)
        return
    if args.quick:
        args.seeds, args.upscale_seeds = 1, 1
        args.parts = [p for p in args.parts if p != "D"]
    sampled = [p for p in args.parts if p != "D"]
    result = None
    if sampled:
        args.parts = sampled + (["D"] if "D" in args.parts else [])
        result = sample_parts(args)
    memory = memory_parts(args) if "D" in args.parts else None
    text = report(args, result, memory)
    print("\n" + text)
    if args.json:
        write_json(args, result["configs"] if result else None, result["rows"] if result else None, memory,
                   {"seconds": result["seconds"]} if result else None)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""MSD only while the layout forms: Panorama Layout Guidance (MSD) with
``end_percent`` below 1, on the trained terrain model inside a ComfyUI host.

Every run is ComfyUI's KSampler through KSampler (Panorama) (mode
multidiffusion, windows 128 px at stride 64 px, lcm 4 steps, karras, cfg 1,
the same noise for every configuration of a seed) with the node Panorama
Layout Guidance (MSD) (levels 2, omega 10, cosine, bilinear, start_percent 0)
at each ``end_percent``; end_percent 0 guides no step (plain
MultiDiffusion at its cost), 1 every step (MSD over the whole run).  End
points that guide the same steps of the schedule give the same picture: they
are run once and reported together.

Scores (bench_coherence.py's, on the same seeds and noise):

- layout: mean squared distance between the result, area-down-sampled by 2,
  and a half-resolution MultiDiffusion pass from the lowest level of the
  first step's pyramid, driven by the same per-step noise (each step's lcm
  noise, recovered from the sampler's callback, 2x2-averaged and brought
  back to unit variance): ``demo/terrain.py``'s reference, run on the torch
  port of the model (equal to ComfyUI's to 2.3e-6) and not timed;
- LPIPS alex between adjacent 128 px crops stepping by the stride, the worst
  column / row step and the seam score (``bench_shifted.coherence``) on the
  relief picture;
- cost: window evaluations (a gradient pass's forward counts one) and model
  time from one APPLY_MODEL wrapper, wall seconds, and the time over the
  MultiDiffusion run of the same seed (paired).

``--profile`` instead runs one MSD sampling (every step guided) with timers
around the pack's ``guided_windows`` (the gradient pass): context entry /
exit, the input copy, the forward with graph (and within it the model's own
APPLY_MODEL time and ComfyUI's per-forward weight copies, ``own_copy``), the
loss, the backward; besides it the plain forwards of the guided windows and
the half-resolution pass.

  export COMFYUI_PATH=~/ComfyUI-0.33; py=~/.cache/comfy-panorama/venv-comfyui-0.33.0/bin/python
  $py bench/bench_msd_range.py --threads 1 --seeds 8 --json out/msd_range.json --md out/msd_range.md
  $py bench/bench_msd_range.py --threads 1 --profile --json out/msd_profile.json --md out/msd_profile.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_shifted import Methods, coherence, mean_std  # noqa: E402

PACK = "comfyui_panorama_diffusion"
DEFAULT_ENDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
REUSE = "reuse_prediction"


def run_timed(run, seed, latent, steps, sync) -> tuple:
    """bench_shifted.run_one plus the process's CPU seconds: on a machine
    shared with other jobs, one thread's CPU time varies much less than its
    wall time (it leaves out the time the thread waits for a core)."""
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    out, counter = run(seed, latent, steps)
    sync()
    return out, {"seed": seed, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                 "model_seconds": counter.seconds, "calls": counter.calls, "evaluations": counter.evaluations}


def boot():
    import bench_sampler
    pack = bench_sampler.boot(False)
    if str(ROOT) not in sys.path:  # demo/, perceptual/, refmodel/, terrain/ (after ComfyUI's own modules)
        sys.path.append(str(ROOT))
    return bench_sampler, pack


class Recorder:
    """Stands in for latent_preview.prepare_callback: keeps the sampler's
    (step, denoised, x) of the run in progress."""

    def __init__(self):
        self.steps: list = []

    def install(self):
        import latent_preview
        original = latent_preview.prepare_callback

        def prepare(model, steps, x0_output_dict=None):
            self.steps = []

            def callback(step, x0, x, total_steps):
                self.steps.append((step, x0.detach().clone(), x.detach().clone()))
            return callback
        latent_preview.prepare_callback = prepare
        return original


def guided_steps(model, sampler_sigmas, end: float, start: float = 0.0) -> tuple[int, ...]:
    """The steps the adapter guides for [start, end] (MultiScaleDenoiser.guided)."""
    sampling = model.get_model_object("model_sampling")
    top, bottom = float(sampling.percent_to_sigma(start)), float(sampling.percent_to_sigma(end))
    return tuple(i for i, s in enumerate(sampler_sigmas[:-1].tolist()) if bottom <= s <= top)


def layout_reference(denoiser, x0, noises, sigmas, sampler: str, stride: int):
    """demo/terrain.py's half-resolution MultiDiffusion pass from the lowest
    level of the first step's pyramid, driven by the same noise."""
    import torch
    import torch.nn.functional as F
    from demo.sampling import CountingModel
    from demo.terrain import step
    from fusion import FusionSettings, PanoramaDenoiser, WindowPlan
    from fusion.multiscale import noisy_pyramid
    plan = WindowPlan(window=128, stride=stride, cross_count=1, cross_stride=stride)
    low_plan = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False, view_batch_size=8))
    low = noisy_pyramid(x0.float(), float(sigmas[0]), 2, "bilinear")[0][0]
    model = CountingModel(denoiser)
    steps = len(sigmas) - 1
    with torch.inference_mode():
        for i in range(steps):
            denoised = low_plan(model, low, sigmas[i].float().expand(1), i, steps)
            noise = None if noises[i] is None else F.avg_pool2d(noises[i].float(), 2) * 2
            low = step(sampler, low, denoised, float(sigmas[i]), float(sigmas[i + 1]), noise)
    return low


def noises_of(record, sigmas, sampler):
    """Each step's fresh lcm noise from the callback's (denoised_i, x_i):
    x_{i+1} = denoised_i + sigma_{i+1} noise_i."""
    if sampler != "lcm":
        return [None] * (len(sigmas) - 1)
    out = []
    for i in range(len(sigmas) - 1):
        s_next = float(sigmas[i + 1])
        out.append(None if s_next == 0 else (record[i + 1][2] - record[i][1]) / s_next)
    return out


class Bench:
    def __init__(self, args):
        self.args = args
        self.bench, self.pack = boot()
        import torch
        import comfy.samplers
        if args.threads:
            torch.set_num_threads(args.threads)
        self.torch = torch
        self.m = Methods(args, self.bench, self.pack, None)
        self.sigmas = comfy.samplers.calculate_sigmas(self.m.model.get_model_object("model_sampling"),
                                                      args.scheduler, args.steps).cpu()
        self.recorder = Recorder()
        self.recorder.install()

    def msd(self, end: float | None, reuse: bool = False):
        """KSampler (Panorama) + MSD guiding [0, end] (None: no MSD node),
        ``reuse``: reuse_prediction on."""
        m, a = self.m, self.args

        def run(seed, latent, steps):
            model, counter = m.timed(m.model)
            multiscale = None if end is None else self.bench.call(
                m.nodes["MultiScaleGuidance"], 2, a.omega, "cosine", "bilinear", 0.0, end, reuse)[0]
            out = self.bench.call(m.nodes["TwinCropFusionSampler"], model, seed, steps, 1.0, a.sampler, a.scheduler,
                                  m.cond, m.cond, latent, 1.0, "multidiffusion", 1.0, 0.5, a.view_batch_size,
                                  m.windows(128, a.stride), multiscale)[0]
            return out["samples"], counter
        return run


def sample(args) -> dict:
    b = Bench(args)
    torch = b.torch
    from demo.terrain import picture_of
    from terrain.denoiser import TerrainDenoiser, difficulty_label
    denoiser = TerrainDenoiser.load(difficulty=difficulty_label(args.difficulty))
    groups: dict[tuple, list[float]] = {}
    for end in args.ends:
        groups.setdefault(guided_steps(b.m.model, b.sigmas, end), []).append(end)
    configs = [(f"end {'/'.join(f'{e:g}' for e in ends)}", steps, ends) for steps, ends in groups.items()]
    configs += [(f"end {e:g}, {REUSE}", guided_steps(b.m.model, b.sigmas, e), [e]) for e in args.reuse_ends]
    print("guided steps per end_percent group: " + "; ".join(f"{k}: {list(s)}" for k, s, _ in configs) +
          f" (sigmas {[round(float(s), 4) for s in b.sigmas]})", file=sys.stderr, flush=True)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    rows = {f"{h}x{w}": {key: [] for key, _, _ in configs} for h, w in sizes}
    if args.resume and args.json and args.json.exists():  # runs of an earlier, stopped process: kept, not re-run
        for size, part in json.loads(args.json.read_text())["rows"].items():
            for key, rs in part.items():
                if size in rows and key in rows[size]:
                    rows[size][key] = rs
    started = time.perf_counter()
    with torch.inference_mode():
        for key, _, ends in configs:  # warm-up: each configuration once, 2 steps, smallest size
            b.msd(max(ends), REUSE in key)(0, {"samples": torch.zeros(1, 1, *sizes[0])}, 2)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for h, w in sizes:
                latent = {"samples": torch.zeros(1, 1, h, w)}
                reference, reference_noise = None, None
                order = configs if seed % 2 == 0 else configs[::-1]  # alternate the order: drift hits all alike
                for key, steps, ends in order:
                    if any(r["seed"] == seed for r in rows[f"{h}x{w}"][key]):
                        continue
                    out, row = run_timed(b.msd(max(ends), REUSE in key), seed, latent, args.steps, b.m.sync)
                    record = b.recorder.steps
                    noises = noises_of(record, b.sigmas, args.sampler)
                    if reference is None:
                        reference_noise = noises
                        reference = layout_reference(denoiser, record[0][2], noises, b.sigmas.double(), args.sampler,
                                                     args.stride)
                    else:  # the same seed's noise whatever the guidance
                        drift = max((float((a - c).abs().max()) for a, c in zip(noises, reference_noise)
                                     if a is not None), default=0.0)
                        row["noise_drift"] = drift
                    down = torch.nn.functional.interpolate(out.double(), size=reference.shape[-2:], mode="area")
                    row["layout"] = float(((down - reference.double()) ** 2).mean())
                    row.update(coherence(picture_of(out), args.stride))
                    row["guided_steps"] = list(steps)
                    rows[f"{h}x{w}"][key].append(row)
                    print(f"seed {seed} {h}x{w} {key}: {row['seconds']:.1f} s, {row['evaluations']} evals, layout "
                          f"{row['layout']:.4f}, lpips {row['lpips_alex']:.3f}", file=sys.stderr, flush=True)
                    if args.json:  # after every run: a stopped process loses at most one
                        write(args, {"configs": configs, "rows": rows})
    return {"configs": configs, "rows": rows, "seconds": time.perf_counter() - started,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def table(configs, rows, steps_total) -> tuple[str, dict]:
    full = [k for k, s, _ in configs if len(s) == steps_total]
    none = [k for k, s, _ in configs if len(s) == 0]
    md = {r["seed"]: r for r in rows[none[0]]} if none else {}
    msd = {r["seed"]: r for r in rows[full[0]]} if full else {}
    head = ["end_percent", "guided steps", "layout", "layout / MSD's (paired)", "LPIPS alex (adjacent)",
            "worst step x", "worst step y", "window evals", "seconds", "time / MD (paired)", "CPU seconds",
            "CPU time / MD (paired)",
            "time / model calls"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdict = {}
    msd_layout = statistics.mean(r["layout"] for r in msd.values()) if msd else None
    for key, steps, ends in configs:
        rs = rows[key]
        if not rs:
            continue
        rel = [r["layout"] / msd[r["seed"]]["layout"] for r in rs if r["seed"] in msd]
        time_ratio = [r["seconds"] / md[r["seed"]]["seconds"] for r in rs if r["seed"] in md]
        cpu_ratio = [r["cpu_seconds"] / md[r["seed"]]["cpu_seconds"] for r in rs if r["seed"] in md]
        layout = statistics.mean(r["layout"] for r in rs)
        verdict[key] = {"layout_over_msd": layout / msd_layout if msd_layout else None,
                        "time_over_md": statistics.mean(time_ratio) if time_ratio else None,
                        "cpu_over_md": statistics.mean(cpu_ratio) if cpu_ratio else None,
                        "guided_steps": list(steps), "ends": ends}
        lines.append("| " + " | ".join([
            " / ".join(f"{e:g}" for e in ends) + (f", {REUSE}" if REUSE in key else ""),
            ", ".join(str(s + 1) for s in steps) or "none",
            mean_std([r["layout"] for r in rs], "{:.4f}"), mean_std(rel, "{:.2f}"),
            mean_std([r["lpips_alex"] for r in rs]), mean_std([r["worst_step_x"] for r in rs], "{:.2f}"),
            mean_std([r.get("worst_step_y") for r in rs], "{:.2f}"),
            f"{statistics.mean(r['evaluations'] for r in rs):.0f}", mean_std([r["seconds"] for r in rs], "{:.1f}"),
            mean_std(time_ratio, "{:.2f}"), mean_std([r["cpu_seconds"] for r in rs], "{:.1f}"),
            mean_std(cpu_ratio, "{:.2f}"), mean_std([r["seconds"] / r["model_seconds"] for r in rs], "{:.3f}"),
        ]) + " |")
    return "\n".join(lines), verdict


def report(args, result) -> str:
    rows = result["rows"]
    count = len({r["seed"] for part in rows.values() for rs in part.values() for r in rs})
    out = [f"{count} seed(s) from {args.first_seed}, {args.steps} {args.sampler} steps ({args.scheduler}), cfg 1, "
           f"difficulty {args.difficulty:g}, windows 128 px at stride {args.stride} px, multidiffusion mode, MSD "
           f"levels 2 omega {args.omega:g} cosine bilinear from start_percent 0; mean ± std over seeds; "
           f"{result.get('seconds', 0):.0f} s in all, torch {result.get('torch', '?')}, "
           f"{result.get('threads', '?')} thread(s)"]
    for size, part in rows.items():
        text, verdict = table(result["configs"], part, args.steps)
        out += ["", f"**2-D {size} px**", "", text, ""]
        for key, v in verdict.items():
            if v["layout_over_msd"] is None or v["time_over_md"] is None or not v["guided_steps"]:
                continue
            # the layout score is a distance to the half-resolution layout: lower is closer, so "within 5 % of
            # MSD's" is at most 1.05x MSD's (as close to that layout as MSD over the whole run, or closer)
            ok = v["layout_over_msd"] <= 1.05 and v["cpu_over_md"] <= 1.6
            out.append(f"- {key}: layout {v['layout_over_msd']:.3f}x MSD's (mean over seeds), CPU time "
                       f"{v['cpu_over_md']:.2f}x MD's (wall {v['time_over_md']:.2f}x): "
                       f"{'meets' if ok else 'misses'} the goal (a layout score at most 1.05x MSD's at <= 1.6x "
                       f"MD's CPU time)")
    return "\n".join(out)


# ----------------------------------------------------------------------------
# --profile: where the gradient pass spends its time


def profile(args) -> dict:
    b = Bench(args)
    torch = b.torch
    multiscale = sys.modules[f"{PACK}.fusion.multiscale"]
    adapter = sys.modules[f"{PACK}.nodes.adapter"]
    stats: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    pc = time.process_time  # CPU seconds of this one-thread process: steadier than wall time on a shared machine

    def add(name, since):
        stats[name] += pc() - since
        counts[name] += 1

    original_copy = adapter.own_copy

    def own_copy(tensor):
        t = pc()
        out = original_copy(tensor)
        add("weight copies (own_copy, within the forward)", t)
        return out

    def guided_windows_and_prediction(model_fn, windows, targets, sigma, views, ids, r, omega, mode, grad_context,
                                      branch=0):
        t = pc()
        context = grad_context()
        context.__enter__()
        add("gradient context: enter", t)
        try:
            t = pc()
            x = windows.detach().clone().requires_grad_(True)
            add("input copy", t)
            t = pc()
            denoised = model_fn(x, sigma, views, ids, branch)
            add("forward with graph", t)
            t = pc()
            phi = multiscale.first_order_step(denoised, x, r)
            squared = (multiscale.downsample(phi.float(), mode) - targets.float()) ** 2
            loss = squared.flatten(2).sum(2).mean(1).sum()
            add("loss", t)
            t = pc()
            grad = torch.autograd.grad(loss, x)[0]
            add("backward", t)
        finally:
            t = pc()
            context.__exit__(None, None, None)
            add("gradient context: exit", t)
        t = pc()
        out = windows - omega * grad.to(windows.dtype)
        add("gradient step", t)
        return out, denoised.detach().to(windows.dtype)

    denoiser_cls = multiscale.MultiScaleDenoiser
    original_level, original_step = denoiser_cls.guided_level, denoiser_cls.multiscale_step

    def guided_level(self, *a, **k):
        t = pc()
        out = original_level(self, *a, **k)
        add("guided level (full resolution)", t)
        return out

    def multiscale_step(self, *a, **k):
        t = pc()
        out = original_step(self, *a, **k)
        add("MSD step", t)
        return out

    class GradSplitCounter:
        """APPLY_MODEL time split by whether grad is on (the gradient
        pass's forward) or not (plain forwards)."""

        def __init__(self, sync):
            self.sync, self.seconds, self.calls, self.evaluations = sync, 0.0, 0, 0

        def __deepcopy__(self, memo):
            return self

        def __call__(self, executor, *a, **k):
            self.sync()
            t = pc()
            out = executor(*a, **k)
            self.sync()
            name = "APPLY_MODEL, grad on" if torch.is_grad_enabled() else "APPLY_MODEL, grad off"
            add(name, t)
            counts[name + ": windows"] += a[0].shape[0]
            self.seconds += pc() - t
            self.calls += 1
            self.evaluations += a[0].shape[0]
            return out

    import comfy.patcher_extension

    def timed(model):
        counter = GradSplitCounter(b.m.sync)
        m = model.clone()
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "bench_msd_range", counter)
        return m, counter

    h, w = (int(v) for v in args.profile_size.split("x"))
    latent = {"samples": torch.zeros(1, 1, h, w)}
    results = {}
    with torch.inference_mode():
        b.m.timed = timed
        for name, end in (("MultiDiffusion (end 0)", 0.0), ("MSD (end 1)", 1.0)):
            b.msd(end)(0, {"samples": torch.zeros(1, 1, 256, 256)}, 2)  # warm-up
        adapter.own_copy = own_copy
        multiscale.guided_windows_and_prediction = guided_windows_and_prediction
        denoiser_cls.guided_level, denoiser_cls.multiscale_step = guided_level, multiscale_step
        try:
            for repeat in range(args.profile_repeats):
                for name, end in (("MultiDiffusion (end 0)", 0.0), ("MSD (end 1)", 1.0)):
                    stats.clear()
                    counts.clear()
                    t = pc()
                    out, counter = b.msd(end)(args.first_seed + repeat, latent, args.steps)
                    wall = pc() - t
                    results.setdefault(name, []).append({"wall": wall, "evaluations": counter.evaluations,
                                                         "calls": counter.calls, "stats": dict(stats),
                                                         "counts": dict(counts)})
                    print(f"profile {name} repeat {repeat}: {wall:.1f} s", file=sys.stderr, flush=True)
        finally:
            adapter.own_copy = original_copy
            denoiser_cls.guided_level, denoiser_cls.multiscale_step = original_level, original_step
    return {"size": f"{h}x{w}", "results": results, "torch": torch.__version__, "threads": torch.get_num_threads()}


def profile_report(args, prof) -> str:
    results = prof["results"]
    md, msd = results["MultiDiffusion (end 0)"], results["MSD (end 1)"]

    def med(rs, key):
        return statistics.median(r["stats"].get(key, 0.0) for r in rs)
    md_wall = statistics.median(r["wall"] for r in md)
    msd_wall = statistics.median(r["wall"] for r in msd)
    grad_fwd = med(msd, "forward with graph")
    grad_model = med(msd, "APPLY_MODEL, grad on")
    plain_model = med(msd, "APPLY_MODEL, grad off")
    level = med(msd, "guided level (full resolution)")
    step = med(msd, "MSD step")
    gw = sum(med(msd, k) for k in ("gradient context: enter", "input copy", "forward with graph", "loss", "backward",
                                   "gradient context: exit", "gradient step"))
    n_grad = statistics.median(r["counts"].get("forward with graph", 0) for r in msd)
    evals = statistics.median(r["evaluations"] for r in msd)
    md_model = med(md, "APPLY_MODEL, grad off")
    md_evals = statistics.median(r["evaluations"] for r in md)
    per_eval = md_model / md_evals
    rows = [
        ("MSD run", msd_wall),
        ("  MSD steps (half-resolution pass + guided level + pyramid)", step),
        ("    guided level (full resolution: gradient passes, plain forwards, merge)", level),
        ("      gradient passes (guided_windows)", gw),
        ("        gradient context: enter (leave inference mode, weight functions, buffer copies)",
         med(msd, "gradient context: enter")),
        ("        input copy (windows.detach().clone())", med(msd, "input copy")),
        ("        forward with graph (ComfyUI's calc_cond_batch + the model)", grad_fwd),
        ("          of which the model (APPLY_MODEL, grad on)", grad_model),
        ("          of which ComfyUI's per-forward weight copies (own_copy)",
         med(msd, "weight copies (own_copy, within the forward)")),
        ("        loss (Phi, down-sampling, squared distance)", med(msd, "loss")),
        ("        backward (torch.autograd.grad)", med(msd, "backward")),
        ("        gradient context: exit", med(msd, "gradient context: exit")),
        ("        gradient step (x - omega grad)", med(msd, "gradient step")),
        ("  plain forwards (APPLY_MODEL, grad off: half-resolution pass and the guided windows)", plain_model),
    ]
    lines = [f"One sampling of {prof['size']} px, {args.steps} {args.sampler} steps, every step guided (MSD, "
             f"end_percent 1), against the same run with end_percent 0 (MultiDiffusion: {md_wall:.1f} s, "
             f"{md_evals:.0f} window evaluations, {per_eval * 1000:.0f} ms of model time per window); medians of "
             f"{len(msd)} repeat(s), torch {prof['torch']}, {prof['threads']} thread(s). {n_grad:.0f} gradient "
             f"passes (one per window batch and step), {evals:.0f} window evaluations in all.",
             "", "| part | CPU seconds | share of the MSD run |", "|---|---|---|"]
    for label, seconds in rows:
        lines.append(f"| {label} | {seconds:.2f} | {seconds / msd_wall:.1%} |")
    backward = med(msd, "backward")
    on_windows = statistics.median(r["counts"].get("APPLY_MODEL, grad on: windows", 0) for r in msd)
    off_windows = statistics.median(r["counts"].get("APPLY_MODEL, grad off: windows", 0) for r in msd)
    per_on = grad_model / max(on_windows, 1)
    per_off = plain_model / max(off_windows, 1)
    lines += ["", f"Per window: the model with grad on {per_on * 1000:.0f} ms, with grad off {per_off * 1000:.0f} ms "
              f"({per_on / per_off:.2f}x); the backward {backward / max(on_windows, 1) * 1000:.0f} ms "
              f"({backward / max(on_windows, 1) / per_off:.2f}x a plain forward); the whole gradient pass "
              f"{gw / max(on_windows, 1) * 1000:.0f} ms ({gw / max(on_windows, 1) / per_off:.2f}x a plain forward). "
              f"MSD / MultiDiffusion wall: {msd_wall / md_wall:.2f} ({on_windows:.0f} windows through the gradient "
              f"pass, {off_windows:.0f} plain, against {md_evals:.0f})."]
    return "\n".join(lines)


def write(args, payload) -> None:
    if not args.json:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                     **{k: v for k, v in payload.items()}}, indent=1, default=str))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--sampler", default="lcm", choices=("lcm", "euler"))
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--difficulty", type=float, default=50.0)
    parser.add_argument("--stride", type=int, default=64, help="view stride in px (windows 128 px)")
    parser.add_argument("--omega", type=float, default=10.0)
    parser.add_argument("--ends", type=float, nargs="+", default=list(DEFAULT_ENDS))
    parser.add_argument("--reuse-ends", type=float, nargs="*", default=[],
                        help="end points also run with reuse_prediction on (the gradient pass's prediction stepped)")
    parser.add_argument("--sizes", nargs="+", default=["256x256", "256x512"], help="HxW in px")
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --json (an earlier, stopped process) and run the rest")
    parser.add_argument("--profile", action="store_true", help="the gradient pass's time split instead")
    parser.add_argument("--profile-size", default="256x512")
    parser.add_argument("--profile-repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--report", type=Path, nargs="+", help="no sampling: the table of earlier --json files")
    args = parser.parse_args(argv)
    if args.profile:
        prof = profile(args)
        text = profile_report(args, prof)
        write(args, prof)
    elif args.report:
        merged = {"configs": [], "rows": {}}
        for path in args.report:
            data = json.loads(path.read_text())
            for name in ("first_seed", "steps", "sampler", "scheduler", "difficulty", "stride", "omega"):
                if name in data.get("args", {}):  # the header describes the run the file holds, not this call
                    setattr(args, name, type(getattr(args, name))(data["args"][name]))
            merged["configs"] += [(k, tuple(s), e) for k, s, e in data["configs"]
                                  if k not in {c[0] for c in merged["configs"]}]
            for size, part in data["rows"].items():
                for key, rs in part.items():
                    have = {r["seed"] for r in merged["rows"].setdefault(size, {}).setdefault(key, [])}
                    merged["rows"][size][key].extend(r for r in rs if r["seed"] not in have)
        text = report(args, merged)
    else:
        result = sample(args)
        text = report(args, result)
        write(args, {"configs": result["configs"], "rows": result["rows"], "seconds": result["seconds"]})
    print("\n" + text)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Coherence the TwinDiffusion paper's way, on a trained model.

adaptive-terrain-diffusion's consistency U-Net (``terrain/``), sampled with
the pack's ``fusion`` code (what the ComfyUI nodes run), many seeds, every
method side by side in one run (seed by seed, methods interleaved, so the
machine's load spreads over all of them):

- a 1-D strip (128 x 384 px, three windows): MultiDiffusion at the base
  stride s and at 2s, TwinDiffusion Crop Fusion (the paper's weights and
  feathered) at s, Crop Fusion + Cross Sampling c = 2 at 2s;
- a 2-D panorama (256 x 256 px, stride 2s): MultiDiffusion against
  Multi-Scale Diffusion (omega 10, gradient through the trained U-Net).

Scores, on the hillshaded relief pictures: LPIPS (AlexNet, VGG) and DISTS
between adjacent, non-overlapping window-size crops stepping by s (the
paper's protocol; lower = neighbouring parts of the panorama look alike),
the seam score on the window edges (1 = no seam), MSD's layout score (mean
squared distance to a half-resolution MultiDiffusion pass from the same
noise); cost as window evaluations (a gradient pass's forward counts one)
and seconds.  Mean ± std over seeds, and each method's per-seed difference
to MultiDiffusion at the same windows (paired: the seeds' own spread
cancels).

    python bench/bench_coherence.py --seeds 16 --json out/coherence.json --md out/coherence.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from demo.__main__ import Progress  # noqa: E402
from demo.terrain import Scene, methods, sample, scores  # noqa: E402

METRICS = ("lpips_alex", "lpips_vgg", "dists", "seam", "layout")
NAMES = {"lpips_alex": "LPIPS alex", "lpips_vgg": "LPIPS vgg", "dists": "DISTS", "seam": "seam score",
         "layout": "layout (MSD)"}


def configurations(args) -> list[tuple[str, Scene, object, str]]:
    """(key, scene, method, baseline key at the same windows)."""
    catalogue, wide_methods = methods(args.stride, args.omega), methods(2 * args.stride, args.omega)
    strip = Scene("strip", "1-D strip", 128, 128 * args.aspect, stride=args.stride)
    wide = Scene("2d", "2-D panorama", 256, 256, stride=2 * args.stride)
    out = [("strip/md", strip, catalogue["md"], "strip/md"),
           ("strip/twin", strip, catalogue["twin"], "strip/md"),
           ("strip/feathered", strip, catalogue["feathered"], "strip/md"),
           ("strip/md2", strip, catalogue["md2"], "strip/md2"),
           ("strip/cross", strip, catalogue["cross"], "strip/md2")]
    for variant in args.extra:
        base, _, change = variant.partition(":")
        method = catalogue[base]
        for part in change.split(",") if change else []:
            name, value = part.split("=")
            method = replace(method, **{name: float(value) if name in ("lam", "tau") else value})
        key = f"strip/{variant}"
        out.append((key, strip, replace(method, label=f"{method.label} ({change})"),
                    "strip/md" if method.stride == args.stride else "strip/md2"))
    if not args.no_msd:
        out += [("2d/md", wide, wide_methods["md"], "2d/md"), ("2d/msd", wide, wide_methods["msd"], "2d/md")]
    return [c for c in out if not args.only or c[0] in args.only]


def mean_std(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def report(configs, rows: dict[str, list[dict]], args) -> str:
    lines = [f"| scene | method | {' | '.join(NAMES[m] for m in METRICS)} | Δ LPIPS alex vs MD, same windows "
             f"(paired; seeds better) | window evals | seconds |",
             "|" + "---|" * (len(METRICS) + 5)]
    for key, scene, method, baseline in configs:
        rs = rows[key]
        cells = [mean_std([r[m] for r in rs if m in r]) for m in METRICS]
        if baseline != key:
            base = rows[baseline]
            diffs = [r["lpips_alex"] - b["lpips_alex"] for r, b in zip(rs, base)]
            relative = statistics.mean(diffs) / statistics.mean(b["lpips_alex"] for b in base)
            better = sum(d < 0 for d in diffs)
            delta = f"{mean_std(diffs)} ({relative:+.1%}; {better}/{len(diffs)})"
        else:
            delta = "(baseline)"
        lines.append(f"| {scene.title} {scene.height}x{scene.width} | {method.label} | {' | '.join(cells)} | "
                     f"{delta} | {statistics.mean(r['evaluations'] for r in rs):.0f} | "
                     f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--sampler", choices=("lcm", "euler"), default="lcm")
    parser.add_argument("--stride", type=int, default=32, help="base view stride s in px (window 128)")
    parser.add_argument("--aspect", type=int, default=3, help="panorama width in windows")
    parser.add_argument("--omega", type=float, default=10.0)
    parser.add_argument("--difficulty", type=float, default=50.0, help="label 1..100")
    parser.add_argument("--extra", nargs="*", default=[],
                        help="more strip variants, e.g. feathered:tau=1.0 twin:lam=0.3,tau=1.0")
    parser.add_argument("--only", nargs="*", help="configuration keys to run (strip/md, 2d/msd, ...)")
    parser.add_argument("--no-msd", action="store_true", help="skip the 2-D MultiDiffusion / MSD pair")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path, help="per-seed results")
    parser.add_argument("--md", type=Path, help="the table as markdown")
    parser.add_argument("--report", type=Path, nargs="+",
                        help="no sampling: the table of earlier runs' --json files (same options, other seeds)")
    args = parser.parse_args(argv)
    if args.report:
        return report_runs(args)
    if args.threads:
        torch.set_num_threads(args.threads)

    from perceptual import perceptual_metrics
    from terrain.denoiser import TerrainDenoiser, difficulty_label

    denoiser = TerrainDenoiser.load(difficulty=difficulty_label(args.difficulty))
    perceptual = perceptual_metrics()
    configs = configurations(args)
    rows: dict[str, list[dict]] = {key: [] for key, *_ in configs}
    progress = Progress(len(configs) * args.seeds * args.steps, "sampling")
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for key, scene, method, _ in configs:
            result = sample(denoiser, method, scene, args.steps, seed, args.sampler, progress)
            rows[key].append({"seed": seed, **scores(result, perceptual, scene.stride),
                              "evaluations": result.evaluations, "seconds": result.seconds})
        if args.json:  # keep what is done if the run is stopped
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                            indent=1))
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    publish(args, report(configs, rows, args), args.seeds, seeds,
            f"{time.perf_counter() - started:.0f} s in all, torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)")


def publish(args, text: str, count: int, seeds: str, provenance: str) -> None:
    """Prints the table under what it was measured on; writes it to --md."""
    header = (f"{count} seeds ({seeds}), {args.steps} {args.sampler} steps (Karras, sigma 80 -> 0.002), "
              f"difficulty {args.difficulty:g}, 128 px windows, s = {args.stride} px (2-D: 2s); mean ± std over "
              f"seeds; {provenance}")
    print("\n" + header + "\n\n" + text)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(header + "\n\n" + text + "\n")


def report_runs(args) -> None:
    """One table from several runs' per-seed rows (e.g. seed ranges run in
    parallel processes), in the configurations' order."""
    configs = configurations(args)
    rows: dict[str, list[dict]] = {key: [] for key, *_ in configs}
    for path in args.report:
        for key, values in json.loads(path.read_text())["rows"].items():
            if key in rows:
                rows[key].extend(values)
    for values in rows.values():
        values.sort(key=lambda r: r["seed"])
    seeds = sorted({r["seed"] for values in rows.values() for r in values})
    publish(args, report([c for c in configs if rows[c[0]]], rows, args), len(seeds), ", ".join(map(str, seeds)),
            f"from {', '.join(str(p) for p in args.report)}")


if __name__ == "__main__":
    main()

"""The cheapest seamless window plan, on the trained terrain model inside a
ComfyUI host: window evaluations against the worst step on the heights, at
4 lcm steps and at 8 euler steps, on the strip (128x384 px), a 2-D panorama
(256x512 px) and a 2:1 360 (128x256 px, wrap-around), many seeds, every plan
side by side in one process (seed by seed, plans interleaved).

Plans (128 px windows; KSampler (Panorama), cfg 1, karras):

- ours MultiDiffusion at stride 32 px (window / 4): the baseline density;
- ours Twin + Cross Sampling c = 2 at stride 64 (the sampler's default plan);
- ours shifted windows side by side (Panorama Windows (Shifted), golden, view
  stride 0 = the window, blend mean);
- ours shifted windows with blend = feathered at view strides 96 (a quarter
  window of overlap) and 112 px (``--feathered``; each window fades into the
  next over the overlap);
- the peer's (ComfyUI-TiledDiffusion) MultiDiffusion at overlap 96 and
  SpotDiffusion (overlap 0, random shifts), where a checkout is given.  The
  peer's MultiDiffusion gives ours bit for bit on straight axes
  (bench_peer.py; the strip's rows here agree), so it is not run in 2-D
  (``--skip``), where it would cost 260-520 evaluations a seed; on the 360
  it runs, without wrap-around (the peer has none for MultiDiffusion).

The target: at most 0.33x MultiDiffusion's window evaluations with a worst
step on the heights within 5 % of MultiDiffusion's (mean over seeds), in
every scene at both settings.  The worst step is the largest mean step
between neighbouring columns (and, in 2-D, rows) over the median one
(``bench_shifted.worst_step``) on the model's heights, the wrap column
included on the 360; in 2-D a plan's worst step is the larger of the two
directions.  Also: the wrap seam ratio on the 360, the seam score on the
MultiDiffusion grid's edges and LPIPS alex between adjacent 128 px crops
(``bench_shifted.coherence``, on the relief picture).

  export COMFYUI_PATH=~/ComfyUI-0.33; py=~/.cache/comfy-panorama/venv-comfyui-0.33.0/bin/python
  # two processes of one thread (seeds 0-3 and 4-7), then one table
  $py bench/bench_plans.py --threads 1 --seeds 4 --first-seed 0 --json out/plans-a.json \\
      --picture docs/plans_lcm4.png &
  $py bench/bench_plans.py --threads 1 --seeds 4 --first-seed 4 --json out/plans-b.json; wait
  $py bench/bench_plans.py --report out/plans-a.json out/plans-b.json --md out/plans.md

Give ``--peer /tmp/ComfyUI-TiledDiffusion`` for the peer's rows (skipped,
saying so, without a checkout).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_msd_range import boot, run_timed  # noqa: E402
from bench_shifted import SHIFTED, Methods, coherence, mean_std, worst_step  # noqa: E402

SCENES = {"strip": ("strip 128x384 px", 128, 384, False),
          "2d": ("2-D 256x512 px", 256, 512, False),
          "360": ("2:1 360, 128x256 px, wrap-around", 128, 256, True)}
SETTINGS = {"lcm4": ("lcm", 4), "euler8": ("euler", 8)}
EVAL_TARGET, STEP_TOLERANCE = 0.33, 0.05


def plans(args, m: Methods, peer) -> list[tuple[str, str, object]]:
    """[(key, label, run(seed, latent, steps, wrap))]"""
    s = args.stride

    def ours(mode, windows):
        def run(seed, latent, steps, wrap):
            model, counter = m.timed(m.model)
            out = m.bench.call(m.nodes["TwinCropFusionSampler"], model, seed, steps, 1.0, m.args.sampler,
                               m.args.scheduler, m.cond, m.cond, latent, 1.0, mode, 1.0, 0.5,
                               m.args.view_batch_size, windows(seed, wrap), None)[0]
            return out["samples"], counter
        return run

    def shifted(stride, blend):
        return lambda seed, wrap: m.bench.call(m.nodes[SHIFTED], 128, stride, "golden", 0, wrap, blend)[0]

    out = [
        ("md", f"ours MultiDiffusion, stride {s}",
         ours("multidiffusion", lambda seed, wrap: m.windows(128, s, 1, wrap))),
        ("cross", f"ours Twin + Cross Sampling c=2, stride {2 * s} (the default plan)",
         ours("twindiffusion", lambda seed, wrap: m.windows(128, 2 * s, 2, wrap))),
        ("shift", "ours shifted, golden, side by side (stride 128), mean", ours("multidiffusion", shifted(0, "mean"))),
    ]
    for stride in args.feathered:
        out.append((f"shift_f{stride}", f"ours shifted, golden, stride {stride}, feathered",
                    ours("multidiffusion", shifted(stride, "feathered"))))
    if peer is not None:
        def theirs(method, overlap, spot=None):
            def run(seed, latent, steps, wrap):
                return m.theirs(method, 128, overlap, spot=spot)(seed, latent, steps)
            return run
        out += [("peer_md", f"peer MultiDiffusion, overlap {128 - s}", theirs("MultiDiffusion", 128 - s)),
                ("peer_spot", "peer SpotDiffusion, overlap 0, random", theirs("SpotDiffusion", 0, "random"))]
    return [p for p in out if not args.only or p[0] in args.only]


def heights_steps(out, wrap: bool) -> dict:
    """Worst steps on the heights (wrap column included on a circle)."""
    import torch
    heights = out.float()
    if wrap:
        heights = torch.cat([heights, heights[..., :1]], dim=-1)
    row = {"worst_x_heights": worst_step(heights, -1)}
    if out.shape[-2] > 128:
        row["worst_y_heights"] = worst_step(out.float(), -2)
    row["worst_heights"] = max(row["worst_x_heights"], row.get("worst_y_heights", 0.0))
    return row


def sample(args) -> dict:
    bench, pack = boot()
    peer = None
    if args.peer is not None and (args.peer / "__init__.py").exists():
        import bench_peer
        peer = bench_peer.load_peer(args.peer.expanduser().resolve())
    elif args.peer is not None:
        print(f"note: no peer checkout at {args.peer}: the peer's rows are skipped", file=sys.stderr)
    import torch
    from demo.terrain import picture_of, sheet
    from fusion.wrap import seam_ratio
    if args.threads:
        torch.set_num_threads(args.threads)
    m = Methods(args, bench, pack, peer)
    chosen = plans(args, m, peer)
    rows = {f"{setting}/{scene}": {key: [] for key, _, _ in chosen}
            for setting in args.settings for scene in args.scenes}
    if args.resume and args.json and args.json.exists():  # runs of an earlier, stopped process: kept, not re-run
        for name, part in json.loads(args.json.read_text())["rows"].items():
            for key, rs in part.items():
                if name in rows and key in rows[name]:
                    rows[name][key] = rs
    latents_path = args.json.with_suffix(".picture.pt") if args.json else None
    pictured = torch.load(latents_path) if args.resume and latents_path and latents_path.exists() else {}
    started = time.perf_counter()
    with torch.inference_mode():
        for key, _, run in chosen:  # warm-up: every plan once, 2 steps, on the smallest scene
            _, h, w, wrap = min((SCENES[scene] for scene in args.scenes), key=lambda sc: sc[1] * sc[2])
            run(0, {"samples": torch.zeros(1, 1, h, w)}, 2, wrap)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for setting in args.settings:
                sampler, steps = SETTINGS[setting]
                m.args.sampler = sampler
                for scene in args.scenes:
                    _, h, w, wrap = SCENES[scene]
                    latent = {"samples": torch.zeros(1, 1, h, w)}
                    order = chosen if seed % 2 == 0 else chosen[::-1]
                    for key, label, run in order:
                        done = any(r["seed"] == seed for r in rows[f"{setting}/{scene}"][key])
                        if f"{key}:{scene}" in args.skip or done:
                            continue
                        out, row = run_timed(lambda s, lat, n: run(s, lat, n, wrap), seed, latent, steps, m.sync)
                        row.update(heights_steps(out, wrap))
                        picture = picture_of(out, wrap=wrap)
                        row.update(coherence(picture, args.stride))
                        if wrap:
                            row["seam_ratio_heights"] = seam_ratio(out.float(), -1)
                        rows[f"{setting}/{scene}"][key].append(row)
                        if args.picture and seed == args.first_seed and setting == "lcm4" and scene == "2d":
                            pictured[key] = out.cpu()
                            if latents_path:
                                torch.save(pictured, latents_path)
                        print(f"seed {seed} {setting} {scene} {key}: {row['seconds']:.1f} s, {row['evaluations']} "
                              f"evals, worst step (heights) {row['worst_heights']:.2f}", file=sys.stderr, flush=True)
                        if args.json:  # after every run: a stopped process loses at most one
                            write(args, chosen, rows, peer is not None)
            if pictured and args.picture:
                sheet([(f"2-D 256x512 px, 4 lcm steps, seed {args.first_seed}, the model's heights as relief",
                        [(label, picture_of(pictured[key])) for key, label, _ in chosen if key in pictured])],
                      args.picture)
    return {"plans": [(k, label) for k, label, _ in chosen], "rows": rows, "seconds": time.perf_counter() - started,
            "peer": peer is not None, "torch": torch.__version__, "threads": torch.get_num_threads()}


def table(plans_, part: dict, wrap: bool, two_d: bool) -> tuple[str, dict]:
    md = {r["seed"]: r for r in part.get("md", [])}
    head = ["plan", "window evals", "evals / MD", "worst step (heights)", "/ MD's (paired)"]
    head += ["worst step x (heights)", "worst step y (heights)"] if two_d else []
    head += ["wrap seam ratio (heights)"] if wrap else []
    head += ["seam score (MD grid edges)", "LPIPS alex (adjacent)", "seconds", "CPU seconds", "meets"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdict = {}
    md_evals = statistics.mean(r["evaluations"] for r in md.values()) if md else None
    md_worst = statistics.mean(r["worst_heights"] for r in md.values()) if md else None
    for key, label in plans_:
        rs = part.get(key, [])
        if not rs:
            continue
        evals = statistics.mean(r["evaluations"] for r in rs)
        worst = statistics.mean(r["worst_heights"] for r in rs)
        paired = [r["worst_heights"] / md[r["seed"]]["worst_heights"] for r in rs if r["seed"] in md]
        ok = None
        if md_evals:
            ok = evals / md_evals <= EVAL_TARGET and worst <= (1 + STEP_TOLERANCE) * md_worst
            verdict[key] = {"evals_over_md": evals / md_evals, "worst_over_md": worst / md_worst, "meets": ok}
        cells = [label, f"{evals:.0f}", f"{evals / md_evals:.2f}" if md_evals else "-",
                 mean_std([r["worst_heights"] for r in rs], "{:.2f}"), mean_std(paired, "{:.2f}")]
        if two_d:
            cells += [mean_std([r["worst_x_heights"] for r in rs], "{:.2f}"),
                      mean_std([r.get("worst_y_heights") for r in rs], "{:.2f}")]
        if wrap:
            cells.append(mean_std([r.get("seam_ratio_heights") for r in rs], "{:.2f}"))
        cells += [mean_std([r["seam"] for r in rs]), mean_std([r["lpips_alex"] for r in rs]),
                  mean_std([r["seconds"] for r in rs], "{:.1f}"), mean_std([r["cpu_seconds"] for r in rs], "{:.1f}"),
                  "(baseline)" if key == "md" else ("yes" if ok else "no")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), verdict


def report(args, result) -> str:
    rows = result["rows"]
    seeds = sorted({r["seed"] for part in rows.values() for rs in part.values() for r in rs})
    out = [f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), cfg 1, karras, difficulty {args.difficulty:g}, "
           f"128 px windows, view_batch_size {args.view_batch_size}; mean ± std over seeds; target: window "
           f"evaluations <= {EVAL_TARGET}x MultiDiffusion's (stride {args.stride}) and a worst step on the heights "
           f"within {STEP_TOLERANCE:.0%} of MultiDiffusion's (mean over seeds)"
           + ("" if result.get("peer") else "; no peer checkout: the peer's rows are absent")]
    out += ["", summary(result)]
    verdicts: dict = {}
    for name, part in rows.items():
        setting, scene = name.split("/")
        title, h, w, wrap = SCENES[scene]
        sampler, steps = SETTINGS[setting]
        text, verdict = table(result["plans"], part, wrap, h > 128)
        out += ["", f"**{title}, {steps} {sampler} steps**", "", text]
        for key, v in verdict.items():
            verdicts.setdefault(key, {})[name] = v["meets"]
    out.append("")
    labels = dict(result["plans"])
    for key, v in verdicts.items():
        if key == "md":
            continue
        met = [n for n, ok in v.items() if ok]
        everywhere = len(met) == len(v)
        out.append(f"- {labels[key]}: meets the target in {len(met)} of {len(v)} scene-settings"
                   + (" (everywhere: wins at both settings)" if everywhere else
                      f" ({', '.join(met) if met else 'none'})"))
    return "\n".join(out)


def summary(result) -> str:
    """One line per plan, one cell per scene-setting: its window evaluations
    over MultiDiffusion's, and its worst step over MultiDiffusion's (paired
    by seed, mean ± std)."""
    rows, labels = result["rows"], dict(result["plans"])
    names = list(rows)
    head = ["plan"] + [f"{SCENES[n.split('/')[1]][0].split(',')[0]}, {' '.join(map(str, SETTINGS[n.split('/')[0]][::-1]))}"
                       for n in names]
    lines = ["evals / MD ; worst step / MD's (paired)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in labels:
        cells = [labels[key]]
        for name in names:
            md = {r["seed"]: r for r in rows[name].get("md", [])}
            rs = rows[name].get(key, [])
            if not rs or not md:
                cells.append("-")
                continue
            evals = statistics.mean(r["evaluations"] for r in rs) / statistics.mean(r["evaluations"] for r in md.values())
            paired = [r["worst_heights"] / md[r["seed"]]["worst_heights"] for r in rs if r["seed"] in md]
            cells.append(f"{evals:.2f} ; {mean_std(paired, '{:.2f}')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(args, chosen, rows, peer: bool) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                     "plans": [(k, label) for k, label, _ in chosen], "rows": rows, "peer": peer},
                                    indent=1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, default=Path("/tmp/ComfyUI-TiledDiffusion"))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--scenes", nargs="+", choices=tuple(SCENES), default=list(SCENES))
    parser.add_argument("--only", nargs="*", help="plan keys to run (md is the baseline: keep it)")
    parser.add_argument("--skip", nargs="*", default=["peer_md:2d"],
                        help="plan:scene pairs not run (default: the peer's MultiDiffusion in 2-D, which gives ours "
                             "bit for bit, as on the strip, at 260-520 evaluations a seed)")
    parser.add_argument("--feathered", type=int, nargs="*", default=[96, 112],
                        help="view strides (px) of the shifted + feathered plans")
    parser.add_argument("--stride", type=int, default=32, help="MultiDiffusion's stride in px (window / 4)")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--difficulty", type=float, default=50.0)
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --json (an earlier, stopped process) and run the rest")
    parser.add_argument("--picture", type=Path, help="relief of the first seed per plan, 2-D at 4 lcm steps")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--report", type=Path, nargs="+", help="no sampling: one table of earlier --json files")
    args = parser.parse_args(argv)
    args.sampler = "lcm"  # Methods reads it; set per setting while sampling
    if args.report:
        result = {"plans": None, "rows": {}, "peer": False}
        for path in args.report:
            data = json.loads(path.read_text())
            result["plans"] = [tuple(p) for p in data["plans"]]
            result["peer"] = result["peer"] or data.get("peer", False)
            for name, part in data["rows"].items():
                for key, rs in part.items():
                    result["rows"].setdefault(name, {}).setdefault(key, []).extend(rs)
        for part in result["rows"].values():
            for rs in part.values():
                rs.sort(key=lambda r: r["seed"])
    else:
        result = sample(args)
        if args.json:
            write(args, [(k, label, None) for k, label in result["plans"]], result["rows"], result["peer"])
    text = report(args, result)
    print("\n" + text)
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()

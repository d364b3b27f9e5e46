"""Sphere views (Panorama Windows (Sphere), SphereDiff) next to windows on the
equirectangular latent, for a whole-sphere 360 (2:1) on the trained terrain
model inside a ComfyUI host, side by side in one process: seed by seed, the
same noise for every method, the methods' order turned by one each seed so
the machine's load spreads over all of them.

Methods (KSampler (Panorama), mode multidiffusion: plain averaging):
  equirect windows   Panorama Windows (Cross Sampling) with wrap_around,
                     window W, stride about W/4 (on the 8 px token grid), c = 1
  equirect shifted   Panorama Windows (Shifted), golden offsets, wrap, window W
  sphere, golden     Panorama Windows (Sphere), rotation golden (the default)
  sphere, none       Panorama Windows (Sphere), rotation none (fixed views)
W is the sphere views' size by default (--equirect-window to change it): the
terrain model has 1 image px per latent px, and 128 px sphere views need a
352 x 704 px 360 (a 256 x 512 one is refused, naming what to change; the
bench prints that message), so on 256 x 512 the views are 88 px.

Measures, per method and seed, on the heights (the model-space channel):
  pole isotropy  the 360 as cube faces (fusion.sphere.equirect_to_cube, face
                 size H/2: a face pixel at the face centre spans one
                 equirectangular row); on a face, mean |gradient| along the
                 radius from the face centre over mean |gradient| along the
                 circles around it, in the disc inner < r < outer (face
                 half-sizes, 0.1 and 0.8).  The up and down faces are the
                 poles; the front face (horizon) is the baseline (about 1 for
                 isotropic terrain; the gnomonic face shrinks radial pixels a
                 little towards the rim).  Equirectangular windows draw
                 isotropic texture in (column, row): at a pole its columns
                 close into circles, the texture is squeezed along them and
                 reads as radial streaks: a ratio well below the front's.
  wrap seam      fusion.wrap.seam_ratio on the heights (~1 = seamless)
  cost           window evaluations, wall time, and wall time over the summed
                 model-call time (the pack's overhead; goal <= 1.03).
Windows are counted and model time summed by bench_shifted's APPLY_MODEL
wrapper.  Mean ± std over seeds.  --picture draws one seed's up / down /
front faces per method as relief (terrain.render.relief), labelled.

  export COMFYUI_PATH=~/ComfyUI-0.33; py=~/.cache/comfy-panorama/venv-comfyui-0.33.0/bin/python
  $py bench/bench_sphere.py --threads 1 --quick          # smoke: 1 seed, 2 steps (~2.5 min)
  # all four side by side, 6 seeds, 8 euler steps (the equirect windows' 1408
  # evaluations a seed dominate: 53 min on 2 cores shared at load 5-10)
  $py bench/bench_sphere.py --threads 1 --seeds 6 --steps 8 --sampler euler \\
      --json out/sphere.json --md out/sphere.md --picture out/sphere_poles.png
  # docs/sphere_poles.png: one seed, no warm-up (its times mean nothing)
  $py bench/bench_sphere.py --threads 1 --seeds 1 --steps 8 --no-warmup \\
      --json out/sphere_picture.json --md out/sphere_picture.md --picture docs/sphere_poles.png
  # the cheap rows only (after a change to the sphere views), ~10 min
  $py bench/bench_sphere.py --threads 1 --seeds 6 --steps 8 --methods equi_shift sphere_golden sphere_none \\
      --json out/sphere_head.json --md out/sphere_head.md
  $py bench/bench_sphere.py --threads 1 --seeds 6 --steps 4 --sampler lcm \\
      --json out/sphere_lcm4.json --md out/sphere_lcm4.md
  $py bench/bench_sphere.py --report out/sphere.json     # the tables again from a JSON
  $py bench/bench_sphere.py --report out/sphere.json out/sphere_head.json --merge   # one table of both
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPHERE = "PanoramaSphereWindows"
FRONT, UP, DOWN = 0, 4, 5  # fusion.sphere.FACES order
METHODS = ("equi_md", "equi_shift", "sphere_golden", "sphere_none")


# ----------------------------------------------------------------------------
# measures


def isotropy(face, inner: float = 0.1, outer: float = 0.8) -> float:
    """Mean |gradient| along the radius from the face centre over mean
    |gradient| along the circles around it, for pixels at inner <= r <= outer
    (r in face half-sizes).  ``face`` is (N, N)."""
    import torch
    f = face.double()
    n = f.shape[-1]
    gx = (f[1:-1, 2:] - f[1:-1, :-2]) / 2  # along columns
    gy = (f[2:, 1:-1] - f[:-2, 1:-1]) / 2  # along rows
    c = (torch.arange(1, n - 1, dtype=torch.float64) + 0.5) / n * 2 - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    r = (x * x + y * y).sqrt()
    inside = (r >= inner) & (r <= outer)
    ux, uy = x / r.clamp_min(1e-12), y / r.clamp_min(1e-12)
    radial = (gx * ux + gy * uy).abs()[inside].mean()
    tangential = (gy * ux - gx * uy).abs()[inside].mean()
    return float(radial / tangential.clamp_min(1e-12))


def measures(heights, inner: float, outer: float) -> dict:
    """heights (1, 1, H, 2H), model space."""
    from fusion.sphere import equirect_to_cube
    from fusion.wrap import seam_ratio
    faces = equirect_to_cube(heights.float(), heights.shape[-2] // 2)[0, :, 0]
    out = {name: isotropy(faces[i], inner, outer) for name, i in (("iso_up", UP), ("iso_down", DOWN),
                                                                   ("iso_front", FRONT))}
    # the inner half of the disc too, where an equirect window's pinch is strongest
    out.update({f"{name}_inner": isotropy(faces[i], inner, (inner + outer) / 2)
                for name, i in (("iso_up", UP), ("iso_down", DOWN), ("iso_front", FRONT))})
    out["poles_over_front"] = (out["iso_up"] + out["iso_down"]) / 2 / out["iso_front"]
    out["seam_ratio_heights"] = seam_ratio(heights.float(), -1)
    return out


# ----------------------------------------------------------------------------
# the methods


def stride_for(window: int) -> int:
    """A quarter of the window on the 8 px grid the windows node asks for."""
    return max(8, round(window / 4 / 8) * 8)


def configurations(args, m, call) -> list[tuple[str, str, object]]:
    """[(key, label, run)]; ``m`` is bench_shifted.Methods."""
    w, ew = args.window, args.equirect_window
    s = stride_for(ew)
    sphere = lambda rotation: (lambda seed: call(m.nodes[SPHERE], w, 0.0, args.overlap, 0, rotation, 2)[0])
    views = f"{w} px views" if w else "native views"
    return [
        ("equi_md", f"equirect windows, wrap, window {ew}, stride {s} (MultiDiffusion)",
         m.ours("multidiffusion", lambda seed: m.windows(ew, s, 1, True))),
        ("equi_shift", f"equirect shifted windows, golden, wrap, window {ew}",
         m.ours("multidiffusion", lambda seed: m.shifted(ew, 0, "golden", seed, True))),
        ("sphere_golden", f"sphere views, rotation golden, {views}", m.ours("multidiffusion", sphere("golden"))),
        ("sphere_none", f"sphere views, rotation none, {views}", m.ours("multidiffusion", sphere("none"))),
    ]


def preflight(m, height: int, window: int, overlap: float) -> dict:
    """What the sphere node says of this latent at native views and at the
    asked size (the ValueError the sampler raises, or the views it uses)."""
    adapter = sys.modules["comfyui_panorama_diffusion.nodes.adapter"]
    from fusion.sphere_views import SphereSettings, sphere_plan
    grid = adapter.latent_grid(m.model)
    out = {"grid": {"scale": grid.scale, "patch": grid.patch, "native": grid.native}}
    for name, size in (("native", 0), ("asked", window)):
        plan = sphere_plan(SphereSettings(size, 0.0, overlap), grid)
        try:
            plan.check(height, 2 * height, grid.scale)
            fov = plan.fov_for(height)
            out[name] = f"accepted: {plan.count_for(fov)} views of {plan.window} px at {fov:.0f} degrees"
        except ValueError as error:
            out[name] = f"refused: {error}"
    return out


# ----------------------------------------------------------------------------
# the picture


def picture(outputs: dict, labels: dict, args, path: Path) -> None:
    """Rows: methods; columns: up, down, front faces as relief."""
    import torch
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from demo.terrain import TINT_RANGE
    from fusion.sphere import equirect_to_cube
    from terrain.render import relief
    keys = [k for k in METHODS if k in outputs]
    size = args.picture_face
    height = next(iter(outputs.values())).shape[-2]
    # slopes per face pixel as on the equirect grid (a face-centre pixel spans 90/size degrees, a row 180/H)
    exaggeration = 2 * size / height
    pad, head, label_w = 6, 24, 250
    try:
        font = ImageFont.load_default(size=15)
        small = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        font = small = ImageFont.load_default()
    canvas = Image.new("RGB", (label_w + 3 * (size + pad), head + len(keys) * (size + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(("up face (zenith)", "down face (nadir)", "front face (horizon)")):
        draw.text((label_w + j * (size + pad) + 4, 4), name, fill="black", font=font)
    for i, key in enumerate(keys):
        faces = equirect_to_cube(outputs[key].float(), size)[0]  # (6, 1, N, N)
        top = head + i * (size + pad)
        for j, face in enumerate((UP, DOWN, FRONT)):
            rgb = relief(faces[face:face + 1], exaggeration=exaggeration, tint_range=TINT_RANGE)[0]
            array = (rgb.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
            canvas.paste(Image.fromarray(array), (label_w + j * (size + pad), top))
        m = measures(outputs[key], args.inner, args.outer)
        words, line, lines = labels[key].replace(",", ", ").split(), "", []
        for word in words:  # wrap the label
            if len(line) + len(word) > 30:
                lines.append(line)
                line = ""
            line = f"{line} {word}".strip()
        lines.append(line)
        text = "\n".join(lines)
        draw.multiline_text((6, top + 4), text, fill="black", font=font, spacing=3)
        stats = (f"radial/tangential |grad|:\nup {m['iso_up']:.2f}  down {m['iso_down']:.2f}\n"
                 f"front {m['iso_front']:.2f}\npoles/front {m['poles_over_front']:.2f}")
        draw.multiline_text((6, top + 20 + 19 * len(lines)), stats, fill=(60, 60, 60), font=small, spacing=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours (median cut): the relief looks the same at under half the bytes
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"picture: {path} (seed {args.picture_seed})", file=sys.stderr)


# ----------------------------------------------------------------------------
# running and reporting


def run(args) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_sampler
    import bench_shifted
    pack = bench_sampler.boot(False)
    if str(ROOT) not in sys.path:  # fusion/, demo/, terrain/ (after ComfyUI's own modules)
        sys.path.append(str(ROOT))
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    m = bench_shifted.Methods(args, bench_sampler, pack, None)
    if SPHERE not in m.nodes:
        raise SystemExit(f"node {SPHERE} is not registered by this revision of the pack")
    checks = preflight(m, args.height, args.window, args.overlap)
    for name in ("native", "asked"):
        print(f"sphere views on {args.height}x{2 * args.height} px, {name} size: {checks[name]}", file=sys.stderr)
    configs = [c for c in configurations(args, m, bench_sampler.call) if not args.methods or c[0] in args.methods]
    rows = {key: [] for key, _, _ in configs}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    latent = {"samples": torch.zeros(1, 1, args.height, 2 * args.height)}
    kept = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for key, _, method in configs if args.warmup else ():  # warm-up: one step each
            method(0, latent, 1)
        for index, seed in enumerate(seeds):
            turn = index % len(configs)
            for key, label, method in configs[turn:] + configs[:turn]:
                out, row = bench_shifted.run_one(method, seed, latent, args.steps, m.sync)
                row.update(measures(out, args.inner, args.outer))
                rows[key].append(row)
                if seed == args.picture_seed:
                    kept[key] = out.float().clone()
                print(f"seed {seed} {key}: {row['seconds']:.1f} s ({row['seconds'] / row['model_seconds']:.3f}x "
                      f"model), {row['evaluations']} evals, iso up {row['iso_up']:.2f} down {row['iso_down']:.2f} "
                      f"front {row['iso_front']:.2f}, seam {row['seam_ratio_heights']:.2f}", file=sys.stderr,
                      flush=True)
            if args.picture and seed == args.picture_seed:  # drawn now: kept if the run is stopped later
                picture(kept, {key: label for key, label, _ in configs}, args, args.picture)
            if args.json:  # keep what is done if the run is stopped
                write_json(args, configs, rows, checks, None)
    seconds = time.perf_counter() - started
    return {"labels": {key: label for key, label, _ in configs}, "rows": rows, "checks": checks,
            "seconds": seconds, "torch": torch.__version__, "threads": torch.get_num_threads()}


def mean_std(values, fmt="{:.3f}") -> str:
    sys.path.insert(0, str(HERE))
    from bench_shifted import mean_std as shifted_mean_std
    return shifted_mean_std(values, fmt)


def report(args: dict, result: dict) -> str:
    rows, labels = result["rows"], result["labels"]
    seeds = sorted({r["seed"] for rs in rows.values() for r in rs})
    height = int(args["height"])
    done = f"{result['seconds']:.0f} s in all, " if result.get("seconds") else "run stopped before its end, "
    out = [f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}), a {height}x{2 * height} px 360 (whole sphere), "
           f"{args['steps']} {args['sampler']} steps ({args['scheduler']}), cfg 1, difficulty {args['difficulty']}, "
           f"view_batch_size {args['view_batch_size']}, mode multidiffusion; mean ± std over seeds; "
           f"{done}torch {result.get('torch')}, {result.get('threads')} thread(s). "
           f"Isotropy: mean |grad| radial / tangential on the cube face (size {height // 2}), "
           f"{args['inner']} < r < {args['outer']} face half-sizes.", ""]
    checks = result.get("checks", {})
    for name in ("native", "asked"):
        if name in checks:
            out.append(f"- sphere node at {'native' if name == 'native' else args['window'] + ' px'} views: "
                       f"{checks[name]}")
    head = ["method", "seeds", "window evals / image", "seconds", "time / model calls", "isotropy up", "isotropy down",
            "isotropy front (baseline)", "poles / front", "up, inner half", "down, inner half",
            "wrap seam ratio (heights)"]
    out += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in labels.items():
        rs = rows.get(key, [])
        if not rs:
            continue
        cells = [label, str(len(rs)), f"{statistics.mean(r['evaluations'] for r in rs):.0f}",
                 mean_std([r["seconds"] for r in rs], "{:.1f}"),
                 mean_std([r["seconds"] / r["model_seconds"] for r in rs], "{:.3f}")]
        cells += [mean_std([r[k] for r in rs], "{:.2f}") for k in
                  ("iso_up", "iso_down", "iso_front", "poles_over_front", "iso_up_inner", "iso_down_inner",
                   "seam_ratio_heights")]
        out.append("| " + " | ".join(cells) + " |")
    # paired: poles / front of each sphere row against the equirect windows, seed by seed
    base = {r["seed"]: r["poles_over_front"] for r in rows.get("equi_md", [])}
    paired = []
    for key in ("equi_shift", "sphere_golden", "sphere_none"):
        pairs = [(r["poles_over_front"], base[r["seed"]]) for r in rows.get(key, []) if r["seed"] in base]
        if pairs:
            closer = sum(abs(math.log(a)) < abs(math.log(b)) for a, b in pairs)
            paired.append(f"- {labels[key]}: |log(poles / front)| below the equirect windows' on {closer}/{len(pairs)} "
                          f"seeds")
    if paired:
        out += ["", "Paired per seed (closer to isotropic poles than equirect windows, MultiDiffusion):", *paired]
    return "\n".join(out)


def write_json(args, configs, rows, checks, extra) -> None:
    payload = {"args": {k: str(v) for k, v in vars(args).items()},
               "labels": {key: label for key, label, _ in configs}, "rows": rows, "checks": checks, **(extra or {})}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 steps: a smoke test")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--difficulty", type=float, default=50.0)
    parser.add_argument("--height", type=int, default=256, help="the 360's height in px (width 2x; default 256)")
    parser.add_argument("--window", type=int, default=88,
                        help="sphere views' window_size in px (0 = native 128, needs --height 352; default 88)")
    parser.add_argument("--equirect-window", type=int, default=0,
                        help="window of the equirect plans in px (0 = the sphere views' size); their stride is a "
                             "quarter of it on the 8 px grid the windows node asks for (88 -> 24)")
    parser.add_argument("--overlap", type=float, default=0.25, help="sphere views' overlap")
    parser.add_argument("--view-batch-size", type=int, default=4)
    parser.add_argument("--inner", type=float, default=0.1, help="isotropy disc: inner radius (face half-sizes)")
    parser.add_argument("--outer", type=float, default=0.8, help="isotropy disc: outer radius (face half-sizes)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="run only these (default: all)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the one-step warm-up of every method (its first run's times then include it)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--picture", type=Path, help="PNG of one seed's up/down/front faces per method")
    parser.add_argument("--picture-seed", type=int, help="the seed drawn (default: the first)")
    parser.add_argument("--picture-face", type=int, default=256, help="face size in the picture (px)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--report", type=Path, nargs="+", help="print the tables of these JSON files, run nothing")
    parser.add_argument("--merge", action="store_true",
                        help="with --report: one table, each method's rows from the last file holding it "
                             "(seconds are then from different runs: compare time only within a file)")
    args = parser.parse_args(argv)
    if args.report:
        payloads = [json.loads(path.read_text()) for path in args.report]
        if args.merge:  # one table: a method's rows from the last file that has them
            merged = dict(payloads[-1], labels={}, rows={}, seconds=None)
            for payload in payloads:
                for key, rows in payload["rows"].items():
                    if rows:
                        merged["labels"][key], merged["rows"][key] = payload["labels"][key], rows
            merged["labels"] = {k: merged["labels"][k] for k in METHODS if k in merged["labels"]}
            payloads = [merged]
        for payload in payloads:
            extra = {k: payload.get(k) for k in ("seconds", "torch", "threads")}
            print(report(payload["args"], {"labels": payload["labels"], "rows": payload["rows"],
                                           "checks": payload.get("checks") or {}, **extra}) + "\n")
        return
    if args.quick:
        args.seeds, args.steps = 1, 2
    if args.picture_seed is None:
        args.picture_seed = args.first_seed
    args.equirect_window = args.equirect_window or args.window or 128
    result = run(args)
    text = report({k: str(v) for k, v in vars(args).items()}, result)
    print("\n" + text)
    if args.json:
        write_json(args, [(k, v, None) for k, v in result["labels"].items()], result["rows"], result["checks"],
                   {k: result[k] for k in ("seconds", "torch", "threads")})
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()

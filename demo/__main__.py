"""python -m demo [terrain] [options]: the main job on a trained model.
Terrain panoramas from adaptive-terrain-diffusion's consistency U-Net (a
1-D strip, a 2-D panorama, a 2:1 360-degree one) under MultiDiffusion,
TwinDiffusion (Crop Fusion, the paper's and feathered weights), Crop Fusion
+ Cross Sampling at twice the stride, and Multi-Scale Diffusion, with the
same seeds.  Writes one PNG (hillshaded relief with hypsometric tints,
panels labelled, first seed) and prints a table: LPIPS (alex, vgg) and DISTS
between adjacent crops, the seam score, MSD's layout score, window
evaluations and seconds.  Needs the pinned packages scripts/setup.sh
installs (the model's and the metrics' weights).

python -m demo reference [options]: the same comparison on the built-in
reference model (a Gaussian-mixture prior whose denoiser is the exact
posterior mean), the previous main job.

python -m demo sweep [options]: the shape of the TwinDiffusion paper's
ablations on the reference model (tau, lambda, view stride, cross stride),
CSV and plots under docs/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fusion import MultiScaleSettings

from .report import picture, scores, table, to_image
from .sampling import Method, sample


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, label: str):
        self.total, self.done, self.label = total, 0, label

    def __call__(self):
        self.done += 1
        if sys.stderr.isatty() or self.done == self.total or self.done % max(self.total // 20, 1) == 0:
            filled = int(30 * self.done / self.total)
            print(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}",
                  end="\n" if self.done == self.total else "", file=sys.stderr, flush=True)


def demo_methods(stride: int, omega: float) -> list[Method]:
    return [
        Method(f"MultiDiffusion, stride {stride}", stride),
        Method(f"TwinDiffusion Crop Fusion, stride {stride}", stride, crop_fusion=True),
        Method(f"TwinDiffusion Crop Fusion feathered, stride {stride}", stride, crop_fusion=True, feather=True),
        Method(f"MultiDiffusion, stride {2 * stride}", 2 * stride),
        Method(f"TwinDiffusion Crop Fusion + Cross Sampling c=2, stride {2 * stride}", 2 * stride, 2,
               crop_fusion=True),
        Method(f"MultiDiffusion, 2x height, stride {stride}", stride, height_factor=2),
        Method(f"Multi-Scale Diffusion (omega {omega:g}), 2x height, stride {stride}", stride,
               multiscale=MultiScaleSettings(omega=omega), height_factor=2),
    ]


def load_denoiser(args):
    from refmodel import ReferenceDenoiser
    print(f"reference model: Gaussian-mixture prior over {args.window}x{args.window} latent windows "
          f"(fitted once to scikit-image's photos, then cached)", file=sys.stderr)
    return ReferenceDenoiser(window=args.window)


def run(args) -> None:
    torch.manual_seed(0)
    denoiser = load_denoiser(args)
    width = args.window * args.aspect
    methods = [m for m in demo_methods(args.stride, args.omega) if args.msd or m.height_factor == 1]
    progress = Progress(len(methods) * args.seeds * args.steps, "sampling")
    per_method, panels = {}, []
    for method in methods:
        rows = []
        for seed in range(args.seeds):
            result = sample(denoiser, method, args.window, width, args.steps, seed, progress)
            rows.append({**scores(result, denoiser), "evaluations": result.evaluations, "seconds": result.seconds})
            if seed == 0:
                panels.append((method.label, to_image(result.latent, denoiser)))
        per_method[method.label] = rows
    picture(panels, args.out)
    text = table(per_method)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"\n{args.seeds} seeds, {args.steps} Euler steps (Karras sigmas {14.6:g} -> 0.03), "
          f"{args.window}x{width} latent windows/panorama; mean ± std over seeds")
    print(text)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")


COMMANDS = ("terrain", "reference", "run", "sweep")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["terrain", *argv]  # the trained-model demo is the default
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    terrain = sub.add_parser("terrain", help="the main job: terrain panoramas from the trained model (default)")
    from .terrain import add_arguments
    add_arguments(terrain)
    demo_parsers = [sub.add_parser("reference", help="the same comparison on the built-in reference model"),
                    sub.add_parser("run", help="alias of reference")]
    sweep = sub.add_parser("sweep", help="the paper's ablations on the reference model")
    for p in (*demo_parsers, sweep):
        p.add_argument("--window", type=int, default=32, help="window size in latent pixels (default 32)")
        p.add_argument("--steps", type=int, default=30, help="Euler steps (default 30)")
        p.add_argument("--seeds", type=int, default=4 if p is not sweep else 16,
                       help="seeds per method; metrics are mean ± std (default: 4, sweep 16)")
        p.add_argument("--aspect", type=int, default=4, help="panorama width in windows, as 512x2048 is 4 (default 4)")
        p.add_argument("--stride", type=int, default=8,
                       help="base view stride in latent pixels, a quarter of the window as in the paper (default 8)")
        p.add_argument("--omega", type=float, default=10.0, help="MSD gradient weight (default 10, the paper's)")
    for p in demo_parsers:
        p.add_argument("--out", type=Path, default=Path("out/demo.png"), help="PNG to write (default out/demo.png)")
        p.add_argument("--no-msd", dest="msd", action="store_false", help="skip the 2x-height MSD comparison")
    sweep.add_argument("--out-dir", type=Path, default=Path("docs"), help="where CSV and plots go (default docs/)")
    sweep.add_argument("--only", nargs="*", choices=["tau", "lambda", "stride", "cross"],
                       help="run only these ablations")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        from .sweep import sweep as run_sweep
        run_sweep(args)
    elif args.command == "terrain":
        from .terrain import run as run_terrain
        run_terrain(args, Progress)
    else:
        run(args)


if __name__ == "__main__":
    main()

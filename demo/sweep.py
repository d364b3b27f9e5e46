"""The shape of the TwinDiffusion paper's ablations on the reference model:
tau (Fig. 6), lambda (Fig. 7), view stride against time for MultiDiffusion,
Crop Fusion only, Cross Sampling only and both (Fig. 8), and the cross stride
s_v / k (Table 1).  One CSV per ablation and a PNG plot under ``--out-dir``."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .report import scores  # noqa: E402
from .sampling import Method, sample  # noqa: E402


def evaluate(denoiser, method: Method, args) -> dict:
    rows = []
    for seed in range(args.seeds):
        result = sample(denoiser, method, args.window, args.window * args.aspect, args.steps, seed)
        rows.append({**scores(result, denoiser), "evaluations": result.evaluations, "seconds": result.seconds})
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[key] = statistics.mean(values)
        out[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def write_csv(path: Path, records: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def line_plot(path: Path, title: str, xlabel: str, series: dict[str, tuple[list, list, list]],
              logx: bool = False, ylabel: str = "seam score (1 = no seam)", logy: bool = False) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys, errs) in series.items():
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


WEIGHTS = {"paper": False, "feathered": True}  # Crop Fusion's neighbour weights


def by_weights(records: list[dict], key: str) -> dict:
    series = {}
    for name in WEIGHTS:
        mine = [r for r in records if r["weights"] == name]
        series[f"Crop Fusion, {name} weights"] = ([r[key] for r in mine], [r["seam"] for r in mine],
                                                  [r["seam_std"] for r in mine])
    return series


def sweep(args) -> None:
    from .__main__ import load_denoiser
    denoiser = load_denoiser(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["tau", "lambda", "stride", "cross"])
    s = args.stride

    def run(name, methods: list[tuple[dict, Method]]) -> list[dict]:
        records = []
        for i, (keys, method) in enumerate(methods):
            print(f"{name}: {i + 1}/{len(methods)} {method.label}", flush=True)
            records.append({**keys, **evaluate(denoiser, method, args)})
        write_csv(args.out_dir / f"ablation_{name}.csv", records)
        return records

    if "tau" in only:
        taus = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        recs = run("tau", [({"weights": w, "tau": t}, Method(f"{w} tau {t}", s, crop_fusion=True, tau=t, feather=f))
                           for w, f in WEIGHTS.items() for t in taus])
        line_plot(args.out_dir / "ablation_tau.png", f"Crop Fusion stop tau (lambda 1, stride {s}; 0 = MultiDiffusion)",
                  "tau", by_weights(recs, "tau"))
    if "lambda" in only:
        lams = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
        recs = run("lambda", [({"weights": w, "lambda": v}, Method(f"{w} lambda {v}", s, crop_fusion=True, lam=v,
                                                                     feather=f))
                              for w, f in WEIGHTS.items() for v in lams])
        md = evaluate(denoiser, Method("md", s), args)
        line_plot(args.out_dir / "ablation_lambda.png", f"Crop Fusion lambda (tau 0.5, stride {s}); "
                  f"MultiDiffusion: {md['seam']:.3f}", "lambda", by_weights(recs, "lambda"), logx=True)
    if "stride" in only:
        strides = [4, 8, 12, 16, 24, 32, 48]
        strides = [v for v in strides if v < args.window * 2]
        variants = {"MultiDiffusion": dict(), "Crop Fusion": dict(crop_fusion=True),
                    "Cross Sampling": dict(cross_count=2), "Crop Fusion + Cross Sampling":
                    dict(crop_fusion=True, cross_count=2),
                    "Crop Fusion feathered + Cross Sampling": dict(crop_fusion=True, feather=True, cross_count=2)}
        methods = [({"variant": name, "stride": v}, Method(f"{name} {v}", v, **kw))
                   for name, kw in variants.items() for v in strides if v >= kw.get("cross_count", 1) and
                   v <= args.window]
        recs = run("stride", methods)
        series = {}
        for name in variants:
            mine = [r for r in recs if r["variant"] == name]
            series[name] = ([r["evaluations"] for r in mine], [r["seam"] for r in mine], [r["seam_std"] for r in mine])
        # against window evaluations, the cost the model's time is made of:
        # a tenth of a second per panorama is too noisy a time axis here
        line_plot(args.out_dir / "ablation_stride.png", "View stride 4..32 (left to right: 32 .. 4): seam score "
                  "against cost", "window evaluations per panorama", series, logy=True)
    if "cross" in only:
        view = 2 * s
        ks = sorted({k for k in (1, 2, 3, 5, 7, view) if k <= view})  # s_v / s_v: the paper's extreme case
        recs = run("cross", [({"s_c": f"s_v/{k}", "cross_count": k, "view_stride": view},
                              Method(f"s_c = s_v/{k}", view, k, crop_fusion=True)) for k in ks])
        line_plot(args.out_dir / "ablation_cross.png", f"Cross stride s_v/k (s_v = {view}, Crop Fusion on)",
                  "k", {"seam": (ks, [r["seam"] for r in recs], [r["seam_std"] for r in recs])})
    print(f"wrote CSV and plots to {args.out_dir}/")

"""The demo end to end at a tiny size: it samples every method through the
pack's own fusion code, writes a valid PNG and the table -- on the trained
terrain model (the main job; skips, saying why, without its weights) and on
the reference model."""

import importlib.util

import pytest

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402

import demo.__main__ as demo_main  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("terrain_diffusion") is None,
                    reason="the main job's trained model comes from adaptive-terrain-diffusion==0.4.2, not installed "
                           "here (bash scripts/setup.sh installs it)")
def test_terrain_demo_writes_a_png_and_a_table(tmp_path, capsys):
    """The main job's default command at its smallest: one step, strips two
    windows wide, the stride of half a window; every scene and method."""
    from perceptual import metrics_missing_reason
    out = tmp_path / "demo.png"
    extra = [] if metrics_missing_reason() is None else ["--no-perceptual"]
    demo_main.main(["--steps", "1", "--aspect", "2", "--stride", "64", "--out", str(out), *extra])
    with Image.open(out) as image:
        assert image.mode == "RGB" and image.width == 256
        # nine panels (strip 5, 2-D 2 at twice the height, 360 2), labels and scene titles
        assert image.height > 7 * 128 + 2 * 256
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "method" not in line]
    assert len(rows) == 9
    assert "Multi-Scale Diffusion" in printed and "Cross Sampling" in printed
    header = next(line for line in printed.splitlines() if line.startswith("| scene"))
    assert "seam score" in header and "layout" in header and ("LPIPS alex" in header) == (not extra)
    assert out.with_suffix(".md").read_text().strip().startswith("| scene")


def test_reference_demo_writes_a_png_and_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMFY_PANORAMA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo.png"
    demo_main.main(["reference", "--window", "8", "--steps", "4", "--seeds", "2", "--aspect", "3", "--stride", "2",
                    "--out", str(out)])
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.mode == "RGB" and image.width > 0
        # seven panels: five at the window height, two at twice the height, each under a label
        assert image.height > 7 * 8
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "method" not in line]
    assert len(rows) == 7
    assert "Multi-Scale Diffusion" in printed and "Cross Sampling" in printed
    assert out.with_suffix(".md").read_text().strip().startswith("| method")


def test_sweep_writes_csv_and_plots(tmp_path, monkeypatch):
    monkeypatch.setenv("COMFY_PANORAMA_CACHE", str(tmp_path / "cache"))
    demo_main.main(["sweep", "--window", "8", "--steps", "3", "--seeds", "2", "--aspect", "2", "--stride", "2",
                    "--only", "cross", "--out-dir", str(tmp_path)])
    csv = (tmp_path / "ablation_cross.csv").read_text().splitlines()
    assert csv[0].startswith("s_c,") and len(csv) > 2
    with Image.open(tmp_path / "ablation_cross.png") as image:
        image.verify()

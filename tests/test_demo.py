"""The demo end to end at a tiny size: it samples every method through the
pack's own fusion code, writes a valid PNG and the table."""

import pytest

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402

import demo.__main__ as demo_main  # noqa: E402


def test_demo_writes_a_png_and_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMFY_PANORAMA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo.png"
    demo_main.main(["--window", "8", "--steps", "4", "--seeds", "2", "--aspect", "3", "--stride", "2",
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

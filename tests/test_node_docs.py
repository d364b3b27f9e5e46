"""The node docs (web/docs/, read by ComfyUI's docs panel) and the
translations (locales/, served by ComfyUI at /i18n) as files: one page per
node in English, Chinese and Japanese, every input and output on it, its
pictures where the panel can load them, the templates that use the node
named; the locale files in the frontend's nodeDefs format, each language
naming the same inputs and outputs.  (The frontend showing them is checked
in host/test_frontend_browser.py; the English texts against the nodes' own
tooltips there too.)"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "web" / "docs"
LOCALES = REPO / "locales"
LANGUAGES = ("en", "zh", "ja")
TEMPLATES = sorted((REPO / "example_workflows").glob("*.json"))
# The node ids (nodes/__init__.py) and their display names.
DISPLAY_NAMES = {
    "PanoramaLatent": "Empty Panorama Latent",
    "CrossSamplingScheduler": "Panorama Windows (Cross Sampling)",
    "PanoramaShiftedWindows": "Panorama Windows (Shifted, SpotDiffusion)",
    "PanoramaSphereWindows": "Panorama Windows (Sphere)",
    "TwinCropFusionSampler": "KSampler (Panorama)",
    "TwinDiffusionModel": "Sample as Panorama (model patch)",
    "MultiScaleGuidance": "Panorama Layout Guidance (MSD)",
    "PanoramaRopePositions": "Panorama Window Positions (RoPE)",
    "Panorama360Latent": "Empty 360° Panorama Latent",
    "PanoramaSeamlessDecode": "VAE Decode (360 seamless)",
    "PanoramaSeamlessEncode": "VAE Encode (360 seamless)",
    "SavePanorama360": "Save 360 Panorama (viewer)",
    "PreviewPanorama360": "Preview 360 Panorama (viewer)",
    "SavePanorama360Video": "Save 360 Video (viewer)",
    "PanoramaEquirectToCubeFaces": "360° Panorama to Cube Faces",
    "PanoramaCubeFacesToEquirect": "Cube Faces to 360° Panorama",
    "PanoramaEquirectToPerspective": "360° Panorama to Perspective View",
    "PanoramaPhotoTo360": "Place Photo in 360° Panorama",
    "PanoramaDirectionMask": "360° Direction Mask (sky / ground prompts)",
    "PanoramaTerrainModelLoader": "Load Terrain Model (adaptive-terrain-diffusion)",
    "PanoramaTerrainDifficulty": "Terrain Difficulty",
    "PanoramaTerrainRelief": "Terrain Relief (hillshade + tints)",
    "PanoramaTerrainEncode": "Terrain Heightmap to Latent",
}
NODES = list(DISPLAY_NAMES)
PAPER_NAMES = ("TwinDiffusion", "Crop Fusion", "Cross Sampling", "Multi-Scale Diffusion")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def page_path(node: str, language: str) -> Path:
    """Where the frontend looks first: docs/<node>/<locale>.md (docs/<node>.md,
    its fallback, is a copy of the English page: see the test below)."""
    return DOCS / node / f"{language}.md"


def locale(language: str) -> dict:
    return json.loads((LOCALES / language / "nodeDefs.json").read_text(encoding="utf-8"))


def template_nodes(path: Path) -> set:
    return {node["type"] for node in json.loads(path.read_text())["nodes"]}


PAGES = [(node, language) for node in NODES for language in LANGUAGES]


@pytest.mark.parametrize("node,language", PAGES, ids=[f"{n}-{lang}" for n, lang in PAGES])
def test_each_node_has_a_page_in_each_language(node, language):
    path = page_path(node, language)
    assert path.exists(), f"{path.relative_to(REPO)} is missing"
    text = path.read_text(encoding="utf-8")
    names = locale(language)[node]
    # Headed by the name the frontend shows in that language.
    assert text.splitlines()[0] == f"# {names['display_name']}"
    # Every input and output is on the page by its id (what the node shows in English).
    for name in [*names["inputs"], *[o["name"] for o in locale("en")[node].get("outputs", {}).values()]]:
        if name != "control_after_generate":
            assert f"`{name}`" in text, f"{path.relative_to(REPO)} does not describe {name}"
    # Every template that uses the node is named, and every name is a template.
    users = sorted(p.name for p in TEMPLATES if node in template_nodes(p))
    named = sorted(set(re.findall(r"`([a-z0-9_]+\.json)`", text)))
    assert set(users) <= set(named), f"{path.relative_to(REPO)} does not name {sorted(set(users) - set(named))}"
    assert set(named) <= {p.name for p in TEMPLATES}, f"no such template: {sorted(set(named) - set(users))}"


@pytest.mark.parametrize("node,language", PAGES, ids=[f"{n}-{lang}" for n, lang in PAGES])
def test_pictures_are_where_the_docs_panel_loads_them(node, language):
    """The panel resolves a relative picture against /extensions/<pack>/docs/,
    i.e. web/docs/, for every language's page; it leaves a link's address as
    it is (relative to ComfyUI's page, and 1.27 opens it in ComfyUI's own tab),
    so the pages have none."""
    text = page_path(node, language).read_text(encoding="utf-8")
    pictures = IMAGE.findall(text)
    assert pictures, "a page without a picture"
    for src in pictures:
        assert not re.match(r"^(/|[a-z]+:)", src), f"{src}: use a path relative to web/docs/"
        assert (DOCS / src).is_file(), f"{src} is not in web/docs/"
    assert not LINK.findall(text), f"links on the page: {LINK.findall(text)}"


@pytest.mark.parametrize("node", list(locale("en")))
def test_the_english_page_is_in_both_forms(node):
    """docs/<node>/en.md, which every frontend asks for first (a 404 in the
    browser's console where it is missing), and docs/<node>.md, the form the
    older frontends read, hold the same page: tools/make_doc_pages.py writes
    the second from the first.  Every node the English locale names."""
    spec = importlib.util.spec_from_file_location("make_doc_pages", REPO / "tools" / "make_doc_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert node in module.nodes()
    page, copy = module.page(node), module.copy(node)
    assert page.is_file(), f"{page.relative_to(REPO)} is missing: run python tools/make_doc_pages.py"
    assert copy.is_file() and copy.read_bytes() == page.read_bytes(), \
        f"{copy.relative_to(REPO)} is not a copy of {page.relative_to(REPO)} (the page: edit that one), " \
        f"run python tools/make_doc_pages.py"


def test_the_pictures_are_the_current_ones():
    """web/docs/images/ holds copies (the panel cannot reach example_workflows/
    or docs/): tools/make_doc_images.py makes them; stale copies fail here."""
    spec = importlib.util.spec_from_file_location("make_doc_images", REPO / "tools" / "make_doc_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for source, name in module.COPIES.items():
        assert (DOCS / "images" / name).read_bytes() == (REPO / source).read_bytes(), \
            f"web/docs/images/{name} differs from {source}: run python tools/make_doc_images.py"
    used = {src for node, language in PAGES for src in IMAGE.findall(page_path(node, language).read_text("utf-8"))}
    on_disk = {f"images/{p.name}" for p in (DOCS / "images").iterdir()}
    assert on_disk == used, f"unused pictures {sorted(on_disk - used)}, missing {sorted(used - on_disk)}"


@pytest.mark.parametrize("node,language", [(n, lang) for n, lang in PAGES if lang != "en"],
                         ids=[f"{n}-{lang}" for n, lang in PAGES if lang != "en"])
def test_cjk_pages_have_no_line_breaks_inside_a_paragraph(node, language):
    """A line break inside a paragraph renders as a space, which in Chinese and
    Japanese text shows between two characters: each paragraph and list item
    is one line."""
    lines = page_path(node, language).read_text(encoding="utf-8").splitlines()
    for before, line in zip(lines, lines[1:]):
        if before.strip() and line.strip():
            assert line.startswith(("#", "- ", "![")) or before.startswith(("#", "![")), \
                f"a paragraph broken across lines: {before[-20:]!r} / {line[:20]!r}"


def test_locales_are_in_the_frontends_nodedefs_format():
    """Per node id: display_name, description, inputs {name: {name, tooltip}},
    outputs {"0": {name, tooltip}}, as the frontend's own nodeDefs locales."""
    english = locale("en")
    assert list(english) == NODES
    assert {node: names["display_name"] for node, names in english.items()} == DISPLAY_NAMES
    for language in LANGUAGES:
        data = locale(language)
        assert set(data) == set(NODES), language
        for node, names in data.items():
            where = f"{language}/{node}"
            assert set(names) <= {"display_name", "description", "inputs", "outputs"}, where
            assert names["display_name"].strip() and names["description"].strip(), where
            assert list(names["inputs"]) == list(english[node]["inputs"]), where
            for key, entry in names["inputs"].items():
                assert entry["name"].strip(), f"{where}.{key}"
                assert ("tooltip" in entry) == ("tooltip" in english[node]["inputs"][key]), f"{where}.{key}"
                assert set(entry) <= {"name", "tooltip"}, f"{where}.{key}"
            assert list(names.get("outputs", {})) == list(english[node].get("outputs", {})), where
            for index, entry in names.get("outputs", {}).items():
                assert set(entry) == {"name", "tooltip"} and index.isdigit(), f"{where}.outputs.{index}"
            if language != "en":
                assert names["display_name"] != english[node]["display_name"], f"{where} is not translated"
                assert names["description"] != english[node]["description"], f"{where} is not translated"
    # The papers' method names stay in the descriptions, in every language.
    for node in ("CrossSamplingScheduler", "TwinCropFusionSampler", "TwinDiffusionModel", "MultiScaleGuidance"):
        for language in LANGUAGES:
            description = locale(language)[node]["description"]
            assert any(name in description for name in PAPER_NAMES), f"{language}/{node}: {description}"


def test_the_locales_say_how_they_were_made():
    readme = (LOCALES / "README.md").read_text(encoding="utf-8")
    assert "machine translation" in readme.lower() and "native speaker" in readme.lower()

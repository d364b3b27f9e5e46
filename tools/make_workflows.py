"""Writes the workflows in example_workflows/ (ComfyUI's UI format, the one
the template browser loads).  Run: python tools/make_workflows.py

Each graph uses only core nodes and this pack's; widget values are listed in
the order of the node's widget inputs, as the frontend saves them.
"""

import json
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "example_workflows"

NEGATIVE = "blurry, low quality, watermark, text, seams, frame, border"


class Graph:
    def __init__(self):
        self.nodes, self.links = [], []

    def node(self, type_, inputs=(), outputs=(), widgets=(), pos=(0, 0), size=(320, 160), title=None):
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": type_}, "widgets_values": list(widgets)}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def connect(self, src, src_slot, dst, dst_name):
        link_id = len(self.links) + 1
        dst_slot = next(i for i, inp in enumerate(dst["inputs"]) if inp["name"] == dst_name)
        type_ = src["outputs"][src_slot]["type"]
        self.links.append([link_id, src["id"], src_slot, dst["id"], dst_slot, type_])
        src["outputs"][src_slot]["links"].append(link_id)
        dst["inputs"][dst_slot]["link"] = link_id

    def note(self, text, pos):
        self.node("MarkdownNote", widgets=[text], pos=pos, size=(420, 260))

    def save(self, name):
        workflow = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "revision": 0,
                    "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                    "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                    "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}
        (OUT / name).write_text(json.dumps(workflow, indent=2) + "\n")


def panorama_graph(ckpt, prompt, width, height, sampler_widgets, plan_widgets, note, multiscale=None):
    """Checkpoint -> prompts -> Panorama Latent -> (window plan) -> panorama
    sampler -> VAE decode -> save."""
    g = Graph()
    ckpt_node = g.node("CheckpointLoaderSimple", outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
                       widgets=[ckpt], pos=(0, 200), size=(320, 100))
    pos = g.node("CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=[("CONDITIONING", "CONDITIONING")],
                 widgets=[prompt], pos=(380, 0), size=(420, 160), title="Positive prompt")
    neg = g.node("CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=[("CONDITIONING", "CONDITIONING")],
                 widgets=[NEGATIVE], pos=(380, 200), size=(420, 160), title="Negative prompt")
    latent = g.node("PanoramaLatent", inputs=[("model", "MODEL")], outputs=[("LATENT", "LATENT")],
                    widgets=[width, height, 1], pos=(380, 400), size=(320, 130))
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=plan_widgets,
                  pos=(380, 580), size=(320, 180))
    sampler_inputs = [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                      ("latent_image", "LATENT"), ("windows", "PANORAMA_WINDOWS")]
    if multiscale is not None:
        sampler_inputs.append(("multiscale", "PANORAMA_MULTISCALE"))
    sampler = g.node("TwinCropFusionSampler", inputs=sampler_inputs, outputs=[("LATENT", "LATENT")],
                     widgets=sampler_widgets, pos=(860, 100), size=(340, 420))
    decode = g.node("VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                    pos=(1260, 100), size=(220, 50))
    save = g.node("SaveImage", inputs=[("images", "IMAGE")], widgets=["panorama"], pos=(1260, 220),
                  size=(900, 300))
    g.connect(ckpt_node, 1, pos, "clip")
    g.connect(ckpt_node, 1, neg, "clip")
    g.connect(ckpt_node, 0, latent, "model")
    g.connect(ckpt_node, 0, sampler, "model")
    g.connect(pos, 0, sampler, "positive")
    g.connect(neg, 0, sampler, "negative")
    g.connect(latent, 0, sampler, "latent_image")
    g.connect(plan, 0, sampler, "windows")
    if multiscale is not None:
        ms = g.node("MultiScaleGuidance", outputs=[("multiscale", "PANORAMA_MULTISCALE")], widgets=multiscale,
                    pos=(380, 800), size=(320, 180))
        g.connect(ms, 0, sampler, "multiscale")
    g.connect(sampler, 0, decode, "samples")
    g.connect(ckpt_node, 2, decode, "vae")
    g.connect(decode, 0, save, "images")
    g.note(note, pos=(0, 400))
    return g


def twin_sampler(steps=50, cfg=7.5, mode="twindiffusion"):
    # seed, control_after_generate, steps, cfg, sampler, scheduler, denoise, mode, lam, tau, view_batch_size
    return [42, "fixed", steps, cfg, "euler", "normal", 1.0, mode, 1.0, 0.5, 4]


def main():
    OUT.mkdir(exist_ok=True)
    # window_size, view_stride, cross_count, cross_stride, wrap_around (0 = model default)
    panorama_graph(
        "v1-5-pruned-emaonly-fp16.safetensors",
        "a photo of a mountain range at sunrise, snowy peaks, pine forest, lake, highly detailed",
        2048, 512, twin_sampler(), [0, 0, 2, 0, False],
        "## TwinDiffusion panorama (SD1.5, 512x2048)\n\nPanorama Latent makes a 512x2048 latent; the "
        "Cross Sampling Scheduler plans 512 px windows with the paper's 128 px view stride and c = 2 "
        "interleaved groups; the TwinDiffusion sampler runs Crop Fusion (lambda 1, tau 0.5).\n\n"
        "Set mode to `multidiffusion` to compare with the baseline.",
    ).save("twin_panorama_sd15.json")
    panorama_graph(
        "v1-5-pruned-emaonly-fp16.safetensors",
        "a photo of a mountain range at sunrise, snowy peaks, pine forest, lake, highly detailed",
        2048, 512, twin_sampler(mode="twindiffusion_feathered"), [0, 0, 2, 0, False],
        "## Feathered TwinDiffusion (SD1.5, 512x2048)\n\nThe same graph as twin_panorama_sd15 with mode "
        "`twindiffusion_feathered`: Crop Fusion's pull towards the neighbour fades out across the overlap "
        "instead of stopping at the neighbour's edge (not in the paper). On the pack's reference model it "
        "lowers the seam score against MultiDiffusion where the paper's weights do not; see the README.",
    ).save("twin_panorama_feathered_sd15.json")
    panorama_graph(
        "sd_xl_base_1.0.safetensors",
        "a panoramic photo of a tropical beach with palm trees and turquoise water, golden hour, 8k",
        4096, 1024, twin_sampler(steps=50, cfg=7.0), [0, 0, 2, 0, False],
        "## TwinDiffusion panorama (SDXL, 1024x4096)\n\nWindows of SDXL's native 1024 px, 256 px view "
        "stride, c = 2. Each window gets SDXL's crop and target-size conditioning of its own position.",
    ).save("twin_panorama_sdxl.json")
    panorama_graph(
        "v1-5-pruned-emaonly-fp16.safetensors",
        "360 degree panorama of a quiet village square, cobblestones, cafes, trees, blue sky",
        2048, 512, twin_sampler(), [0, 0, 2, 0, True],
        "## 360-degree panorama (SD1.5)\n\n`wrap_around` makes the horizontal axis a circle: windows run "
        "over the right edge into the left, so the two ends of the image join without a seam.",
    ).save("panorama_360_sd15.json")
    panorama_graph(
        "v1-5-pruned-emaonly-fp16.safetensors",
        "a vast fantasy castle on a cliff above the sea, waterfalls, dramatic clouds, highly detailed",
        4096, 1024, twin_sampler(mode="multidiffusion"), [0, 0, 1, 0, False],
        "## Multi-Scale Diffusion (SD1.5, 1024x4096)\n\nTwice the model's height and eight times its width. "
        "Multi-Scale Guidance runs a half-resolution MultiDiffusion pass each step and pulls every "
        "full-resolution window towards its layout by one gradient step (omega 10, cosine decay), so the "
        "panorama stays one scene instead of a grid of tiles. Expect about 4x the time of plain "
        "MultiDiffusion. Set mode to twindiffusion and cross_count to 2 to combine it with TwinDiffusion.",
        multiscale=[2, 10.0, "cosine", "bilinear"],
    ).save("msd_panorama_sd15.json")


if __name__ == "__main__":
    main()

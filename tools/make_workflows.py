"""Writes the workflows in example_workflows/ (ComfyUI's UI format, the one
the template browser loads).  Run: python tools/make_workflows.py

Each graph uses only core nodes and this pack's; widget values are listed in
the order of the node's widget inputs, as the frontend saves them.
"""

import json
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "example_workflows"

SD15 = "v1-5-pruned-emaonly-fp16.safetensors"
FLUX_DEV = "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/"
FLUX_TEXT = "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/"
SD35_LARGE = "https://huggingface.co/stabilityai/stable-diffusion-3.5-large/resolve/main/"
# DiT360 (Insta360 Research, arXiv 2510.11712): a LoRA for Flux.1-dev trained on 2048x1024 equirectangular panoramas.
DIT360 = "https://huggingface.co/Insta360-Research/DiT360-Panorama-Image-Generation/resolve/main/"
DIT360_LORA = "adapter_model.safetensors"
# Qwen-Image 2512 and Qwen-Image-Edit 2511 as ComfyUI's own templates load them (template_qwen_Image_2512_360_lora,
# image_qwen_image_edit_2511 in Comfy-Org/workflow_templates): one text encoder, the Wan 2.1 VAE as qwen_image_vae.
QWEN = "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
QWEN_EDIT = "https://huggingface.co/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files/"
QWEN_2512 = "qwen_image_2512_fp8_e4m3fn.safetensors"
QWEN_EDIT_2511 = "qwen_image_edit_2511_bf16.safetensors"
QWEN_TEXT = "qwen_2.5_vl_7b_fp8_scaled.safetensors"
QWEN_VAE = "qwen_image_vae.safetensors"
# ProGamerGov's 360 LoRA for Qwen-Image 2512 (MIT), trained on 2048x1024 equirectangular images; the 4-step
# Lightning LoRA is the template's optional speed-up (named in the note, not loaded: it is not for 360).
QWEN_360_LORA = "qwen-360-diffusion-2512-int8-bf16-v2.safetensors"
QWEN_LIGHTNING = ("Qwen-Image-2512-Lightning-4steps-V1.0-fp32.safetensors",
                  "https://huggingface.co/lightx2v/Qwen-Image-2512-Lightning/resolve/main/")
# ByteDance's SDXL-Lightning (openrail++): the 4-step LoRA for SDXL base, run at 4 steps, cfg 1, euler, sgm_uniform.
SDXL = "sd_xl_base_1.0.safetensors"
SDXL_LIGHTNING_LORA = "sdxl_lightning_4step_lora.safetensors"
NEGATIVE = "blurry, low quality, watermark, text, seams, frame, border"
# Wan 2.2 TI2V 5B as ComfyUI's own template "Wan 2.2 5B: text / image to video" (video_wan2_2_5B_ti2v in
# Comfy-Org/workflow_templates) loads it: UNETLoader, CLIPLoader (umt5-xxl, type wan), the Wan 2.2 VAE; shift 8,
# 20 steps, cfg 5, uni_pc, simple; 1280x704, 121 frames at 24 fps.
WAN22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
WAN21 = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
WAN22_5B = "wan2.2_ti2v_5B_fp16.safetensors"
WAN_TEXT = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
WAN22_VAE = "wan2.2_vae.safetensors"
WAN_NEGATIVE = ("static, frozen, blurry, low quality, jpeg artifacts, watermark, subtitles, text, seams, split "
                "screen, deformed, extra limbs")

# Where each file the templates name is published (properties.models: ComfyUI's
# frontend offers these downloads when a file is missing).
MODELS = {
    SD15: (
        "checkpoints", "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/" + SD15),
    "sd_xl_base_1.0.safetensors": (
        "checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
                       "sd_xl_base_1.0.safetensors"),
    "control_v11p_sd15_canny_fp16.safetensors": (
        "controlnet", "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
                      "control_v11p_sd15_canny_fp16.safetensors"),
    "flux1-dev.safetensors": ("diffusion_models", FLUX_DEV + "flux1-dev.safetensors"),
    "ae.safetensors": ("vae", FLUX_DEV + "ae.safetensors"),
    # One CLIP-L and one T5-XXL file serve Flux and SD3.5 (the same files as in stable-diffusion-3.5-large's
    # text_encoders/); ComfyUI's own templates download them from this repository, which is not gated.
    "clip_l.safetensors": ("text_encoders", FLUX_TEXT + "clip_l.safetensors"),
    "t5xxl_fp16.safetensors": ("text_encoders", FLUX_TEXT + "t5xxl_fp16.safetensors"),
    "clip_g.safetensors": ("text_encoders", SD35_LARGE + "text_encoders/clip_g.safetensors"),
    "sd3.5_large.safetensors": ("checkpoints", SD35_LARGE + "sd3.5_large.safetensors"),
    DIT360_LORA: ("loras", DIT360 + DIT360_LORA),
    QWEN_2512: ("diffusion_models", QWEN + "diffusion_models/" + QWEN_2512),
    QWEN_EDIT_2511: ("diffusion_models", QWEN_EDIT + "diffusion_models/" + QWEN_EDIT_2511),
    QWEN_TEXT: ("text_encoders", QWEN + "text_encoders/" + QWEN_TEXT),
    QWEN_VAE: ("vae", QWEN + "vae/" + QWEN_VAE),
    QWEN_360_LORA: ("loras", "https://huggingface.co/ProGamerGov/qwen-360-diffusion/resolve/main/" + QWEN_360_LORA),
    SDXL_LIGHTNING_LORA: ("loras", "https://huggingface.co/ByteDance/SDXL-Lightning/resolve/main/" + SDXL_LIGHTNING_LORA),
    WAN22_5B: ("diffusion_models", WAN22 + "diffusion_models/" + WAN22_5B),
    WAN_TEXT: ("text_encoders", WAN21 + "text_encoders/" + WAN_TEXT),
    WAN22_VAE: ("vae", WAN22 + "vae/" + WAN22_VAE),
}


class Graph:
    def __init__(self):
        self.nodes, self.links = [], []

    def node(self, type_, inputs=(), outputs=(), widgets=(), pos=(0, 0), size=(320, 160), title=None, models=()):
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": type_}, "widgets_values": list(widgets)}
        if title:
            node["title"] = title
        if models:
            node["properties"]["models"] = [{"name": m, "url": MODELS[m][1], "directory": MODELS[m][0]} for m in models]
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
        self.node("MarkdownNote", widgets=[text], pos=pos, size=(340, 320))

    def save(self, name):
        workflow = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "revision": 0,
                    "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                    "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                    "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}
        (OUT / name).write_text(json.dumps(workflow, indent=2) + "\n")


def panorama_graph(ckpt, prompt, width, height, sampler_widgets, plan_widgets, note, multiscale=None,
                   equirect=False):
    """Checkpoint -> prompts -> Empty Panorama Latent -> (window plan) -> panorama
    sampler -> VAE decode -> save."""
    g = Graph()
    ckpt_node = checkpoint(g, ckpt)
    positive, negative = prompts(g, ckpt_node, prompt)
    return conditioned_panorama(g, ckpt_node, (positive, 0), (negative, 0), width, height, sampler_widgets, note,
                                plan_widgets, multiscale, x=800, equirect=equirect)


def conditioned_panorama(g, ckpt_node, positive, negative, width, height, sampler_widgets, note,
                         plan_widgets=(0, 0, 2, 0, False), multiscale=None, x=1240, equirect=False, vae=None,
                         prefix="panorama", sphere=False, shifted=False):
    """The common tail: the latent, window plan (and layout guidance, MSD),
    the sampler fed the given conditioning, decode, save; the note under the
    plan.  ``equirect``: a 2:1 360-degree latent (``height`` px high, 0 = the
    model's size), decoded seamlessly and saved for (and shown in) the 360
    viewer; ``sphere``: the plan is Panorama Windows (Sphere) with
    ``plan_widgets``; ``shifted``: Panorama Windows (Shifted, SpotDiffusion).
    The model is ``ckpt_node``'s first output, the VAE its third unless
    ``vae`` (node, slot)."""
    latent = panorama_latent(g, width, height, equirect)
    if sphere:
        plan = sphere_windows(g, plan_widgets)
    elif shifted:
        plan = shifted_windows(g, plan_widgets)
    else:
        plan = scheduler(g, plan_widgets)
    inputs = [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
              ("latent_image", "LATENT"), ("windows", "PANORAMA_WINDOWS")]
    if multiscale is not None:
        inputs.append(("multiscale", "PANORAMA_MULTISCALE"))
    sampler = g.node("TwinCropFusionSampler", inputs=inputs, outputs=[("LATENT", "LATENT")],
                     widgets=sampler_widgets, pos=(x, 0), size=(340, 440))
    g.connect(ckpt_node, 0, latent, "model")
    g.connect(ckpt_node, 0, sampler, "model")
    g.connect(positive[0], positive[1], sampler, "positive")
    g.connect(negative[0], negative[1], sampler, "negative")
    g.connect(latent, 0, sampler, "latent_image")
    g.connect(plan, 0, sampler, "windows")
    if multiscale is not None:
        ms = g.node("MultiScaleGuidance", outputs=[("multiscale", "PANORAMA_MULTISCALE")], widgets=multiscale,
                    pos=(0, 760), size=(320, 260))  # seven widgets: levels ... reuse_prediction
        g.connect(ms, 0, sampler, "multiscale")
    decode_and_save(g, (sampler, 0), vae or (ckpt_node, 2), x + 380, equirect, prefix)
    g.note(note, pos=(0, 1070 if multiscale is not None else 780))
    return g


def panorama_latent(g, width, height, equirect=False):
    if equirect:
        # height 0: the model's native window, so one row of windows around the sphere.
        return g.node("Panorama360Latent", inputs=[("model", "MODEL")],
                      outputs=[("LATENT", "LATENT"), ("width", "INT"), ("height", "INT")], widgets=[height, 1],
                      pos=(0, 360), size=(320, 130))
    return g.node("PanoramaLatent", inputs=[("model", "MODEL")], outputs=[("LATENT", "LATENT")],
                  widgets=[width, height, 1], pos=(0, 360), size=(320, 130))


def scheduler(g, plan_widgets):
    return g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=list(plan_widgets),
                  pos=(0, 540), size=(360, 180))


def shifted_windows(g, widgets):
    # window_size, view_stride, shift, shift_seed, wrap_around, blend
    return g.node("PanoramaShiftedWindows", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=list(widgets),
                  pos=(0, 540), size=(420, 200))  # frontend 1.27 cuts its long title at 360


def sphere_windows(g, widgets):
    # window_size, fov, overlap, view_count, rotation, cross_count
    return g.node("PanoramaSphereWindows", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=list(widgets),
                  pos=(0, 540), size=(360, 200))


def decode_and_save(g, latent, vae, x, equirect=False, prefix="panorama"):
    if equirect:
        # wrap_padding, tile_size (0 = whole), overlap
        decode = g.node("PanoramaSeamlessDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")],
                        outputs=[("IMAGE", "IMAGE")], widgets=[64, 0, 64], pos=(x, 0), size=(320, 160))
        save = g.node("SavePanorama360", inputs=[("images", "IMAGE")], widgets=["panorama360", "png"],
                      pos=(x, 220), size=(640, 480))
    else:
        decode = g.node("VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                        pos=(x, 0), size=(220, 50))
        save = g.node("SaveImage", inputs=[("images", "IMAGE")], widgets=[prefix], pos=(x, 100),
                      size=(900, 300))
    g.connect(latent[0], latent[1], decode, "samples")
    g.connect(vae[0], vae[1], decode, "vae")
    g.connect(decode, 0, save, "images")


def checkpoint(g, name):
    return g.node("CheckpointLoaderSimple", outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
                  widgets=[name], pos=(0, 180), size=(320, 100), models=[name])


def prompts(g, ckpt_node, prompt, slot=1):
    """The positive prompt and the shared negative one, beside the loader
    (its CLIP output ``slot``)."""
    return (text(g, ckpt_node, prompt, (360, 0), "Positive prompt", slot),
            text(g, ckpt_node, NEGATIVE, (360, 200), "Negative prompt", slot))


def text(g, ckpt_node, prompt, pos, title, slot=1):
    node = g.node("CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=[("CONDITIONING", "CONDITIONING")],
                  widgets=[prompt], pos=pos, size=(400, 150), title=title)
    g.connect(ckpt_node, slot, node, "clip")
    return node


def regional_graph():
    """Three prompts along a 512x2048 panorama (two areas given as fractions
    of the panorama, one mask) and a global prompt, combined."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    scene = text(g, ckpt, "a wide landscape panorama at golden hour, highly detailed", (360, 0), "Whole panorama")
    left = text(g, ckpt, "snowy mountain peaks", (360, 200), "Left: mountains")
    middle = text(g, ckpt, "a calm lake with reflections", (360, 400), "Middle: lake")
    right = text(g, ckpt, "a dense pine forest", (360, 600), "Right: forest")
    negative = text(g, ckpt, NEGATIVE, (360, 800), "Negative prompt")
    # ConditioningSetAreaPercentage: width, height, x, y, strength (fractions of the panorama)
    left_area = g.node("ConditioningSetAreaPercentage", inputs=[("conditioning", "CONDITIONING")],
                       outputs=[("CONDITIONING", "CONDITIONING")], widgets=[0.4, 1.0, 0.0, 0.0, 1.0],
                       pos=(800, 200), size=(300, 170), title="Area: left 40 %")
    middle_area = g.node("ConditioningSetAreaPercentage", inputs=[("conditioning", "CONDITIONING")],
                         outputs=[("CONDITIONING", "CONDITIONING")], widgets=[0.4, 1.0, 0.3, 0.0, 1.0],
                         pos=(800, 400), size=(300, 170), title="Area: 30 % to 70 %")
    canvas = g.node("SolidMask", outputs=[("MASK", "MASK")], widgets=[0.0, 2048, 512], pos=(800, 1000),
                    size=(300, 110), title="Mask canvas (panorama size)")
    block = g.node("SolidMask", outputs=[("MASK", "MASK")], widgets=[1.0, 820, 512], pos=(800, 1150),
                   size=(300, 110), title="Mask block (right 40 %)")
    paste = g.node("MaskComposite", inputs=[("destination", "MASK"), ("source", "MASK")],
                   outputs=[("MASK", "MASK")], widgets=[1228, 0, "add"], pos=(1140, 1000), size=(300, 140),
                   title="Right 40 % mask")
    right_mask = g.node("ConditioningSetMask", inputs=[("conditioning", "CONDITIONING"), ("mask", "MASK")],
                        outputs=[("CONDITIONING", "CONDITIONING")], widgets=[1.0, "default"], pos=(800, 600),
                        size=(300, 110), title="Mask: right 40 %")
    g.connect(left, 0, left_area, "conditioning")
    g.connect(middle, 0, middle_area, "conditioning")
    g.connect(canvas, 0, paste, "destination")
    g.connect(block, 0, paste, "source")
    g.connect(right, 0, right_mask, "conditioning")
    g.connect(paste, 0, right_mask, "mask")
    combined = scene
    for i, region in enumerate((left_area, middle_area, right_mask)):
        node = g.node("ConditioningCombine", inputs=[("conditioning_1", "CONDITIONING"),
                                                     ("conditioning_2", "CONDITIONING")],
                      outputs=[("CONDITIONING", "CONDITIONING")], pos=(1140, 200 * (i + 1) + 40), size=(260, 60))
        g.connect(combined, 0, node, "conditioning_1")
        g.connect(region, 0, node, "conditioning_2")
        combined = node
    return conditioned_panorama(
        g, ckpt, (combined, 0), (negative, 0), 2048, 512, twin_sampler(),
        "## Regional prompts along a panorama (SD1.5, 512x2048)\n\nA prompt for the whole panorama plus three "
        "regions: mountains on the left 40 % and a lake from 30 % to 70 % (Conditioning Set Area Percentage), "
        "a forest under a mask on the right 40 % (Conditioning Set Mask), all combined into the sampler's "
        "positive input.\n\nThe sampler cuts every region into the windows: an area is evaluated on the part "
        "of each window it covers, a mask on the windows where it is non-zero, and a region costs model "
        "calls only on the windows it reaches. Keep the whole-panorama prompt: it fills the gaps between "
        "regions.", x=1480)


def controlnet_graph():
    """A panorama-size hint (edges of a reference image) through ControlNet."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    positive, negative = prompts(g, ckpt, "a photo of a coastal town at sunset, highly detailed")
    image = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                   widgets=["panorama_reference.png", "image"], pos=(360, 400), size=(400, 360),
                   title="Reference image (panorama size)")
    edges = g.node("Canny", inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")], widgets=[0.4, 0.8],
                   pos=(800, 400), size=(300, 110))
    loader = g.node("ControlNetLoader", outputs=[("CONTROL_NET", "CONTROL_NET")],
                    widgets=["control_v11p_sd15_canny_fp16.safetensors"], pos=(800, 560), size=(360, 80),
                    models=["control_v11p_sd15_canny_fp16.safetensors"])
    apply = g.node("ControlNetApplyAdvanced", inputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                                      ("control_net", "CONTROL_NET"), ("image", "IMAGE")],
                   outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING")], widgets=[0.8, 0.0, 0.8],
                   pos=(800, 0), size=(340, 190))
    g.connect(image, 0, edges, "image")
    g.connect(positive, 0, apply, "positive")
    g.connect(negative, 0, apply, "negative")
    g.connect(loader, 0, apply, "control_net")
    g.connect(edges, 0, apply, "image")
    return conditioned_panorama(
        g, ckpt, (apply, 0), (apply, 1), 2048, 512, twin_sampler(),
        "## ControlNet on a panorama (SD1.5, 512x2048)\n\nLoad a reference image of the panorama's size (or "
        "its aspect ratio); Canny turns it into an edge map, and Apply ControlNet attaches it to both prompts "
        "(strength 0.8, for the first 80 % of the steps).\n\nThe sampler gives every window the part of the "
        "hint under it, for every ControlNet in a chain, so the whole panorama follows the edges. Any SD1.5 "
        "ControlNet or T2I-Adapter works the same way.")


def model_patch_graph():
    """TwinDiffusion as a model patch: any sampler then samples the latent as
    a panorama; here ComfyUI's SamplerCustomAdvanced with its guider, sampler,
    scheduler and noise nodes."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    positive, negative = prompts(g, ckpt, "a photo of a long harbour promenade at dusk, boats, lanterns, "
                                          "highly detailed")
    latent = panorama_latent(g, 2048, 512)
    plan = scheduler(g, [0, 0, 2, 0, False])
    # mode, lam, tau, view_batch_size
    patch = g.node("TwinDiffusionModel", inputs=[("model", "MODEL"), ("windows", "PANORAMA_WINDOWS")],
                   outputs=[("MODEL", "MODEL")], widgets=["twindiffusion", 1.0, 0.5, 4], pos=(800, 0),
                   size=(380, 200))
    guider = g.node("CFGGuider", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                         ("negative", "CONDITIONING")],
                    outputs=[("GUIDER", "GUIDER")], widgets=[7.5], pos=(800, 250), size=(380, 100))
    noise = g.node("RandomNoise", outputs=[("NOISE", "NOISE")], widgets=[42, "fixed"], pos=(800, 400),
                   size=(380, 100))
    select = g.node("KSamplerSelect", outputs=[("SAMPLER", "SAMPLER")], widgets=["euler"], pos=(800, 550),
                    size=(380, 70))
    sigmas = g.node("BasicScheduler", inputs=[("model", "MODEL")], outputs=[("SIGMAS", "SIGMAS")],
                    widgets=["normal", 50, 1.0], pos=(800, 670), size=(380, 120))
    sampler = g.node("SamplerCustomAdvanced", inputs=[("noise", "NOISE"), ("guider", "GUIDER"),
                                                      ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                                                      ("latent_image", "LATENT")],
                     outputs=[("output", "LATENT"), ("denoised_output", "LATENT")], pos=(1220, 0), size=(300, 130))
    g.connect(ckpt, 0, latent, "model")
    g.connect(ckpt, 0, patch, "model")
    g.connect(plan, 0, patch, "windows")
    g.connect(patch, 0, guider, "model")
    g.connect(positive, 0, guider, "positive")
    g.connect(negative, 0, guider, "negative")
    g.connect(patch, 0, sigmas, "model")
    for node, name in ((noise, "noise"), (guider, "guider"), (select, "sampler"), (sigmas, "sigmas"),
                       (latent, "latent_image")):
        g.connect(node, 0, sampler, name)
    decode_and_save(g, (sampler, 0), (ckpt, 2), 1560)
    g.note("## TwinDiffusion as a model patch (SD1.5, 512x2048)\n\nTwinDiffusion Panorama (model patch) "
           "makes every sampler sample the latent as a panorama of windows with Crop Fusion and Cross "
           "Sampling. Here it feeds ComfyUI's custom sampling nodes: CFGGuider, KSamplerSelect, "
           "BasicScheduler, RandomNoise and SamplerCustomAdvanced.\n\nUse the patch to combine panoramas "
           "with other samplers, guiders or LoRA loaders (put them before the patch). For staged sampling "
           "(KSamplerAdvanced, SplitSigmas) connect the whole run's sigmas to the patch's schedule input.",
           pos=(0, 780))
    return g


def flux_graph():
    """Flux.1-dev as ComfyUI runs it: diffusion model, text encoders and VAE
    from their own loaders, Flux Guidance on the prompt, cfg 1."""
    g = Graph()
    unet = g.node("UNETLoader", outputs=[("MODEL", "MODEL")], widgets=["flux1-dev.safetensors", "default"],
                  pos=(0, 0), size=(320, 82), models=["flux1-dev.safetensors"])
    clip = g.node("DualCLIPLoader", outputs=[("CLIP", "CLIP")],
                  widgets=["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"], pos=(0, 130),
                  size=(320, 130), models=["clip_l.safetensors", "t5xxl_fp16.safetensors"])
    prompt = text(g, clip, "a panoramic photo of a misty fjord at sunrise, steep cliffs, waterfalls, a small red "
                           "cabin by the shore, highly detailed", (360, 0), "Prompt", slot=0)
    guidance = g.node("FluxGuidance", inputs=[("conditioning", "CONDITIONING")],
                      outputs=[("CONDITIONING", "CONDITIONING")], widgets=[3.5], pos=(360, 200), size=(400, 60))
    zero = g.node("ConditioningZeroOut", inputs=[("conditioning", "CONDITIONING")],
                  outputs=[("CONDITIONING", "CONDITIONING")], pos=(360, 310), size=(400, 50),
                  title="Negative (unused at cfg 1)")
    vae = g.node("VAELoader", outputs=[("VAE", "VAE")], widgets=["ae.safetensors"], pos=(360, 420), size=(400, 60),
                 models=["ae.safetensors"])
    g.connect(prompt, 0, guidance, "conditioning")
    g.connect(prompt, 0, zero, "conditioning")
    return conditioned_panorama(
        g, unet, (guidance, 0), (zero, 0), 4096, 1024, twin_sampler(steps=20, cfg=1.0, scheduler="simple"),
        "## TwinDiffusion panorama (Flux.1-dev, 1024x4096)\n\nFiles: flux1-dev in models/diffusion_models, "
        "clip_l and t5xxl_fp16 in models/text_encoders, ae in models/vae.\n\n1024 px windows, the size Flux "
        "is trained at, 256 px view stride, c = 2. Flux dev is guidance-distilled: Flux Guidance 3.5 steers it "
        "and cfg stays 1, so the zeroed negative is never run. No ModelSamplingFlux: the model keeps the shift of "
        "a 1024x1024 image (1.15), right for the windows it sees; set to the panorama's size it would over-shift "
        "(3.2).\n\n"
        "VAE Decode decodes the panorama in one piece, so no tile seams; ComfyUI falls back to tiles by itself "
        "when memory runs short.",
        [1024, 256, 2, 0, False], x=800, vae=(vae, 0), prefix="panorama/flux")


def sd35_graph():
    """SD3.5 Large: the checkpoint holds the MMDiT and the VAE, the three
    text encoders load beside it."""
    g = Graph()
    clip = g.node("TripleCLIPLoader", outputs=[("CLIP", "CLIP")],
                  widgets=["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"], pos=(0, 0),
                  size=(320, 106), models=["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"])
    ckpt = checkpoint(g, "sd3.5_large.safetensors")
    positive, negative = prompts(g, clip, "a panoramic photo of a desert canyon at golden hour, red rock arches, "
                                          "a winding river, highly detailed", slot=0)
    return conditioned_panorama(
        g, ckpt, (positive, 0), (negative, 0), 4096, 1024, twin_sampler(steps=28, cfg=4.5, scheduler="sgm_uniform"),
        "## TwinDiffusion panorama (SD3.5 Large, 1024x4096)\n\nFiles: sd3.5_large in models/checkpoints (the "
        "MMDiT and the VAE), clip_l, clip_g and t5xxl_fp16 in models/text_encoders.\n\n1024 px windows, "
        "SD3.5's native size, 256 px view stride, c = 2; 28 steps at cfg 4.5 with the sgm_uniform schedule. The "
        "model keeps its own shift (3), which is for the windows it sees.",
        [1024, 256, 2, 0, False], x=800, prefix="panorama/sd35")


def sphere_graph(ckpt, prompt, height, sphere_widgets, title, views, steps=50, cfg=7.5):
    """A whole 360 through perspective views of the sphere (SphereDiff):
    checkpoint -> prompts -> Empty 360° Panorama Latent ``height`` px high ->
    Panorama Windows (Sphere) -> KSampler (Panorama), MultiDiffusion -> VAE
    Decode (360 seamless) -> Save 360 Panorama."""
    g = Graph()
    ckpt_node = checkpoint(g, ckpt)
    positive, negative = prompts(g, ckpt_node, prompt)
    return conditioned_panorama(
        g, ckpt_node, (positive, 0), (negative, 0), 2 * height, height,
        twin_sampler(steps=steps, cfg=cfg, mode="multidiffusion"),
        f"## 360° panorama through sphere views ({title})\n\nPanorama Windows (Sphere) samples the 2:1 latent "
        f"through perspective views of the sphere, {views}, 90 degrees each, on a spiral from the zenith to the "
        "nadir (16 views cover the sphere), turned every step. Every view, the ones looking straight up and "
        "down too, is an ordinary photo for the model, so the sky and the ground come out as photos, not as "
        "the swirl a crop of the equirectangular grid gives there; any checkpoint, no 360 LoRA. Describe the scene "
        "as a photo: every view gets the prompt.\n\n"
        "The latent must be about 2.75 views high: each view pixel reads one latent pixel (nearest neighbour, "
        "so the model gets the noise it expects), and a pinhole view's corner pixels are a third of its centre "
        "pixels' angle, so the latent must be finer than the views. A smaller 360 is refused with the size it "
        "needs; a smaller window_size fits a smaller 360.\n\nmode `multidiffusion`: SphereDiff's own merge, "
        "each latent pixel the weighted mean of the views that see it; the views turn every step, so no "
        "direction stays on a view's edge, which is what Crop Fusion (`twindiffusion`) is for on fixed crops. "
        "Panorama Layout Guidance (MSD) and Window Positions (RoPE) do not apply to sphere views.",
        sphere_widgets, x=800, equirect=True, sphere=True)


def twin_sampler(steps=50, cfg=7.5, mode="twindiffusion", scheduler="normal", denoise=1.0, sampler="euler"):
    # seed, control_after_generate, steps, cfg, sampler, scheduler, denoise, mode, lam, tau, view_batch_size
    return [42, "fixed", steps, cfg, sampler, scheduler, denoise, mode, 1.0, 0.5, 4]


def lora_360_graph():
    """Flux.1-dev with a 360 LoRA (DiT360) sees the whole 2:1 panorama in one
    window, as the LoRA was trained; wrap-around moves the seam every step."""
    g = Graph()
    unet = g.node("UNETLoader", outputs=[("MODEL", "MODEL")], widgets=["flux1-dev.safetensors", "default"],
                  pos=(0, 0), size=(320, 82), models=["flux1-dev.safetensors"])
    clip = g.node("DualCLIPLoader", outputs=[("CLIP", "CLIP")],
                  widgets=["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"], pos=(0, 130),
                  size=(320, 130), models=["clip_l.safetensors", "t5xxl_fp16.safetensors"])
    prompt = text(g, clip, "This is a panorama. The image shows a quiet alpine lake in a valley, pine forest on "
                           "the shores, snowy peaks all around, a wooden jetty, clear morning sky", (360, 0),
                  "Prompt", slot=0)
    guidance = g.node("FluxGuidance", inputs=[("conditioning", "CONDITIONING")],
                      outputs=[("CONDITIONING", "CONDITIONING")], widgets=[2.8], pos=(360, 200), size=(400, 60))
    zero = g.node("ConditioningZeroOut", inputs=[("conditioning", "CONDITIONING")],
                  outputs=[("CONDITIONING", "CONDITIONING")], pos=(360, 310), size=(400, 50),
                  title="Negative (unused at cfg 1)")
    vae = g.node("VAELoader", outputs=[("VAE", "VAE")], widgets=["ae.safetensors"], pos=(360, 420), size=(400, 60),
                 models=["ae.safetensors"])
    # lora_name, strength_model
    lora = g.node("LoraLoaderModelOnly", inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")],
                  widgets=[DIT360_LORA, 1.0], pos=(360, 530), size=(400, 82), title="360 LoRA (DiT360)",
                  models=[DIT360_LORA])
    g.connect(unet, 0, lora, "model")
    g.connect(prompt, 0, guidance, "conditioning")
    g.connect(prompt, 0, zero, "conditioning")
    g = conditioned_panorama(
        g, lora, (guidance, 0), (zero, 0), 0, 0, twin_sampler(steps=28, cfg=1.0, scheduler="simple"),
        "## 360° panorama with a 360 LoRA (Flux.1-dev, 2048x1024)\n\nFiles: flux1-dev in models/diffusion_models, "
        "clip_l and t5xxl_fp16 in models/text_encoders, ae in models/vae, and DiT360's LoRA "
        "(adapter_model.safetensors) in models/loras.\n\nThe LoRA is trained on whole 2048x1024 equirectangular "
        "panoramas, so the window is the whole panorama: window_size 2048, one window, nothing to blend. "
        "`wrap_around` on a single window turns the circle by a different offset every step, so the left/right "
        "seam never stays in one place and closes. Flux Guidance 2.8 and a prompt starting \"This is a "
        "panorama.\" as DiT360 uses it; 28 steps at cfg 1.\n\nAnother 360 LoRA: pick it in the LoRA loader "
        "and set Empty 360° Panorama Latent's height and window_size (twice the height) to its training size.",
        [2048, 0, 1, 0, True], x=800, equirect=True, vae=(vae, 0), prefix="panorama360/flux_lora")
    next(n for n in g.nodes if n["type"] == "Panorama360Latent")["widgets_values"] = [1024, 1]
    return g


def fast_panorama_graph():
    """A few-step model (SDXL base + ByteDance's SDXL-Lightning 4-step LoRA)
    in shifted windows with a small feathered overlap, moved every step:
    4 steps, cfg 1, euler, sgm_uniform, MultiDiffusion's merge."""
    g = Graph()
    ckpt = checkpoint(g, SDXL)
    positive, negative = prompts(g, ckpt, "a panoramic photo of a tropical beach with palm trees and turquoise "
                                          "water, golden hour, highly detailed")
    # lora_name, strength_model
    lora = g.node("LoraLoaderModelOnly", inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")],
                  widgets=[SDXL_LIGHTNING_LORA, 1.0], pos=(360, 420), size=(400, 82),
                  title="SDXL-Lightning 4-step LoRA", models=[SDXL_LIGHTNING_LORA])
    g.connect(ckpt, 0, lora, "model")
    return conditioned_panorama(
        g, lora, (positive, 0), (negative, 0), 4096, 1024,
        twin_sampler(steps=4, cfg=1.0, mode="multidiffusion", scheduler="sgm_uniform"),
        "## Fast panorama (SDXL + SDXL-Lightning 4-step LoRA, 1024x4096)\n\nFiles: sd_xl_base_1.0 in "
        "models/checkpoints, ByteDance's SDXL-Lightning 4-step LoRA (sdxl_lightning_4step_lora) in models/loras; "
        "the frontend offers both downloads.\n\nFew-step models (Lightning, Turbo, LCM) leave the windows little "
        "time to agree: on a fixed grid, where a window ends at step 1 still shows at step 4, and MultiDiffusion "
        "needs four or more windows over every pixel to hide its block borders. Panorama Windows (Shifted, "
        "SpotDiffusion) moves the grid by a new offset every step (`golden`), so no pixel stays on a window "
        "edge, and a small overlap (`view_stride` 896 of 1024 px windows: 1/8 of the window) blended "
        "`feathered` fades each window out into the next. That gives MultiDiffusion-like seams at about a "
        "quarter of its window evaluations in 2-D: see README, Performance: Seamless at few steps.\n\n"
        "SDXL-Lightning's own settings: 4 steps, cfg 1 (the negative prompt is not run), euler, sgm_uniform, "
        "LoRA strength 1; KSampler (Panorama) in `multidiffusion` mode merges the windows by the feathered "
        "mean. For the 2-step or 8-step LoRA, pick it and set steps to match.",
        [1024, 896, "golden", 0, False, "feathered"], x=800, vae=(ckpt, 2), prefix="panorama/fast", shifted=True)


def dit_loaders(g, unet_name, clip_widgets, vae_name, clip_type="CLIPLoader"):
    """A DiT's diffusion model, text encoder(s) and VAE from their own loaders (left column, and the VAE under
    the prompts)."""
    unet = g.node("UNETLoader", outputs=[("MODEL", "MODEL")], widgets=[unet_name, "default"], pos=(0, 0),
                  size=(320, 82), models=[unet_name])
    files = [w for w in clip_widgets if w.endswith(".safetensors")]
    clip = g.node(clip_type, outputs=[("CLIP", "CLIP")], widgets=list(clip_widgets), pos=(0, 130),
                  size=(320, 130), models=files)
    vae = g.node("VAELoader", outputs=[("VAE", "VAE")], widgets=[vae_name], pos=(360, 420), size=(400, 60),
                 models=[vae_name])
    return unet, clip, vae


def aura_shift(g, model, shift, pos):
    # Qwen-Image's flow shift, as ComfyUI's Qwen templates set it.
    node = g.node("ModelSamplingAuraFlow", inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")],
                  widgets=[shift], pos=pos, size=(400, 60))
    g.connect(model, 0, node, "model")
    return node


def qwen_360_graph():
    """ComfyUI's "Qwen Image 2512: 360 Panorama Image" (Qwen-Image 2512 + a 360
    LoRA, 2048x1024, KSampler, VAE Decode) with the pack: one window as wide
    as the panorama that turns every step, and the seamless decode."""
    g = Graph()
    unet, clip, vae = dit_loaders(g, QWEN_2512, [QWEN_TEXT, "qwen_image", "default"], QWEN_VAE)
    positive, negative = prompts(g, clip, "equirectangular 360 image, a quiet alpine lake in a valley, pine forest "
                                          "on the shores, snowy peaks all around, a wooden jetty, clear morning "
                                          "sky, photograph", slot=0)
    # lora_name, strength_model
    lora = g.node("LoraLoaderModelOnly", inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")],
                  widgets=[QWEN_360_LORA, 1.0], pos=(360, 530), size=(400, 82), title="360 LoRA (Qwen 360 Diffusion)",
                  models=[QWEN_360_LORA])
    g.connect(unet, 0, lora, "model")
    shifted = aura_shift(g, lora, 3.1, (360, 660))
    lightning, url = QWEN_LIGHTNING
    g = conditioned_panorama(
        g, shifted, (positive, 0), (negative, 0), 0, 0, twin_sampler(steps=50, cfg=4.0, scheduler="simple"),
        "## Qwen-Image 2512 360, seamless (2048x1024)\n\nComfyUI's template \"Qwen Image 2512: 360 Panorama "
        "Image\" with the pack's sampler and decode. Files: qwen_image_2512_fp8_e4m3fn in models/diffusion_models, "
        "qwen_2.5_vl_7b_fp8_scaled in models/text_encoders, qwen_image_vae in models/vae, the 360 LoRA "
        "(qwen-360-diffusion-2512-int8-bf16-v2, ProGamerGov) in models/loras.\n\nThe LoRA is trained on whole "
        "2048x1024 panoramas, so the model sees the whole panorama, as in ComfyUI's graph: window_size 2048, "
        "one window. `wrap_around` turns that window around the circle by another offset every step, so the "
        "left and right ends are sampled side by side, and VAE Decode (360 seamless) decodes across the seam: "
        "the ends meet by construction, not only as far as the LoRA learnt it. Same settings as ComfyUI's: shift "
        "3.1, 50 steps, cfg 4, the trigger \"equirectangular 360 image\".\n\nFaster: the 4-step Lightning LoRA "
        f"({lightning}, {url}) after the 360 LoRA (a second LoRA loader), steps 4, cfg 1.",
        [2048, 0, 1, 0, True], x=800, equirect=True, vae=(vae, 0), prefix="panorama360/qwen")
    next(n for n in g.nodes if n["type"] == "Panorama360Latent")["widgets_values"] = [1024, 1]
    return g


def photo_to_360_edit_graph():
    """A photo placed on the sphere, given to Qwen-Image-Edit 2511 as its
    reference latent (ReferenceLatent), which draws the whole 2:1 360 around
    it in one window that turns every step; decoded seamlessly."""
    g = Graph()
    unet, clip, vae = dit_loaders(g, QWEN_EDIT_2511, [QWEN_TEXT, "qwen_image", "default"], QWEN_VAE)
    positive, negative = prompts(g, clip, "Turn this picture into a 360 degree equirectangular panorama: keep the "
                                          "photo as it is and fill the grey around it with the rest of the scene, "
                                          "a harbour town at dusk, boats, old houses along the quay, hills, evening "
                                          "sky", slot=0)
    shifted = aura_shift(g, unet, 3.1, (360, 530))
    photo = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                   widgets=["photo_to_360.png", "image"], pos=(800, 0), size=(320, 360), title="Your photo")
    # fov, yaw, pitch, width, fill: the reference about 1 megapixel, as Qwen-Image-Edit's own text encode node sizes it
    place = g.node("PanoramaPhotoTo360", inputs=[("image", "IMAGE")], outputs=[("image", "IMAGE"), ("mask", "MASK")],
                   widgets=[70.0, 0.0, 0.0, 1408, "grey"], pos=(800, 420), size=(400, 200))
    encode = g.node("VAEEncode", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")],
                    pos=(800, 680), size=(320, 50))
    references = []
    for i, (cond, title) in enumerate(((positive, "Reference: the photo in its 360"), (negative, "Reference (negative)"))):
        node = g.node("ReferenceLatent", inputs=[("conditioning", "CONDITIONING"), ("latent", "LATENT")],
                      outputs=[("CONDITIONING", "CONDITIONING")], pos=(1240, 120 * i), size=(340, 60), title=title)
        g.connect(cond, 0, node, "conditioning")
        g.connect(encode, 0, node, "latent")
        references.append(node)
    g.connect(photo, 0, place, "image")
    g.connect(place, 0, encode, "pixels")
    g.connect(vae, 0, encode, "vae")
    latent = g.node("Panorama360Latent", inputs=[("model", "MODEL")],
                    outputs=[("LATENT", "LATENT"), ("width", "INT"), ("height", "INT")], widgets=[1024, 1],
                    pos=(1240, 280), size=(340, 130))
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=[2048, 0, 1, 0, True],
                  pos=(1240, 470), size=(360, 180))
    sampler = g.node("TwinCropFusionSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                      ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
                                                      ("windows", "PANORAMA_WINDOWS")],
                     outputs=[("LATENT", "LATENT")], widgets=twin_sampler(steps=40, cfg=4.0, scheduler="simple"),
                     pos=(1640, 0), size=(340, 440))
    g.connect(shifted, 0, latent, "model")
    for node, name in ((shifted, "model"), (references[0], "positive"), (references[1], "negative"),
                       (latent, "latent_image"), (plan, "windows")):
        g.connect(node, 0, sampler, name)
    decode_and_save(g, (sampler, 0), (vae, 0), 2020, equirect=True)
    g.note("## Photo to 360 with an edit model (Qwen-Image-Edit 2511, 2048x1024)\n\nFiles: "
           "qwen_image_edit_2511_bf16 in models/diffusion_models, qwen_2.5_vl_7b_fp8_scaled in "
           "models/text_encoders, qwen_image_vae in models/vae.\n\nPlace Photo in 360° Panorama puts your photo on "
           "the sphere (set its `fov`) in a grey 2:1 picture; VAE Encode and Reference Latent hand that picture to "
           "the edit model, which reads it whole beside the 360 it draws. Empty 360° Panorama Latent makes the 360 "
           "exactly 2:1 (2048x1024), and one window as wide as it, turned every step (`wrap_around`), with VAE "
           "Decode (360 seamless), makes its ends meet. The photo's area is redrawn from the reference, not "
           "pasted: for a pixel-exact photo use photo_to_360_sphere_sd15 (noise mask).\n\nShift 3.1, 40 steps, "
           "cfg 4 as ComfyUI's Qwen-Image-Edit 2511 template; the prompt says what to fill in.", pos=(0, 780))
    return g


def sphere_dit_graph():
    """A whole 360 from Flux.1-dev through sphere views: sphere_graph with
    Flux's own loaders, Flux Guidance at cfg 1, 768 px views."""
    g = Graph()
    unet, clip, vae = dit_loaders(g, "flux1-dev.safetensors",
                                  ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"],
                                  "ae.safetensors", clip_type="DualCLIPLoader")
    prompt = text(g, clip, "a photo of a misty fjord at sunrise, steep cliffs, waterfalls, a small red cabin by the "
                           "shore, highly detailed", (360, 0), "Prompt", slot=0)
    guidance = g.node("FluxGuidance", inputs=[("conditioning", "CONDITIONING")],
                      outputs=[("CONDITIONING", "CONDITIONING")], widgets=[3.5], pos=(360, 200), size=(400, 60))
    zero = g.node("ConditioningZeroOut", inputs=[("conditioning", "CONDITIONING")],
                  outputs=[("CONDITIONING", "CONDITIONING")], pos=(360, 310), size=(400, 50),
                  title="Negative (unused at cfg 1)")
    g.connect(prompt, 0, guidance, "conditioning")
    g.connect(prompt, 0, zero, "conditioning")
    return conditioned_panorama(
        g, unet, (guidance, 0), (zero, 0), 4096, 2048,
        twin_sampler(steps=28, cfg=1.0, scheduler="simple", mode="multidiffusion"),
        "## 360° panorama through sphere views (Flux.1-dev, 4096x2048)\n\nFiles: flux1-dev in "
        "models/diffusion_models, clip_l and t5xxl_fp16 in models/text_encoders, ae in models/vae. No 360 LoRA: "
        "Panorama Windows (Sphere) samples the 2:1 latent through 16 perspective views of 90 degrees from the "
        "zenith to the nadir, turned every step, each an ordinary photo for Flux, so the poles come out as sky "
        "and ground, not a swirl.\n\n768 px views: Flux's native 1024 px views would need a 5632x2816 360 (the "
        "latent must be about 2.75 views high so that every view reads native noise); a smaller 360 is refused "
        "with the size it needs. Flux Guidance 3.5 at cfg 1, 28 steps, mode `multidiffusion` (SphereDiff's "
        "merge). Z-Image: swap the loaders (UNETLoader, CLIPLoader type lumina2, ae.safetensors) and use cfg "
        "with a negative prompt; the views stay the same.",
        [768, 0.0, 0.25, 0, "golden", 2], x=800, equirect=True, sphere=True, vae=(vae, 0))


def photo_extension_graph():
    """A photo in the middle of a wide canvas; the sampler fills only the new
    area (Set Latent Noise Mask), and the photo's pixels are pasted back."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    positive, negative = prompts(g, ckpt, "a wide landscape photo of a coastal village on a cliff, the sea, "
                                          "rocky shore, summer afternoon, highly detailed")
    photo = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                   widgets=["photo_to_extend.png", "image"], pos=(0, 340), size=(320, 360), title="Your photo")
    # upscale_method, width, height, crop
    fit = g.node("ImageScale", inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")],
                 widgets=["lanczos", 512, 512, "center"], pos=(360, 400), size=(400, 130),
                 title="Photo to 512x512 (SD1.5)")
    # left, top, right, bottom, feathering
    pad = g.node("ImagePadForOutpaint", inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                 widgets=[768, 0, 768, 0, 0], pos=(360, 580), size=(400, 180), title="Canvas: photo in the middle")
    encode = g.node("VAEEncode", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")],
                    pos=(800, 400), size=(320, 50))
    noise_mask = g.node("SetLatentNoiseMask", inputs=[("samples", "LATENT"), ("mask", "MASK")],
                        outputs=[("LATENT", "LATENT")], pos=(800, 500), size=(320, 50),
                        title="Generate the new area only")
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=[0, 0, 2, 0, False],
                  pos=(800, 600), size=(360, 180))
    sampler = g.node("TwinCropFusionSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                      ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
                                                      ("windows", "PANORAMA_WINDOWS")],
                     outputs=[("LATENT", "LATENT")], widgets=twin_sampler(), pos=(1200, 0), size=(340, 440))
    decode = g.node("VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                    pos=(1580, 0), size=(220, 50))
    # x, y, resize_source
    paste = g.node("ImageCompositeMasked", inputs=[("destination", "IMAGE"), ("source", "IMAGE"), ("mask", "MASK")],
                   outputs=[("IMAGE", "IMAGE")], widgets=[0, 0, False], pos=(1580, 100), size=(340, 140),
                   title="Photo pixels back in place")
    save = g.node("SaveImage", inputs=[("images", "IMAGE")], widgets=["panorama/extended"], pos=(1580, 300),
                  size=(900, 300))
    g.connect(photo, 0, fit, "image")
    g.connect(fit, 0, pad, "image")
    g.connect(pad, 0, encode, "pixels")
    g.connect(ckpt, 2, encode, "vae")
    g.connect(encode, 0, noise_mask, "samples")
    g.connect(pad, 1, noise_mask, "mask")
    for node, name in ((ckpt, "model"), (positive, "positive"), (negative, "negative"), (noise_mask, "latent_image"),
                       (plan, "windows")):
        g.connect(node, 0, sampler, name)
    g.connect(sampler, 0, decode, "samples")
    g.connect(ckpt, 2, decode, "vae")
    g.connect(pad, 0, paste, "destination")
    g.connect(decode, 0, paste, "source")
    g.connect(pad, 1, paste, "mask")
    g.connect(paste, 0, save, "images")
    g.note("## Extend a photo into a panorama (SD1.5, 512 -> 512x2048)\n\nLoad your photo; Upscale Image makes "
           "it 512x512 (SD1.5's size) and Pad Image for Outpainting puts it in the middle of a 2048 px canvas "
           "(left 768, right 768: move it with left/right, add top/bottom for a taller canvas). Set Latent Noise "
           "Mask lets the sampler generate only the new area; the windows overlapping the photo see it, so the "
           "scene continues from it. Image Composite Masked pastes the photo's own pixels back, so its area is "
           "exactly your photo.\n\nDescribe the whole scene in the prompt. feathering 0 keeps a hard edge; "
           "a few dozen pixels let the model repaint (and blend) the photo's border.", pos=(0, 760))
    return g


def photo_to_360_graph():
    """A photo placed on the sphere (Place Photo in 360° Panorama); only the
    rest of the 2:1 latent is sampled (Set Latent Noise Mask), through sphere
    views, then decoded seamlessly and saved as a 360."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    positive, negative = prompts(g, ckpt, "a photo of a harbour town at dusk, boats, old houses along the quay, "
                                          "hills, evening sky, highly detailed")
    photo = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                   widgets=["photo_to_360.png", "image"], pos=(0, 340), size=(320, 360), title="Your photo")
    # fov, yaw, pitch, width, fill
    place = g.node("PanoramaPhotoTo360", inputs=[("image", "IMAGE")], outputs=[("image", "IMAGE"), ("mask", "MASK")],
                   widgets=[70.0, 0.0, 0.0, 2816, "grey"], pos=(360, 420), size=(400, 200))
    encode = g.node("VAEEncode", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")],
                    pos=(800, 400), size=(320, 50))
    noise_mask = g.node("SetLatentNoiseMask", inputs=[("samples", "LATENT"), ("mask", "MASK")],
                        outputs=[("LATENT", "LATENT")], pos=(800, 500), size=(320, 50),
                        title="Generate around the photo only")
    # window_size, fov, overlap, view_count, rotation, cross_count (the node's defaults)
    plan = g.node("PanoramaSphereWindows", outputs=[("windows", "PANORAMA_WINDOWS")],
                  widgets=[0, 0.0, 0.25, 0, "golden", 2], pos=(800, 600), size=(360, 200))
    sampler = g.node("TwinCropFusionSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                      ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
                                                      ("windows", "PANORAMA_WINDOWS")],
                     outputs=[("LATENT", "LATENT")], widgets=twin_sampler(mode="multidiffusion"), pos=(1200, 0),
                     size=(340, 440))
    g.connect(photo, 0, place, "image")
    g.connect(place, 0, encode, "pixels")
    g.connect(ckpt, 2, encode, "vae")
    g.connect(encode, 0, noise_mask, "samples")
    g.connect(place, 1, noise_mask, "mask")
    for node, name in ((ckpt, "model"), (positive, "positive"), (negative, "negative"), (noise_mask, "latent_image"),
                       (plan, "windows")):
        g.connect(node, 0, sampler, name)
    decode_and_save(g, (sampler, 0), (ckpt, 2), 1580, equirect=True)
    g.note("## Photo to 360 through sphere views (SD1.5, 2816x1408)\n\nLoad your photo; Place Photo in 360° "
           "Panorama puts it on the sphere where a camera at `yaw` / `pitch` with the photo's `fov` (70 degrees "
           "here: set your photo's) would have taken it, and gives the mask of the rest. VAE Encode encodes the "
           "2:1 picture, Set Latent Noise Mask lets the sampler generate only the rest: the photo's area is kept, "
           "and every view around it (Panorama Windows (Sphere), MultiDiffusion) is generated to meet it. VAE "
           "Decode (360 seamless) and Save 360 Panorama give the 360.\n\nSD1.5's 512 px views need a 2816x1408 "
           "360 (width 2816): the latent must be about 2.75 views high. `fill` sets what the picture shows "
           "outside the photo before encoding (grey, black, or the photo's edges smeared outward). Describe the "
           "whole scene as a photo: every view gets the prompt.", pos=(0, 760))
    return g


def upscale_graph():
    """A panorama upscaled in pixels, then sampled again at denoise 0.4 with
    windows of the model's size for detail; tiled VAE encode / decode."""
    g = Graph()
    ckpt = checkpoint(g, SD15)
    positive, negative = prompts(g, ckpt, "a photo of a mountain range at sunrise, snowy peaks, pine forest, lake, "
                                          "highly detailed, sharp focus")
    image = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                   widgets=["panorama_to_upscale.png", "image"], pos=(0, 340), size=(320, 360),
                   title="Panorama to upscale")
    # upscale_method, scale_by
    upscale = g.node("ImageScaleBy", inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")],
                     widgets=["lanczos", 2.0], pos=(360, 400), size=(400, 82), title="Upscale 2x (lanczos)")
    # tile_size, overlap, temporal_size, temporal_overlap
    encode = g.node("VAEEncodeTiled", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")],
                    widgets=[512, 64, 64, 8], pos=(800, 400), size=(320, 150))
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=[0, 0, 2, 0, False],
                  pos=(800, 600), size=(360, 180))
    sampler = g.node("TwinCropFusionSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                      ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
                                                      ("windows", "PANORAMA_WINDOWS")],
                     outputs=[("LATENT", "LATENT")], widgets=twin_sampler(steps=30, denoise=0.4), pos=(1200, 0),
                     size=(340, 440))
    decode = g.node("VAEDecodeTiled", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                    widgets=[512, 64, 64, 8], pos=(1580, 0), size=(320, 150))
    save = g.node("SaveImage", inputs=[("images", "IMAGE")], widgets=["panorama/upscaled"], pos=(1580, 200),
                  size=(900, 300))
    g.connect(image, 0, upscale, "image")
    g.connect(upscale, 0, encode, "pixels")
    g.connect(ckpt, 2, encode, "vae")
    for node, name in ((ckpt, "model"), (positive, "positive"), (negative, "negative"), (encode, "latent_image"),
                       (plan, "windows")):
        g.connect(node, 0, sampler, name)
    g.connect(sampler, 0, decode, "samples")
    g.connect(ckpt, 2, decode, "vae")
    g.connect(decode, 0, save, "images")
    g.note("## Upscale a panorama (SD1.5, 512x2048 -> 1024x4096)\n\nLoad a panorama (e.g. one from "
           "twin_panorama_sd15); Upscale Image By doubles it, VAE Encode (Tiled) encodes it, and KSampler "
           "(Panorama) samples it again at denoise 0.4 with 512 px windows, the model's own size, in both "
           "directions: new detail, the layout of your panorama. Raise denoise for more change, lower it to stay "
           "closer.\n\nBetter than lanczos: Load Upscale Model + Upscale Image (using Model) (an ESRGAN-type "
           "model in models/upscale_models) in place of Upscale Image By. For a 360 panorama use VAE Encode / "
           "Decode (360 seamless) and wrap_around on.", pos=(0, 760))
    return g


def terrain_graph():
    """The trained terrain model (adaptive-terrain-diffusion's consistency
    U-Net, weights from its PyPI package, so no file to download): a
    difficulty as the conditioning, a 128x1024 strip in 128 px windows,
    4 lcm steps at cfg 1 (Karras sigmas), drawn as hillshaded relief."""
    g = Graph()
    loader = g.node("PanoramaTerrainModelLoader", outputs=[("MODEL", "MODEL")], pos=(0, 0), size=(440, 60))
    # difficulty: 1 (gentle) to 100 (rugged)
    difficulty = g.node("PanoramaTerrainDifficulty", outputs=[("CONDITIONING", "CONDITIONING")], widgets=[50.0],
                        pos=(0, 130), size=(440, 60))
    latent = g.node("PanoramaLatent", inputs=[("model", "MODEL")], outputs=[("LATENT", "LATENT")],
                    widgets=[1024, 128, 1], pos=(0, 260), size=(320, 130))
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=[0, 0, 2, 0, False],
                  pos=(0, 460), size=(360, 180))
    sampler = g.node("TwinCropFusionSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                      ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
                                                      ("windows", "PANORAMA_WINDOWS")],
                     outputs=[("LATENT", "LATENT")],
                     widgets=twin_sampler(steps=4, cfg=1.0, scheduler="karras", sampler="lcm"), pos=(480, 0),
                     size=(340, 440))
    # exaggeration, shading, wrap_around
    relief = g.node("PanoramaTerrainRelief", inputs=[("samples", "LATENT")],
                    outputs=[("relief", "IMAGE"), ("heightmap", "IMAGE")], widgets=[1.0, 0.75, False],
                    pos=(860, 0), size=(320, 160))
    save = g.node("SaveImage", inputs=[("images", "IMAGE")], widgets=["panorama/terrain"], pos=(860, 220),
                  size=(900, 300), title="Save relief")
    preview = g.node("PreviewImage", inputs=[("images", "IMAGE")], pos=(860, 580), size=(900, 300),
                     title="Preview heightmap")
    g.connect(loader, 0, latent, "model")
    for node, name in ((loader, "model"), (difficulty, "positive"), (difficulty, "negative"),
                       (latent, "latent_image"), (plan, "windows")):
        g.connect(node, 0, sampler, name)
    g.connect(sampler, 0, relief, "samples")
    g.connect(relief, 0, save, "images")
    g.connect(relief, 1, preview, "images")
    g.note("## Terrain panorama from a trained model (128x1024)\n\nNo file to download: the weights come from "
           "the PyPI package adaptive-terrain-diffusion (MIT), installed into ComfyUI's Python environment:\n\n"
           "`pip install --no-deps adaptive-terrain-diffusion==0.4.2`\n\n(the pin of the pack's "
           "scripts/requirements-models.txt), then restart ComfyUI.\n\nA consistency model for terrain "
           "heightmaps, 1 px per latent pixel, 128 px native windows: Panorama Windows with its defaults plans "
           "128 px windows, 32 px view stride, c = 2. Few steps: lcm, 4 steps, Karras schedule, cfg 1. Terrain "
           "Difficulty (1 gentle to 100 rugged) is the conditioning, on positive and negative (at cfg 1 the "
           "negative is never run). Terrain Relief draws hillshade with hypsometric tints (saved) and the grey "
           "heightmap (previewed).", pos=(0, 700))
    return g


def wan22_video_graph(width, height, prompt, plan_widgets, note, prefix, photo=None, equirect=False):
    """Wan 2.2 TI2V 5B as ComfyUI's template runs it (loaders, shift 8,
    Wan22ImageToVideoLatent, KSampler: 20 steps, cfg 5, uni_pc, simple,
    VAE Decode; saved at 24 fps by Save WEBM), with the latent made at
    ``width`` x ``height`` and the model patched by the pack: Sample as
    Panorama (model patch) with Panorama Windows (Cross Sampling)
    ``plan_widgets``.  ``photo``: a Load Image file name, the start image;
    ``equirect``: VAE Decode (360 seamless) in place of VAE Decode and
    Save 360 Video (the same WebM, played on a sphere in the node) in place
    of Save WEBM."""
    g = Graph()
    unet, clip, vae = dit_loaders(g, WAN22_5B, [WAN_TEXT, "wan", "default"], WAN22_VAE)
    positive, negative = (text(g, clip, prompt, (360, 0), "Positive prompt", slot=0),
                          text(g, clip, WAN_NEGATIVE, (360, 200), "Negative prompt", slot=0))
    shift = g.node("ModelSamplingSD3", inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")], widgets=[8.0],
                   pos=(0, 310), size=(320, 60))
    g.connect(unet, 0, shift, "model")
    # 360 wide, as in the other templates: frontend 1.27 cuts the title "Panorama Windows (Cross Sampling)" at 320
    plan = g.node("CrossSamplingScheduler", outputs=[("windows", "PANORAMA_WINDOWS")], widgets=list(plan_widgets),
                  pos=(0, 430), size=(360, 180))
    # mode, lam, tau, view_batch_size: one window of all frames at a time (a whole 1280x704 video each)
    patch = g.node("TwinDiffusionModel", inputs=[("model", "MODEL"), ("windows", "PANORAMA_WINDOWS")],
                   outputs=[("MODEL", "MODEL")], widgets=["twindiffusion", 1.0, 0.5, 1], pos=(0, 670),
                   size=(320, 200))
    g.connect(shift, 0, patch, "model")
    g.connect(plan, 0, patch, "windows")
    # width, height, length, batch_size
    latent = g.node("Wan22ImageToVideoLatent", inputs=[("vae", "VAE"), ("start_image", "IMAGE")],
                    outputs=[("LATENT", "LATENT")], widgets=[width, height, 121, 1], pos=(360, 530), size=(400, 150))
    g.connect(vae, 0, latent, "vae")
    if photo is not None:
        image = g.node("LoadImage", outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")], widgets=[photo, "image"],
                       pos=(360, 740), size=(400, 360), title="Your wide photo (the first frame)")
        g.connect(image, 0, latent, "start_image")
    # seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise
    sampler = g.node("KSampler", inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                         ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
                     outputs=[("LATENT", "LATENT")], widgets=[42, "fixed", 20, 5.0, "uni_pc", "simple", 1.0],
                     pos=(800, 0), size=(320, 270))
    for node, name in ((patch, "model"), (positive, "positive"), (negative, "negative"), (latent, "latent_image")):
        g.connect(node, 0, sampler, name)
    if equirect:
        # wrap_padding, tile_size (0 = whole), overlap
        decode = g.node("PanoramaSeamlessDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")],
                        outputs=[("IMAGE", "IMAGE")], widgets=[64, 0, 64], pos=(1160, 0), size=(320, 160))
    else:
        decode = g.node("VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                        pos=(1160, 0), size=(320, 50))
    g.connect(sampler, 0, decode, "samples")
    g.connect(vae, 0, decode, "vae")
    if equirect:
        # filename_prefix, fps, crf: the pack's Save 360 Video (vp9 WebM as Save WEBM, shown on a sphere)
        save = g.node("SavePanorama360Video", inputs=[("images", "IMAGE")], widgets=[prefix, 24.0, 32.0],
                      pos=(1160, 220), size=(900, 560))
    else:
        # filename_prefix, codec, fps, crf: Save WEBM, whose widgets are the same on every ComfyUI this pack
        # supports (Save Video's format / codec widgets changed shape between versions)
        save = g.node("SaveWEBM", inputs=[("images", "IMAGE")], widgets=[prefix, "vp9", 24.0, 32.0],
                      pos=(1160, 220), size=(900, 560))
    g.connect(decode, 0, save, "images")
    g.note(note, pos=(800, 940 if photo is None else 1160))
    return g


WAN22_FILES = ("Files, as ComfyUI's Wan 2.2 5B template has them: wan2.2_ti2v_5B_fp16 in models/diffusion_models, "
               "umt5_xxl_fp8_e4m3fn_scaled in models/text_encoders, wan2.2_vae in models/vae. Its settings too: "
               "shift 8, 20 steps, cfg 5, uni_pc, simple, 121 frames at 24 fps.")


def wide_video_graph():
    return wan22_video_graph(
        2560, 704, "a wide cinematic shot of a coastal town at sunset, waves rolling onto the beach, people walking "
                   "along the promenade, seagulls, warm light, slow pan", [1280, 640, 2, 0, False],
        "## Wide video (Wan 2.2 TI2V 5B, 2560x704, 121 frames)\n\n" + WAN22_FILES + "\n\nWan 2.2 5B is trained "
        "at 1280x704. Wan22ImageToVideoLatent makes the latent 2560 px wide; Sample as Panorama (model patch) "
        "makes ComfyUI's KSampler sample it as windows of 1280x704, every window a whole 121-frame video: view "
        "stride 640, so 3 windows (a half overlap each), two groups interleaved (Cross Sampling, c = 2), "
        "TwinDiffusion's Crop Fusion. About 3x the time of one 1280x704 video; memory follows one window "
        "(view_batch_size 1).\n\nMore windows, smoother joins: lower view_stride. A start frame: see "
        "photo_to_wide_video_wan22_5b.", "video/wide")


def video_360_graph():
    return wan22_video_graph(
        1408, 704, "a 360 degree view from the middle of a busy market square, stalls with fruit and flowers, "
                   "people walking past, fountain, old houses all around, afternoon sun", [1280, 704, 1, 0, True],
        "## 360 video (Wan 2.2 TI2V 5B, 1408x704, 121 frames)\n\n" + WAN22_FILES + "\n\nA 360 video is 2:1 "
        "(360 by 180 degrees). 1408x704: the model's native 704 px height and windows of its native 1280x704 "
        "shape; `wrap_around` makes the width a circle, and view_stride 704 places 2 windows half the circle "
        "apart, each seeing about 327 of the 360 degrees, so every direction, the seam too, is sampled inside a "
        "window. VAE Decode (360 seamless) decodes every frame across the seam. Save 360 Video saves the WebM "
        "(vp9, 24 fps) and plays it on a sphere in the node: drag to look around, the button to pause. "
        "(2816x1408 would be two rows of windows; 960x480 with Wan 2.1's 832x480 windows works the same "
        "way.)\n\nSpherical metadata: Save 360 Video writes a plain WebM (the spherical-video boxes are not "
        "written). For YouTube, VR players and phones, convert the WebM to MP4 (e.g. "
        "`ffmpeg -i in.webm -c:v libx264 -pix_fmt yuv420p in.mp4`) and add them with Google's Spatial Media "
        "Metadata Injector (github.com/google/spatial-media): `python spatialmedia -i in.mp4 out.mp4`.",
        "video/360", equirect=True)


def photo_to_wide_video_graph():
    return wan22_video_graph(
        2560, 704, "the scene comes to life: waves rolling in, clouds drifting, leaves moving in the wind, people "
                   "walking, slow steady camera", [1280, 640, 2, 0, False],
        "## Wide photo to wide video (Wan 2.2 TI2V 5B, 2560x704, 121 frames)\n\n" + WAN22_FILES + "\n\nLoad "
        "a wide photo (about 32:9, e.g. a phone panorama); Wan22ImageToVideoLatent scales and centre-crops it to "
        "2560x704, encodes it as the first frame and keeps it (a noise mask), and the model patch samples the "
        "rest in 1280x704 windows of all frames: each window starts from its part of the photo, so the whole "
        "wide picture moves. Windows and cost as in wide_video_wan22_5b. Describe the motion in the prompt.",
        "video/photo_wide", photo="wide_photo.png")


def main():
    OUT.mkdir(exist_ok=True)
    # window_size, view_stride, cross_count, cross_stride, wrap_around (0 = model default)
    panorama_graph(
        SD15,
        "a photo of a mountain range at sunrise, snowy peaks, pine forest, lake, highly detailed",
        2048, 512, twin_sampler(), [0, 0, 2, 0, False],
        "## TwinDiffusion panorama (SD1.5, 512x2048)\n\nEmpty Panorama Latent makes a 512x2048 latent; "
        "Panorama Windows (Cross Sampling) plans 512 px windows with the paper's 128 px view stride and c = 2 "
        "interleaved groups; KSampler (Panorama) runs TwinDiffusion's Crop Fusion (lambda 1, tau 0.5).\n\n"
        "Set mode to `multidiffusion` to compare with the baseline.",
    ).save("twin_panorama_sd15.json")
    panorama_graph(
        SD15,
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
        SD15,
        "360 degree equirectangular panorama of a quiet village square, cobblestones, cafes, trees, blue sky",
        0, 0, twin_sampler(), [0, 0, 2, 0, True],
        "## 360-degree panorama (SD1.5, 1024x512)\n\nEmpty 360° Panorama Latent makes a 2:1 equirectangular "
        "latent at the model's size (360 by 180 degrees). `wrap_around` makes its width a circle: windows "
        "run over the right edge into the left, so the ends join.\n\nVAE Decode (360 seamless) decodes "
        "with the opposite edge as context, so no seam appears where a plain VAE Decode would leave one. "
        "Save 360 Panorama shows the result as a sphere (drag to look around) and writes photo-sphere "
        "metadata, so 360 viewers and photo sites show the file as a 360 photo (format jpeg for those).",
        equirect=True,
    ).save("panorama_360_sd15.json")
    model_patch_graph().save("twin_model_patch_sd15.json")
    # window_size, fov, overlap, view_count, rotation, cross_count; each view is an ordinary photo: the
    # prompt describes the scene, not a panorama
    sphere_graph(
        SD15, "a photo of a quiet village square, cobblestones, cafes, trees, blue sky, highly detailed",
        1408, [0, 0.0, 0.25, 0, "golden", 2], "SD1.5, 2816x1408", "512 px views (the model's own size)",
    ).save("panorama_360_sphere_sd15.json")
    sphere_graph(
        "sd_xl_base_1.0.safetensors",
        "a photo of a tropical beach with palm trees and turquoise water, golden hour, highly detailed",
        2048, [768, 0.0, 0.25, 0, "golden", 2], "SDXL, 4096x2048",
        "768 px views (SDXL's native 1024 px views would need a 5632x2816 360)", steps=40, cfg=7.0,
    ).save("panorama_360_sphere_sdxl.json")
    panorama_graph(
        SD15,
        "a vast fantasy castle on a cliff above the sea, waterfalls, dramatic clouds, highly detailed",
        4096, 1024, twin_sampler(mode="multidiffusion"), [0, 0, 1, 0, False],
        "## Multi-Scale Diffusion (SD1.5, 1024x4096)\n\nTwice the model's height and eight times its width. "
        "Panorama Layout Guidance (MSD) runs a half-resolution MultiDiffusion pass each step and pulls every "
        "full-resolution window towards its layout by one gradient step (omega 10, cosine decay), so the "
        "panorama stays one scene instead of a grid of tiles. It guides the first tenth of the denoising "
        "(end_percent 0.1), where the layout forms: as close to the layout as guiding every step, at about "
        "half the extra time (end_percent 1 guides every step, as the paper: about 3.5x the time of plain "
        "MultiDiffusion). Set mode to twindiffusion and cross_count to 2 to combine it with TwinDiffusion.",
        multiscale=[2, 10.0, "cosine", "bilinear", 0.0, 0.1, False],
    ).save("msd_panorama_sd15.json")
    regional_graph().save("regional_panorama_sd15.json")
    controlnet_graph().save("controlnet_panorama_sd15.json")
    flux_graph().save("flux_panorama.json")
    sd35_graph().save("sd35_panorama.json")
    lora_360_graph().save("panorama_360_lora_flux.json")
    photo_extension_graph().save("photo_extension_sd15.json")
    photo_to_360_graph().save("photo_to_360_sphere_sd15.json")
    qwen_360_graph().save("panorama_360_qwen_2512.json")
    photo_to_360_edit_graph().save("photo_to_360_qwen_edit.json")
    sphere_dit_graph().save("panorama_360_sphere_flux.json")
    upscale_graph().save("upscale_panorama_sd15.json")
    terrain_graph().save("terrain_panorama.json")
    fast_panorama_graph().save("fast_panorama_sdxl_lightning.json")
    wide_video_graph().save("wide_video_wan22_5b.json")
    video_360_graph().save("panorama_360_video_wan22_5b.json")
    photo_to_wide_video_graph().save("photo_to_wide_video_wan22_5b.json")


if __name__ == "__main__":
    main()

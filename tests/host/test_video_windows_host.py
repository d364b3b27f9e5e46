"""Spatial windows on video latents (issue 26, item 1): Wan's (B, C, T, H, W)
latents cut along H and W, every window keeping all frames, through the
same context handler as images.  Tiny random Wan 2.1 (text- and
image-to-video) and Wan 2.2 TI2V 5B models of ComfyUI's own classes
(``tiny_dits.VIDEO_KINDS``), loaded by UNETLoader through ComfyUI's model
detection; a host without a family skips, saying so.

* one window covering the video is ComfyUI's plain KSampler, bit for bit,
  through the executor;
* MultiDiffusion on a video (also across the 360 seam) is the per-pixel
  average of every window denoised on its own by the model (ComfyUI's
  KSampler on that window alone), to 1e-5;
* Crop Fusion, Cross Sampling and shifted windows sample videos with
  windows of all frames, of the plan's size;
* wrap-around: a window across the seam is the model on both ends joined,
  in every frame, and a 360 video sampled from a start rolled around the
  circle is the same video rolled: the seam is sampled as any inner column;
* Wan's image-to-video conditioning (``concat_latent_image`` and its mask,
  Wan 2.2 5B's per-frame denoise mask) is cut per window like the latent;
* refusals naming the input and the fix: a window larger than the video,
  an image model given a video latent and a video model given an image
  latent, conditioning the pack cannot cut (Phantom's subject images,
  VACE, areas), methods not on video yet (sphere views, MSD).
"""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_dits

pytestmark = pytest.mark.host

FAMILIES = ["wan21", "wan22_5b"]
FRAMES, HEIGHT, WIDTH = 3, 16, 48  # latent; 3 latent frames = 9 video frames
WINDOW, STRIDE = 16, 8  # latent pixels: 8 x 8 tokens of 1x2x2 patches
STEPS, CFG = 3, 3.0


def px(kind: str) -> int:
    return tiny_dits.expected_geometry(kind)["pixels_per_latent"]


def channels(kind: str) -> int:
    return tiny_dits.expected_geometry(kind)["latent_channels"]


class PanoramaTestVideoLatent:
    """Test-only node: an empty video latent of a tiny video model's shape
    (ComfyUI's latent nodes for Wan 2.2 5B want a VAE even when empty)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"kind": (list(tiny_dits.VIDEO_KINDS),), "width": ("INT", {"default": 384, "max": 8192}),
                             "height": ("INT", {"default": 128, "max": 8192}), "frames": ("INT", {"default": 3})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, kind, width, height, frames):
        return ({"samples": torch.zeros(1, channels(kind), frames, height // px(kind), width // px(kind))},)


@pytest.fixture(scope="module")
def video_files(comfy, checkpoint_dir) -> dict:
    """{kind: diffusion-model file} for the video kinds this host has, and Qwen-Image (an image model on
    Wan's latent format)."""
    folder = checkpoint_dir / "diffusion_models"
    folder.mkdir(exist_ok=True)
    kinds = [kind for kind in (*tiny_dits.VIDEO_KINDS, "qwen_image") if tiny_dits.unavailable_reason(kind) is None]
    names = {kind: tiny_dits.ensure_dit(kind, folder) for kind in kinds}
    harness.add_checkpoint_folder(folder, "diffusion_models")
    harness.register_test_nodes({**tiny_dits.TEST_NODE_CLASS_MAPPINGS,
                                 "PanoramaTestVideoLatent": PanoramaTestVideoLatent})
    return names


def load(kind: str, files: dict):
    import nodes
    reason = tiny_dits.unavailable_reason(kind)
    if reason:
        pytest.skip(reason)
    with torch.inference_mode():
        return nodes.UNETLoader().load_unet(files[kind], "default")[0]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, video_files):
    """(kind, MODEL, positive, negative)."""
    kind = request.param
    return (kind, load(kind, video_files), tiny_dits.conditioning(kind, "a coastline at dusk"),
            tiny_dits.conditioning(kind, "blurry"))


def window_plan(kind, window=WINDOW, stride=STRIDE, c=1, wrap=False):
    return harness.node("CrossSamplingScheduler").execute(window * px(kind), stride * px(kind), c, 0, wrap)[0]


def patched(model, plan, mode="multidiffusion", view_batch_size=4):
    return harness.node("TwinDiffusionModel").execute(model, mode, 1.0, 0.5, view_batch_size, plan)[0]


def start_video(kind, width=WIDTH, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, channels(kind), FRAMES, HEIGHT, width, generator=generator)


def sample(model, positive, negative, noise, steps=STEPS, first=0, last=None, noise_mask=None, latent=None):
    """ComfyUI's KSampler (comfy.sample.sample) from ``noise`` (flow models start at noise, not at the
    latent: ``latent`` is the clean part, zeros unless given), steps ``first`` to ``last``, ending at sigma
    0, so a window of the panorama and the same window alone start alike.  One step (``last = first + 1``)
    returns the denoised prediction at that step's sigma."""
    import comfy.sample
    latent = torch.zeros_like(noise) if latent is None else latent
    with torch.inference_mode():
        return comfy.sample.sample(model, noise, steps, CFG, "euler", "simple", positive, negative, latent,
                                   start_step=first, last_step=steps if last is None else last,
                                   force_full_denoise=True, noise_mask=noise_mask, seed=0)


def views_of(model, plan, width=WIDTH, step=0):
    from fusion import latent_plan, plan_views
    return plan_views(latent_plan(plan, harness.pack_module("nodes.adapter").latent_grid(model)), HEIGHT, width, step)


@pytest.fixture(scope="module")
def wan_vae(comfy, checkpoint_dir):
    import nodes
    folder = checkpoint_dir / "vae"
    folder.mkdir(exist_ok=True)
    name = tiny_dits.ensure_wan_vae(folder)
    harness.add_checkpoint_folder(folder, "vae")
    with torch.inference_mode():
        return nodes.VAELoader().load_vae(name)[0]


def test_the_seamless_decode_closes_the_wrap_column_of_every_frame(wan_vae):
    """VAE Decode (360 seamless) on a 360 video with the Wan 2.1 VAE: every
    decoded frame's wrap column steps like its inner columns, where a plain
    VAE Decode (zero padding at both ends) leaves a seam in each frame."""
    from fusion.wrap import seam_ratio
    generator = torch.Generator().manual_seed(5)
    # smooth around the circle, so the latent itself has no seam to hide
    angle = torch.arange(24) / 24 * 2 * torch.pi
    waves = torch.randn(1, 16, 2, 8, 3, generator=generator)
    latent = (waves[..., :1] * torch.sin(angle) + waves[..., 1:2] * torch.cos(2 * angle) + waves[..., 2:]) / 2
    seamless = harness.call_node("PanoramaSeamlessDecode", {"samples": latent}, wan_vae, 64)[0]
    with torch.inference_mode():
        plain = wan_vae.decode(latent)
    plain = plain.reshape(-1, *plain.shape[-3:])
    frames = plain.shape[0]
    assert frames == 5 and seamless.shape == plain.shape == (5, 64, 192, 3)  # 1 + 4 (T - 1) frames
    ours = [seam_ratio(frame.permute(2, 0, 1), dim=2) for frame in seamless]
    theirs = [seam_ratio(frame.permute(2, 0, 1), dim=2) for frame in plain]
    print(f"wrap seam per frame (seam step / median inner step): seamless {[round(r, 2) for r in ours]}, "
          f"plain VAE Decode {[round(r, 2) for r in theirs]}")
    assert max(ours) < 1.5, ours
    assert min(theirs) > max(ours), (ours, theirs)


def test_an_image_vae_given_a_video_is_refused_by_the_seamless_decode(comfy, checkpoint_dir):
    import nodes
    folder = checkpoint_dir / "vae"
    folder.mkdir(exist_ok=True)
    name = tiny_dits.ensure_flux_vae(folder)
    harness.add_checkpoint_folder(folder, "vae")
    with torch.inference_mode():
        vae = nodes.VAELoader().load_vae(name)[0]
    with pytest.raises(ValueError, match="video model's own VAE"):
        harness.call_node("PanoramaSeamlessDecode", {"samples": torch.zeros(1, 16, 3, 8, 24)}, vae, 64)


# -- equalities ------------------------------------------------------------------------------------------------

def test_the_window_plan_is_read_from_the_model(family):
    kind, model, _, _ = family
    grid = harness.pack_module("nodes.adapter").latent_grid(model)
    geometry = tiny_dits.expected_geometry(kind)
    assert (grid.scale, grid.patch, grid.token_px) == (geometry["pixels_per_latent"], 2, 2 * geometry["pixels_per_latent"])
    assert grid.native * grid.scale == geometry["native_px"]


def test_one_window_covering_the_video_is_the_plain_ksampler(family):
    """Through ComfyUI's executor: KSampler on the model patched with a
    window as wide as the video, and KSampler on the plain model."""
    kind, _, _, _ = family
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_dits.dit_filename(kind), "weight_dtype": "default"}},
        "2": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": "a coastline at dusk"}},
        "3": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": "blurry"}},
        "4": {"class_type": "CrossSamplingScheduler", "inputs": {
            "window_size": WIDTH * px(kind), "view_stride": 0, "cross_count": 1, "cross_stride": 0,
            "wrap_around": False}},
        "5": {"class_type": "TwinDiffusionModel", "inputs": {"model": ["1", 0], "mode": "twindiffusion", "lam": 1.0,
                                                             "tau": 0.5, "view_batch_size": 4, "windows": ["4", 0]}},
        "6": {"class_type": "PanoramaTestVideoLatent", "inputs": {
            "kind": kind, "width": WIDTH * px(kind), "height": HEIGHT * px(kind), "frames": FRAMES}},
        **{node: {"class_type": "KSampler", "inputs": {
            "model": [model, 0], "seed": 3, "steps": STEPS, "cfg": CFG, "sampler_name": "euler", "scheduler": "simple",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["6", 0], "denoise": 1.0}}
           for node, model in (("7", "5"), ("8", "1"))},
    }
    result = harness.run_prompt(prompt, outputs=["7", "8"])
    ours, plain = result.output("7")["samples"], result.output("8")["samples"]
    assert ours.shape == (1, channels(kind), FRAMES, HEIGHT, WIDTH)
    assert torch.isfinite(ours).all() and ours.std() > 0
    torch.testing.assert_close(ours, plain, rtol=0, atol=0)


def test_model_loading_is_sized_for_a_window_batch_of_all_frames(family):
    """ComfyUI sizes model loading by the latent it is told (PREPARE_SAMPLING):
    for a video, a batch of windows with every frame, not the whole video."""
    import comfy.patcher_extension
    kind, model, positive, negative = family
    seen = []

    def record(executor, model, noise_shape, conds, *args, **kwargs):
        seen.append(list(noise_shape))
        return executor(model, noise_shape, conds, *args, **kwargs)

    ours = patched(model, window_plan(kind), view_batch_size=2)
    ours.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "test", record)
    sample(ours, positive, negative, start_video(kind), steps=1)
    assert seen == [[2, channels(kind), FRAMES, WINDOW, WINDOW]]


@pytest.mark.parametrize("wrap", [False, True], ids=["straight", "wrap-around"])
def test_multidiffusion_on_a_video_is_the_average_of_its_windows(wrap, family):
    """One step (the second of three) to sigma 0 gives the denoised
    prediction: the panorama's equals every window run on its own through
    ComfyUI's KSampler (all frames, columns modulo the width across the
    seam), averaged per pixel."""
    kind, model, positive, negative = family
    plan = window_plan(kind, wrap=wrap)
    start = start_video(kind)
    ours = sample(patched(model, plan), positive, negative, start, first=1, last=2)
    views = views_of(model, plan)
    assert len(views) == (6 if wrap else 5)
    total, count = torch.zeros_like(start), torch.zeros(HEIGHT, WIDTH)
    for i in range(len(views)):
        rows, cols = views.rows[i], views.cols[i]
        alone = sample(model, positive, negative, start[..., rows[:, None], cols].clone(), first=1, last=2)
        total[..., rows[:, None], cols] += alone
        count[rows[:, None], cols] += 1
    expected = total / count
    assert ours.shape == expected.shape == start.shape
    print(f"\n{kind}: MultiDiffusion vs the windows' average, max |difference| {(ours - expected).abs().max():.1e}")
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # the windows disagree where they overlap, so the average is not any one of them
    first = sample(model, positive, negative, start[..., :WINDOW].clone(), first=1, last=2)
    assert (ours[..., :WINDOW] - first).abs().max() > 1e-3


@pytest.mark.parametrize("mode,plan", [
    ("twindiffusion", dict(c=1)), ("twindiffusion", dict(c=2)), ("multidiffusion", dict(c=2, wrap=True)),
    ("twindiffusion", dict(shift="golden")), ("twindiffusion", dict(shift="random", wrap=True)),
])
def test_every_method_samples_a_video_in_windows_of_all_frames(mode, plan, family):
    """Crop Fusion, Cross Sampling, shifted windows, wrap-around: the model
    is called on windows of the plan's size with all frames, as many as the
    plan has over the run (cond and uncond), and the video comes back whole."""
    import comfy.patcher_extension
    kind, model, positive, negative = family
    if "shift" in plan:
        windows = harness.node("PanoramaShiftedWindows").execute(
            WINDOW * px(kind), 0, plan["shift"], 5, plan.get("wrap", False))[0]
    else:
        windows = window_plan(kind, **plan)
    shapes, items = set(), []

    def count(executor, x, *args, **kwargs):
        shapes.add(tuple(x.shape[1:]))
        items.append(x.shape[0])
        return executor(x, *args, **kwargs)

    ours = patched(model, windows, mode).clone()
    ours.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", count)
    out = sample(ours, positive, negative, start_video(kind))
    assert out.shape == (1, channels(kind), FRAMES, HEIGHT, WIDTH) and torch.isfinite(out).all()
    assert shapes == {(channels(kind), FRAMES, WINDOW, WINDOW)}
    assert sum(items) == 2 * sum(len(views_of(model, windows, step=step)) for step in range(STEPS))


# -- wrap-around ---------------------------------------------------------------------------------------------------

def test_a_window_across_the_360_seam_is_the_model_on_both_ends_joined(family):
    """24 latent columns in 16-wide windows, stride 16, wrap-around: the
    second window covers columns 16-23 and 0-7.  Where only it reaches
    (16-23), the panorama after one step is ComfyUI's KSampler on the video
    that window sees, both ends joined, in every frame."""
    kind, model, positive, negative = family
    start = start_video(kind, width=24)
    ours = sample(patched(model, window_plan(kind, stride=WINDOW, wrap=True), view_batch_size=1), positive, negative,
                  start, steps=1)
    seam = sample(model, positive, negative, torch.cat([start[..., 16:], start[..., :8]], -1), steps=1)
    torch.testing.assert_close(ours[..., 16:], seam[..., :8], rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["multidiffusion", "twindiffusion"])
def test_a_360_video_has_no_seam_in_any_frame(mode, family):
    """On a circle no column is an edge: the windows start at every
    multiple of the stride around it, so a start rolled by the stride
    samples to the same video rolled by the stride (MultiDiffusion: up to
    the order of the sums; Crop Fusion fuses in raster order from the first
    window, so the 360's columns take other turns: close, not equal).  The
    seam between the last and the first column is sampled as any pair of
    neighbouring columns inside, in every frame.  A straight video's edge
    windows do not move with it: there the same roll changes the video."""
    kind, model, positive, negative = family
    start = start_video(kind, seed=4)

    def run(wrap, rolled):
        x = torch.roll(start, STRIDE, dims=-1) if rolled else start
        return sample(patched(model, window_plan(kind, wrap=wrap), mode), positive, negative, x.clone(), steps=2)
    wrapped, rolled = run(True, False), run(True, True)
    difference = (torch.roll(wrapped, STRIDE, dims=-1) - rolled).abs().amax(dim=(0, 1, 3, 4))  # per frame
    straight = (torch.roll(run(False, False), STRIDE, dims=-1) - run(False, True)).abs().amax(dim=(0, 1, 3, 4))
    print(f"\n{kind} {mode}: a 360 rolled by the stride vs rolled before sampling, per frame: "
          f"{difference.tolist()}; a straight video: {straight.tolist()}")
    assert difference.numel() == FRAMES
    assert (straight > 5e-2).all()
    if mode == "multidiffusion":
        assert (difference <= 1e-5).all()
    else:  # on the tiny models about a tenth of what the roll does to a straight video
        assert (difference < straight / 5).all()


# -- conditioning cut per window -----------------------------------------------------------------------------------

def test_image_to_video_conditioning_is_cut_per_window(video_files):
    """Wan image-to-video (16 latent + 4 mask + 16 image channels in: the
    Wan 2.2 A14B I2V layout): concat_latent_image and concat_mask, as
    WanImageToVideo sets them, on a video of two windows side by side; each
    window is ComfyUI's KSampler on that window with the image and mask
    cut to it."""
    import node_helpers
    kind = "wan21_i2v"
    model = load(kind, video_files)
    generator = torch.Generator().manual_seed(6)
    image = torch.zeros(1, 16, FRAMES, HEIGHT, 32)
    image[:, :, :1] = torch.randn(1, 16, 1, HEIGHT, 32, generator=generator)  # the start frame
    mask = torch.ones(1, 1, FRAMES, HEIGHT, 32)  # as WanImageToVideo makes it: 0 on the start frame
    mask[:, :, :1] = 0.0

    def i2v(text, cols=slice(None)):
        return node_helpers.conditioning_set_values(tiny_dits.conditioning(kind, text), {
            "concat_latent_image": image[..., cols].clone(), "concat_mask": mask[..., cols].clone()})

    start = start_video(kind, width=32)
    ours = sample(patched(model, window_plan(kind, stride=WINDOW), view_batch_size=1), i2v("a harbour"),
                  i2v("blurry"), start, steps=2)
    for cols in (slice(0, 16), slice(16, 32)):
        plain = sample(model, i2v("a harbour", cols), i2v("blurry", cols), start[..., cols].clone(), steps=2)
        torch.testing.assert_close(ours[..., cols], plain, rtol=0, atol=0)
    without = sample(patched(model, window_plan(kind, stride=WINDOW), view_batch_size=1),
                     tiny_dits.conditioning(kind, "a harbour"), tiny_dits.conditioning(kind, "blurry"), start, steps=2)
    assert (ours - without).abs().max() > 1e-3  # the image did something


def test_wan22_5b_image_to_video_denoise_mask_is_cut_per_window(video_files):
    """Wan 2.2 TI2V 5B keeps its start frame (Wan22ImageToVideoLatent's
    noise mask, 0 on frame 0) and reads the mask per frame for its
    timesteps: each window is ComfyUI's KSampler on that window alone."""
    kind = "wan22_5b"
    model = load(kind, video_files)
    positive, negative = tiny_dits.conditioning(kind, "a harbour"), tiny_dits.conditioning(kind, "blurry")
    mask = torch.ones(1, 1, FRAMES, HEIGHT, 32)
    mask[:, :, :1] = 0.0
    image = torch.zeros(1, channels(kind), FRAMES, HEIGHT, 32)
    image[:, :, :1] = start_video(kind, width=32, seed=9)[:, :, :1]  # the start frame's latent
    start = start_video(kind, width=32)
    ours = sample(patched(model, window_plan(kind, stride=WINDOW), view_batch_size=1), positive, negative, start,
                  steps=2, noise_mask=mask, latent=image)
    for cols in (slice(0, 16), slice(16, 32)):
        plain = sample(model, positive, negative, start[..., cols].clone(), steps=2, noise_mask=mask[..., cols].clone(),
                       latent=image[..., cols].clone())
        torch.testing.assert_close(ours[..., cols], plain, rtol=0, atol=0)
    torch.testing.assert_close(ours[:, :, :1], image[:, :, :1], rtol=0, atol=1e-5)  # the start frame is kept
    assert (ours[:, :, 1:] - image[:, :, 1:]).abs().max() > 0.1


# -- refusals ------------------------------------------------------------------------------------------------------

def test_a_window_larger_than_the_video_is_refused(family):
    kind, model, positive, negative = family
    with pytest.raises(ValueError, match=rf"window_size {64 * px(kind)} px is larger than the video "
                                         rf"\({WIDTH * px(kind)}x{HEIGHT * px(kind)} px\).*at most {WIDTH * px(kind)} px"):
        sample(patched(model, window_plan(kind, window=64)), positive, negative, start_video(kind), steps=1)


def test_an_image_latent_for_a_video_model_is_refused(family):
    kind, model, positive, negative = family
    latent = harness.node("PanoramaLatent").execute(model, WIDTH * px(kind), HEIGHT * px(kind), 1)[0]
    with pytest.raises(ValueError, match=r"latent_image has shape .*an image latent, but the model is a video model "
                                         r"\(Wan\).*EmptyHunyuanLatentVideo"):
        harness.node("TwinCropFusionSampler").execute(model, 0, 1, CFG, "euler", "simple", positive, negative, latent,
                                                      1.0, "twindiffusion", 1.0, 0.5, 4, window_plan(kind), None)


def test_a_video_latent_for_an_image_model_is_refused(video_files):
    kind = "qwen_image"  # an image model on Wan's latent format: one frame is an image, three are a video
    model = load(kind, video_files)
    positive, negative = tiny_dits.conditioning(kind, "a harbour"), tiny_dits.conditioning(kind, "blurry")
    with pytest.raises(ValueError, match=r"latent_image has shape \(1, 16, 3, 16, 48\), a video latent of 3 frames, "
                                         r"but the model \(QwenImage\) is an image model"):
        sample(patched(model, window_plan("wan21")), positive, negative, torch.randn(1, 16, 3, HEIGHT, WIDTH), steps=1)


def test_conditioning_the_windows_cannot_cut_is_refused_by_name(video_files):
    """Phantom's subject images (joined to the video along time), VACE's
    control video (by the model variant), an area prompt."""
    import comfy.model_base
    import node_helpers
    kind = "wan21"
    model = load(kind, video_files)
    positive, negative = tiny_dits.conditioning(kind, "a harbour"), tiny_dits.conditioning(kind, "blurry")
    plan, start = window_plan(kind), start_video(kind)
    phantom = node_helpers.conditioning_set_values(positive, {"time_dim_concat": torch.zeros(1, 16, 1, HEIGHT, WIDTH)})
    with pytest.raises(ValueError, match=r"Phantom's subject images \(WanPhantomSubjectToVideo\).*'time_dim_concat'.*"
                                         r"remove that node"):
        sample(patched(model, plan), phantom, negative, start, steps=1)
    area = harness.node("ConditioningSetArea").append(positive, 128, 128, 0, 0, 1.0)[0]
    with pytest.raises(ValueError, match=r"positive carries a 'area' \(Conditioning \(Set Area\)\).*remove"):
        sample(patched(model, plan), area, negative, start, steps=1)
    vace = load(kind, video_files)  # a copy of its own: its class is changed to ComfyUI's VACE variant
    vace.model.__class__ = comfy.model_base.WAN21_Vace
    with pytest.raises(ValueError, match=r"model: WAN21_Vace conditions its video with VACE \(WanVaceToVideo's "
                                         r"control video and masks\).*cannot cut"):
        sample(patched(vace, plan), positive, negative, start, steps=1)


def test_methods_not_on_video_yet_are_refused_by_name(video_files):
    kind = "wan21"
    model = load(kind, video_files)
    positive, negative = tiny_dits.conditioning(kind, "a harbour"), tiny_dits.conditioning(kind, "blurry")
    sphere = harness.node("PanoramaSphereWindows").execute(WINDOW * px(kind), 0.0, 0.25, 0, "golden", 2)[0]
    with pytest.raises(ValueError, match=r"windows: sphere views .* not supported on video latents yet.*wrap_around"):
        sample(patched(model, sphere), positive, negative, start_video(kind, width=2 * HEIGHT), steps=1)
    msd = harness.node("MultiScaleGuidance").execute(2, 10.0, "cosine", "bilinear")[0]
    with_msd = harness.node("TwinDiffusionModel").execute(model, "twindiffusion", 1.0, 0.5, 4, window_plan(kind),
                                                           msd)[0]
    with pytest.raises(ValueError, match=r"multiscale: Panorama Layout Guidance \(MSD\) is not supported on video"):
        sample(with_msd, positive, negative, start_video(kind), steps=1)

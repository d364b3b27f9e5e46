"""Time windows together with space windows (issue 26, item 3): ComfyUI's
Context Windows nodes cut a video's frames, the panorama windows cut each
time window along H and W.  Time is outside, space inside: ComfyUI's own
handler keeps its schedule, its conds slicing along time and its fuse
method, and calls the pack's windows per time window.  Tiny random Wan 2.1
(``tiny_dits`` kind "wan21", loaded by UNETLoader), on both hosts.

* time windows alone through the pack (a panorama window covering the whole
  video), in either node order, are ComfyUI's Context Windows node alone,
  bit for bit, through ComfyUI's executor;
* time and space windows together (MultiDiffusion, one step) equal an
  independent re-derivation: ComfyUI's Context Windows node alone, whose
  every time window is replaced by the per-pixel average of its space
  windows, each denoised on its own by the model, to 1e-5;
* the model is called on every space window of every time window: the
  number of window evaluations is ComfyUI's time schedule's times the
  panorama plan's;
* model loading is sized for one space window batch of one time window's
  frames;
* a Context Windows node along H or W, and any other context handler, are
  refused naming the node and the fix.
"""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_dits
from test_video_windows_host import (CFG, HEIGHT, STEPS, WIDTH, WINDOW, channels, load, patched, px, sample,
                                     video_files, views_of, window_plan)  # noqa: F401 (video_files: a fixture)

pytestmark = pytest.mark.host

KIND = "wan21"
FRAMES = 7  # latent frames (25 video frames)
# real frames, as the Wan node takes them: 3 latent frames a window, 1 of overlap, on both hosts
CONTEXT_FRAMES, OVERLAP_FRAMES = 9, 4
TIME_NODE = "WanContextWindowsManual"


@pytest.fixture(scope="module")
def wan(video_files):
    """(MODEL, positive, negative) of the tiny Wan 2.1."""
    import nodes
    if TIME_NODE not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip(f"this ComfyUI has no context windows node ({TIME_NODE})")
    return (load(KIND, video_files), tiny_dits.conditioning(KIND, "a coastline at dusk"),
            tiny_dits.conditioning(KIND, "blurry"))


def time_inputs(**given) -> dict:
    return harness.node_defaults(TIME_NODE, {"context_length": CONTEXT_FRAMES, "context_overlap": OVERLAP_FRAMES,
                                             **given})


def with_time_windows(model, node=TIME_NODE, **given):
    inputs = time_inputs(**given) if node == TIME_NODE else harness.node_defaults(node, given)
    return harness.call_node(node, model, **inputs)[0]


def start(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, channels(KIND), FRAMES, HEIGHT, WIDTH, generator=generator)


def both_orders(model, plan, mode="multidiffusion", view_batch_size=4) -> dict:
    """{order: the model with ComfyUI's time windows and the panorama windows}."""
    return {"time first": patched(with_time_windows(model), plan, mode, view_batch_size),
            "panorama first": with_time_windows(patched(model, plan, mode, view_batch_size))}


def test_time_windows_alone_through_the_pack_are_comfyuis_context_windows(wan):
    """Through ComfyUI's executor: KSampler on Wan Context Windows alone, and
    on the same node before and after the panorama patch whose one window
    covers the whole video: the same video, bit for bit."""
    whole = {"window_size": WIDTH * px(KIND), "view_stride": 0, "cross_count": 1, "cross_stride": 0,
             "wrap_around": False}

    def ksampler(model):
        return {"class_type": "KSampler", "inputs": {
            "model": [model, 0], "seed": 3, "steps": STEPS, "cfg": CFG, "sampler_name": "euler",
            "scheduler": "simple", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["6", 0],
            "denoise": 1.0}}

    def panorama(model):
        return {"class_type": "TwinDiffusionModel", "inputs": {
            "model": [model, 0], "mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4,
            "windows": ["4", 0]}}

    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_dits.dit_filename(KIND),
                                                     "weight_dtype": "default"}},
        "2": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": KIND, "text": "a coastline at dusk"}},
        "3": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": KIND, "text": "blurry"}},
        "4": {"class_type": "CrossSamplingScheduler", "inputs": whole},
        "6": {"class_type": "PanoramaTestVideoLatent", "inputs": {
            "kind": KIND, "width": WIDTH * px(KIND), "height": HEIGHT * px(KIND), "frames": FRAMES}},
        "10": {"class_type": TIME_NODE, "inputs": {"model": ["1", 0], **time_inputs()}},  # time windows alone
        "11": panorama("10"),  # time first
        "12": panorama("1"),
        "13": {"class_type": TIME_NODE, "inputs": {"model": ["12", 0], **time_inputs()}},  # panorama first
        "20": ksampler("10"), "21": ksampler("11"), "22": ksampler("13"), "23": ksampler("1"),
    }
    result = harness.run_prompt(prompt, outputs=["20", "21", "22", "23"])
    theirs, plain = result.output("20")["samples"], result.output("23")["samples"]
    assert theirs.shape == (1, channels(KIND), FRAMES, HEIGHT, WIDTH) and torch.isfinite(theirs).all()
    # the time windows are used: the video is not the plain KSampler's
    assert (theirs - plain).abs().max() > 1e-3
    for node in ("21", "22"):
        torch.testing.assert_close(result.output(node)["samples"], theirs, rtol=0, atol=0)


def space_averaged(model, views):
    """ComfyUI's Context Windows node alone, each of whose time windows is
    replaced by the per-pixel average of its space windows, each denoised on
    its own by the model (CALC_COND_BATCH: called once per time window)."""
    import comfy.patcher_extension

    def average(executor, base, conds, x, timestep, model_options, *args, **kwargs):
        total, count = None, torch.zeros(x.shape[-2:])
        for i in range(len(views)):
            rows, cols = views.rows[i][:, None], views.cols[i]
            outs = executor(base, conds, x[..., rows, cols], timestep, model_options, *args, **kwargs)
            total = [torch.zeros_like(x) for _ in outs] if total is None else total
            for t, out in zip(total, outs):
                t[..., rows, cols] += out
            count[rows, cols] += 1
        return [t / count for t in total]

    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, "test_space_average", average)
    return model


@pytest.mark.parametrize("order", ["time first", "panorama first"])
def test_time_and_space_windows_are_comfyuis_time_fusion_of_space_averages(order, wan):
    """One step (the second of three) to sigma 0 gives the denoised
    prediction: with both kinds of windows it is ComfyUI's time fusion of
    the space windows' average in each time window, to 1e-5."""
    model, positive, negative = wan
    plan = window_plan(KIND)
    views = views_of(model, plan)
    assert len(views) == 5
    x = start()
    ours = sample(both_orders(model, plan)[order], positive, negative, x, first=1, last=2)
    expected = sample(space_averaged(with_time_windows(model), views), positive, negative, x, first=1, last=2)
    time_only = sample(with_time_windows(model), positive, negative, x, first=1, last=2)
    difference = (ours - expected).abs().max()
    print(f"\n{order}: time + space windows vs ComfyUI's time fusion of space averages, max |difference| "
          f"{difference:.1e}; vs time windows alone {(ours - time_only).abs().max():.1e}")
    assert ours.shape == x.shape and torch.isfinite(ours).all()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    assert (ours - time_only).abs().max() > 1e-3  # the space windows were used


@pytest.mark.parametrize("order", ["time first", "panorama first"])
def test_every_space_window_of_every_time_window_is_evaluated(order, wan):
    """Window evaluations (cond and uncond, all steps) are ComfyUI's time
    schedule's (measured on its node alone) times the panorama plan's; each
    is a space window of a time window's frames."""
    import comfy.patcher_extension
    model, positive, negative = wan
    plan = window_plan(KIND)
    n_space = len(views_of(model, plan))

    def recorder(seen):
        def record(executor, x, *args, **kwargs):
            seen.extend([tuple(x.shape[2:])] * x.shape[0])
            return executor(x, *args, **kwargs)
        return record

    calls = {}
    for name, m in (("time alone", with_time_windows(model)), (order, both_orders(model, plan)[order])):
        m = m.clone()
        calls[name] = []
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", recorder(calls[name]))
        sample(m, positive, negative, start())
    alone, ours = calls["time alone"], calls[order]
    assert len(alone) > 2 * STEPS, "the time schedule should have more than one window a step"
    assert all(shape[1:] == (HEIGHT, WIDTH) for shape in alone)
    print(f"\n{order}: {len(alone) // (2 * STEPS)} time windows a step x {n_space} space windows: "
          f"{len(ours)} window evaluations over {STEPS} steps (cond and uncond)")
    assert len(ours) == n_space * len(alone)
    # every time window's frames (ComfyUI may add a causal anchor frame) in every space window
    assert sorted(shape[0] for shape in ours) == sorted(shape[0] for shape in alone for _ in range(n_space))
    assert {shape[1:] for shape in ours} == {(WINDOW, WINDOW)}


@pytest.mark.parametrize("order", ["time first", "panorama first"])
def test_model_loading_is_sized_for_a_space_window_batch_of_a_time_window(order, wan):
    """ComfyUI sizes model loading by the latent it is told (PREPARE_SAMPLING):
    both nodes' wrappers apply, the Context Windows node's to the frames and
    the pack's to height, width and the window batch."""
    import comfy.patcher_extension
    model, positive, negative = wan
    seen = []

    def record(executor, base, noise_shape, conds, *args, **kwargs):
        seen.append(list(noise_shape))
        return executor(base, noise_shape, conds, *args, **kwargs)

    m = both_orders(model, window_plan(KIND), view_batch_size=2)[order].clone()
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "test", record)
    sample(m, positive, negative, start(), steps=1)
    assert seen == [[2, channels(KIND), 3, WINDOW, WINDOW]]  # 3 latent frames: CONTEXT_FRAMES


# -- refusals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["time first", "panorama first"])
def test_context_windows_along_the_width_are_refused_naming_the_fix(order, wan):
    model, positive, negative = wan
    import nodes
    if "ContextWindowsManual" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no Context Windows (Manual) node")

    def width_windows(m):
        return with_time_windows(m, "ContextWindowsManual", context_length=4, context_overlap=1, dim=4)

    plan = window_plan(KIND)
    m = patched(width_windows(model), plan) if order == "time first" else width_windows(patched(model, plan))
    with pytest.raises(ValueError, match=r"Context Windows: dim 4 is the width .* set dim 2"):
        sample(m, positive, negative, start(), steps=1)


class OtherHandler:
    """A context handler of another node pack."""

    def should_use_context(self, *args, **kwargs):
        return False


@pytest.mark.parametrize("order", ["other first", "panorama first"])
def test_another_context_handler_is_refused_naming_it(order, wan):
    import comfy.context_windows
    model, positive, negative = wan
    other = type("OtherHandler", (OtherHandler, comfy.context_windows.ContextHandlerABC),
                 {"get_resized_cond": lambda *a: None, "execute": lambda *a: None})()

    def with_other(m):
        m = m.clone()
        m.model_options["context_handler"] = other
        return m

    if order == "other first":
        with pytest.raises(ValueError, match="another context handler .OtherHandler.*remove the node"):
            patched(with_other(model), window_plan(KIND))
    else:
        with pytest.raises(ValueError, match="OtherHandler.*connect it before the panorama model patch"):
            sample(with_other(patched(model, window_plan(KIND))), positive, negative, start(), steps=1)

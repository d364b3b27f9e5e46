"""A panorama's window batches spread over the devices of ComfyUI's MultiGPU
(v0.23+; absent from older ComfyUI, where nothing here is used).

ComfyUI's "MultiGPU CFG Split" node (``MultiGPU_WorkUnits``) gives a model a
copy per extra device.  While it samples, ``model_options["multigpu_clones"]``
maps every device (the main one first) to its copy, and ``calc_cond_batch``
splits the entries of the conds lists of ONE call over them
(``_calc_cond_batch_multigpu``: ceil(entries / devices) per device, each
device's share run by ComfyUI's thread pool, under ``torch.no_grad``).  The
panorama calls ``calc_cond_batch`` once per window batch with K entries
(cond, uncond): on its own, at most K devices would ever work.

Within a step the window batches are crops of the same latent, independent
until fusion.  ``DeviceLanes`` splits the devices into lanes (one device each
when a step has at least as many window batches as devices) and gives every
lane its share of the batches; a lane runs its batches one after the other
in a thread of its own, each batch one ordinary ``calc_cond_batch`` call
whose ``multigpu_clones`` holds only the lane's devices.  So ComfyUI itself
still moves the inputs, picks the device's model, hooks and ControlNet copy
(``get_instance_for_device``; ``window_conds`` makes those per window too),
and runs the forward in its worker for the device; CFG, hooks, ControlNet and
other nodes' wrappers still run per window batch.  The outputs go back in
window order, so the panorama is the one a single device makes.

Multi-Scale Diffusion needs gradients, which ComfyUI's MultiGPU evaluation
turns off: it is refused with a message saying what to disconnect.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import torch

import comfy.model_management

MULTISCALE_ON_MULTIGPU = (
    "Panorama Layout Guidance (MSD) cannot sample a model prepared by ComfyUI's 'MultiGPU CFG Split' node "
    "(MultiGPU_WorkUnits): ComfyUI evaluates such a model under torch.no_grad on every GPU, and MSD's gradient "
    "step needs gradients. Disconnect the Panorama Layout Guidance (MSD) input (TwinDiffusion and MultiDiffusion panoramas "
    "do run on all GPUs), or take the MultiGPU CFG Split node out of the model's path (MSD then runs on one GPU)")


def multigpu_models(model_patcher) -> list:
    """The per-device copies ComfyUI's MultiGPU node attached to a model."""
    get = getattr(model_patcher, "get_additional_models_with_key", None)
    return list(get("multigpu")) if get is not None else []


def refuse_multiscale_on_multigpu(multiscale, model_patcher=None, model_options: dict | None = None) -> None:
    """Refuses MSD on a MultiGPU model: before sampling (the patcher holds
    device copies) or at an evaluation (ComfyUI passes them)."""
    if multiscale is None:
        return
    if (model_options is not None and "multigpu_clones" in model_options) or multigpu_models(model_patcher):
        raise ValueError(MULTISCALE_ON_MULTIGPU)


def spread(batches: Sequence[Sequence[int]], devices: int) -> list[tuple[int, tuple]]:
    """(batch index, window ids) pieces of ``batches``: the largest batch
    (the first of those) halved while there are fewer pieces than devices
    and a batch of two windows or more is left."""
    pieces = [(i, tuple(ids)) for i, ids in enumerate(batches)]
    while len(pieces) < devices:
        k = max(range(len(pieces)), key=lambda k: (len(pieces[k][1]), -k))
        i, ids = pieces[k]
        if len(ids) < 2:
            break
        half = (len(ids) + 1) // 2
        pieces[k:k + 1] = [(i, ids[:half]), (i, ids[half:])]
    return pieces


def plan_lanes(pieces: Sequence[tuple[int, tuple]], devices: Sequence) -> list[tuple[list, list[int]]]:
    """(devices, piece indices) per lane.  min(devices, pieces) lanes; lane l
    gets devices l, l + L, ... (lane 0 the main device); each piece in turn
    goes to the lane with the fewest windows so far."""
    count = min(len(devices), len(pieces))
    lanes = [(list(devices[lane::count]), []) for lane in range(count)]
    load = [0] * count
    for j, (_, ids) in enumerate(pieces):
        lane = min(range(count), key=lambda lane: (load[lane], lane))
        lanes[lane][1].append(j)
        load[lane] += len(ids)
    return lanes


class DeviceLanes:
    """One evaluation's window batches, spread over ComfyUI's MultiGPU
    devices (see the module's doc).  ``calc_cond_batch`` wraps ComfyUI's
    function so that a call made on a lane goes to the lane's devices only;
    ``run`` is the ``fusion`` batch runner."""

    def __init__(self, clones: dict):
        self.devices = list(clones)
        self._lane = threading.local()

    def calc_cond_batch(self, calc: Callable) -> Callable:
        def on_lane(model, conds, x_in, timestep, model_options):
            devices = getattr(self._lane, "devices", None)
            clones = model_options.get("multigpu_clones")
            lane = {d: clones[d] for d in devices if d in clones} if devices is not None and clones else None
            if lane:  # ComfyUI's own dual-model guider trims ``multigpu_clones`` likewise
                model_options = {**model_options, "multigpu_clones": lane}
            return calc(model, conds, x_in, timestep, model_options)
        return on_lane

    def run(self, evaluate: Callable[[Sequence[int]], torch.Tensor],
            batches: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        pieces = spread(batches, len(self.devices))
        lanes = plan_lanes(pieces, self.devices)
        if len(lanes) <= 1:  # a single window: ComfyUI splits its conds over the devices
            return [evaluate(ids) for ids in batches]
        results: list = [None] * len(pieces)
        stop = threading.Event()
        inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
        device_context = getattr(comfy.model_management, "cuda_device_context", None)

        def lane(devices: list, jobs: list[int]) -> None:
            self._lane.devices = devices
            try:
                # the caller's modes (ComfyUI runs nodes under inference mode) and CUDA device
                with torch.inference_mode(inference), torch.set_grad_enabled(grad), \
                        (device_context(self.devices[0]) if device_context else contextlib.nullcontext()):
                    for j in jobs:
                        if stop.is_set():
                            return
                        results[j] = evaluate(pieces[j][1])
            except BaseException:
                stop.set()  # the other lanes stop after their current batch
                raise
            finally:
                self._lane.devices = None

        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="panorama-lane") as pool:
            futures = [pool.submit(lane, devices, jobs) for devices, jobs in lanes]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            interrupts = [e for e in errors if isinstance(e, comfy.model_management.InterruptProcessingException)]
            raise (interrupts or errors)[0]
        parts: list[list] = [[] for _ in batches]
        for (i, _), result in zip(pieces, results):
            parts[i].append(result)
        # a batch's pieces hold consecutive runs of its windows: window-major outputs concatenate
        return [chunks[0] if len(chunks) == 1 else torch.cat(chunks) for chunks in parts]


def prepare_hook_keyframes(model, conds: Sequence[list], timestep: torch.Tensor, model_options: dict) -> None:
    """Moves the conds' hook keyframes to this step once, with every device
    in view.  ComfyUI does it inside ``calc_cond_batch``, clearing the
    cached hooked weights of the devices it is given; a lane's call is given
    only its own, and the first call to see the keyframe change is the only
    one told."""
    patcher = getattr(model, "current_patcher", None)
    if patcher is None:
        return
    groups = {}
    for cond in conds:
        for entry in cond:
            hooks = entry.get("hooks")
            if hooks is not None:
                groups.setdefault(id(hooks), hooks)
    for hooks in groups.values():
        patcher.prepare_hook_patches_current_keyframe(timestep, hooks, model_options)


def device_lanes(multiscale, model, conds: Sequence[list], timestep: torch.Tensor,
                 model_options: dict) -> DeviceLanes | None:
    """For one evaluation: the lanes over ComfyUI's MultiGPU devices, or None
    on one device.  Refuses Multi-Scale Guidance on MultiGPU."""
    refuse_multiscale_on_multigpu(multiscale, model_options=model_options)
    clones = model_options.get("multigpu_clones")
    if not clones or len(clones) < 2:
        return None
    prepare_hook_keyframes(model, conds, timestep, model_options)
    return DeviceLanes(clones)

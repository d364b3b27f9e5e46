"""ComfyUI's conditioning, cut to a batch of panorama windows.

A conditioning entry (one dict of a conds list, as ComfyUI's sampler has
prepared it: areas in latent pixels, masks at latent size, model conds
encoded, controls pre-run) describes the whole panorama latent.  A window is
an image of its own, so before ComfyUI evaluates a window batch every entry
is re-expressed in the window's frame:

- area: intersected with the window and translated; a window the area misses
  drops the entry (no model call), an area running across the 360-degree seam
  of a window becomes two pieces;
- mask: cut per window; a window whose crop is all zero drops the entry;
- spatial model conds (``CONDNoiseShape``: an inpainting model's c_concat,
  Wan's image-to-video ``concat_latent_image`` and its mask, all frames of
  them; Wan 2.2 5B's per-frame ``denoise_mask``) cut per window; SDXL's crop
  and target size set per window; model conds the pack cannot cut
  (``UNCUT_MODEL_CONDS``) refused by name;
- ControlNet / T2I-Adapter / Control LoRA chains: every control of the chain
  gets the part of its panorama-size hint under the window, so ComfyUI's own
  hint pipeline (pre-processing, VAE, strength, start/end percent) runs on it;
  under ComfyUI's MultiGPU, so does each device's copy of the control;
- GLIGEN boxes translated into the window.

Windows whose entries keep the same pieces are batched together (masks,
hints and boxes may differ inside a batch); with only global conditioning
that is every window, in raster order.

At a lower level of the Multi-Scale pyramid the windows lie on a smaller
latent: areas, masks, model conds and hints are scaled to it first.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

import comfy.conds
import comfy.controlnet
import comfy.model_base
import comfy.utils

from ..fusion import Views
from ..fusion.crop_fusion import cut_windows

SDXL_SCALE = 8  # pixels per latent pixel: SDXL writes its size embeddings in image pixels
SDXL_ADM = 2816  # SDXL's y: pooled text (1280), then six 256-d size embeddings
SDXL_ADM_CROP = 1280 + 2 * 256  # crop_h, crop_w, target_h, target_w follow

Rect = tuple  # (h, w, y, x) in latent pixels, as ComfyUI writes areas

# Model conds other than CONDNoiseShape that lie on the latent's grid and are
# cut per window like it: Wan 2.2 5B reads the denoise mask (B, C, T, H, W)
# per frame for its timesteps (the image frame of image-to-video is not
# denoised).
SPATIAL_MODEL_CONDS = ("denoise_mask",)
# Model conds on the latent's grid the pack cannot cut yet, by name: what
# sets them, and what to do.
UNCUT_MODEL_CONDS = {
    "time_dim_concat": "Phantom's subject images (WanPhantomSubjectToVideo), joined to the video along time",
    "vace_context": "VACE's control video (WanVaceToVideo)",
    "camera_conditions": "camera controls (WanCameraEmbedding)",
}
WHOLE = None  # the piece of an entry that covers its whole window (no area)


# Entry keys that place a prompt on the image, which the windows of a video
# do not cut yet: the node that sets them, for the message.
UNCUT_ON_VIDEO = {"area": "Conditioning (Set Area)", "mask": "Conditioning (Set Mask)",
                  "control": "Apply ControlNet", "gligen": "GLIGEN Textbox Apply"}


def refuse_uncut_on_video(conds: Sequence[list], names: Sequence[str]) -> None:
    """Refuses, naming the input and the node, an entry of a video's
    conditioning that places it on part of the frame: a video's windows cut
    model conds (Wan's image-to-video latent) but not yet areas, masks,
    ControlNet hints or GLIGEN boxes."""
    for name, cond in zip(names, conds):
        for entry in cond:
            for key, node in UNCUT_ON_VIDEO.items():
                if entry.get(key) is not None:
                    raise ValueError(f"{name} carries a '{key}' ({node}), which spatial windows on a video do not "
                                     f"cut yet: remove {node} from {name} for video, or sample without the panorama "
                                     f"patch (image panoramas take it)")


def views_key(views: Views) -> tuple:
    return views.key


@dataclass(frozen=True)
class WindowBatch:
    """Windows ``ids`` of ``views``, evaluated together.  ``full`` is the
    sampler's latent (H, W); the views may lie on a lower pyramid level of
    it.  ``batch`` is the sampler's batch B: every window carries B latents,
    window-major."""

    views: Views
    ids: tuple
    full: tuple
    batch: int

    @property
    def key(self) -> tuple:
        return views_key(self.views), self.ids

    @property
    def level(self) -> tuple:
        return self.views.height, self.views.width

    @property
    def factor(self) -> float:
        """Level size over the sampler's latent size (1, 1/2, 1/4...)."""
        return self.views.height / self.full[0]


def scale_rect(rect: Rect, factor: float) -> Rect:
    """An area on the full latent, on a level ``factor`` times its size."""
    h, w, y, x = rect
    if factor == 1:
        return h, w, y, x
    top, left = math.floor(y * factor), math.floor(x * factor)
    return math.ceil((y + h) * factor) - top, math.ceil((x + w) * factor) - left, top, left


def resolve_area(rect: Rect, height: int, width: int, wrap_x: bool) -> Rect:
    """An area as it falls on a latent of ``height`` x ``width``: clipped to
    the latent where it runs past an edge, as ComfyUI's sampler clips it;
    on a 360 panorama (``wrap_x``) it runs on past the right edge into the
    left instead, as far as one turn."""
    h, w, y, x = rect
    h = min(h, height - y)
    if wrap_x:
        return h, min(w, width), y, x % width
    return h, min(w, width - x), y, x


def runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, stop) of every run of True."""
    out, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i))
            start = None
    return out


def area_pieces(area: Rect, views: Views, i: int) -> tuple:
    """Where ``area`` lies in window ``i``, in the window's frame: () where it
    misses the window, (WHOLE,) where it covers all of it, else local rects
    (two where the window runs across the seam of a 360 panorama)."""
    h, w, y, x = resolve_area(area, views.height, views.width, views.wrap_x)
    top, _ = views.origin(i)
    r0, r1 = max(y - top, 0), min(y + h - top, views.window_h)
    if r1 <= r0 or w <= 0:
        return ()
    cols = views.cols[i].tolist()
    pieces = runs([(c - x) % views.width < w for c in cols])
    if r0 == 0 and r1 == views.window_h and pieces == [(0, views.window_w)]:
        return (WHOLE,)
    return tuple((r1 - r0, stop - start, r0, start) for start, stop in pieces)


def area_mask(area: Rect, full: tuple, like: torch.Tensor) -> torch.Tensor:
    """An area as a 0/1 mask on the latent (running past the right edge
    into the left: windows that are not crops are views of a 360)."""
    h, w, y, x = resolve_area(area, *full, True)
    mask = like.new_zeros(full)
    columns = (torch.arange(w, device=like.device) + x) % full[1]
    mask[y:y + h, columns] = 1
    return mask


def fit_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """As ComfyUI fits a conditioning tensor to the sampler's batch."""
    return comfy.utils.repeat_to_batch_size(t, batch)


def window_major(windows: torch.Tensor, batch: int) -> torch.Tensor:
    """(n, b, ...) with b = 1 or B -> (n*B, ...): each window's B latents in
    turn, as the windows of the latent are laid out."""
    return windows.expand(windows.shape[0], batch, *windows.shape[2:]).flatten(0, 1)


def narrow_piece(t: torch.Tensor, piece, scale: int = 1) -> torch.Tensor:
    if piece is WHOLE:
        return t
    h, w, y, x = piece
    return t[..., y * scale:(y + h) * scale, x * scale:(x + w) * scale]


def aligned_scale(t: torch.Tensor, full: tuple, what: str) -> int:
    """How many times the latent's resolution a spatial tensor has; refuses
    one the windows cannot be cut from."""
    height, width = t.shape[-2:]
    scale = width // full[1]
    if scale < 1 or width != scale * full[1] or height != scale * full[0]:
        raise ValueError(
            f"{what} is {height}x{width}, not aligned with the {full[0]}x{full[1]} latent being sampled, so the "
            f"panorama sampler cannot cut it per window: make it at the latent's size (or a whole multiple)")
    return scale


def to_level(t: torch.Tensor, batch: WindowBatch, scale: int, mode: str) -> torch.Tensor:
    if batch.factor == 1:
        return t
    return F.interpolate(t, size=(batch.level[0] * scale, batch.level[1] * scale), mode=mode)


class WindowGligen:
    """GLIGEN for a window batch.  ComfyUI asks the conditioning's GLIGEN
    model for the patch of a batch (``gligen.model.set_position``); this one
    gives every window of the batch its own boxes, translated into the
    window, by asking the real GLIGEN once per window."""

    def __init__(self, gligen, boxes_per_window: list, batch: int):
        self.gligen = gligen
        self.boxes = boxes_per_window
        self.batch = batch

    @property
    def model(self):
        return self

    def set_position(self, latent_shape, position_params, device):
        _, channels, height, width = latent_shape
        per_window = [self.gligen.set_position((self.batch, channels, height, width), boxes, device)
                      if boxes else self.gligen.set_empty((self.batch, channels, height, width), device)
                      for boxes in self.boxes]

        def patch(x, extra_options):
            chunks = x.split(self.batch)
            return torch.cat([apply(chunk, extra_options) for apply, chunk in zip(per_window, chunks)])

        return patch


def translate_boxes(params: list, origin: tuple, size: tuple, factor: float) -> list:
    """GLIGEN's (embedding, h, w, y, x) boxes in latent pixels, moved into a
    window at ``origin`` of ``size`` (boxes it misses are dropped, the rest
    clipped to it)."""
    top, left = origin
    out = []
    for embedding, h, w, y, x in params:
        y0, x0 = y * factor - top, x * factor - left
        y1, x1 = y0 + h * factor, x0 + w * factor
        y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, size[0]), min(x1, size[1])
        if y1 > y0 and x1 > x0:
            out.append((embedding, y1 - y0, x1 - x0, y0, x0))
    return out


class WindowConditioning:
    """Per sampling run: ComfyUI's conds lists resized to window batches.

    Everything cut from the panorama (masks, model conds, hints, the copies
    of the controls) is cached for the run, keyed by the conditioning entry,
    which ComfyUI keeps the same for a whole run; the cache holds the entry,
    so a key can never be reused by another object while it lives."""

    def __init__(self, model: comfy.model_base.BaseModel):
        self.sdxl_embedder = model.embedder if isinstance(model, comfy.model_base.SDXL) else None
        self._cache: dict = {}

    def cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key][1]

    # -- which windows an entry reaches ---------------------------------------

    def pieces(self, entry: dict, views: Views, full: tuple, batch: int) -> list[tuple]:
        """For every window of ``views``: the entry's pieces there (() where
        it drops out)."""
        def make():
            factor = views.height / full[0]
            area = entry.get("area")
            if area is not None and len(area) != 4:
                raise ValueError(f"a conditioning area with {len(area) // 2} dimensions cannot be cut into "
                                 f"panorama windows: only image (2-D) areas are supported")
            area = None if area is None else scale_rect(area, factor)
            if not views.is_crop:  # an area is a mask on the latent, cut as masks are
                reached = [True] * len(views)
                if area is not None or "mask" in entry:
                    reached = self.mask_windows(entry, views, full, batch)[1]
                return entry, [(WHOLE,) if hit else () for hit in reached]
            pieces = [(WHOLE,) if area is None else area_pieces(area, views, i) for i in range(len(views))]
            if "mask" in entry:
                reached = self.mask_windows(entry, views, full, batch)[1]
                pieces = [p if hit else () for p, hit in zip(pieces, reached)]
            return entry, pieces
        return self.cached(("pieces", id(entry), views_key(views), full, batch), make)

    def batches(self, conds: Sequence[list], views: Views, size: int, full: tuple, batch: int) -> list[tuple]:
        """Window ids in groups of at most ``size`` whose entries have the
        same pieces, in raster order of their first window."""
        per_entry = [self.pieces(entry, views, full, batch) for cond in conds for entry in cond]
        groups: dict = {}
        for i in range(len(views)):
            groups.setdefault(tuple(p[i] for p in per_entry), []).append(i)
        return [tuple(ids[start:start + size]) for ids in groups.values() for start in range(0, len(ids), size)]

    # -- resizing ---------------------------------------------------------------

    def resize(self, cond: list | None, batch: WindowBatch) -> list | None:
        """One conds list (cond, uncond...) for the window batch: each entry
        in the batch's frame, one entry per piece, none where it drops out."""
        if cond is None:
            return None
        out = []
        for entry in cond:
            pieces = self.pieces(entry, batch.views, batch.full, batch.batch)[batch.ids[0]]
            for piece in pieces:
                out.append(self.cached(("entry", id(entry), batch.key, batch.full, batch.batch, piece),
                                       lambda: (entry, self.window_entry(entry, batch, piece))))
        return out

    def window_entry(self, entry: dict, batch: WindowBatch, piece) -> dict:
        out = dict(entry)
        out.pop("area", None)
        if piece is not WHOLE:
            out["area"] = piece
        out.pop("set_area_to_bounds", None)  # resolved into the area already
        if "mask" in entry or not batch.views.is_crop and "area" in entry:
            masks = self.mask_windows(entry, batch.views, batch.full, batch.batch)[0]
            out["mask"] = window_major(masks[list(batch.ids)], batch.batch)
        out["model_conds"] = {name: self.window_model_cond(name, value, entry, batch, piece)
                              for name, value in entry["model_conds"].items()}
        if entry.get("control") is not None:
            frame = entry.get("area")
            out["control"] = self.window_control(entry["control"], batch, frame, piece)
        gligen = entry.get("gligen")
        if gligen is not None and gligen[0] == "position":
            out["gligen"] = (gligen[0], self.window_gligen(gligen, batch, piece), gligen[2])
        return out

    def mask_windows(self, entry: dict, views: Views, full: tuple, batch: int):
        """The entry's mask cut per window, (N, B, h, w), and for every window
        whether any of it is non-zero.  On windows that are not crops the
        entry's area is part of its mask."""
        def make():
            mask = entry.get("mask")  # ComfyUI has resized it to the latent
            if mask is None:
                mask = torch.ones(1, *full)
            if mask.ndim == 2:
                mask = mask.unsqueeze(0)
            if tuple(mask.shape[-2:]) != tuple(full):
                raise ValueError(f"a conditioning mask of {tuple(mask.shape[-2:])} does not match the "
                                 f"{full[0]}x{full[1]} latent")
            if not views.is_crop and entry.get("area") is not None:
                mask = mask * area_mask(entry["area"], full, mask)
            level = fit_batch(mask, batch).unsqueeze(1)
            if (views.height, views.width) != tuple(full):
                level = F.interpolate(level, size=(views.height, views.width), mode="bilinear")
            windows = cut_windows(level, views)[:, :, 0]
            reached = (windows != 0).flatten(1).any(1).tolist()
            return entry, (windows, reached)
        return self.cached(("mask", id(entry), views_key(views), full, batch), make)

    def window_model_cond(self, name: str, value, entry: dict, batch: WindowBatch, piece):
        if name in UNCUT_MODEL_CONDS:
            raise ValueError(f"the conditioning holds {UNCUT_MODEL_CONDS[name]} ('{name}'), which the panorama "
                             f"sampler cannot cut into windows yet: remove that node from the conditioning, or "
                             f"sample without the panorama patch")
        spatial = isinstance(value, comfy.conds.CONDNoiseShape) or (
            name in SPATIAL_MODEL_CONDS and isinstance(value, comfy.conds.CONDRegular))
        if spatial and torch.is_tensor(value.cond) and value.cond.ndim in (4, 5):
            # (B, C, H, W), or (B, C, T, H, W): a video's frames ride along
            def make():
                scale = aligned_scale(value.cond, batch.full, f"the conditioning '{name}'")
                level = fit_batch(to_level(value.cond, batch, scale, "area"), batch.batch)
                return entry, (scale, level)
            scale, level = self.cached(("spatial", id(entry), name, batch.full, batch.level, batch.batch), make)
            windows = cut_windows(level, batch.views, batch.ids, scale)
            return value._copy_with(window_major(windows, batch.batch))
        if (name == "y" and self.sdxl_embedder is not None and torch.is_tensor(value.cond)
                and value.cond.shape[-1] == SDXL_ADM):
            return value._copy_with(self.sdxl_window_y(fit_batch(value.cond, batch.batch), batch, piece))
        return value

    def sdxl_window_y(self, y: torch.Tensor, batch: WindowBatch, piece) -> torch.Tensor:
        """SDXL's micro-conditioning per window: the image keeps the size the
        user gave; each window (or piece of one) is a crop at its own offset
        whose target size is itself, as in training on random crops."""
        rows = []
        for i in batch.ids:
            # a view that is not a crop is a whole picture of its own
            top, left = batch.views.origin(i) if batch.views.is_crop else (0, 0)
            h, w, y0, x0 = (batch.views.window_h, batch.views.window_w, 0, 0) if piece is WHOLE else piece
            values = [(top + y0) * SDXL_SCALE, (left + x0) * SDXL_SCALE, h * SDXL_SCALE, w * SDXL_SCALE]
            rows.append(torch.cat([self.sdxl_embedder(torch.tensor([float(v)])) for v in values], dim=1))
        crops = torch.cat(rows).to(y).repeat_interleave(y.shape[0], dim=0)
        return torch.cat([y.repeat(len(batch.ids), 1)[:, :SDXL_ADM_CROP], crops], dim=1)

    # -- controls ---------------------------------------------------------------

    def window_control(self, control, batch: WindowBatch, frame, piece):
        """A copy of a control chain whose hints are the windows' parts of
        the panorama-size hints.  One copy per window batch, shared by every
        entry that shares the control (cond and uncond), so ComfyUI still
        batches them together."""
        if control is None:
            return None

        def make():
            window = fresh_copy(control)
            window.cond_hint_original, window.extra_concat_orig = self.window_hints(control, batch, frame, piece)
            window.previous_controlnet = self.window_control(control.previous_controlnet, batch, frame, piece)
            if hasattr(control, "multigpu_clones"):
                window.multigpu_clones = self.device_window_controls(control, window, batch, frame, piece)
            return control, window
        return self.cached(("control", id(control), batch.key, batch.full, batch.batch, frame, piece), make)

    def window_hints(self, control, batch: WindowBatch, frame, piece) -> tuple:
        """(cond_hint_original, extra_concat_orig) of ``control`` cut to the windows."""
        hint = control.cond_hint_original
        if hint is not None:
            hint = self.window_hint(control, hint, hint_scale(control), batch, frame, piece)
        extras = [extra if extra.shape[-1] == 1 and extra.shape[-2] == 1
                  else self.window_hint(control, extra, control.compression_ratio, batch, frame, piece)
                  for extra in control.extra_concat_orig]
        return hint, extras

    def device_window_controls(self, control, window, batch: WindowBatch, frame, piece) -> dict:
        """ComfyUI's MultiGPU (v0.23+) runs a control on another device
        through that device's copy of it (``multigpu_clones``, found by
        ``get_instance_for_device``), which holds the panorama-size hint.
        The window copy gets per-device copies of its own: each with the
        windows' hints and chained to the previous control's window copy for
        the same device."""
        out = {}
        for device, clone in control.multigpu_clones.items():
            device_window = fresh_copy(clone)
            same = (clone.cond_hint_original is control.cond_hint_original
                    and len(clone.extra_concat_orig) == len(control.extra_concat_orig)
                    and all(a is b for a, b in zip(clone.extra_concat_orig, control.extra_concat_orig)))
            device_window.cond_hint_original, device_window.extra_concat_orig = (
                (window.cond_hint_original, window.extra_concat_orig) if same
                else self.window_hints(clone, batch, frame, piece))
            previous = window.previous_controlnet
            device_window.previous_controlnet = None if previous is None else previous.get_instance_for_device(device)
            device_window.multigpu_clones = {}
            out[device] = device_window
        return out

    def window_hint(self, control, image: torch.Tensor, scale: int, batch: WindowBatch, frame, piece):
        """(n*B, C, h*scale, w*scale): the hint under each window (and piece)."""
        def make():
            canvas = self.hint_canvas(control, image, scale, batch.level, batch.factor, frame, batch.views.wrap_x)
            # ComfyUI's rule for a hint's batch: one image serves every latent
            return control, comfy.controlnet.broadcast_image_to(canvas, batch.batch, 1)
        canvas = self.cached(("canvas", id(control), id(image), scale, batch.level, batch.batch, frame), make)
        windows = window_major(narrow_piece(cut_windows(canvas, batch.views, batch.ids, scale), piece, scale),
                               batch.batch)
        if not canvas.is_contiguous() and canvas.is_contiguous(memory_format=torch.channels_last):
            # an IMAGE is channels-last; ComfyUI's ControlNet convolves it so,
            # and so do we, with the same kernels and the same results
            windows = windows.contiguous(memory_format=torch.channels_last)
        return windows

    @staticmethod
    def hint_canvas(control, image: torch.Tensor, scale: int, level: tuple, factor: float, frame,
                    wrap_x: bool = False):
        """The hint as ComfyUI would size it for the whole latent: upscaled
        ('center' crop) to the latent times ``scale``, or, for an entry with
        an area, to that area as it falls on the latent (``resolve_area``),
        put where the area is."""
        height, width = level[0] * scale, level[1] * scale
        if frame is None:
            return comfy.utils.common_upscale(image, width, height, control.upscale_algorithm, "center")
        h, w, y, x = resolve_area(scale_rect(frame, factor), *level, wrap_x)
        canvas = image.new_zeros(image.shape[0], image.shape[1], height, width)
        if h <= 0 or w <= 0:  # the area misses the latent: no window gets this entry
            return canvas
        piece = comfy.utils.common_upscale(image, w * scale, h * scale, control.upscale_algorithm, "center")
        if not piece.is_contiguous() and piece.is_contiguous(memory_format=torch.channels_last):
            canvas = canvas.contiguous(memory_format=torch.channels_last)  # as the piece: see window_hint
        columns = (torch.arange(w * scale, device=image.device) + x * scale) % width
        canvas[:, :, y * scale:(y + h) * scale, columns] = piece
        return canvas

    # -- GLIGEN -----------------------------------------------------------------

    def window_gligen(self, gligen: tuple, batch: WindowBatch, piece) -> WindowGligen:
        _, patcher, params = gligen
        if not batch.views.is_crop:
            raise ValueError("GLIGEN boxes are rectangles on the panorama; on sphere views they have no rectangle "
                             "in the views: use a masked prompt (Conditioning (Set Mask)) for sphere views, or "
                             "Panorama Windows (Cross Sampling) for GLIGEN")
        boxes = []
        for i in batch.ids:
            top, left = batch.views.origin(i)
            size = (batch.views.window_h, batch.views.window_w)
            if piece is not WHOLE:
                size, top, left = piece[:2], top + piece[2], left + piece[3]
            boxes.append(translate_boxes(params, (top, left), size, batch.factor))
        return WindowGligen(patcher.model, boxes, batch.batch)


def fresh_copy(control):
    """A shallow copy of a control without the hint state ComfyUI computes
    from the latent it is handed."""
    out = copy.copy(control)
    out.cond_hint = None
    out.extra_concat = None
    if hasattr(out, "control_input"):
        out.control_input = None  # T2I-Adapter's features of the hint
    return out


def hint_scale(control) -> int:
    """Hint pixels per latent pixel, as ComfyUI's ControlNet computes it."""
    scale = control.compression_ratio
    vae = getattr(control, "vae", None)
    if vae is not None:
        scale *= vae.spacial_compression_encode()
    return int(scale)

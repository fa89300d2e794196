"""One frame per shift protocol: an image as the model sees it under each.

The frames come from the shift test's own geometry and transforms
(`sigcnn.shift_test.protocols.PLANS` with `sigcnn.shift_test.ShiftTestOptions`),
so the page shows exactly what the network was given.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

__all__ = ["protocol_frames"]


def _caption(name: str, plan) -> str:
    oy, ox = (float(v) for v in plan.offsets[-1])
    at = f"({oy:g}, {ox:g})"
    if name == "circular":
        return f"rolled by {at}"
    if name == "subpixel":
        return f"shifted by {at} px"
    if name == "crop":
        big = plan.extra.get("image_size") or plan.extra.get("resized_to")
        src = f"{big[0]}\u00d7{big[1]}" if big else "the image"
        return f"window at {at} of {src}"
    if name in ("black", "inpaint"):
        return f"pasted at {at}" + (", inpainted" if name == "inpaint" else "")
    if plan.sizes is not None:
        h, w = (int(v) for v in plan.sizes[-1])
        return f"grown to {h}\u00d7{w}"
    return f"offset {at}"


def protocol_frames(image, protocols: Sequence[str], *,
                    options: Mapping | None = None) -> dict:
    """The last frame of each protocol's schedule for one image.

    Args:
      image: float array, shape [H, W, C] (one image, in the model's units).
      protocols: names from `sigcnn.shift_test.PROTOCOLS`.
      options: None, or keyword options of `sigcnn.shift_test.run_shift_test`
        the frames should follow (``n_pairs``, ``crop_margin``, ...; default
        the shift test's defaults).

    Returns:
      dict protocol name -> ``(frame, caption)``: the frame [h, w, C] as a
      NumPy array and a few words on its geometry (e.g. ``"rolled by (8, 8)"``).

    Raises:
      ValueError: if `image` is not [H, W, C] or a protocol is unknown.
    """
    from sigcnn.shift_test import ShiftTestOptions
    from sigcnn.shift_test.protocols import PLANS

    x = np.asarray(image, np.float32)
    if x.ndim != 3:
        raise ValueError(f"`image` must have shape [H, W, C]; got {x.shape}.")
    opts = ShiftTestOptions(protocols=tuple(protocols),
                            **dict(options or {})).resolve((1,) + x.shape)
    out = {}
    for name in protocols:
        plan = PLANS[name].plan(name, x.shape[:2], opts)
        last = dataclasses.replace(   # build the last frame only
            plan, offsets=plan.offsets[-1:],
            sizes=None if plan.sizes is None else plan.sizes[-1:])
        frames = PLANS[name].frames(last, x[None], opts)
        frames = frames[0] if isinstance(frames, tuple) else frames
        out[name] = (np.asarray(frames)[0, -1], _caption(name, plan))
    return out

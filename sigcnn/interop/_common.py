"""Helpers shared by the importers."""

from __future__ import annotations

import difflib
from typing import Iterable

import jax
import jax.numpy as jnp

__all__ = ["check_taps", "to_nhwc"]


def check_taps(taps, known: Iterable[str], what: str) -> tuple[str, ...] | None:
    """`taps` as a tuple of names from `known`, or None; errors name the argument."""
    if taps is None:
        return None
    if isinstance(taps, str) or not all(isinstance(t, str) for t in taps):
        raise TypeError(f"`taps` must be a list of {what} names (strings); got "
                        f"{taps!r}.")
    taps = tuple(taps)
    if not taps:
        raise ValueError("`taps` must name at least one "
                         f"{what} (or be None for the network's own output).")
    if len(set(taps)) != len(taps):
        raise ValueError(f"`taps` names a {what} twice: {list(taps)!r}.")
    known = list(known)
    for t in taps:
        if t not in known:
            near = difflib.get_close_matches(t, known, n=3)
            hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
            raise ValueError(f"`taps`: the network has no {what} {t!r}{hint} "
                             f"({len(known)} {what}s, e.g. {known[:4]!r}).")
    return taps


def to_nhwc(tree):
    """Rank-4 leaves NCHW -> NHWC; other leaves unchanged."""
    return jax.tree.map(
        lambda a: jnp.transpose(a, (0, 2, 3, 1)) if jnp.ndim(a) == 4 else a, tree)

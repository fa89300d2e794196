"""PyTorch networks as pure JAX functions (through torchax)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from sigcnn._checks import check_float_array, check_nhwc
from sigcnn.interop._common import check_taps, to_nhwc
from sigcnn.interop._torch_env import import_torch

__all__ = ["from_torch"]


def _tapped(torch, module, taps):
    """A wrapper module whose forward returns {tap: output of that submodule}."""

    class Tapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module

        def forward(self, x):
            store = {}
            hooks = [self.net.get_submodule(name).register_forward_hook(
                lambda mod, inp, out, name=name: store.__setitem__(name, out))
                for name in taps]
            try:
                self.net(x)
            finally:
                for h in hooks:
                    h.remove()
            missing = [t for t in taps if t not in store]
            if missing:
                raise ValueError(f"`taps`: the submodules {missing} were not called "
                                 "by the network's forward.")
            return {name: store[name] for name in taps}

    return Tapped().eval()


def from_torch(module, *, taps=None) -> tuple[Callable[[Any, Any], Any], Any]:
    """A ``torch.nn.Module`` as a pure JAX function of NHWC images.

    The module is traced with torchax: ``apply(params, x)`` computes, in JAX,
    what ``module(x.permute(0, 3, 1, 2))`` returns (the same pytree of tensors, as
    JAX arrays), with every rank-4 output (a spatial map) returned NHWC. The module
    itself is left unchanged and usable in PyTorch.

    Args:
        module: a ``torch.nn.Module`` in eval mode (``module.eval()``): batch-norm
            running statistics and no dropout.
        taps: optional list of submodule names (as in ``module.named_modules()``):
            `apply` then returns ``{name: NHWC map}`` of those submodules' outputs
            (in this order) instead of the module's output, the input that
            :func:`sigcnn.layer_spectra` takes.

    Returns:
        ``(apply, params)``: ``apply(params, x)`` with x [N, H, W, C] float, and
        params, the module's parameters and buffers as a dict of JAX arrays (its
        ``state_dict`` names).

    Raises:
        MissingExtraError: torch or torchax is not installed
            (``pip install "sigcnn[torch]"``).
        TypeError: `module` is not a ``torch.nn.Module``, or `taps` is not a list
            of names.
        ValueError: the module is in training mode, or a tap names no submodule.

    Examples:
        >>> import functools, numpy as np, torch, sigcnn as sc
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1),
        ...                           torch.nn.ReLU()).eval()
        >>> apply, params = from_torch(net, taps=["0"])
        >>> x = np.zeros((1, 16, 16, 3), np.float32)
        >>> apply(params, x)["0"].shape
        (1, 8, 8, 8)
        >>> sc.undecimate(functools.partial(apply, params))(x)[1]
        {'0': (2, 2)}
    """
    torch, torchax = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module; got "
                        f"{type(module).__name__}.")
    if module.training:
        raise ValueError("`module` is in training mode: call module.eval() first "
                         "(sigcnn analyses the network as it predicts: batch-norm "
                         "running statistics, no dropout).")
    taps = check_taps(taps, [n for n, _ in module.named_modules() if n], "submodule")
    wrapped = module if taps is None else _tapped(torch, module, taps)
    prefix = "" if taps is None else "net."
    states, jfn = torchax.extract_jax(wrapped)
    params = {k[len(prefix):]: v for k, v in states.items()}

    @jax.jit     # one compiled program for eager calls (torchax runs op by op)
    def run(params, x):
        states = {prefix + k: v for k, v in params.items()}
        return to_nhwc(jfn(states, (jnp.transpose(x, (0, 3, 1, 2)),)))

    def apply(params, x):
        x = check_nhwc("x", check_float_array("x", x))
        out = run(params, x)
        # JAX's pytree utilities sort dict keys: give the taps back in their order
        return out if taps is None else {t: out[t] for t in taps}

    return apply, params

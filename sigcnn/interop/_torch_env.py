"""Imports torch, torchax and torchvision, working around known incompatibilities.

Two mismatches of the CPU torch 2.13 wheel with the packages it is used with are
repaired in memory (nothing is written to disk):

1. torch 2.13 removed the named-tensor (Dimname) overloads, such as
   ``aten.prod.dim_Dimname`` or ``aten.std.names_dim``, that torchax 0.0.13 names in
   its amp and decomposition tables while it imports, so ``import torchax`` raises
   AttributeError. While torchax imports and builds its environment, looking up such
   an overload returns an inert placeholder (a key nothing ever matches).
2. The PyPI torchvision wheels link CUDA torch; with CPU torch their ``_C``
   extension does not load (torchvision only warns) and
   ``torchvision/_meta_registrations.py`` then fails with "operator torchvision::nms
   does not exist". Defining the schemas of ``nms`` / ``qnms`` first lets torchvision
   import; its models need none of its C ops.
"""

from __future__ import annotations

import functools
import importlib
import sys

from sigcnn.interop.errors import require

__all__ = ["import_torch", "import_torchvision"]


class _Removed:
    """Stands for an operator overload that this torch no longer has."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"<removed overload {self.name}>"


@functools.cache
def import_torch():
    """(torch, torchax), torchax's environment built; see the module docstring."""
    torch = require("torch", "torch", "importing a PyTorch network")
    if "torchax" in sys.modules:
        return torch, sys.modules["torchax"]
    import torch._ops as ops

    orig = ops.OpOverloadPacket.__getattr__

    def getattr_(self, key):
        try:
            return orig(self, key)
        except AttributeError:
            if key.startswith("__"):
                raise
            return _Removed(f"{self._qualified_op_name}.{key}")

    ops.OpOverloadPacket.__getattr__ = getattr_
    try:
        torchax = require("torchax", "torch", "importing a PyTorch network")
        importlib.import_module("torchax.decompositions")  # registers them

        torchax.default_env()
    finally:
        ops.OpOverloadPacket.__getattr__ = orig
    return torch, torchax


_TV_LIBS = []  # the torchvision schemas stay registered while the process runs


@functools.cache
def import_torchvision():
    """torchvision (importable on CPU torch; see the module docstring)."""
    torch = require("torch", "torch", "importing a torchvision network")
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
        _TV_LIBS.append(lib)
        import torchvision
    except ImportError:
        require("torchvision", "torch", "importing a torchvision network")
        raise
    return torchvision

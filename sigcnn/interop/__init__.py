"""Importers for networks written in PyTorch and Keras 3.

Both return ``(apply, params)``: a pure JAX function ``apply(params, x)`` of NHWC
float images and the network's weights as a pytree of JAX arrays, so that
``functools.partial(apply, params)`` goes straight into :func:`sigcnn.undecimate`,
:func:`sigcnn.all_shifts`, :func:`sigcnn.layer_spectra` and the shift tests.

* :func:`from_torch` traces a ``torch.nn.Module`` with torchax (extra
  ``sigcnn[torch]``);
* :func:`from_keras` calls a Keras 3 model on the JAX backend through
  ``stateless_call`` (extra ``sigcnn[keras]``).

:func:`load_torch`, :func:`load_timm` and :func:`load_keras` build trained
networks from files on disk (nothing is downloaded).

The frameworks are imported only when an importer is called; without the extra the
call raises :class:`MissingExtraError` saying what to install.
"""

from sigcnn.interop.errors import MissingExtraError as MissingExtraError
from sigcnn.interop.keras_import import from_keras as from_keras
from sigcnn.interop.loaders import load_keras as load_keras
from sigcnn.interop.loaders import load_state_dict as load_state_dict
from sigcnn.interop.loaders import load_timm as load_timm
from sigcnn.interop.loaders import load_torch as load_torch
from sigcnn.interop.torch_import import from_torch as from_torch

__all__ = ["MissingExtraError", "from_keras", "from_torch", "load_keras",
           "load_state_dict", "load_timm", "load_torch"]

"""MTCNN's pretrained ONet as a Keras 3 model, for ``--keras onet:onet``.

The ``mtcnn`` wheel (MIT) ships the trained weights of the three MTCNN networks
(Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", 2016) and their Keras definitions. Those definitions
use ``tf.keras.layers`` only, so the network file is executed with Keras 3 (JAX
backend) in the place of ``tf.keras``; TensorFlow is neither needed nor
imported, and nothing is downloaded.

ONet maps a 48 x 48 RGB crop, scaled to about [-1, 1], to three outputs: a box
regression [B, 4], five landmarks [B, 10] and the softmax over
[not face, face] [B, 2]. With the scripts of paper_figures/ use it as::

    python paper_figures/table1.py --keras onet:onet --output 2 --probabilities \\
        --images DIR --size 48 --normalize tf

(`make_faces.py` writes such a DIR).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

__all__ = ["CLASSES", "onet"]

CLASSES = ("not face", "face")
"""ONet's classes, in the order of its third output."""


def _package_dir() -> str:
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ONet needs the `mtcnn` wheel (pip install mtcnn)")
    return list(spec.submodule_search_locations)[0]


def _network_module(keras, path: str):
    """Executes the wheel's network file with `keras` standing in for tf.keras."""
    previous = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = types.SimpleNamespace(keras=keras)
    try:
        spec = importlib.util.spec_from_file_location("_mtcnn_onet_network", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            sys.modules.pop("tensorflow", None)
        else:
            sys.modules["tensorflow"] = previous
    return module


def onet():
    """The pretrained ONet, built, with the wheel's weights.

    Returns:
      a Keras 3 model: images [B, 48, 48, 3] -> [boxes [B, 4], landmarks
      [B, 10], P(not face, face) [B, 2]].

    Raises:
      ImportError: if `mtcnn`, `keras` or `joblib` is missing.
    """
    from sigcnn.interop.errors import import_keras

    keras = import_keras("MTCNN's ONet")
    import joblib

    root = _package_dir()
    module = _network_module(keras, os.path.join(root, "network", "onet.py"))
    model = module.ONet()
    model.build()
    model.set_weights(joblib.load(os.path.join(root, "assets", "weights", "onet.lz4")))
    return model

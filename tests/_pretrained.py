"""A real pretrained CNN that ships inside a PyPI wheel: MTCNN's ONet.

The ``mtcnn`` wheel (1.0.0, MIT) holds the trained weights of the three MTCNN
networks (Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", 2016) as joblib/lz4 files, and their Keras
definitions. The package imports TensorFlow, which sigcnn does not need: the
network file only uses ``tf.keras.layers``, so it is loaded on its own with
Keras 3 (JAX backend) standing in for ``tf.keras``. Nothing is downloaded.

ONet maps a 48 x 48 RGB crop, scaled as (x - 127.5) / 128, to a box
regression, five landmarks and P(face) (softmax over [not face, face]).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import numpy as np

ONET_TAPS = ("prelu1", "maxpooling1", "prelu2", "maxpooling2", "prelu3",
             "maxpooling3", "prelu4")

# Face boxes (top, bottom, left, right) in the offline scikit-image photographs.
FACES = {"astronaut": (60, 200, 180, 320), "astronaut_tight": (75, 195, 195, 315),
         "astronaut_loose": (45, 215, 165, 335)}
NON_FACES = {"coffee": (0, 200, 0, 200), "rocket": (0, 200, 100, 300),
             "coffee_cup": (150, 350, 200, 400), "rocket_sky": (0, 200, 350, 550)}


def mtcnn_root() -> str:
    spec = importlib.util.find_spec("mtcnn")
    if spec is None:
        raise ImportError("the mtcnn wheel is not installed (pip install mtcnn)")
    return spec.submodule_search_locations[0]


def onet():
    """The pretrained ONet as a built Keras 3 model (JAX backend)."""
    from sigcnn.interop.errors import import_keras

    keras = import_keras("the MTCNN test network")
    import joblib

    root = mtcnn_root()
    saved = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = types.SimpleNamespace(keras=keras)
    try:
        spec = importlib.util.spec_from_file_location(
            "_mtcnn_onet", os.path.join(root, "network", "onet.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        if saved is None:
            del sys.modules["tensorflow"]
        else:
            sys.modules["tensorflow"] = saved
    model = mod.ONet()
    model.build()
    model.set_weights(joblib.load(os.path.join(root, "assets", "weights",
                                               "onet.lz4")))
    return model


def crops(boxes, size: int = 48) -> tuple[list[str], np.ndarray]:
    """Named crops of the scikit-image photographs as uint8 [n, size, size, 3]."""
    from PIL import Image
    from skimage import data

    names, out = [], []
    for name, (t, b, l, r) in boxes.items():
        img = getattr(data, name.split("_")[0])()[t:b, l:r]
        out.append(np.asarray(Image.fromarray(img).resize((size, size),
                                                          Image.BILINEAR)))
        names.append(name)
    return names, np.stack(out)


def scale(x) -> np.ndarray:
    """MTCNN's input scaling, (x - 127.5) / 128."""
    return (np.asarray(x, np.float32) - 127.5) / 128.0

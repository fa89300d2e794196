"""An offline folder of face and non-face crops for MTCNN's ONet (`onet.py`).

scikit-image ships ``lfw_subset()``: 100 faces of Labeled Faces in the Wild and
100 non-face patches of natural images, 25 x 25 grayscale. Each is upsampled
(bilinear) to SIZE x SIZE and replicated to RGB, and written as a PNG under
one folder per class, named so that sorting them gives ONet's output order
[not face, face]::

    DIR/0_not_face/nonface_000.png ... DIR/1_face/face_099.png

``--photos`` adds crops of scikit-image's photographs (three framings of the
astronaut's face; four patches of the coffee and rocket photographs).
Nothing is downloaded.

Usage: ``python paper_figures/make_faces.py DIR [--size 48] [--photos]``, then
``python paper_figures/table1.py --keras onet:onet --output 2 --probabilities
--images DIR --size 48 --normalize tf``. The folder reader resizes the shorter
side to round(48 · 256 / 224) = 55 and centre-crops 48, so ONet sees the
central 87 % of each patch.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

__all__ = ["FOLDERS", "face_crops", "write_folder"]

FOLDERS = ("0_not_face", "1_face")
"""Class folders; sorted, they follow ONet's outputs [not face, face]."""

# (top, bottom, left, right) of faces and non-faces in scikit-image photographs.
PHOTO_FACES = {"astronaut": (60, 200, 180, 320), "astronaut_tight": (75, 195, 195, 315),
               "astronaut_loose": (45, 215, 165, 335)}
PHOTO_NON_FACES = {"coffee": (0, 200, 0, 200), "rocket": (0, 200, 100, 300),
                   "coffee_cup": (150, 350, 200, 400),
                   "rocket_sky": (0, 200, 350, 550)}


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def face_crops(size: int = 48, *, photos: bool = False) -> list[tuple[str, str, np.ndarray]]:
    """``(class folder, file stem, uint8 RGB [size, size, 3])`` of every crop."""
    from skimage import data

    lfw = data.lfw_subset()                  # [200, 25, 25] in [0, 1]: faces first
    out = []
    for i, patch in enumerate(lfw):
        gray = _resize(np.round(patch * 255).astype(np.uint8), size)
        rgb = np.repeat(gray[..., None], 3, axis=-1)
        face = i < 100
        out.append((FOLDERS[int(face)], f"{'face' if face else 'nonface'}_{i % 100:03d}",
                    rgb))
    if photos:
        for folder, boxes in ((FOLDERS[1], PHOTO_FACES), (FOLDERS[0], PHOTO_NON_FACES)):
            for name, (t, b, left, right) in boxes.items():
                img = getattr(data, name.split("_")[0])()[t:b, left:right]
                out.append((folder, f"photo_{name}", _resize(img[..., :3], size)))
    return out


def write_folder(root: str, size: int = 48, *, photos: bool = False) -> dict:
    """Writes the crops under `root`; returns ``{class folder: count}``."""
    from PIL import Image

    counts = {f: 0 for f in FOLDERS}
    for folder, stem, rgb in face_crops(size, photos=photos):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        Image.fromarray(rgb).save(os.path.join(root, folder, f"{stem}.png"))
        counts[folder] += 1
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", metavar="DIR", help="the folder to write")
    ap.add_argument("--size", type=int, default=48, help="side of the PNGs (default 48)")
    ap.add_argument("--photos", action="store_true",
                    help="add crops of scikit-image's photographs")
    args = ap.parse_args(argv)
    if args.size < 8:
        ap.error(f"argument --size: must be at least 8; got {args.size}")
    counts = write_folder(args.dir, args.size, photos=args.photos)
    print(f"wrote {sum(counts.values())} images to {args.dir}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

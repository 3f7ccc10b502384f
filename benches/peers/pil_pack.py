"""Pillow peer of `tools/pack`, for benches/pack_vs_pillow.sh.

Packs a folder of cat/dog photos the way a typical Python preprocessing script would: open with
Pillow, convert to RGB, resize to 128x128 with Pillow's bilinear filter (antialiased, as
tools/pack's default), and write the pixels (N x 128 x 128 x 3 bytes, HWC) and one label byte
per image (0 cat, 1 dog) as two raw files. Files Pillow cannot open are skipped and counted.

Layouts: a flat folder of cat.N.jpg / dog.N.jpg (Kaggle), or a folder with Cat/ and Dog/
subfolders (PetImages).

Install:  pip install pillow numpy
Usage:    python3 pil_pack.py SRC_DIR OUT_DIR [PROCESSES]     (default: one per core)
Output:   a summary line, then "<rate> images/s" as the last line (timed from the first file
          opened to the last byte written; interpreter start-up and imports are not counted).
"""
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
import PIL
from PIL import Image

SIZE = 128
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def listing(src):
    """(path, label) pairs in a fixed order: by class, then by name."""
    found = []
    subdirs = {d.lower(): d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}
    if "cat" in subdirs or "dog" in subdirs:
        for label, key in ((0, "cat"), (1, "dog")):
            d = os.path.join(src, subdirs.get(key, key))
            if os.path.isdir(d):
                for name in sorted(os.listdir(d)):
                    if name.lower().endswith(IMAGE_EXT):
                        found.append((os.path.join(d, name), label))
    else:
        for name in sorted(os.listdir(src)):
            low = name.lower()
            if low.endswith(IMAGE_EXT) and low[:4] in ("cat.", "dog."):
                found.append((os.path.join(src, name), 0 if low.startswith("cat") else 1))
    found.sort(key=lambda p: (p[1], p[0]))
    return found


def decode(path):
    """The 128x128x3 pixels of one photo, or None when Pillow cannot read it."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), np.uint8)
    except Exception:
        return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    procs = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    files = listing(src)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    with Pool(procs) as pool:
        images = pool.map(decode, [p for p, _ in files], chunksize=32)
    kept = [(img, lab) for img, (_, lab) in zip(images, files) if img is not None]
    pixels = np.empty((len(kept), SIZE, SIZE, 3), np.uint8)
    for i, (img, _) in enumerate(kept):
        pixels[i] = img
    with open(os.path.join(out, "data.raw"), "wb") as f:
        f.write(pixels.tobytes())
    with open(os.path.join(out, "labels.raw"), "wb") as f:
        f.write(bytes(lab for _, lab in kept))
    seconds = time.perf_counter() - start
    print(f"pillow {PIL.__version__}, {procs} processes: "
          f"{len(kept)} packed, {len(files) - len(kept)} skipped, {seconds:.2f} s")
    print(f"{len(kept) / seconds:.0f} images/s")


if __name__ == "__main__":
    main()

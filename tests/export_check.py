"""`model export`'s files checked from outside the project (run by tests/export.rs).

usage: export_check.py MODEL.onnx MODEL.safetensors PIXELS N S

PIXELS holds N images of S x S x 3 bytes (HWC, RGB), as tools/pack writes them. The ONNX file
must pass onnx.checker (full check) and have the documented input, output and operators; ONNX
Runtime runs it on the images, fed as the trainer feeds its first layer (byte * (1/255), NCHW).
The safetensors file is read here with json and NumPy only (not with the exporter's crate), its
tensors must equal the ONNX initializers bit for bit, and a float64 NumPy forward pass written
from the PyTorch layouts (conv OIHW, fc out x in, NCHW flatten) scores the same images.

Prints one line per image: ONNX Runtime's P(dog), then NumPy's, tab-separated.
"""

import json
import struct
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

onnx_path, st_path, pix_path, n, s = sys.argv[1:]
n, s = int(n), int(s)

model = onnx.load(onnx_path)
onnx.checker.check_model(model, full_check=True)
g = model.graph


def dims(v):
    return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]


assert [i.name for i in g.input] == ["image"], g.input
assert [o.name for o in g.output] == ["p_dog"], g.output
assert dims(g.input[0]) == ["N", 3, s, s], dims(g.input[0])
assert dims(g.output[0]) == ["N", 1], dims(g.output[0])
assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
ops = {node.op_type for node in g.node}
assert ops == {"Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Sigmoid"}, ops
assert "1/255" in g.doc_string and "p_dog" in g.doc_string, g.doc_string

pixels = np.fromfile(pix_path, dtype=np.uint8)
assert pixels.size == n * s * s * 3, (pixels.size, n, s)
# The trainer's first layer: float(byte) * (1/255 rounded to float32), channels first.
x = pixels.reshape(n, s, s, 3).astype(np.float32) * np.float32(1 / 255)
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))

sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
p_ort = sess.run(["p_dog"], {"image": x})[0]
assert p_ort.shape == (n, 1) and p_ort.dtype == np.float32, (p_ort.shape, p_ort.dtype)
# N is dynamic: one image at a time gives the same.
for i in range(n):
    one = sess.run(["p_dog"], {"image": x[i : i + 1]})[0]
    assert abs(float(one[0, 0]) - float(p_ort[i, 0])) <= 1e-6, (i, one, p_ort[i])

raw = open(st_path, "rb").read()
hlen = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + hlen])
meta = header.pop("__metadata__", {})
assert meta == {"format": "pt"}, meta
body = raw[8 + hlen :]
t = {}
for name, info in header.items():
    assert info["dtype"] == "F32", (name, info)
    a, b = info["data_offsets"]
    t[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"])
names = ["conv1", "conv2", "conv3", "fc1", "fc2"]
assert sorted(t) == sorted(f"{m}.{p}" for m in names for p in ("weight", "bias")), sorted(t)
for init in g.initializer:
    a = onnx.numpy_helper.to_array(init)
    assert a.shape == t[init.name].shape, (init.name, a.shape, t[init.name].shape)
    assert a.tobytes() == t[init.name].tobytes(), init.name


def conv3x3(h, w, b):
    """3x3 convolution, padding 1, stride 1: h [N, C, H, W], w [O, C, 3, 3] (OIHW)."""
    _, _, hh, ww = h.shape
    hp = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((h.shape[0], w.shape[0], hh, ww))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("nchw,oc->nohw", hp[:, :, ky : ky + hh, kx : kx + ww], w[:, :, ky, kx])
    return out + b[None, :, None, None]


def maxpool2(h):
    nn, c, hh, ww = h.shape
    return h.reshape(nn, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))


h = x.astype(np.float64)
for m in names[:3]:
    h = maxpool2(np.maximum(conv3x3(h, t[m + ".weight"], t[m + ".bias"]), 0))
h = h.reshape(n, -1)
h = np.maximum(h @ t["fc1.weight"].T.astype(np.float64) + t["fc1.bias"], 0)
z = h @ t["fc2.weight"].T.astype(np.float64) + t["fc2.bias"]
p_np = 1 / (1 + np.exp(-z))

for i in range(n):
    print(f"{float(p_ort[i, 0])!r}\t{float(p_np[i, 0])!r}")

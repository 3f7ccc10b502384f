"""Optimizing CPU engines as peers of `model bench`, for benches/vs_engines.sh.

The network is catdog's (as torch_bench.py): 128x128x3 -> [3x3 conv (pad 1) + ReLU + 2x2 max-pool]
with 32, 64 and 128 filters -> fc 32768->128 + ReLU -> fc 128->1, binary cross-entropy on the
logit, plain SGD (lr 0.01), fp32, random inputs. Training runs in batches of 16 (as `model
bench`); inference in batches of 64 (ENGINES_INFER_BATCH), which suits these engines at least as
well as our 16.

Engines, each given its fast settings; where the faster choice depends on the machine, both are
tried in the same process and the better figure is printed (each one's figure goes to stderr):
  torch-compile  train and infer. Channels-last tensors; forward + loss through torch.compile
                 (Inductor generates the forward and the backward), the SGD step compiled too;
                 inference compiled again under no_grad with weight freezing (oneDNN prepacking).
                 Max-pool is tried both as Inductor generates it and as ATen's kernel behind an
                 opaque custom op (ENGINES_TORCH_POOL=inductor|aten|both).
  onnxruntime    infer only. The ONNX graph built here with the onnx package (Conv, Relu,
                 MaxPool, Flatten, Gemm, Sigmoid), all graph optimizations, CPU provider, intra-op
                 spinning on and off.
  openvino       infer only. The same ONNX graph, f32 inference precision, the LATENCY hint (one
                 request) and the THROUGHPUT hint (its streams fed by an async queue).
  torch-eager    train and infer, channels-last, no compilation (for reference).
Thread counts are set in the environment before any engine is imported, and in each engine's
own option. Warm-up and compilation are outside the timed part; each figure is timed over at
least BATCHES batches and at least ENGINES_MIN_SECONDS seconds.

Install:  pip install torch numpy onnx onnxruntime openvino
Usage:    python3 engines.py ENGINE THREADS [BATCHES]      (BATCHES default 8)
          ENGINE: torch-compile | onnxruntime | openvino | torch-eager
          ENGINES_MIN_SECONDS=3 ENGINES_INFER_BATCH=64 ENGINES_TORCH_POOL=both
          ENGINES_TORCH_MODE=default|max-autotune-no-cudagraphs
Output:   one line on stdout, e.g.
          engine=onnxruntime version=VERSION threads=2 train=n/a infer=RATE
          (samples/s; train=n/a for inference-only engines); details on stderr.
"""
import os
import sys
import tempfile
import time

ENGINES = ("torch-compile", "onnxruntime", "openvino", "torch-eager")
TRAIN_BATCH = 16
IMAGE = 128
WIDTHS = (32, 64, 128)
FC1 = 128


def die_usage():
    sys.stderr.write(__doc__[__doc__.index("Usage:"):])
    sys.exit(2)


if len(sys.argv) not in (3, 4) or sys.argv[1] not in ENGINES:
    die_usage()
ENGINE = sys.argv[1]
try:
    THREADS = int(sys.argv[2])
    BATCHES = int(sys.argv[3]) if len(sys.argv) == 4 else 8
except ValueError:
    die_usage()
MIN_SECONDS = float(os.environ.get("ENGINES_MIN_SECONDS", "3"))
INFER_BATCH = int(os.environ.get("ENGINES_INFER_BATCH", "64"))

# Before any engine is imported: their thread pools read these when they start.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(THREADS)

START = time.perf_counter()


def note(msg):
    print(f"[{time.perf_counter() - START:6.1f}s {ENGINE}] {msg}", file=sys.stderr, flush=True)


def rate(run, batch, finish=None):
    """Samples/s of `run()`: at least BATCHES calls and MIN_SECONDS seconds; `finish()` (if
    given) waits for work still in flight and is inside the timed span."""
    calls = 0
    t0 = time.perf_counter()
    while calls < BATCHES or time.perf_counter() - t0 < MIN_SECONDS:
        run()
        calls += 1
    if finish is not None:
        finish()
    seconds = time.perf_counter() - t0
    note(f"  {calls} batches of {batch} in {seconds:.2f} s")
    return calls * batch / seconds


# --------------------------------------------------------------------------------------------
# PyTorch: eager and torch.compile


def torch_pool_op(torch):
    """2x2 max-pool as an opaque custom op over ATen's kernels (forward and backward), so that
    Inductor calls them instead of generating its own code."""
    lib = "catdog_engines"
    aten = torch.ops.aten

    @torch.library.custom_op(f"{lib}::pool2", mutates_args=())
    def pool2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, where = aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
        return y, where

    @pool2.register_fake
    def _(x):
        return aten.max_pool2d_with_indices(x, [2, 2], [2, 2])

    @torch.library.custom_op(f"{lib}::pool2_grad", mutates_args=())
    def pool2_grad(g: torch.Tensor, x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        return aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                     where)

    @pool2_grad.register_fake
    def _(g, x, where):
        return aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                     where)

    def setup(ctx, inputs, output):
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0], output[1])

    def backward(ctx, g, _g_where):
        x, where = ctx.saved_tensors
        return pool2_grad(g, x, where)

    pool2.register_autograd(backward, setup_context=setup)

    class AtenPool(torch.nn.Module):
        def forward(self, x):
            return pool2(x)[0]

    return AtenPool


def torch_net(torch, pool_cls):
    nn = torch.nn
    layers, cin = [], 3
    for w in WIDTHS:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(), pool_cls()]
        cin = w
    side = IMAGE >> len(WIDTHS)
    layers += [nn.Flatten(), nn.Linear(cin * side * side, FC1), nn.ReLU(), nn.Linear(FC1, 1)]
    return nn.Sequential(*layers)


def torch_engine(compiled):
    import torch

    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    cl = torch.channels_last
    pools = ["inductor"]
    if compiled:
        choice = os.environ.get("ENGINES_TORCH_POOL", "both")
        pools = ["inductor", "aten"] if choice == "both" else [choice]
    mode = os.environ.get("ENGINES_TORCH_MODE", "default")
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(TRAIN_BATCH, 3, IMAGE, IMAGE, generator=gen).contiguous(memory_format=cl)
    y = (torch.rand(TRAIN_BATCH, 1, generator=gen) < 0.5).float()
    xi = torch.rand(INFER_BATCH, 3, IMAGE, IMAGE, generator=gen).contiguous(memory_format=cl)
    loss_of = torch.nn.BCEWithLogitsLoss()
    best_train = best_infer = 0.0
    for pool in pools:
        if pool == "inductor":
            pool_cls = lambda: torch.nn.MaxPool2d(2)  # noqa: E731
        else:
            pool_cls = torch_pool_op(torch)
        torch.manual_seed(0)
        net = torch_net(torch, pool_cls).to(memory_format=cl)
        sgd = torch.optim.SGD(net.parameters(), lr=0.01)
        label = f"torch {torch.__version__}" + (f" pool={pool} mode={mode}" if compiled else "")
        if compiled:
            import torch._dynamo
            import torch._inductor.config as inductor

            torch._dynamo.reset()
            inductor.freezing = False
            opts = {} if mode == "default" else {"mode": mode}
            fwd_loss = torch.compile(lambda a, b: loss_of(net(a), b), **opts)
            sgd_step = torch.compile(sgd.step, **opts)
        else:
            fwd_loss = lambda a, b: loss_of(net(a), b)  # noqa: E731
            sgd_step = sgd.step

        def train_step():
            sgd.zero_grad(set_to_none=True)
            loss = fwd_loss(x, y)
            loss.backward()
            sgd_step()
            return loss

        t0 = time.perf_counter()
        first = float(train_step().detach())
        for _ in range(3):
            train_step()
        note(f"{label}: train warm-up (compilation included) {time.perf_counter() - t0:.1f} s, "
             f"first loss {first:.4f}")
        train = rate(train_step, TRAIN_BATCH)
        note(f"{label}: train {train:.1f} samples/s")

        net.eval()
        with torch.no_grad():
            expect = torch.sigmoid(net(xi))
            if compiled:
                inductor.freezing = True
                torch._dynamo.reset()
                infer_net = torch.compile(lambda a: torch.sigmoid(net(a)), **opts)
            else:
                infer_net = lambda a: torch.sigmoid(net(a))  # noqa: E731
            t0 = time.perf_counter()
            got = infer_net(xi)
            for _ in range(2):
                infer_net(xi)
            note(f"{label}: infer warm-up {time.perf_counter() - t0:.1f} s, max |p - eager p| "
                 f"{float((got - expect).abs().max()):.1e}")
            infer = rate(lambda: infer_net(xi), INFER_BATCH)
        note(f"{label}: infer {infer:.1f} samples/s")
        best_train, best_infer = max(best_train, train), max(best_infer, infer)
    return torch.__version__.split("+")[0], best_train, best_infer


# --------------------------------------------------------------------------------------------
# ONNX graph (for ONNX Runtime and OpenVINO), built directly, with a NumPy check


def onnx_graph(np):
    """The inference network as ONNX bytes (NCHW, batch INFER_BATCH, output P(dog)), and its
    He-initialized weights as NumPy arrays."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights, nodes, cin, x = {}, [], 3, "x"
    for i, w in enumerate(WIDTHS):
        k = (rng.standard_normal((w, cin, 3, 3)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
        weights[f"conv{i}.w"], weights[f"conv{i}.b"] = k, np.zeros(w, np.float32)
        nodes += [
            helper.make_node("Conv", [x, f"conv{i}.w", f"conv{i}.b"], [f"c{i}"],
                             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
            helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        cin, x = w, f"p{i}"
    flat = cin * (IMAGE >> len(WIDTHS)) ** 2
    weights["fc1.w"] = (rng.standard_normal((FC1, flat)) * np.sqrt(2 / flat)).astype(np.float32)
    weights["fc1.b"] = np.zeros(FC1, np.float32)
    weights["fc2.w"] = (rng.standard_normal((1, FC1)) * np.sqrt(2 / FC1)).astype(np.float32)
    weights["fc2.b"] = np.zeros(1, np.float32)
    nodes += [
        helper.make_node("Flatten", [x], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc1.w", "fc1.b"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "fc2.w", "fc2.b"], ["logit"], transB=1),
        helper.make_node("Sigmoid", ["logit"], ["p"]),
    ]
    graph = helper.make_graph(
        nodes, "catdog",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [INFER_BATCH, 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [INFER_BATCH, 1])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
    onnx.checker.check_model(model)
    return model.SerializeToString(), weights


def numpy_forward(np, weights, x):
    """P(dog) for a few NCHW images, the plain way (im2col), to check an engine's output."""
    for i in range(len(WIDTHS)):
        k, b = weights[f"conv{i}.w"], weights[f"conv{i}.b"]
        n, c, h, w = x.shape
        pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.stack([pad[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], 2)
        out = np.einsum("nckhw,ock->nohw", cols, k.reshape(k.shape[0], c, 9)) + b[:, None, None]
        out = np.maximum(out, 0)
        x = out.reshape(n, -1, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    h = np.maximum(x.reshape(x.shape[0], -1) @ weights["fc1.w"].T + weights["fc1.b"], 0)
    return 1 / (1 + np.exp(-(h @ weights["fc2.w"].T + weights["fc2.b"])))


def check(np, got, x, weights):
    want = numpy_forward(np, weights, x[:2].astype(np.float64))
    diff = float(np.abs(got[:2] - want).max())
    if not diff < 1e-3:
        raise SystemExit(f"{ENGINE}: output differs from the NumPy reference by {diff:.2e}")
    return diff


def onnxruntime_engine():
    import numpy as np
    import onnxruntime as ort

    model, weights = onnx_graph(np)
    x = np.random.default_rng(1).random((INFER_BATCH, 3, IMAGE, IMAGE), dtype=np.float32)
    best = 0.0
    for spin in ("1", "0"):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = THREADS
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        run = lambda: sess.run(["p"], {"x": x})  # noqa: E731
        diff = check(np, run()[0], x, weights)
        run()
        r = rate(run, INFER_BATCH)
        note(f"onnxruntime {ort.__version__} spinning={spin}: infer {r:.1f} samples/s "
             f"(max |p - NumPy p| {diff:.1e})")
        best = max(best, r)
    return ort.__version__, None, best


def openvino_engine():
    import numpy as np
    import openvino as ov

    model, weights = onnx_graph(np)
    x = np.random.default_rng(1).random((INFER_BATCH, 3, IMAGE, IMAGE), dtype=np.float32)
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "catdog.onnx")
        with open(path, "wb") as f:
            f.write(model)
        net = core.read_model(path)
    best = 0.0
    for hint in ("LATENCY", "THROUGHPUT"):
        compiled = core.compile_model(net, "CPU", {
            "PERFORMANCE_HINT": hint,
            "INFERENCE_NUM_THREADS": THREADS,
            "INFERENCE_PRECISION_HINT": "f32",
        })
        requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        streams = compiled.get_property("NUM_STREAMS")
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        tensor = ov.Tensor(x)
        if requests <= 1:
            req = compiled.create_infer_request()
            got = req.infer({0: tensor})[0].copy()
            req.infer({0: tensor})
            r = rate(lambda: req.infer({0: tensor}), INFER_BATCH)
        else:
            got = compiled.create_infer_request().infer({0: tensor})[0].copy()
            queue = ov.AsyncInferQueue(compiled, requests)
            for _ in range(requests):
                queue.start_async({0: tensor})
            queue.wait_all()
            r = rate(lambda: queue.start_async({0: tensor}), INFER_BATCH, queue.wait_all)
        diff = check(np, got, x, weights)
        note(f"openvino {ov.__version__} {hint}: {streams} streams, {requests} requests, "
             f"precision {precision!s}: infer {r:.1f} samples/s (max |p - NumPy p| {diff:.1e})")
        best = max(best, r)
    return ov.__version__.split("-")[0], None, best


def main():
    try:
        run_engine()
    except ImportError as e:
        raise SystemExit(f"engines.py: {e}; install with: pip install torch numpy onnx "
                         "onnxruntime openvino")


def run_engine():
    if ENGINE == "torch-compile":
        version, train, infer = torch_engine(compiled=True)
    elif ENGINE == "torch-eager":
        version, train, infer = torch_engine(compiled=False)
    elif ENGINE == "onnxruntime":
        version, train, infer = onnxruntime_engine()
    else:
        version, train, infer = openvino_engine()
    train = "n/a" if train is None else f"{train:.1f}"
    print(f"engine={ENGINE} version={version} threads={THREADS} train={train} infer={infer:.1f}",
          flush=True)


if __name__ == "__main__":
    main()

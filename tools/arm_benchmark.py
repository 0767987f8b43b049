"""Latency of an ONNX model with onnxruntime on the CPU: for ARM boards (and any PC).

Self-contained: needs only Python 3, numpy and onnxruntime, so it can be copied to a
board next to a model exported by tools/export_onnx.py (see docs/arm.md):

    pip install numpy onnxruntime
    python arm_benchmark.py sn2_1.0x_224.onnx --threads 1 --json board.json

Inputs are standard-normal float noise of the model's input shape (what a backbone
sees after normalisation), except a float input named ``image`` (the whole detector
of tools/export_onnx.py --detector, which normalises inside), which gets a picture:
a smooth colour gradient with filled rectangles and discs, 0..255 (--feed picks
either). A dynamic batch dimension takes --batch, dynamic H and W of a 4-D input
take --shape. After --warmup runs, each of --runs runs is timed with
time.perf_counter; prints the median, min and max latency in ms and images per
second (batch / median), and writes them with the output shapes of the last run,
the machine, onnxruntime version and settings to --json.
"""
import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import onnxruntime as ort

ORT_TYPES = {
    'tensor(float)': np.float32, 'tensor(float16)': np.float16,
    'tensor(double)': np.float64, 'tensor(int64)': np.int64, 'tensor(int32)': np.int32,
    'tensor(uint8)': np.uint8, 'tensor(int8)': np.int8, 'tensor(bool)': np.bool_,
}


def make_session(model, threads=1):
    """A CPU onnxruntime session with ``threads`` intra-op and inter-op threads."""
    if not os.path.isfile(model):
        raise FileNotFoundError(f'model file not found: {model}')
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f'threads must be a positive int, got {threads!r}')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    return ort.InferenceSession(model, sess_options=options,
                                providers=['CPUExecutionProvider'])


def input_shape(name, dims, batch=None, shape=None):
    """Concrete shape of one input: dim 0 is the batch, the last two of a 4-D input
    are H and W. A fixed dim must agree with a requested value; a dynamic one takes it
    (a dynamic batch is 1 when none is requested).
    """
    wanted = {0: ('--batch', batch)}
    if len(dims) == 4 and shape is not None:
        wanted.update({2: ('--shape H', shape[0]), 3: ('--shape W', shape[1])})
    out = []
    for axis, dim in enumerate(dims):
        flag, value = wanted.get(axis, (None, None))
        if isinstance(dim, int) and dim > 0:
            if value is not None and value != dim:
                raise ValueError(f'input {name!r} has fixed dim {axis} = {dim} '
                                 f'(shape {dims}); {flag} {value} does not fit: export the '
                                 f'model at that size, or pass {flag.split()[0]} {dim}')
            out.append(dim)
        elif value is not None:
            out.append(value)
        elif axis == 0:
            out.append(1)
        else:
            hint = ('pass --shape H W' if len(dims) == 4 and axis in (2, 3) else
                    'only the batch (dim 0) and H, W of a 4-D input can be filled in')
            raise ValueError(f'input {name!r} has dynamic dim {axis} ({dim!r}, shape '
                             f'{dims}): {hint}')
    return out


FEEDS = ('auto', 'noise', 'picture')


def picture(dims, rng):
    """(N, 3, H, W) float pictures, values 0..255: a colour gradient between random
    corner colours with six filled rectangles or discs of random colour and size."""
    n, channels, h, w = dims
    y = np.linspace(0, 1, h).reshape(h, 1, 1)
    x = np.linspace(0, 1, w).reshape(1, w, 1)
    ys, xs = np.ogrid[:h, :w]
    out = np.empty((n, h, w, channels), np.float32)
    for image in out:
        corners = rng.uniform(0, 255, (4, channels))
        image[:] = ((1 - y) * (1 - x) * corners[0] + (1 - y) * x * corners[1]
                    + y * (1 - x) * corners[2] + y * x * corners[3])
        for _ in range(6):
            size = rng.uniform(0.1, 0.4) * min(h, w)
            cy, cx = rng.uniform(size / 2, h - size / 2), rng.uniform(size / 2, w - size / 2)
            if rng.random() < 0.5:
                mask = (np.abs(ys - cy) <= size / 2) & (np.abs(xs - cx) <= size / 2)
            else:
                mask = (ys - cy) ** 2 + (xs - cx) ** 2 <= (size / 2) ** 2
            image[mask] = rng.uniform(0, 255, channels)
    return out.transpose(0, 3, 1, 2).copy()


def make_inputs(session, batch=None, shape=None, seed=0, feed='auto'):
    """Feeds for every input of ``session`` (see ``input_shape``): ``feed`` 'noise'
    (standard normal), 'picture' (:func:`picture`, for 4-D float inputs with 3
    channels) or 'auto' (a picture for a float input named ``image``, else noise)."""
    if feed not in FEEDS:
        raise ValueError(f'feed must be one of {FEEDS}, got {feed!r}')
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise ValueError(f'batch must be a positive int, got {batch!r}')
    if shape is not None and (len(shape) != 2 or any(int(s) < 1 for s in shape)):
        raise ValueError(f'shape must be two positive ints H W, got {shape!r}')
    rng = np.random.default_rng(seed)
    feeds = {}
    for node in session.get_inputs():
        if node.type not in ORT_TYPES:
            raise ValueError(f'input {node.name!r} has type {node.type}; supported: '
                             f'{", ".join(ORT_TYPES)}')
        dtype = ORT_TYPES[node.type]
        dims = input_shape(node.name, node.shape, batch, shape)
        as_picture = feed == 'picture' or (feed == 'auto' and node.name == 'image')
        if np.issubdtype(dtype, np.floating) and as_picture:
            if len(dims) != 4 or dims[1] != 3:
                raise ValueError(f'input {node.name!r} has shape {dims}; a picture feed '
                                 f'needs (N, 3, H, W): pass --feed noise')
            feeds[node.name] = picture(dims, rng).astype(dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[node.name] = rng.standard_normal(dims).astype(dtype)
        else:
            feeds[node.name] = np.zeros(dims, dtype=dtype)
    return feeds


def time_runs(session, feeds, warmup=10, runs=50):
    """Latencies in ms of ``runs`` timed runs after ``warmup`` untimed ones, and the
    outputs of the last run."""
    if warmup < 0 or runs < 1:
        raise ValueError(f'need warmup >= 0 and runs >= 1, got {warmup} and {runs}')
    for _ in range(warmup):
        session.run(None, feeds)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        outputs = session.run(None, feeds)
        latencies.append((time.perf_counter() - start) * 1e3)
    return latencies, outputs


def summarize(latencies, batch):
    """Median, min and max latency (ms) and images per second at the median."""
    median = statistics.median(latencies)
    return dict(median_ms=median, min_ms=min(latencies), max_ms=max(latencies),
                images_per_s=batch * 1e3 / median)


def _cpu_name():
    """The CPU or board model from /proc/cpuinfo (Linux x86 'model name', Raspberry Pi
    'Model', older ARM kernels 'Hardware'), for where platform.processor() is empty."""
    try:
        with open('/proc/cpuinfo') as f:
            fields = [line.split(':', 1) for line in f.read().splitlines() if ':' in line]
    except OSError:
        return ''
    for key in ('model name', 'Model', 'Hardware'):
        for name, value in fields:
            if name.strip() == key and value.strip():
                return value.strip()
    return ''


def machine_info():
    """What ran the benchmark: architecture, processor, OS, Python, onnxruntime."""
    return dict(machine=platform.machine(), processor=platform.processor() or _cpu_name(),
                cpu_count=os.cpu_count(), system=platform.platform(),
                python=platform.python_version(), numpy=np.__version__,
                onnxruntime=ort.__version__)


def benchmark(model, threads=1, batch=None, shape=None, warmup=10, runs=50,
              feed='auto'):
    """Time ``model``; returns the summary, settings, input and output shapes and
    machine. ``batch`` None: the model's own batch (1 when it is dynamic)."""
    session = make_session(model, threads)
    feeds = make_inputs(session, batch, shape, feed=feed)
    batch = next(iter(feeds.values())).shape[0]
    latencies, outputs = time_runs(session, feeds, warmup, runs)
    names = [node.name for node in session.get_outputs()]
    result = dict(model=os.path.basename(model), **summarize(latencies, batch),
                  threads=threads, batch=batch, shape=list(shape) if shape else None,
                  feed=feed, inputs={name: list(x.shape) for name, x in feeds.items()},
                  outputs={name: list(np.shape(x)) for name, x in zip(names, outputs)},
                  warmup=warmup, runs=runs, latencies_ms=latencies)
    result.update(machine_info())
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='the .onnx file')
    parser.add_argument('--threads', type=int, default=1,
                        help='intra- and inter-op threads of onnxruntime (default 1)')
    parser.add_argument('--batch', type=int,
                        help="batch size (default: the model's, 1 when it is dynamic)")
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for dynamic H, W (default: from the model)')
    parser.add_argument('--warmup', type=int, default=10, help='untimed runs (default 10)')
    parser.add_argument('--runs', type=int, default=50, help='timed runs (default 50)')
    parser.add_argument('--feed', choices=FEEDS, default='auto',
                        help="input values: 'noise', 'picture' or 'auto' (a picture for "
                             "an input named image, else noise; default)")
    parser.add_argument('--json', metavar='OUT', help='write the results to this file')
    args = parser.parse_args(argv)
    try:
        result = benchmark(args.model, args.threads, args.batch, args.shape,
                           args.warmup, args.runs, args.feed)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f'{result["model"]}  inputs {result["inputs"]}  threads {args.threads}  '
          f'{result["machine"]} ({result["processor"] or "unknown CPU"}), '
          f'onnxruntime {result["onnxruntime"]}')
    print(f'latency ms: median {result["median_ms"]:.2f}  min {result["min_ms"]:.2f}  '
          f'max {result["max_ms"]:.2f}  ({args.runs} runs)  '
          f'{result["images_per_s"]:.2f} images/s')
    print(f'outputs of the last run: {result["outputs"]}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()

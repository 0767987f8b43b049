"""Latency of a model on the CPU with onnxruntime, ncnn or OpenVINO: for ARM boards
(and any PC), and the whole Light-Head R-CNN detector on ncnn.

Self-contained: needs only Python 3, numpy and the runtime it runs (onnxruntime, ncnn
or openvino, each imported only when used), so it can be copied to a board next to a
model exported by tools/export_onnx.py or tools/export_ncnn.py (docs/deploy.md). No torch,
mmdet or sn2_det. (tools/arm_benchmark.py is this file.)

    pip install numpy onnxruntime          # or: ncnn / openvino
    python arm_benchmark.py sn2_1.0x_224.onnx --threads 1 --json board.json
    python arm_benchmark.py sn2_1.0x_224.ncnn.param --runtime ncnn
    python arm_benchmark.py --compare onnxruntime=m.onnx ncnn=m.ncnn.param \\
        ncnn:fp16=m.ncnn.param openvino=m.onnx          # interleaved, with ratios

Runtimes: ``onnxruntime`` (.onnx; fp32, or int8 where the file is quantised),
``openvino`` (.onnx; ``:fp16`` sets its inference precision hint to f16, else f32),
``ncnn`` (.param with its .bin; ``:fp16`` turns on ncnn's fp16 storage, packing and
arithmetic: ncnn's own default, which it applies where the CPU has them, fp16
arithmetic on ARMv8.2-A cores such as the Cortex-A76 of most phones and a Raspberry
Pi 5; off by default here, so that every CPU computes in fp32).
Each result states the precision options in force. Every output is computed: ncnn's
extractor runs only what the requested blobs need, so every output blob is
extracted in each run.

An ncnn .param with a ``.post.npz`` beside it (tools/export_ncnn.py --detector) is the
whole detector: ncnn runs the dense part (preprocessing, backbone, thin map, RPN
convolutions) and numpy the rest (:class:`LightHeadPost`: proposals, NMS, PS-RoI
Align, the R-CNN subnet, class-wise NMS); outputs boxes, scores, labels as the ONNX
detector's.

--inputs IN.npz --outputs OUT.npz runs recorded inputs instead of timing (to check a
board's numerics against a PC's): IN.npz holds per model input a stack of samples
(S, *input shape); OUT.npz gets every output of sample i as ``<output>.<i>``.

    python arm_benchmark.py m.ncnn.param --inputs in.npz --outputs out.npz [--fp16]

Otherwise inputs are standard-normal float noise of the model's input shape (what a
backbone sees after normalisation), except a float input named ``image`` (a whole detector,
which normalises inside), which gets a picture: a smooth colour gradient with filled
rectangles and discs, 0..255 (--feed picks either). A dynamic batch dimension takes
--batch, dynamic H and W of a 4-D input take --shape. After --warmup runs, each of
--runs runs is timed with time.perf_counter; prints the median, min and max latency
in ms and images per second (batch / median), and writes them with the output shapes
of the last run, the machine, runtime version and settings to --json. --compare
times several models round-robin (run i of every model before run i + 1 of any), so
a shared machine's load falls on all alike, and prints each median's ratio to the
first.
"""
import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

RUNTIMES = ('onnxruntime', 'ncnn', 'openvino')
ORT_TYPES = {
    'tensor(float)': np.float32, 'tensor(float16)': np.float16,
    'tensor(double)': np.float64, 'tensor(int64)': np.int64, 'tensor(int32)': np.int32,
    'tensor(uint8)': np.uint8, 'tensor(int8)': np.int8, 'tensor(bool)': np.bool_,
}
FEEDS = ('auto', 'noise', 'picture')
DETECTOR_OUTPUTS = ('boxes', 'scores', 'labels')


def _check_threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f'threads must be a positive int, got {threads!r}')


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f'model file not found: {path}')


class OnnxRuntimeModel:
    """A CPU onnxruntime session with ``threads`` intra-op and inter-op threads."""
    runtime = 'onnxruntime'

    def __init__(self, path, threads=1, fp16=False):
        import onnxruntime as ort
        _check_file(path)
        _check_threads(threads)
        if fp16:
            raise ValueError('onnxruntime runs the file as stored (fp32, or int8 where '
                             'it is quantised): it has no fp16 option on the CPU')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        self.path, self.threads, self.version = path, threads, ort.__version__
        try:
            self.session = ort.InferenceSession(path, sess_options=options,
                                                providers=['CPUExecutionProvider'])
        except Exception as error:  # onnxruntime's own exception types, one per cause
            raise ValueError(f'{path} is not an ONNX model onnxruntime can load: '
                             f'{_first_line(error)}') from error
        self.inputs = [(i.name, i.shape, i.type) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.precision = dict(weights='as stored in the file (fp32, or int8 QDQ)',
                              graph_optimization='ORT_ENABLE_ALL (default)')

    def run(self, feeds):
        return self.session.run(None, feeds)


@functools.lru_cache(maxsize=None)
def _openvino_core():
    """The process's one OpenVINO Core, shared by every model. OpenVINO's CPU plugin
    gives the main thread a signal stack of its own while a Core's plugin is loaded
    and puts back the one it found when it unloads; with a Core per model, models
    freed in the order they were made left the thread on a freed stack, and the next
    Python signal handler (Ctrl-C, torch's SIGCHLD) died with SIGSEGV."""
    import openvino as ov
    return ov.Core()


class OpenVINOModel:
    """An OpenVINO CPU model compiled for latency: one stream, ``threads`` threads,
    inference precision f32 (``fp16``: f16)."""
    runtime = 'openvino'

    def __init__(self, path, threads=1, fp16=False):
        import openvino as ov
        _check_file(path)
        _check_threads(threads)
        core = _openvino_core()
        try:
            model = core.read_model(path)
        except Exception as error:  # OpenVINO raises RuntimeError for any bad file
            raise ValueError(f'{path} is not a model OpenVINO can read: '
                             f'{_first_line(error)}') from error
        config = {'INFERENCE_NUM_THREADS': threads, 'NUM_STREAMS': 1,
                  'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_PRECISION_HINT': 'f16' if fp16 else 'f32'}
        self.compiled = core.compile_model(model, 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.path, self.threads, self.version = path, threads, ov.get_version()
        self.inputs = []
        for port in model.inputs:
            dims = [d.get_length() if d.is_static else f'dim{i}'
                    for i, d in enumerate(port.get_partial_shape())]
            self.inputs.append((port.get_any_name(), dims,
                                _OV_TYPES.get(port.get_element_type().get_type_name(),
                                              port.get_element_type().get_type_name())))
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self.precision = {key: _ov_value(self.compiled.get_property(key)) for key in
                          ('INFERENCE_PRECISION_HINT', 'INFERENCE_NUM_THREADS',
                           'NUM_STREAMS', 'PERFORMANCE_HINT')}

    def run(self, feeds):
        result = self.request.infer(feeds)
        return [np.asarray(result[port]) for port in self.compiled.outputs]


def _ov_value(value):
    """An OpenVINO property as plain text (an element type by its name: f32, bf16)."""
    name = getattr(value, 'get_type_name', None)
    return name() if callable(name) else str(value)


_OV_TYPES = {'f32': 'tensor(float)', 'f16': 'tensor(float16)', 'f64': 'tensor(double)',
             'i64': 'tensor(int64)', 'i32': 'tensor(int32)', 'u8': 'tensor(uint8)',
             'i8': 'tensor(int8)', 'boolean': 'tensor(bool)'}
# ncnn's Option: fp16 packing, storage and arithmetic are on by default (used where the
# CPU has them: fp16 arithmetic on ARMv8.2-A and later), bf16 storage is off.
NCNN_FP16_OPTIONS = ('use_fp16_packed', 'use_fp16_storage', 'use_fp16_arithmetic')
NCNN_OFF_OPTIONS = ('use_bf16_storage',)


def read_ncnn_param(path):
    """The layers of an ncnn .param text file: (type, name, inputs, outputs, params)
    each, params a dict of key -> value strings."""
    with open(path) as f:
        lines = [line.split() for line in f.read().splitlines() if line.strip()]
    if not lines or lines[0] != ['7767517']:
        raise ValueError(f'{path} is not an ncnn .param text file (first line must be '
                         f'the magic number 7767517)')
    layers = []
    for words in lines[2:]:
        kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
        blobs = words[4:4 + n_in + n_out]
        params = dict(w.split('=', 1) for w in words[4 + n_in + n_out:])
        layers.append((kind, name, blobs[:n_in], blobs[n_in:], params))
    return layers


def ncnn_input_dims(layer):
    """(1, C, H, W) of an ncnn Input layer that states its shape (0=w 1=h 2=c), else
    dynamic dims named after the keys."""
    params = layer[4]
    w, h, c = (int(params[k]) if k in params else None for k in ('0', '1', '2'))
    return [1, c or 'c', h or 'h', w or 'w']


def _ncnn_cpu(ncnn):
    """What ncnn found the CPU able to do (fp16 arithmetic: ARM's asimdhp)."""
    probes = dict(cpu_fp16_arithmetic='cpu_support_arm_asimdhp',
                  cpu_neon='cpu_support_arm_neon')
    return {key: bool(getattr(ncnn, name)()) for key, name in probes.items()
            if hasattr(ncnn, name)}


class NcnnModel:
    """An ncnn network (``.param`` and the ``.bin`` beside it) on the CPU, ``threads``
    threads, fp16 packing / storage / arithmetic off (``fp16``: on, ncnn's own default,
    which it applies where the CPU has them) and bf16 storage off (ncnn's default).
    Batch 1: ncnn has no batch dimension."""
    runtime = 'ncnn'

    def __init__(self, path, threads=1, fp16=False):
        import ncnn
        _check_file(path)
        _check_threads(threads)
        if not path.endswith('.param'):
            raise ValueError(f'ncnn runs a .param file (with its .bin), got {path}')
        weights = path[:-len('.param')] + '.bin'
        _check_file(weights)
        layers = read_ncnn_param(path)
        self.net = ncnn.Net()
        options = self.net.opt
        options.use_vulkan_compute = False
        options.num_threads = threads
        for key in NCNN_FP16_OPTIONS:
            setattr(options, key, bool(fp16))
        for key in NCNN_OFF_OPTIONS:
            setattr(options, key, False)
        if self.net.load_param(path) != 0 or self.net.load_model(weights) != 0:
            raise ValueError(f'ncnn could not load {path} / {weights}')
        self._ncnn = ncnn
        self.path, self.threads, self.version = path, threads, ncnn.__version__
        self.inputs = [(layer[3][0], ncnn_input_dims(layer), 'tensor(float)')
                       for layer in layers if layer[0] == 'Input']
        self.blob_names = list(self.net.output_names())  # what run extracts
        self.output_names = self.blob_names
        self.precision = {key: bool(getattr(options, key)) for key in
                          NCNN_FP16_OPTIONS + NCNN_OFF_OPTIONS + (
                              'use_winograd_convolution', 'use_sgemm_convolution',
                              'use_packing_layout')}
        self.precision.update(_ncnn_cpu(ncnn))

    def run(self, feeds):
        extractor = self.net.create_extractor()
        mats = []  # ncnn.Mat reads the array's memory: keep both alive until extracted
        for name, _, _ in self.inputs:
            x = np.ascontiguousarray(feeds[name], dtype=np.float32)
            if x.shape[0] != 1:
                raise ValueError(f'ncnn runs batch 1, got input {name!r} of shape '
                                 f'{x.shape}')
            mats.append((x, self._ncnn.Mat(x[0]).clone()))
            extractor.input(name, mats[-1][1])
        outputs = []
        for name in self.blob_names:  # every output, or ncnn skips what they need
            status, mat = extractor.extract(name)
            if status != 0:
                raise RuntimeError(f'ncnn could not compute output {name!r} ({status})')
            outputs.append(np.array(mat)[None])
        return outputs


def post_path(param_path):
    """The numpy post-processing file of a dense detector .param."""
    return param_path[:-len('.param')] + '.post.npz'


class NcnnDetector(NcnnModel):
    """The whole Light-Head R-CNN: the dense .param in ncnn, its .post.npz in numpy;
    ``run`` returns boxes, scores, labels."""

    def __init__(self, path, threads=1, fp16=False):
        super().__init__(path, threads, fp16)
        self.post = LightHeadPost(post_path(path))
        self.dense_names = self.blob_names
        self.output_names = list(DETECTOR_OUTPUTS)

    def run(self, feeds):
        dense = dict(zip(self.blob_names, super().run(feeds)))
        return list(self.post(dense['rpn_cls'][0], dense['rpn_reg'][0], dense['thin'][0]))


def load_model(path, runtime=None, threads=1, fp16=False):
    """A model of ``runtime`` (default: ncnn for a .param, else onnxruntime); an ncnn
    .param with a .post.npz beside it is the whole detector."""
    runtime = runtime or ('ncnn' if path.endswith('.param') else 'onnxruntime')
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')
    if runtime == 'ncnn':
        detector = path.endswith('.param') and os.path.isfile(post_path(path))
        return (NcnnDetector if detector else NcnnModel)(path, threads, fp16)
    if path.endswith('.param'):
        raise ValueError(f'{runtime} runs an .onnx file, got {path}: use --runtime ncnn')
    return (OnnxRuntimeModel if runtime == 'onnxruntime' else OpenVINOModel)(
        path, threads, fp16)


def make_session(model, threads=1):
    """A CPU onnxruntime model (:class:`OnnxRuntimeModel`)."""
    return OnnxRuntimeModel(model, threads)


# --- the R-CNN part of Light-Head R-CNN in numpy -----------------------------------

def nms(boxes, order, iou_threshold, max_output):
    """Greedy NMS as mmcv's CPU kernel and ONNX NonMaxSuppression compute it: boxes
    (N, 4) float32 x1, y1, x2, y2 visited in ``order`` (best first); a box is dropped
    when its IoU with a kept one is above ``iou_threshold``; at most ``max_output``
    kept. Returns the kept indices in selection order."""
    order = np.asarray(order, np.int64)
    b = boxes[order]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    threshold, zero = np.float32(iou_threshold), np.float32(0)
    suppressed = np.zeros(len(order), bool)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        if len(kept) == max_output:
            break
        w = np.maximum(zero, np.minimum(x2[i], x2[i + 1:]) - np.maximum(x1[i], x1[i + 1:]))
        h = np.maximum(zero, np.minimum(y2[i], y2[i + 1:]) - np.maximum(y1[i], y1[i + 1:]))
        inter = w * h
        with np.errstate(divide='ignore', invalid='ignore'):
            suppressed[i + 1:] |= inter / (areas[i] + areas[i + 1:] - inter) > threshold
    return order[kept]


def decode(priors, deltas, means, stds, img_shape, max_ratio, clip_border):
    """mmdet's ``delta2bbox`` (DeltaXYWHBBoxCoder) in float32: boxes (N, 4)."""
    d = deltas * stds + means
    pxy = (priors[:, :2] + priors[:, 2:]) * np.float32(0.5)
    pwh = priors[:, 2:] - priors[:, :2]
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * np.exp(np.clip(d[:, 2:], -max_ratio, max_ratio))
    boxes = np.concatenate([gxy - gwh * np.float32(0.5), gxy + gwh * np.float32(0.5)], 1)
    if clip_border:
        h, w = img_shape
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    return boxes


def _axis_taps(start, bin_size, grid, bins, max_grid, size):
    """Bilinear taps along one axis (torchvision's bilinear_interpolate): indices and
    weights (K, bins, max_grid * 2); samples past a RoI's own grid weigh 0."""
    k = np.arange(bins, dtype=np.float32).reshape(1, bins, 1)
    g = np.arange(max_grid, dtype=np.float32).reshape(1, 1, max_grid)
    grid_f = grid.astype(np.float32).reshape(-1, 1, 1)
    bin_size = bin_size.reshape(-1, 1, 1)
    pos = start.reshape(-1, 1, 1) + k * bin_size + (g + np.float32(0.5)) * bin_size / grid_f
    inside = (pos >= -1.0) & (pos <= size) & (g < grid_f)
    pos = np.maximum(np.where(inside, pos, np.float32(0)), np.float32(0))
    low = np.minimum(np.floor(pos), np.float32(size - 1))
    pos = np.where(low >= size - 1, low, pos)
    frac = pos - low
    low = low.astype(np.int64)
    high = np.where(low >= size - 1, low, low + 1)
    weights = np.stack((1 - frac, frac), -1) * inside[..., None]
    n = start.shape[0]
    return (np.stack((low, high), -1).reshape(n, bins, -1),
            weights.astype(np.float32).reshape(n, bins, -1))


def ps_roi_align(feature, rois, out_channels, size, spatial_scale, sampling_ratio):
    """PS-RoI Align (R-FCN; Light-Head R-CNN Sec. 3.3) as sn2_det.ops.ps_roi_align
    computes it: feature (out_channels * size**2, H, W), rois (K, 4) x1, y1, x2, y2 in
    image pixels; returns (K, out_channels, size, size)."""
    _, height, width = feature.shape
    rois = rois.astype(np.float32) * np.float32(spatial_scale) - np.float32(0.5)
    x1, y1, x2, y2 = rois.T
    grids = []
    for extent in (y2 - y1, x2 - x1):
        if sampling_ratio > 0:
            grids.append(np.full(len(rois), sampling_ratio, np.int64))
        else:
            grids.append(np.maximum(np.ceil(extent / size), 1).astype(np.int64))
    if sampling_ratio > 0 or len(rois) == 0:
        max_h = max_w = max(sampling_ratio, 1)
    else:
        max_h, max_w = int(grids[0].max()), int(grids[1].max())
    ys, wy = _axis_taps(y1, (y2 - y1) / size, grids[0], size, max_h, height)
    xs, wx = _axis_taps(x1, (x2 - x1) / size, grids[1], size, max_w, width)
    # channels-last table: row ((i * size + j) * H + y) * W + x, channel c
    table = feature.reshape(out_channels, size * size * height * width).T
    plane = (np.arange(size)[:, None] * size + np.arange(size)).reshape(1, size, size, 1, 1)
    index = (plane * height + ys[:, :, None, :, None]) * width + xs[:, None, :, None, :]
    count = (grids[0] * grids[1]).astype(np.float32).reshape(-1, 1, 1, 1, 1)
    weight = wy[:, :, None, :, None] / count * wx[:, None, :, None, :]
    out = np.einsum('kijab,kijabc->kcij', weight, table[index], optimize=True)
    return out.astype(np.float32)


def _top(scores, k=None):
    """Indices of the ``k`` (default all) largest, equal scores by lower index."""
    order = np.argsort(-scores, kind='stable')
    return order if k is None else order[:k]


class LightHeadPost:
    """What follows the dense part of Light-Head R-CNN, read from the .post.npz that
    tools/export_ncnn.py --detector writes (every number from the config): the RPN's
    proposals (sigmoid scores, top nms_pre, decoding, min_bbox_size, NMS,
    max_per_img), PS-RoI Align, the R-CNN subnet (FC layers, softmax), decoding and
    mmdet's class-wise NMS above score_thr, the max_per_img best. Matches the ONNX
    detector's graph step by step (sn2_det/deploy/detector_graph.py)."""

    def __init__(self, path):
        _check_file(path)
        with np.load(path) as data:
            self.p = {key: data[key] for key in data.files}
        self.num_fcs = int(self.p['num_fcs'])

    def proposals(self, rpn_cls, rpn_reg):
        p = self.p
        logits = rpn_cls.transpose(1, 2, 0).reshape(-1)
        scores = np.float32(1) / (np.float32(1) + np.exp(-logits))
        deltas = rpn_reg.transpose(1, 2, 0).reshape(-1, 4)
        order = _top(scores, int(p['rpn_topk']))
        boxes = decode(p['anchors'][order], deltas[order], p['rpn_means'], p['rpn_stds'],
                       p['img_shape'], np.float32(p['max_ratio']), bool(p['rpn_clip']))
        candidates = np.arange(len(order))
        if float(p['min_bbox_size']) >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            candidates = candidates[(wh > np.float32(p['min_bbox_size'])).all(1)]
        keep = nms(boxes, candidates, float(p['rpn_iou']), int(p['rpn_max']))
        return boxes[keep]

    def rcnn(self, thin, proposals):
        p = self.p
        size, channels = int(p['roi_size']), int(p['roi_channels'])
        x = ps_roi_align(thin, proposals, channels, size, float(p['spatial_scale']),
                         int(p['sampling_ratio'])).reshape(len(proposals), -1)
        for i in range(self.num_fcs):
            x = np.maximum(x @ p[f'fc{i}_weight'].T + p[f'fc{i}_bias'], 0)
        logits = x @ p['cls_weight'].T + p['cls_bias']
        reg = x @ p['reg_weight'].T + p['reg_bias']
        logits = logits - logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        return probs.astype(np.float32), reg.astype(np.float32)

    def __call__(self, rpn_cls, rpn_reg, thin):
        p = self.p
        proposals = self.proposals(rpn_cls, rpn_reg)
        num_classes = int(p['num_classes'])
        if len(proposals) == 0:
            return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                    np.zeros(0, np.int64))
        probs, reg = self.rcnn(thin, proposals)
        regs = reg.shape[1] // 4
        priors = np.repeat(proposals, regs, 0)
        boxes = decode(priors, reg.reshape(-1, 4), p['rcnn_means'], p['rcnn_stds'],
                       p['img_shape'], np.float32(p['max_ratio']), bool(p['rcnn_clip']))
        boxes = boxes.reshape(len(proposals), regs, 4)
        boxes = np.broadcast_to(boxes, (len(proposals), num_classes, 4)) if regs == 1 \
            else boxes[:, :num_classes]
        scores = probs[:, :-1]
        valid = scores > np.float32(p['score_thr'])
        # mmcv's batched_nms: classes apart by offsets of (largest valid coordinate + 1)
        largest = boxes[valid].max() if valid.any() else np.float32(0)
        offsets = np.arange(num_classes, dtype=np.float32) * (np.float32(largest) + 1)
        flat = []
        for c in range(num_classes):
            candidates = np.flatnonzero(valid[:, c])
            candidates = candidates[_top(scores[candidates, c])]
            keep = nms(boxes[:, c] + offsets[c], candidates, float(p['rcnn_iou']),
                       int(p['rcnn_max']))
            flat.append(keep * num_classes + c)
        flat = np.concatenate(flat)
        flat_scores = scores.reshape(-1)[flat]
        order = np.lexsort((flat, -flat_scores))[:int(p['rcnn_max'])]
        flat = flat[order]
        return (boxes.reshape(-1, 4)[flat].astype(np.float32),
                scores.reshape(-1)[flat].astype(np.float32),
                (flat % num_classes).astype(np.int64))


# --- inputs and timing -------------------------------------------------------------

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
        elif len(dims) == 4 and axis == 1:
            out.append(3)  # an ncnn Input layer that does not state its channels
        else:
            hint = ('pass --shape H W' if len(dims) == 4 and axis in (2, 3) else
                    'only the batch (dim 0) and H, W of a 4-D input can be filled in')
            raise ValueError(f'input {name!r} has dynamic dim {axis} ({dim!r}, shape '
                             f'{dims}): {hint}')
    return out


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


def make_inputs(model, batch=None, shape=None, seed=0, feed='auto'):
    """Feeds for every input of ``model`` (see ``input_shape``): ``feed`` 'noise'
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
    for name, node_dims, node_type in model.inputs:
        if node_type not in ORT_TYPES:
            raise ValueError(f'input {name!r} has type {node_type}; supported: '
                             f'{", ".join(ORT_TYPES)}')
        dtype = ORT_TYPES[node_type]
        dims = input_shape(name, node_dims, batch, shape)
        as_picture = feed == 'picture' or (feed == 'auto' and name == 'image')
        if np.issubdtype(dtype, np.floating) and as_picture:
            if len(dims) != 4 or dims[1] != 3:
                raise ValueError(f'input {name!r} has shape {dims}; a picture feed '
                                 f'needs (N, 3, H, W): pass --feed noise')
            feeds[name] = picture(dims, rng).astype(dtype)
        elif np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(dims).astype(dtype)
        else:
            feeds[name] = np.zeros(dims, dtype=dtype)
    return feeds


def _check_counts(warmup, runs):
    if warmup < 0 or runs < 1:
        raise ValueError(f'need warmup >= 0 and runs >= 1, got {warmup} and {runs}')


def _timed(model, feeds):
    start = time.perf_counter()
    outputs = model.run(feeds)
    return (time.perf_counter() - start) * 1e3, outputs


def time_runs(model, feeds, warmup=10, runs=50):
    """Latencies in ms of ``runs`` timed runs after ``warmup`` untimed ones, and the
    outputs of the last run."""
    return time_interleaved([(model, feeds)], warmup, runs)[0]


def time_interleaved(jobs, warmup=10, runs=50):
    """(model, feeds) jobs timed round-robin: the warm-up runs of each, then run i of
    every job before run i + 1 of any. Returns (latencies, last outputs) per job."""
    _check_counts(warmup, runs)
    for model, feeds in jobs:
        for _ in range(warmup):
            model.run(feeds)
    latencies = [[] for _ in jobs]
    outputs = [None] * len(jobs)
    for _ in range(runs):
        for i, (model, feeds) in enumerate(jobs):
            ms, outputs[i] = _timed(model, feeds)
            latencies[i].append(ms)
    return list(zip(latencies, outputs))


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
    """What ran the benchmark: architecture, processor, OS, Python, numpy."""
    return dict(machine=platform.machine(), processor=platform.processor() or _cpu_name(),
                cpu_count=os.cpu_count(), system=platform.platform(),
                python=platform.python_version(), numpy=np.__version__)


def _result(model, feeds, latencies, outputs, label, **settings):
    batch = next(iter(feeds.values())).shape[0]
    result = dict(model=os.path.basename(model.path), label=label, runtime=model.runtime,
                  **{model.runtime: model.version}, precision=model.precision,
                  **summarize(latencies, batch), threads=model.threads, batch=batch,
                  inputs={name: list(x.shape) for name, x in feeds.items()},
                  outputs={name: list(np.shape(x))
                           for name, x in zip(model.output_names, outputs)},
                  **settings, latencies_ms=latencies)
    result.update(machine_info())
    return result


def benchmark(model, threads=1, batch=None, shape=None, warmup=10, runs=50,
              feed='auto', runtime=None, fp16=False):
    """Time ``model`` (a path); returns the summary, settings, precision options,
    input and output shapes and machine. ``batch`` None: the model's own batch (1
    when it is dynamic)."""
    loaded = load_model(model, runtime, threads, fp16)
    feeds = make_inputs(loaded, batch, shape, feed=feed)
    latencies, outputs = time_runs(loaded, feeds, warmup, runs)
    return _result(loaded, feeds, latencies, outputs, loaded.runtime + (':fp16' if fp16
                                                                          else ''),
                   shape=list(shape) if shape else None, feed=feed, warmup=warmup,
                   runs=runs, fp16=fp16)


def read_inputs(path, model):
    """The recorded samples of ``path`` (.npz, no pickles) for ``model``: a list of
    feeds, one per sample. Every model input must be in the file, all with the same
    number of samples, each of the input's fixed dims."""
    _check_file(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    names = [name for name, _, _ in model.inputs]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise ValueError(f'{path} lacks input(s) {missing} of {model.path}; it holds '
                         f'{sorted(arrays)}')
    counts = {name: len(arrays[name]) for name in names}
    if len(set(counts.values())) != 1 or not all(counts.values()):
        raise ValueError(f'{path}: every input needs the same positive number of '
                         f'samples (axis 0), got {counts}')
    for name, dims, node_type in model.inputs:
        shape = arrays[name].shape[1:]
        if len(shape) != len(dims) or any(isinstance(d, int) and d > 0 and d != s
                                          for d, s in zip(dims, shape)):
            raise ValueError(f'{path}: input {name!r} of {model.path} has shape {dims}, '
                             f'the file\'s samples {list(shape)}')
        arrays[name] = arrays[name].astype(ORT_TYPES.get(node_type, np.float32))
    return [{name: arrays[name][i] for name in names} for i in range(counts[names[0]])]


def run_recorded(model, inputs, outputs, runtime=None, threads=1, fp16=False):
    """Every output of ``model`` (a path) for each recorded sample of ``inputs`` (see
    :func:`read_inputs`), written to ``outputs`` (.npz) as ``<output>.<i>``; no
    timing. Returns what ran where: model, runtime, version, precision, samples,
    machine."""
    loaded = load_model(model, runtime, threads, fp16)
    samples = read_inputs(inputs, loaded)
    results = {}
    for i, feeds in enumerate(samples):
        for name, value in zip(loaded.output_names, loaded.run(feeds)):
            results[f'{name}.{i}'] = np.asarray(value)
    np.savez(outputs, **results)
    result = dict(model=os.path.basename(loaded.path), runtime=loaded.runtime,
                  **{loaded.runtime: loaded.version}, precision=loaded.precision,
                  threads=loaded.threads, fp16=fp16, samples=len(samples),
                  inputs=os.path.basename(inputs), outputs=os.path.basename(outputs),
                  output_names=list(loaded.output_names))
    result.update(machine_info())
    return result


def parse_spec(spec):
    """``RUNTIME[:fp16]=PATH`` (or a bare PATH: ncnn for .param, else onnxruntime) ->
    (runtime, fp16, path)."""
    if '=' not in spec:
        return ('ncnn' if spec.endswith('.param') else 'onnxruntime'), False, spec
    name, path = spec.split('=', 1)
    runtime, _, option = name.partition(':')
    if runtime not in RUNTIMES or option not in ('', 'fp16'):
        raise ValueError(f'a --compare entry is RUNTIME[:fp16]=PATH with RUNTIME one of '
                         f'{RUNTIMES}, got {spec!r}')
    return runtime, option == 'fp16', path


def compare(specs, threads=1, batch=None, shape=None, warmup=10, runs=50, feed='auto'):
    """Several models (``parse_spec`` entries) timed interleaved in this process; each
    result with ``ratio``: its median over the first entry's."""
    jobs, labels = [], []
    for spec in specs:
        runtime, fp16, path = parse_spec(spec)
        loaded = load_model(path, runtime, threads, fp16)
        jobs.append((loaded, make_inputs(loaded, batch, shape, feed=feed)))
        labels.append(spec.split('=', 1)[0] if '=' in spec else runtime)
    results = []
    for (loaded, feeds), label, (latencies, outputs) in zip(
            jobs, labels, time_interleaved(jobs, warmup, runs)):
        results.append(_result(loaded, feeds, latencies, outputs, label, feed=feed,
                               warmup=warmup, runs=runs, interleaved=len(jobs)))
    for result in results:
        result['ratio'] = result['median_ms'] / results[0]['median_ms']
    return results


def _print(result):
    print(f'{result["label"]}: {result["model"]}  inputs {result["inputs"]}  threads '
          f'{result["threads"]}  {result["machine"]} '
          f'({result["processor"] or "unknown CPU"}), {result["runtime"]} '
          f'{result[result["runtime"]]}')
    print(f'  precision: {result["precision"]}')
    ratio = f'  ratio {result["ratio"]:.3f}' if 'ratio' in result else ''
    print(f'  latency ms: median {result["median_ms"]:.2f}  min {result["min_ms"]:.2f}  '
          f'max {result["max_ms"]:.2f}  ({result["runs"]} runs)  '
          f'{result["images_per_s"]:.2f} images/s{ratio}')
    print(f'  outputs of the last run: {result["outputs"]}')


def _fail(message):
    """A failed check as the sn2_det tools print it: one line, exit status 2 (this
    file runs without sn2_det, so its checks raise ValueError / FileNotFoundError)."""
    sys.stderr.write(f'error: {" ".join(str(message).split())}\n')
    sys.exit(2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', nargs='?', help='the .onnx or ncnn .param file')
    parser.add_argument('--runtime', choices=RUNTIMES,
                        help='default: ncnn for a .param, else onnxruntime')
    parser.add_argument('--fp16', action='store_true',
                        help="ncnn: fp16 storage, packing and arithmetic; openvino: f16 "
                             "inference precision: each runtime's own default on an ARM "
                             "core with fp16 arithmetic (default here: fp32 for both)")
    parser.add_argument('--compare', nargs='+', metavar='RUNTIME[:fp16]=PATH',
                        help='time these interleaved and print ratios to the first')
    parser.add_argument('--threads', type=int, default=1,
                        help='threads of the runtime (default 1)')
    parser.add_argument('--batch', type=int,
                        help="batch size (default: the model's, 1 when it is dynamic)")
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for dynamic H, W (default: from the model)')
    parser.add_argument('--warmup', type=int, default=10, help='untimed runs (default 10)')
    parser.add_argument('--runs', type=int, default=50, help='timed runs (default 50)')
    parser.add_argument('--feed', choices=FEEDS, default='auto',
                        help="input values: 'noise', 'picture' or 'auto' (a picture for "
                             "an input named image, else noise; default)")
    parser.add_argument('--inputs', metavar='IN.npz',
                        help='run these recorded samples instead of timing (per input '
                             'name a stack (S, *input shape)); needs --outputs')
    parser.add_argument('--outputs', metavar='OUT.npz',
                        help="with --inputs: write every output of sample i as "
                             "'<output>.<i>' here")
    parser.add_argument('--json', metavar='OUT', help='write the results to this file')
    args = parser.parse_args(argv)
    if (args.model is None) == (args.compare is None):
        parser.error('give a MODEL or --compare SPEC..., not both')
    if args.compare and (args.runtime or args.fp16):
        parser.error('with --compare, put the runtime and :fp16 in each entry')
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        _fail(f'--json {args.json}: the folder '
              f'{os.path.dirname(os.path.abspath(args.json))} does not exist')
    if (args.inputs is None) != (args.outputs is None) or (args.inputs and args.compare):
        parser.error('--inputs and --outputs go together, with a MODEL (not --compare)')
    try:
        if args.inputs:
            result = run_recorded(args.model, args.inputs, args.outputs, args.runtime,
                                  args.threads, args.fp16)
        elif args.compare:
            result = compare(args.compare, args.threads, args.batch, args.shape,
                             args.warmup, args.runs, args.feed)
        else:
            result = benchmark(args.model, args.threads, args.batch, args.shape,
                               args.warmup, args.runs, args.feed, args.runtime, args.fp16)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    if args.inputs:
        print(f'{result["runtime"]} {result[result["runtime"]]}: {result["model"]} on '
              f'{result["samples"]} samples of {args.inputs}, {result["machine"]} '
              f'({result["processor"] or "unknown CPU"}), threads {result["threads"]}')
        print(f'  precision: {result["precision"]}')
        print(f'wrote {args.outputs}')
    for one in (result if args.compare else [] if args.inputs else [result]):
        _print(one)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()

"""Throughput of detectors and backbones, the protocol of the paper's Table 7.

Images per second of the whole detector at batch 4 and 800x1200 (the paper's GPU
protocol): inputs are already decoded, normalised and padded (pre-processing
excluded); the forward pass, proposal generation, NMS and box decoding are timed
(post-processing included). After warm-up, each run is one batch; we report the
median and the spread of ``runs`` runs. On GPU, CUDA events time the runs and the
device is synchronised; on CPU, ``time.perf_counter``.

Optional modes are separate rows, never mixed into the paper-protocol 'fp32' row:
'deploy' (the inference mode, :func:`sn2_det.engine.inference_mode.deploy`: Conv+BN
folded, channels-last), 'channels_last' (the memory format alone), 'fp16' (autocast,
CUDA only), 'compile' (``torch.compile`` of the backbone) and 'deploy_compile' (both:
the deployed backbone compiled). ``compare`` times several models interleaved,
round by round, so that drifts of a noisy machine hit all of them alike, and
reports ratios.
"""
import contextlib
import copy
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from mmdet.structures import DetDataSample

from ..apis.detector_checkpoint import PREDICTOR_LAYERS, load_detector_checkpoint
from ..engine.inference_mode import deploy
from ..utils.config import build_in_mmdet_scope, read_config
from ..utils.validation import check_choice
from ..utils.errors import ConfigError

MODES = ('fp32', 'deploy', 'channels_last', 'fp16', 'compile', 'deploy_compile')
CHANNELS_LAST_MODES = ('channels_last', 'deploy', 'deploy_compile')


def _padded(size: int, divisor: int = 32) -> int:
    return (size + divisor - 1) // divisor * divisor


def build_detector(config, device: str = 'cpu', backbone_only: bool = False,
                   checkpoint: Optional[str] = None):
    """A detector (or its backbone) from a config path (``mmdet::...`` too) or Config,
    in eval mode.

    Without ``checkpoint`` the weights are random except the final predictors of
    the heads (:data:`PREDICTOR_LAYERS`), which are zeroed: then every backbone gets the
    same proposals (the anchors, equal objectness) and uniform class scores, so the
    post-processing work is identical across backbones (all proposals and classes
    reach NMS: the worst case), instead of varying with each random model.
    """
    cfg = read_config(config) if isinstance(config, str) else copy.deepcopy(config)
    cfg.model.backbone.init_cfg = None
    model = build_in_mmdet_scope(cfg.model)
    if checkpoint:
        load_detector_checkpoint(model, checkpoint, config, purpose='evaluate')
    else:
        zero_predictors(model)
    model = model.backbone if backbone_only else model
    return model.to(device).eval()


def zero_predictors(model) -> int:
    """Zero the weights and biases of the heads' final predictors; returns how many."""
    count = 0
    for name, module in model.named_modules():
        if name.split('.')[-1] in PREDICTOR_LAYERS:
            for param in module.parameters():
                param.data.zero_()
            count += 1
    return count


def make_inputs(batch: int, shape: Sequence[int], device: str, mode: str = 'fp32'):
    """A normalised, padded batch and its data samples (what the preprocessor gives);
    channels-last for the modes whose model is."""
    h, w = shape
    ph, pw = _padded(h), _padded(w)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, ph, pw, generator=generator).to(device)
    if mode in CHANNELS_LAST_MODES:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                           pad_shape=(ph, pw), batch_input_shape=(ph, pw),
                                           scale_factor=(1.0, 1.0)))
               for _ in range(batch)]
    return inputs, samples


def prepare_model(model, mode: str, device: str):
    check_choice('mode', mode, MODES)
    if mode == 'fp16' and not device.startswith('cuda'):
        raise ConfigError("mode 'fp16' needs a CUDA device")
    if mode in ('deploy', 'deploy_compile'):
        model = deploy(model)
    if mode == 'channels_last':
        model = model.to(memory_format=torch.channels_last)
    if mode in ('compile', 'deploy_compile'):
        target = model.backbone if hasattr(model, 'backbone') else model
        compiled = torch.compile(target)
        if hasattr(model, 'backbone'):
            model.backbone = compiled
        else:
            model = compiled
    return model


def make_runner(model, batch: int, shape, mode: str = 'fp32',
                device: str = 'cpu') -> Callable[[], None]:
    """A zero-argument callable running one timed batch of ``model`` in ``mode``."""
    model = prepare_model(model, mode, device)
    inputs, samples = make_inputs(batch, shape, device, mode)
    autocast = (lambda: torch.autocast('cuda', dtype=torch.float16)) if mode == 'fp16' \
        else contextlib.nullcontext
    is_detector = hasattr(model, 'roi_head') or hasattr(model, 'bbox_head')

    def run():
        with torch.no_grad(), autocast():
            if is_detector:
                model.predict(inputs, samples, rescale=False)
            else:
                model(inputs)
    return run


def time_runs(run: Callable[[], None], runs: int, device: str = 'cpu') -> List[float]:
    """Seconds of each of ``runs`` calls (CUDA events and synchronisation on GPU)."""
    times = []
    for _ in range(runs):
        if device.startswith('cuda'):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    return times


def summarise(times: Sequence[float], batch: int) -> Dict[str, float]:
    median = statistics.median(times)
    return dict(img_per_s=batch / median, median_ms=median * 1000,
                min_ms=min(times) * 1000, max_ms=max(times) * 1000,
                spread_pct=100 * (max(times) - min(times)) / median, runs=len(times))


def benchmark(config, batch: int = 4, shape=(800, 1200), runs: int = 10, warmup: int = 3,
              mode: str = 'fp32', device: str = 'cpu', backbone_only: bool = False,
              checkpoint: Optional[str] = None) -> dict:
    """Throughput of one config (or of its backbone alone) in one mode."""
    run = make_runner(build_detector(config, device, backbone_only, checkpoint), batch,
                      shape, mode, device)
    time_runs(run, warmup, device)
    return dict(summarise(time_runs(run, runs, device), batch), mode=mode, batch=batch,
                shape=list(shape), device=device, backbone_only=backbone_only)


def time_interleaved(runners: Sequence[Callable[[], None]], rounds: int, warmup: int,
                     device: str = 'cpu') -> List[List[float]]:
    """Seconds of each runner's calls, one call of each per round after ``warmup``
    calls of each, so that a drifting machine slows all of them alike."""
    for run in runners:
        time_runs(run, warmup, device)
    times = [[] for _ in runners]
    for _ in range(rounds):
        for run, bucket in zip(runners, times):
            bucket.extend(time_runs(run, 1, device))
    return times


def compare(configs: Sequence, batch: int = 4, shape=(800, 1200), rounds: int = 10,
            warmup: int = 2, mode: str = 'fp32', device: str = 'cpu',
            backbone_only: bool = False) -> List[dict]:
    """Time ``configs`` interleaved (one batch of each per round); ratios to the first."""
    runners = [make_runner(build_detector(c, device, backbone_only), batch, shape, mode,
                           device) for c in configs]
    times = time_interleaved(runners, rounds, warmup, device)
    rows = [dict(summarise(t, batch), config=str(c), mode=mode, batch=batch,
                 shape=list(shape), device=device, backbone_only=backbone_only)
            for c, t in zip(configs, times)]
    for row in rows:
        row['ratio_to_first'] = row['img_per_s'] / rows[0]['img_per_s']
    return rows

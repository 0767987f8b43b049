"""PS-RoI Align alone, its implementations timed interleaved (issue 6).

The input is a Light-Head R-CNN's thin map (10 x 7 x 7 = 490 channels at stride 32 of
the padded image) and ``rois_per_image`` random boxes an image, 16 to 512 pixels a
side, inside the image (what 1000 test proposals look like). Rows: torchvision's
kernel where it imports (first, so the ratios read against it), our fused PyTorch
path ('torch') and its ``index_select`` form ('gather', the ONNX export's).
"""
import math
from typing import Dict, List, Sequence

import torch

from ..ops.ps_roi_align import _torchvision, ps_roi_align
from .benchmark import summarise, time_interleaved

CHANNELS, BINS, STRIDE, SAMPLING = 10, 7, 32, 2


def random_rois(batch: int, shape: Sequence[int], per_image: int,
                generator: torch.Generator) -> torch.Tensor:
    """(batch * per_image, 5) boxes (image index, x1, y1, x2, y2) inside ``shape``."""
    h, w = shape
    side = torch.empty(batch * per_image, 2).uniform_(16, 512, generator=generator)
    side = torch.minimum(side, torch.tensor([float(w), float(h)]))
    corner = torch.rand(batch * per_image, 2, generator=generator) * (
        torch.tensor([float(w), float(h)]) - side)
    index = torch.arange(batch).repeat_interleave(per_image).float()[:, None]
    return torch.cat([index, corner, corner + side], 1)


def compare_ps_roi_align(batch: int = 4, shape: Sequence[int] = (800, 1200),
                         rois_per_image: int = 1000, device: str = 'cpu',
                         rounds: int = 10, warmup: int = 2) -> List[Dict]:
    """One row per implementation: img/s (batches of ``batch`` images), median ms,
    spread, ``ratio_to_first``, and the largest absolute difference from the first."""
    g = torch.Generator().manual_seed(0)
    h, w = (math.ceil(s / STRIDE) for s in shape)
    feat = torch.randn(batch, CHANNELS * BINS * BINS, h, w, generator=g).to(device)
    rois = random_rois(batch, shape, rois_per_image, g).to(device)
    impls = (['torchvision'] if _torchvision() is not None else []) + ['torch', 'gather']

    def runner(impl):
        def run():
            with torch.no_grad():
                return ps_roi_align(feat, rois, BINS, 1 / STRIDE, SAMPLING, impl=impl)
        return run

    runs = [runner(impl) for impl in impls]
    outputs = [run() for run in runs]
    times = time_interleaved(runs, rounds, warmup, device)
    rows = [dict(summarise(t, batch), impl=impl, rois=batch * rois_per_image,
                 max_abs_diff=float((out - outputs[0]).abs().max()), device=device)
            for impl, t, out in zip(impls, times, outputs)]
    for row in rows:
        row['ratio_to_first'] = row['img_per_s'] / rows[0]['img_per_s']
    return rows

"""Position-sensitive RoI Align and RoI pooling (R-FCN; Light-Head R-CNN Sec. 3.3).

Input (N, C*kh*kw, H, W); RoIs (K, 5) as (batch index, x1, y1, x2, y2) in input-image
pixels; output (K, C, kh, kw). Output channel c of bin (i, j) reads input channel
(c*kh + i)*kw + j: the layout of Light-Head R-CNN and ``torchvision.ops``.

``ps_roi_align`` follows torchvision's definition exactly (box corners scaled and
shifted by half a pixel, no rounding; ``sampling_ratio`` samples per bin side, or
``ceil(roi size / bins)`` when <= 0; bilinear samples outside [-1, size] count as 0).
The one difference: a RoI of zero size gets one sample per bin here, where
torchvision divides 0 by 0. Two keys give the kernel of the Light-Head R-CNN
authors' code (``lib_psalign_pooling``): ``aligned=False`` drops the half-pixel
shift of the box corners, and ``reduction='max'`` takes a bin's largest sample
instead of their mean, the gradient going to that (arg-max) sample only; it needs
a fixed ``sampling_ratio`` (the authors' 2). Their bilinear weights at the map's
border are not copied: samples are interpolated as above in both reductions.

The pure-PyTorch path is vectorised: bilinear weights are separable in y and x, so
each bin is a bag of samples*4 weighted taps into a channels-last view of the input,
summed by one ``embedding_bag``; ``impl='gather'`` is the same sum as an
``index_select`` and a reduction, which ONNX export uses (both are tested against a
plain loop). It runs on CPU and GPU, has autograd, and exports to ONNX (with a fixed
``sampling_ratio``). Where torchvision imports (CUDA machines) its kernel is used.
"""
from typing import Tuple, Union

import torch

from ..utils.errors import ConfigError

Size = Union[int, Tuple[int, int]]
IMPLS = ('auto', 'torch', 'gather', 'torchvision')
REDUCTIONS = ('avg', 'max')
_torchvision_ops = None


def _pair(output_size: Size) -> Tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ConfigError(f'output_size must be a positive int or a pair of them, '
                          f'got {output_size!r}')
    return size


def _check(input: torch.Tensor, rois: torch.Tensor, output_size: Size):
    kh, kw = _pair(output_size)
    if input.dim() != 4:
        raise ConfigError(f'input must be (N, C*kh*kw, H, W), got shape {tuple(input.shape)}')
    if input.shape[1] % (kh * kw):
        raise ConfigError(f'input channels ({input.shape[1]}) must be divisible by '
                          f'output_size[0] * output_size[1] = {kh * kw}')
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ConfigError(f'rois must be (K, 5) rows of (batch index, x1, y1, x2, y2), '
                          f'got shape {tuple(rois.shape)}')
    return kh, kw


def _torchvision():
    """torchvision.ops if it loads (it does not with the CPU-only torch), else None."""
    global _torchvision_ops
    if _torchvision_ops is None:
        try:
            import torchvision.ops as ops
            ops.ps_roi_align  # noqa: B018
            _torchvision_ops = ops
        except Exception:  # an ImportError, or a broken _C extension
            _torchvision_ops = False
    return _torchvision_ops or None


def _use_torchvision(impl: str, input: torch.Tensor, torchvision_defined: bool) -> bool:
    if impl not in IMPLS:
        raise ConfigError(f'impl must be one of {IMPLS}, got {impl!r}')
    if impl in ('torch', 'gather') or torch.onnx.is_in_onnx_export() \
            or torch.jit.is_tracing():
        return False
    if impl == 'torchvision':
        if not torchvision_defined:
            raise ConfigError("impl='torchvision' computes reduction='avg' with "
                              "aligned=True only; use impl 'auto', 'torch' or 'gather'")
        if _torchvision() is None:
            raise RuntimeError('impl="torchvision" needs torchvision, which does not '
                               'import here')
        return True
    return torchvision_defined and input.is_cuda and _torchvision() is not None


def check_reduction(reduction: str, aligned: bool, sampling_ratio: int) -> None:
    """``reduction`` and ``aligned`` valid, and a fixed ``sampling_ratio`` for 'max'."""
    if reduction not in REDUCTIONS:
        raise ConfigError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    if not isinstance(aligned, bool):
        raise ConfigError(f'aligned must be True or False, got {aligned!r}')
    if reduction == 'max' and (isinstance(sampling_ratio, bool)
                               or not isinstance(sampling_ratio, int) or sampling_ratio < 1):
        raise ConfigError(f"reduction='max' needs a fixed sampling_ratio >= 1 (the "
                          f"authors' kernel: 2), got {sampling_ratio!r}")


def ps_roi_align(input: torch.Tensor, rois: torch.Tensor, output_size: Size,
                 spatial_scale: float = 1.0, sampling_ratio: int = -1,
                 impl: str = 'auto', reduction: str = 'avg',
                 aligned: bool = True) -> torch.Tensor:
    """Position-sensitive RoI Align; see the module docstring. Returns (K, C, kh, kw).

    ``impl``: 'torch' (the fused PyTorch path), 'gather' (its ``index_select`` form,
    what ONNX export uses), 'torchvision' (its kernel), or 'auto': torchvision's
    kernel on CUDA where it imports, else 'torch' ('gather' under ONNX export).
    ``reduction``: 'avg' (torchvision's) or 'max' (the authors' kernel);
    ``aligned``: shift the box corners by half a pixel (torchvision) or not (authors).
    """
    kh, kw = _check(input, rois, output_size)
    check_reduction(reduction, aligned, sampling_ratio)
    if _use_torchvision(impl, input, reduction == 'avg' and aligned):
        return _torchvision().ps_roi_align(input, rois.to(input.dtype), (kh, kw),
                                           spatial_scale, sampling_ratio)
    fused = impl != 'gather' and not torch.onnx.is_in_onnx_export()
    return _ps_roi_align_torch(input, rois, kh, kw, spatial_scale, sampling_ratio, fused,
                               reduction == 'max', 0.5 if aligned else 0.0)


def _axis_taps(start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor,
               bins: int, max_grid: int, size: int):
    """Bilinear taps along one axis: indices (K, bins, G, 2) and weights (same shape).

    Implements torchvision's bilinear_interpolate per axis; samples past a RoI's own
    grid (adaptive sampling) get weight 0.
    """
    k = torch.arange(bins, device=start.device, dtype=start.dtype).view(1, bins, 1)
    g = torch.arange(max_grid, device=start.device, dtype=start.dtype).view(1, 1, max_grid)
    grid_f = grid.to(start.dtype).view(-1, 1, 1)
    bin_size = bin_size.view(-1, 1, 1)
    pos = start.view(-1, 1, 1) + k * bin_size + (g + 0.5) * bin_size / grid_f
    inside = (pos >= -1.0) & (pos <= size) & (g < grid_f)
    pos = torch.where(inside, pos, torch.zeros_like(pos)).clamp(min=0)  # NaN-safe
    low = pos.floor().clamp(max=size - 1)
    pos = torch.where(low >= size - 1, low, pos)
    frac = pos - low
    low = low.long()
    high = torch.where(low >= size - 1, low, low + 1)
    weights = torch.stack((1 - frac, frac), -1) * inside.unsqueeze(-1).to(start.dtype)
    return torch.stack((low, high), -1), weights


def _sampling_grid(extent: torch.Tensor, bins: int, sampling_ratio: int) -> torch.Tensor:
    if sampling_ratio > 0:
        return torch.full_like(extent, sampling_ratio, dtype=torch.long)
    return torch.ceil(extent / bins).long().clamp(min=1)


def _ps_roi_align_torch(input, rois, kh, kw, spatial_scale, sampling_ratio, fused,
                        take_max=False, offset=0.5):
    n, cin, height, width = input.shape
    channels = cin // (kh * kw)
    # Sample positions and bilinear weights in float32 at least: in half precision a
    # box corner at x = 35 would be off by up to 0.02 pixels (mixed-precision training)
    rois = rois.to(torch.promote_types(input.dtype, torch.float32))
    batch = rois[:, 0].long()
    x1, y1, x2, y2 = (rois[:, 1:] * spatial_scale - offset).unbind(1)
    grid_h = _sampling_grid(y2 - y1, kh, sampling_ratio)
    grid_w = _sampling_grid(x2 - x1, kw, sampling_ratio)
    if sampling_ratio > 0 or rois.shape[0] == 0:
        max_h = max_w = max(sampling_ratio, 1)
    else:
        max_h, max_w = int(grid_h.max()), int(grid_w.max())
    ys, wy = _axis_taps(y1, (y2 - y1) / kh, grid_h, kh, max_h, height)
    xs, wx = _axis_taps(x1, (x2 - x1) / kw, grid_w, kw, max_w, width)

    # Rows of a (N*kh*kw*H*W, C) channels-last table: ((b*kh + i)*kw + j)*H*W + y*W + x.
    # Each bin is a bag of Gh*2 x Gw*2 taps, laid out (y taps, x taps) so that the
    # index and weight products broadcast over two trailing dims only.
    table = input.reshape(n, channels, kh * kw, height * width).permute(0, 2, 3, 1)
    table = table.reshape(-1, channels)
    i = torch.arange(kh, device=input.device).view(1, kh, 1, 1, 1)
    j = torch.arange(kw, device=input.device).view(1, 1, kw, 1, 1)
    plane = (batch.view(-1, 1, 1, 1, 1) * kh + i) * kw + j
    rows = (plane * height + ys.view(-1, kh, 1, max_h * 2, 1)) * width
    index = rows + xs.view(-1, 1, kw, 1, max_w * 2)  # (K, kh, kw, Gh*2, Gw*2)
    count = 1 if take_max else (grid_h * grid_w).to(wy.dtype).view(-1, 1, 1, 1, 1)
    weight = (wy.view(-1, kh, 1, max_h * 2, 1) / count) * wx.view(-1, 1, kw, 1, max_w * 2)
    if take_max:  # one bag of 2 x 2 taps per sample, (K, kh, kw, Gh, Gw, 2, 2)
        def per_sample(t):
            return t.reshape(-1, kh, kw, max_h, 2, max_w, 2).transpose(4, 5)
        index, weight = per_sample(index), per_sample(weight)
        bags, taps = rois.shape[0] * kh * kw * max_h * max_w, 4
    else:
        bags, taps = rois.shape[0] * kh * kw, max_h * max_w * 4
    index, weight = index.reshape(bags, taps), weight.reshape(bags, taps).to(input.dtype)
    if fused:  # no (bags, taps, C) intermediate
        out = torch.nn.functional.embedding_bag(index, table, per_sample_weights=weight,
                                                mode='sum')
    else:
        out = (table.index_select(0, index.reshape(-1)).view(bags, taps, channels)
               * weight.unsqueeze(-1)).sum(1)
    if take_max:  # max over a bin's samples; autograd sends the gradient to the arg-max
        out = out.view(-1, max_h * max_w, channels).max(1).values
    return out.view(-1, kh, kw, channels).permute(0, 3, 1, 2).contiguous()


def ps_roi_pool(input: torch.Tensor, rois: torch.Tensor, output_size: Size,
                spatial_scale: float = 1.0) -> torch.Tensor:
    """Position-sensitive RoI pooling (R-FCN), the plain pooling of the ablation.

    Box corners are scaled and rounded, the RoI is at least 1x1 pixel, bin (i, j)
    averages the whole pixels [floor(i*bin), ceil((i+1)*bin)) offset by the RoI start
    and clipped to the map; an empty bin is 0. (torchvision's CPU forward clips to
    size - 1, its backward to size; we clip to size in both.) Sums come from a
    float64 summed-area table, so the op is vectorised, differentiable and exportable.
    """
    kh, kw = _check(input, rois, output_size)
    n, cin, height, width = input.shape
    channels = cin // (kh * kw)
    rois = rois.to(input.dtype)
    batch = rois[:, 0].long()
    corners = torch.round(rois[:, 1:] * spatial_scale)
    x1, y1, x2, y2 = corners.unbind(1)
    roi_w = (x2 - x1).clamp(min=1)
    roi_h = (y2 - y1).clamp(min=1)

    def edges(start, extent, bins, size):
        k = torch.arange(bins, device=input.device, dtype=input.dtype)
        bin_size = (extent / bins).unsqueeze(1)
        lo = torch.floor(k * bin_size) + start.unsqueeze(1)
        hi = torch.ceil((k + 1) * bin_size) + start.unsqueeze(1)
        return lo.clamp(0, size).long(), hi.clamp(0, size).long()

    h_lo, h_hi = edges(y1, roi_h, kh, height)  # (K, kh)
    w_lo, w_hi = edges(x1, roi_w, kw, width)   # (K, kw)
    sat = torch.zeros(n, cin, height + 1, width + 1, dtype=torch.float64,
                      device=input.device)
    sat[:, :, 1:, 1:] = input.double().cumsum(2).cumsum(3)
    sat = sat.view(n, channels, kh, kw, (height + 1) * (width + 1))
    b = batch.view(-1, 1, 1, 1)
    c = torch.arange(channels, device=input.device).view(1, -1, 1, 1)
    i = torch.arange(kh, device=input.device).view(1, 1, kh, 1)
    j = torch.arange(kw, device=input.device).view(1, 1, 1, kw)

    def corner(hs, ws):
        pos = hs.view(-1, 1, kh, 1) * (width + 1) + ws.view(-1, 1, 1, kw)
        return sat[b, c, i, j, pos]

    total = corner(h_hi, w_hi) - corner(h_lo, w_hi) - corner(h_hi, w_lo) + corner(h_lo, w_lo)
    area = ((h_hi - h_lo).view(-1, 1, kh, 1) * (w_hi - w_lo).view(-1, 1, 1, kw))
    out = torch.where(area > 0, total / area.clamp(min=1), torch.zeros_like(total))
    return out.to(input.dtype)

"""The whole Light-Head R-CNN detector as one exportable graph, post-processing included,
and its dense part alone (for ncnn).

:class:`ExportableDetector` wraps a built LightHeadRCNN for one fixed input size.
Its input is one image, ``image`` (1, 3, H, W) float32, raw pixel values (0..255)
in the channel order the data pipeline loads (BGR for mmdet's ``LoadImageFromFile``),
already resized to H x W as the test pipeline resizes it. Inside the graph: the data
preprocessor's channel flip, mean/std normalisation and padding to
``pad_size_divisor``; the backbone, the thin-map neck and the RPN head; the RPN's
proposals (scores, top ``nms_pre``, box decoding with the RPN coder's clamping and
clipping, ``min_bbox_size``, NMS, ``max_per_img``); PS-RoI Align of the proposals,
the bbox head, softmax, box decoding and clipping, per-class NMS above
``score_thr`` and the ``max_per_img`` best. Outputs ``boxes`` (N, 4) as x1, y1, x2,
y2 in input pixels, ``scores`` (N,) and ``labels`` (N,) int64, N <= max_per_img, in
descending score order: mmdet's ``predict(..., rescale=False)``; divide the boxes by
the resize factor for the original image. All numbers come from the config's
``test_cfg``, the heads' coders and the data preprocessor.

Data-dependent sizes stay in the graph: the anchor count is fixed by the input
size, so the RPN's top-k is a constant ``min(nms_pre, anchors)``; the number of
proposals and detections comes from ONNX ``NonMaxSuppression`` (opset 11+), emitted
by :class:`NonMaxSuppression`, whose PyTorch forward is mmcv's NMS kernel; the final
top ``max_per_img`` runs over a vector padded to at least that length.

Equal scores: mmdet ranks boxes with ``torch.sort``, which does not keep the order
of equal values, and onnxruntime's NMS pops equal scores in heap order. Here every
ranking breaks ties by the lower index (ONNX ``TopK``'s rule; ``sort(stable=True)``
in PyTorch), and NMS is given these ranks in place of the scores, so PyTorch and
onnxruntime select the same boxes; where mmdet's own order of tied scores differs,
the detections may differ from mmdet's (the matching rule's mmAP criterion covers this).

:class:`DenseDetector` is the part without data-dependent sizes: preprocessing,
backbone, thin map and the RPN's convolutions, for runtimes (ncnn) that leave the
proposals, NMS, PS-RoI Align and the R-CNN subnet to code outside the graph.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import nms
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox

from ..models.detectors import LightHeadRCNN
from .models import check_shape
from ..utils.errors import ConfigError

OUTPUT_NAMES = ('boxes', 'scores', 'labels')
# split_thr only makes mmcv run big NMS jobs class by class: the same boxes survive
NMS_KEYS = ('type', 'iou_threshold', 'split_thr')
RPN_KEYS = ('nms_pre', 'max_per_img', 'nms', 'min_bbox_size')
RCNN_KEYS = ('score_thr', 'nms', 'max_per_img')
# mmdet's DeltaXYWHBBoxCoder.decode default (16 / 1000): widths and heights scale by
# at most exp(|log(0.016)|).
WH_RATIO_CLIP = 16 / 1000


class NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (box format x1, y1, x2, y2): boxes (B, N, 4), scores
    (B, C, N); returns (M, 3) int64 rows (batch, class, box), per batch and class in
    selection order. Boxes scoring ``<= score_threshold`` are dropped, at most
    ``max_output`` are kept per batch and class; a box is suppressed by a kept one
    whose IoU with it is above ``iou_threshold``. The PyTorch forward runs mmcv's
    NMS kernel, whose IoU arithmetic and ``>`` test are onnxruntime's. The two order
    equal scores differently (a sort that is not stable, a heap), so give it distinct
    scores."""

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, max_output: int,
                iou_threshold: float, score_threshold: float) -> torch.Tensor:
        rows = [torch.zeros(0, 3, dtype=torch.long)]
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                candidates = (scores[b, c] > score_threshold).nonzero().flatten()
                if candidates.numel() == 0:
                    continue
                _, keep = nms(boxes[b, candidates].contiguous(),
                              scores[b, c, candidates].contiguous(), iou_threshold)
                keep = candidates[keep[:max_output]]
                rows.append(torch.stack([torch.full_like(keep, b), torch.full_like(keep, c),
                                         keep], 1))
        return torch.cat(rows).to(boxes.device)

    @staticmethod
    def symbolic(g, boxes, scores, max_output, iou_threshold, score_threshold):
        return g.op('NonMaxSuppression', boxes, scores,
                    g.op('Constant', value_t=torch.tensor([max_output], dtype=torch.long)),
                    g.op('Constant', value_t=torch.tensor([iou_threshold],
                                                          dtype=torch.float)),
                    g.op('Constant', value_t=torch.tensor([score_threshold],
                                                          dtype=torch.float)))


def _sort(values: torch.Tensor, k: Optional[int] = None):
    """The ``k`` (default all) largest along the last dim in descending order, equal
    values by lower index: ONNX ``TopK`` when exporting (the exporter has no stable
    sort), ``sort(stable=True)`` otherwise."""
    if torch.onnx.is_in_onnx_export():
        return values.topk(values.shape[-1] if k is None else k)
    ordered, order = values.sort(descending=True, stable=True)
    return (ordered, order) if k is None else (ordered[..., :k], order[..., :k])


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """Per row, N for the highest score down to 1 for the lowest, equal scores ranked
    by lower index first (float, exact below 2**24 columns)."""
    order = _sort(scores)[1]
    n = scores.shape[-1]
    descending = torch.arange(n, 0, -1, dtype=scores.dtype).expand_as(scores)
    return torch.zeros_like(scores).scatter(-1, order, descending)


def _check_keys(where: str, cfg: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(f'{where} has {unknown}, which the ONNX export does not '
                          f'implement; supported keys: {list(allowed)}')


def _test_cfg(detector: nn.Module, stage: str, allowed: Sequence[str],
              required: Sequence[str]) -> dict:
    cfg = (detector.test_cfg or {}).get(stage)
    if cfg is None:
        raise ConfigError(f'the detector has no test_cfg.{stage} to export')
    _check_keys(f'test_cfg.{stage}', cfg, allowed)
    missing = [key for key in required if key not in cfg]
    if missing:
        raise ConfigError(f'test_cfg.{stage} lacks {missing}, which the ONNX export needs')
    return cfg


def _nms_iou(where: str, nms_cfg: dict) -> float:
    _check_keys(where, nms_cfg, NMS_KEYS)
    if nms_cfg.get('type', 'nms') != 'nms':
        raise ConfigError(f"{where}.type must be 'nms' for the ONNX export, got "
                          f'{nms_cfg["type"]!r}')
    if 'iou_threshold' not in nms_cfg:
        raise ConfigError(f'{where} lacks iou_threshold, which the ONNX export needs')
    return float(nms_cfg['iou_threshold'])


def _decode(coder, priors: torch.Tensor, deltas: torch.Tensor,
            img_shape: Tuple[int, int]) -> torch.Tensor:
    """``DeltaXYWHBBoxCoder.decode`` of one image (mmdet's ``delta2bbox``): its
    ``decode`` switches to a removed mmdet 2 module while exporting."""
    return delta2bbox(priors, deltas, coder.means, coder.stds, img_shape, WH_RATIO_CLIP,
                      coder.clip_border, coder.add_ctr_clamp, coder.ctr_clamp)


class ExportableDetector(nn.Module):
    """A LightHeadRCNN (eval mode) as one graph for input size ``shape`` (H, W); see
    the module docstring. ``forward(image)`` returns ``(boxes, scores, labels)``."""

    def __init__(self, detector: nn.Module, shape: Sequence[int]):
        super().__init__()
        if not isinstance(detector, LightHeadRCNN):
            raise ConfigError(f'the ONNX detector export handles LightHeadRCNN, got '
                              f'{type(detector).__name__}')
        self.detector = detector.eval()
        self.img_shape = check_shape(shape)
        pre = detector.data_preprocessor
        if getattr(pre, 'batch_augments', None):
            raise ConfigError('data_preprocessor.batch_augments are not exported')
        self.flip = bool(pre._channel_conversion)
        self.normalize = bool(pre._enable_normalize)
        if self.normalize:
            self.register_buffer('mean', pre.mean.detach().clone().view(1, -1, 1, 1))
            self.register_buffer('std', pre.std.detach().clone().view(1, -1, 1, 1))
        divisor = int(pre.pad_size_divisor)
        h, w = self.img_shape
        self.pad = (0, -w % divisor, 0, -h % divisor)
        self.pad_value = float(pre.pad_value)

        rpn = _test_cfg(detector, 'rpn', RPN_KEYS, ('nms', 'max_per_img'))
        rcnn = _test_cfg(detector, 'rcnn', RCNN_KEYS, RCNN_KEYS)
        self.rpn_iou = _nms_iou('test_cfg.rpn.nms', rpn['nms'])
        self.rcnn_iou = _nms_iou('test_cfg.rcnn.nms', rcnn['nms'])
        self.nms_pre = int(rpn.get('nms_pre', -1))
        self.min_bbox_size = rpn.get('min_bbox_size', -1)
        self.score_thr = float(rcnn['score_thr'])
        self.rpn_max, self.rcnn_max = int(rpn['max_per_img']), int(rcnn['max_per_img'])
        for key, value in (('test_cfg.rpn.max_per_img', self.rpn_max),
                           ('test_cfg.rcnn.max_per_img', self.rcnn_max)):
            if value < 1:
                raise ConfigError(f'{key} must be a positive int for the ONNX export, '
                                  f'got {value}')
        bbox_head = detector.roi_head.bbox_head
        for name, coder in (('rpn_head', detector.rpn_head.bbox_coder),
                            ('roi_head.bbox_head', bbox_head.bbox_coder)):
            if type(coder) is not DeltaXYWHBBoxCoder or coder.use_box_type:
                raise ConfigError(f'{name}.bbox_coder must be DeltaXYWHBBoxCoder (no box '
                                  f'type) for the ONNX export')
        if bbox_head.custom_cls_channels or not bbox_head.with_reg:
            raise ConfigError('roi_head.bbox_head needs softmax classification and box '
                              'regression for the ONNX export')

        with torch.no_grad():
            rpn_x, _ = detector._split(self._preprocess(torch.zeros(1, 3, h, w)))
        if len(rpn_x) != 1 or detector.rpn_head.prior_generator.num_levels != 1:
            raise ConfigError('the ONNX export handles an RPN on one feature level, got '
                              f'{len(rpn_x)}')
        anchors = detector.rpn_head.prior_generator.grid_priors(
            [rpn_x[0].shape[-2:]], device='cpu')[0]
        self.register_buffer('anchors', anchors)
        count = anchors.shape[0]
        self.rpn_topk = count if self.nms_pre <= 0 else min(self.nms_pre, count)
        self.eval()

    def train(self, mode: bool = True):
        """Always in eval mode (BN statistics frozen), whatever ``mode``: exporters
        and callers that restore a training mode must not switch the detector."""
        return super().train(False)

    def _preprocess(self, image: torch.Tensor) -> torch.Tensor:
        if self.flip:
            image = image[:, [2, 1, 0]]
        if self.normalize:
            image = (image - self.mean) / self.std
        return F.pad(image, self.pad, value=self.pad_value)

    def _proposals(self, rpn_x) -> torch.Tensor:
        """RPN boxes (P, 4), P <= test_cfg.rpn.max_per_img, best first."""
        head = self.detector.rpn_head
        cls_scores, bbox_preds = head(rpn_x)
        logits = cls_scores[0][0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[:, :-1]
        deltas = bbox_preds[0][0].permute(1, 2, 0).reshape(-1, 4)
        scores, order = _sort(scores.reshape(-1), self.rpn_topk)
        boxes = _decode(head.bbox_coder, self.anchors[order], deltas[order], self.img_shape)
        rank = torch.arange(self.rpn_topk, 0, -1, dtype=boxes.dtype)
        if self.min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            valid = (wh > self.min_bbox_size).all(1)
            rank = torch.where(valid, rank, torch.zeros_like(rank))
        keep = NonMaxSuppression.apply(boxes[None], rank[None, None], self.rpn_max,
                                       self.rpn_iou, 0.0)
        return boxes[keep[:, 2]]

    def _detections(self, rcnn_x, proposals: torch.Tensor):
        """The R-CNN subnet and mmdet's ``multiclass_nms`` on the proposals."""
        bbox_head = self.detector.roi_head.bbox_head
        rois = torch.cat([torch.zeros_like(proposals[:, :1]), proposals], 1)
        out = self.detector.roi_head._bbox_forward(rcnn_x, rois)
        probs = F.softmax(out['cls_score'], dim=-1)
        num_rois, num_classes = probs.shape[0], probs.shape[1] - 1
        regs = out['bbox_pred'].shape[1] // 4
        priors = proposals[:, None].expand(-1, regs, -1).reshape(-1, 4)
        boxes = _decode(bbox_head.bbox_coder, priors, out['bbox_pred'].reshape(-1, 4),
                        self.img_shape)
        boxes = boxes.view(num_rois, regs, 4).expand(-1, num_classes, -1)  # (P, C, 4)
        scores = probs[:, :-1]
        valid = scores > self.score_thr

        # mmcv's batched_nms: classes apart by offsets of (largest valid coordinate + 1)
        lowest = torch.finfo(boxes.dtype).min
        masked = torch.where(valid[..., None], boxes, torch.full_like(boxes, lowest))
        largest = torch.cat([masked.reshape(-1, 4), masked.new_full((1, 4), lowest)]).max()
        offsets = torch.arange(num_classes, dtype=boxes.dtype) * (largest + 1)
        class_boxes = boxes.transpose(0, 1) + offsets.view(-1, 1, 1)  # (C, P, 4)
        rank = torch.where(valid, _ranks(scores.t()).t(), torch.zeros_like(scores))
        keep = NonMaxSuppression.apply(class_boxes, rank.t()[:, None], self.rcnn_max,
                                       self.rcnn_iou, 0.0)
        flat = keep[:, 2] * num_classes + keep[:, 0]

        # the rcnn_max best kept (box, class) pairs, equal scores by flat index; the
        # padding makes the top-k constant however few pairs there are
        pad = self.rcnn_max
        flat_scores = torch.cat([scores.reshape(-1), scores.new_zeros(pad)])
        kept = torch.zeros_like(flat_scores).scatter(
            0, flat, torch.ones_like(flat, dtype=scores.dtype))
        top_scores, top = _sort(torch.where(kept > 0, flat_scores, -torch.ones_like(kept)),
                                self.rcnn_max)
        chosen = top_scores >= 0  # kept scores are probabilities, the rest -1
        top = top[chosen]
        flat_boxes = torch.cat([boxes.reshape(-1, 4), boxes.new_zeros(pad, 4)])
        return flat_boxes[top], top_scores[chosen], top % num_classes

    def forward(self, image: torch.Tensor):
        rpn_x, rcnn_x = self.detector._split(self._preprocess(image))
        return self._detections(rcnn_x, self._proposals(rpn_x))


class DenseDetector(nn.Module):
    """The part of a LightHeadRCNN without data-dependent sizes, for input size
    ``shape``: the data preprocessor (channel flip and mean/std as one fixed 1x1
    convolution, padding to ``pad_size_divisor``), the backbone, the thin-map neck and
    the RPN's convolutions. Input ``image`` (1, 3, H, W) raw pixels as for
    :class:`ExportableDetector`; outputs ``rpn_cls`` (1, A, H', W') logits,
    ``rpn_reg`` (1, 4A, H', W') deltas and ``thin`` (1, C k k, H'', W''), the thin
    feature map PS-RoI Align reads. ``graph`` is the ExportableDetector of the same
    detector and size, whose checks and numbers the post-processing uses."""

    OUTPUTS = ('rpn_cls', 'rpn_reg', 'thin')

    def __init__(self, detector: nn.Module, shape: Sequence[int]):
        super().__init__()
        self.graph = ExportableDetector(detector, shape)
        self.detector = self.graph.detector
        if not self.detector.rpn_head.use_sigmoid_cls:
            raise ConfigError('rpn_head.loss_cls.use_sigmoid must be True for the ncnn '
                              'detector (one logit per anchor)')
        weight = torch.eye(3)
        bias = torch.zeros(3)
        if self.graph.flip:
            weight = weight[[2, 1, 0]]
        if self.graph.normalize:
            std, mean = self.graph.std.view(3), self.graph.mean.view(3)
            weight, bias = weight / std[:, None], -mean / std
        self.preprocess = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.preprocess.weight.copy_(weight.view(3, 3, 1, 1))
            self.preprocess.bias.copy_(bias)
        self.eval()

    def train(self, mode: bool = True):
        """Always in eval mode, as :class:`ExportableDetector`."""
        return super().train(False)

    def forward(self, image: torch.Tensor):
        x = F.pad(self.preprocess(image), self.graph.pad, value=self.graph.pad_value)
        rpn_x, rcnn_x = self.detector._split(x)
        cls_scores, bbox_preds = self.detector.rpn_head(rpn_x)
        return cls_scores[0], bbox_preds[0], rcnn_x[0]

"""The exact top-k NMS against mmcv's batched_nms / mmdet's multiclass_nms, and the
two heads built on it against mmdet's own heads in a whole detector."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.ops import batched_nms
from mmdet.models.layers import multiclass_nms
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config

import sn2_det  # noqa: F401
from sn2_det.ops.nms import topk_batched_nms, topk_multiclass_nms

ROOT = Path(__file__).resolve().parents[1]
NMS = dict(type='nms', iou_threshold=0.7)


def _boxes(n, size=600.0, max_side=200.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * max_side + 2], 1)


def _clustered_boxes(n, clusters=40, seed=0):
    """Jittered copies of a few boxes: NMS keeps few, so the prefix has to grow."""
    g = torch.Generator().manual_seed(seed)
    centres = _boxes(clusters, seed=seed)[torch.arange(n) % clusters]
    return centres + torch.rand(n, 4, generator=g) * 6


def _distinct_scores(n, seed=0):
    """Scores without ties: the order of equal scores is NMS's only freedom."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randperm(n, generator=g).float() + 1) / (n + 1)


@pytest.mark.parametrize('n, max_num, classes, clustered', [
    (6000, 1000, 1, False),   # the RPN at test: 6000 candidates, 1000 kept
    (3000, 100, 5, False),    # several classes (offsets inside batched_nms)
    (3000, 100, 1, True),     # few survive: the prefix grows to every candidate
    (20000, 100, 1, True),    # ... through several sizes
    (150, 100, 1, False),     # fewer candidates than the first prefix
])
def test_topk_batched_nms_equals_batched_nms_cut(n, max_num, classes, clustered):
    boxes = _clustered_boxes(n) if clustered else _boxes(n)
    scores = _distinct_scores(n)
    idxs = torch.arange(n) % classes
    ref_dets, ref_keep = batched_nms(boxes, scores, idxs, NMS)
    dets, keep = topk_batched_nms(boxes, scores, idxs, NMS, max_num)
    assert torch.equal(keep, ref_keep[:max_num]) and torch.equal(dets, ref_dets[:max_num])
    assert len(keep) == min(max_num, len(ref_keep))


def test_overlaps_at_the_threshold_are_decided_as_on_all_candidates():
    """Class offsets come from the largest coordinate of all candidates, not of the
    prefix: a far, low-scored box changes them, and with them the float rounding of
    IoUs within rounding of the threshold (here A and B, IoU ~ 0.5)."""
    nms = dict(type='nms', iou_threshold=0.5)
    for x in torch.linspace(10 / 3 - 1e-3, 10 / 3 + 1e-3, 201).tolist():
        boxes = torch.tensor([[0, 0, 10, 10], [x, 0, 10 + x, 10], [50, 50, 60, 60],
                              [70, 70, 80, 80], [3e4, 3e4, 3e4 + 10, 3e4 + 10]])
        scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.1])
        idxs = torch.tensor([1, 1, 0, 0, 0])
        for cfg in (nms, dict(nms, split_thr=3), dict(nms, class_agnostic=True)):
            ref_dets, ref_keep = batched_nms(boxes, scores, idxs, cfg)
            dets, keep = topk_batched_nms(boxes, scores, idxs, cfg, 2)
            assert torch.equal(keep, ref_keep[:2]) and torch.equal(dets, ref_dets[:2])


@pytest.mark.parametrize('cfg', [dict(split_thr=100), dict(class_agnostic=True)])
def test_topk_batched_nms_follows_mmcvs_per_class_and_agnostic_paths(cfg):
    n = 3000
    boxes, scores, idxs = _boxes(n), _distinct_scores(n), torch.arange(n) % 7
    nms = dict(NMS, **cfg)
    ref_dets, ref_keep = batched_nms(boxes, scores, idxs, nms)
    dets, keep = topk_batched_nms(boxes, scores, idxs, nms, 300)
    assert torch.equal(keep, ref_keep[:300]) and torch.equal(dets, ref_dets[:300])


def test_topk_batched_nms_keeps_all_without_a_limit_and_defers_soft_nms():
    boxes, scores = _boxes(500), _distinct_scores(500)
    idxs = torch.zeros(500, dtype=torch.long)
    assert torch.equal(topk_batched_nms(boxes, scores, idxs, NMS, -1)[1],
                       batched_nms(boxes, scores, idxs, NMS)[1])
    soft = dict(type='soft_nms', iou_threshold=0.3, min_score=0.05)
    ref = batched_nms(boxes, scores, idxs, soft)
    got = topk_batched_nms(boxes, scores, idxs, soft, 100)
    assert torch.equal(got[0], ref[0][:100]) and torch.equal(got[1], ref[1][:100])


@pytest.mark.parametrize('agnostic', [True, False])
@pytest.mark.parametrize('score_thr', [0.001, 0.05, 0.99])
def test_topk_multiclass_nms_equals_mmdet(agnostic, score_thr):
    rois, classes = 1000, 80
    g = torch.Generator().manual_seed(1)
    scores = torch.softmax(torch.randn(rois, classes + 1, generator=g) * 2, 1)
    boxes = _boxes(rois) if agnostic else torch.cat(
        [_boxes(rois, seed=c) for c in range(classes)], 1)
    nms = dict(type='nms', iou_threshold=0.5)
    ref_dets, ref_labels = multiclass_nms(boxes, scores, score_thr, nms, 100)
    dets, labels = topk_multiclass_nms(boxes, scores, score_thr, nms, 100)
    assert torch.equal(dets, ref_dets) and torch.equal(labels, ref_labels)
    assert len(dets) == (0 if score_thr == 0.99 else 100)


def _sorted_rows(pred):
    rows = torch.cat([pred.scores[:, None], pred.labels[:, None].float(), pred.bboxes], 1)
    rows = rows.numpy()
    return rows[np.lexsort(rows.T[::-1])]


def test_topk_heads_give_mmdet_heads_detections():
    cfg = Config.fromfile(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'))
    assert cfg.model.rpn_head.type == 'TopKNMSRPNHead'
    assert cfg.model.roi_head.bbox_head.type == 'TopKNMSBBoxHead'
    cfg.model.test_cfg.rpn.update(nms_pre=1000, max_per_img=300)  # 300 RoIs, 100 kept
    torch.manual_seed(0)
    ours = MODELS.build(cfg.model)
    ours.init_weights()
    with torch.no_grad():  # distinct scores: no ties at the max_per_img cut
        ours.roi_head.bbox_head.fc_cls.weight.normal_(std=0.5)
    plain_cfg = copy.deepcopy(cfg.model)
    plain_cfg.rpn_head.type = 'RPNHead'
    plain_cfg.roi_head.bbox_head.type = 'ConvFCBBoxHead'
    plain = MODELS.build(plain_cfg)
    plain.load_state_dict(ours.state_dict())
    sample = DetDataSample(metainfo=dict(img_shape=(512, 512), ori_shape=(1024, 768),
                                         scale_factor=(0.5, 0.75)))  # boxes rescaled
    batch = dict(inputs=[torch.randint(0, 255, (3, 512, 512), dtype=torch.uint8)],
                 data_samples=[sample])
    results = []
    for model in (ours.eval(), plain.eval()):
        with torch.no_grad():
            data = model.data_preprocessor(copy.deepcopy(batch))
            results.append(model(**data, mode='predict')[0].pred_instances)
            proposals = model.rpn_head.predict(model.extract_feat(data['inputs'])[:-1],
                                               data['data_samples'])[0]
            results.append(proposals)
    assert len(results[0]) == 100 and len(results[1]) == 300  # the limits bind
    np.testing.assert_array_equal(_sorted_rows(results[0]), _sorted_rows(results[2]))
    np.testing.assert_array_equal(_sorted_rows(results[1]), _sorted_rows(results[3]))


def test_nms_benchmark_rows_and_patterns():
    from sn2_det.analysis.op_benchmark import compare_nms, nms_inputs
    for pattern in ('random', 'clustered'):
        rows = compare_nms(pattern, rounds=1, warmup=0, rois=60, classes=5,
                           rpn_candidates=400)
        assert [(r['stage'], r['impl']) for r in rows] == [
            ('R-CNN class-wise NMS', 'mmdet'), ('R-CNN class-wise NMS', 'sn2_det top-k'),
            ('RPN NMS', 'mmdet'), ('RPN NMS', 'sn2_det top-k')]
        assert all(r['same_output'] for r in rows) and rows[0]['ratio_to_first'] == 1.0
    boxes, scores = nms_inputs('tied', 10, 3, torch.Generator().manual_seed(0))
    assert boxes.shape == (10, 4) and torch.allclose(scores, torch.full((10, 4), 0.25))
    with pytest.raises(ValueError, match="'tied', 'random', 'clustered'"):
        nms_inputs('sorted', 10, 3, torch.Generator())

"""Light-Head R-CNN modules and both paper configs at 800x1200."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

import sn2_det  # noqa: F401
from sn2_det.models.necks import LargeSeparableConv
from sn2_det.models.roi_heads import PSRoIExtractor
from sn2_det.ops import ps_roi_align, ps_roi_pool
from pretrained_weights import write_backbone_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_large_separable_conv_is_the_sum_of_two_paths():
    torch.manual_seed(0)
    conv = LargeSeparableConv(in_channels=16, mid_channels=8, out_channels=490,
                              kernel_size=15)
    conv.init_weights()
    c4, c5 = torch.rand(1, 4, 20, 30), torch.rand(1, 16, 10, 15)
    out = conv((c4, c5))
    assert out[0] is c4 and out[1].shape == (1, 490, 10, 15)
    a, b = conv.path_a, conv.path_b
    assert a[0].kernel_size == (15, 1) and a[1].kernel_size == (1, 15)
    assert b[0].kernel_size == (1, 15) and b[1].kernel_size == (15, 1)
    assert torch.allclose(out[1], torch.relu(a(c5) + b(c5)))
    with pytest.raises(ValueError, match='odd'):
        LargeSeparableConv(16, kernel_size=4)


def test_ps_roi_extractor_modes_and_checks():
    feat = torch.rand(2, 490, 12, 16)
    rois = torch.tensor([[0, 10., 20., 200., 300.], [1, 0., 0., 64., 64.]])
    align = PSRoIExtractor(featmap_strides=[32])
    assert align.num_inputs == 1
    assert torch.equal(align((feat,), rois), ps_roi_align(feat, rois, 7, 1 / 32, 2))
    pool = PSRoIExtractor(featmap_strides=[32], mode='pool')
    assert torch.equal(pool((feat,), rois), ps_roi_pool(feat, rois, 7, 1 / 32))
    with pytest.raises(ValueError, match='490 channels'):
        align((torch.rand(1, 100, 4, 4),), rois)
    with pytest.raises(ValueError, match="'align', 'pool'"):
        PSRoIExtractor(mode='max')


class _FakeContext(torch.nn.Module):
    """An RoI head stand-in whose classification loss is known per RoI."""

    def __init__(self, hardness):
        super().__init__()
        from mmdet.models.roi_heads.bbox_heads import BBoxHead
        self.bbox_head = BBoxHead(num_classes=2, with_reg=False, in_channels=1,
                                  roi_feat_size=1)
        self.hardness = hardness

    def _bbox_forward(self, feats, rois):
        order = rois[:, 1].long()  # x1 holds the candidate's index
        score = torch.zeros(len(rois), 3)
        score[:, 0] = -self.hardness[order]  # low score on class 0: high loss
        return dict(cls_score=score)


def test_hardest_roi_sampler_keeps_top_k_of_all_labels():
    from mmdet.models.task_modules.assigners import AssignResult
    n = 10
    hardness = torch.tensor([0., 9., 1., 8., 2., 7., 3., 6., 4., 5.])
    gt_inds = torch.tensor([1, 0, 1, 0, 0, 0, -1, 0, 1, 0])  # -1: ignored
    labels = torch.where(gt_inds > 0, 0, -1)
    assign = AssignResult(1, gt_inds, torch.zeros(n), labels)
    sampler = TASK_UTILS.build(dict(type='HardestRoISampler', num=4,
                                    add_gt_as_proposals=False),
                               default_args=dict(context=_FakeContext(hardness)))
    priors = torch.stack([torch.arange(n).float(), torch.zeros(n), torch.arange(n) + 5.,
                          torch.full((n,), 5.)], 1)
    result = sampler.sample(assign, InstanceData(priors=priors),
                            InstanceData(bboxes=torch.zeros(1, 4),
                                         labels=torch.zeros(1, dtype=torch.long)))
    # Cross-entropy of each candidate: positives (class 0) 1.10, 1.86, 4.70 for
    # indices 0, 2, 8; negatives (background) at most log(3) - a bit: index 4 (0.76)
    # is the hardest negative. Index 6 is ignored (gt_inds -1) and never chosen.
    assert sorted(result.pos_inds.tolist()) == [0, 2, 8]
    assert result.neg_inds.tolist() == [4]


def _sample(h, w, boxes, labels):
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
                                       labels=torch.tensor(labels, dtype=torch.long))
    return sample


@pytest.mark.parametrize('config', ['configs/lighthead_sn2.py',
                                    'configs/lighthead_sn2_star.py'])
def test_paper_config_train_step_and_predict_at_800x1200(config, tmp_path):
    cfg = Config.fromfile(str(ROOT / config))
    assert cfg.model.backbone.get('star', False) == config.endswith('star.py')
    cfg.model.backbone.init_cfg.checkpoint = write_backbone_checkpoint(
        cfg, tmp_path / 'imagenet.pth')  # the ImageNet weights the config loads
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    torch.manual_seed(0)
    h, w = 800, 1200
    batch = dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8)],
                 data_samples=[_sample(h, w, [[100, 120, 400, 500], [600, 50, 1100, 700]],
                                       [0, 56])])
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape[-2:] == (800, 1216)  # padded to a multiple of 32
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'acc'} <= set(losses)
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.neck.path_a[0].weight.grad.abs().sum() > 0
    assert model.backbone.layers[1][0].branch_main[-1].conv.weight.grad is not None
    assert model.backbone.layers[0][0].branch_main[0].conv.weight.grad is None  # frozen

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=batch['inputs'],
                                            data_samples=[_sample(h, w, [], [])]))
        pred = model(**data, mode='predict')[0].pred_instances
    assert len(pred) <= 100 and pred.bboxes.shape[1] == 4


def test_training_step_on_an_image_without_boxes():
    cfg = Config.fromfile(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    batch = dict(inputs=[torch.randint(0, 255, (3, 256, 256), dtype=torch.uint8)] * 2,
                 data_samples=[_sample(256, 256, [], []),
                               _sample(256, 256, [[30, 40, 120, 160]], [2])])
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()


def test_detector_needs_two_features():
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    cfg.model.backbone.out_indices = (2,)
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(cfg.model)


def test_detector_flops_parts_add_up():
    from sn2_det.analysis.complexity import count_macs, detector_complexity
    cfg = Config.fromfile(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'))
    model = MODELS.build(cfg.model)
    result = detector_complexity(model, (256, 320))
    parts = result['parts']
    assert {'backbone', 'neck', 'rpn_head', 'roi_head'} <= set(parts)
    assert result['macs'] == sum(parts.values())
    backbone_alone, _ = count_macs(model.backbone, torch.zeros(1, 3, 256, 320))
    assert parts['backbone'] == backbone_alone
    # the thin map: two paths of a k x 1 and a 1 x k conv on the stride-16 map
    first, second = model.neck.path_a
    h, w = 256 // 16, 320 // 16
    k, cin, mid, out = (first.kernel_size[0], first.in_channels, first.out_channels,
                        second.out_channels)
    assert (k, cin, mid, out) == (7, 96, 32, 490)
    assert parts['neck'] == 2 * h * w * (k * cin * mid + k * mid * out)


def test_conv5_can_feed_the_thin_map():
    """The open point 'which feature makes the thin map' is one key."""
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    cfg.model.backbone.out_indices = (1, 3)
    model = MODELS.build(cfg.model)
    assert model.neck.path_a[0].in_channels == 1024
    assert model.rpn_head.rpn_conv.in_channels == 232

"""The Light-Head R-CNN authors' recipe as keys (docs/recipe.md): thin-map
lr multiplier, stride-16 thin map by dilation, OHEM ranking and pooling, schedule.
(PS-RoI Align 'max' / unaligned: tests/test_ps_roi_ops.py.)"""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

import sn2_det  # noqa: F401
from sn2_det.models.backbones import TABLE7_BACKBONES, table7_backbone_cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('name', TABLE7_BACKBONES)
def test_last_stage_dilation_gives_a_stride_16_thin_map(name):
    plain = MODELS.build(table7_backbone_cfg(name, 40)).eval()
    dilated = MODELS.build(table7_backbone_cfg(name, 40, last_stage_dilation=2)).eval()
    assert plain.out_strides == [16, 32] and dilated.out_strides == [16, 16]
    # same parameters: ImageNet weights of the undilated network load unchanged
    dilated.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        (p16, p32), (d16, d_last) = plain(x), dilated(x)
    assert p32.shape[-2:] == (4, 5) and d_last.shape[-2:] == (8, 10)
    assert p32.shape[1] == d_last.shape[1]
    assert torch.equal(p16, d16)  # the stride-16 stage is untouched
    with pytest.raises(ValueError, match=r'last_stage_dilation must be one of \(1, 2\)'):
        MODELS.build(table7_backbone_cfg(name, 40, last_stage_dilation=4))


def test_dilated_units_keep_stride_in_the_first_and_dilate_the_rest():
    net = MODELS.build(dict(type='ShuffleNetV2', out_indices=(2,), last_stage_dilation=2))
    first, second = net.layers[2][0], net.layers[2][1]
    assert first.branch_main[1].conv.stride == (1, 1)
    assert first.branch_main[1].conv.dilation == (1, 1)
    assert second.branch_main[1].conv.dilation == (2, 2)
    assert second.branch_main[1].conv.padding == (2, 2)


def test_roi_extractor_stride_follows_the_backbone():
    for config, stride in (('configs/lighthead_sn2.py', 32),
                           ('configs/lighthead_sn2_authors.py', 16),
                           ('configs/toy/lighthead_sn2_toy.py', 16)):
        cfg = Config.fromfile(str(ROOT / config))
        model = MODELS.build(cfg.model)
        assert model.roi_head.bbox_roi_extractor.featmap_strides == [stride], config
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2_authors.py'))
    cfg.model.roi_head.bbox_roi_extractor.featmap_strides = [32]
    with pytest.raises(ValueError, match=r'model.roi_head.bbox_roi_extractor.'
                                         r'featmap_strides is \[32\], but the thin map '
                                         r'is at stride 16'):
        MODELS.build(cfg.model)


def test_thin_map_learns_at_three_times_the_lr():
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {names[id(p)]: group['lr'] for group in wrapper.optimizer.param_groups
           for p in group['params']}
    assert {lr for n, lr in lrs.items() if n.startswith('neck.')} == {0.03}
    assert {lr for n, lr in lrs.items() if not n.startswith('neck.')} == {0.01}
    assert any(n.startswith('neck.') for n in lrs)


def test_authors_schedule():
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2_150k.py'))
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=150000,
                                 val_interval=10000)
    warmup, steps = cfg.param_scheduler
    assert warmup.start_factor == pytest.approx(1 / 3) and warmup.end == 500
    assert steps.milestones == [95000, 125000] and steps.gamma == 0.1
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {n: g['weight_decay'] for g in wrapper.optimizer.param_groups
             for n, p in model.named_parameters() if any(p is q for q in g['params'])}
    lrs = {n: g['lr'] for g in wrapper.optimizer.param_groups
           for n, p in model.named_parameters() if any(p is q for q in g['params'])}
    for name in decay:
        assert decay[name] == (0 if name.endswith('.bias') else 1e-4), name
        assert lrs[name] == pytest.approx(0.03 if name.startswith('neck.') else 0.01)


# --- OHEM -----------------------------------------------------------------------------

def _ohem_setup(rank_by, pool):
    """The toy detector's RoI head with zeroed predictors: every RoI has the same
    classification loss, and its box loss grows with its offset from the ground
    truth. Image 0's candidates are offset more than image 1's."""
    cfg = Config.fromfile(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'))
    head = MODELS.build(cfg.model).roi_head
    for fc in (head.bbox_head.fc_cls, head.bbox_head.fc_reg):
        torch.nn.init.zeros_(fc.weight)
        torch.nn.init.zeros_(fc.bias)
    sampler = TASK_UTILS.build(dict(type='HardestRoISampler', num=2, rank_by=rank_by,
                                    pool=pool, add_gt_as_proposals=False),
                               default_args=dict(context=head))
    feats = (torch.rand(2, 490, 16, 16),)
    inputs = []
    for shift in (8.0, 1.5):  # image 1's largest offset below image 0's smallest
        gt = InstanceData(bboxes=torch.tensor([[40., 40., 140., 140.]]),
                          labels=torch.tensor([1]))
        offsets = torch.tensor([0.25, 0.5, 0.75, 1.0]) * shift
        priors = torch.tensor([40., 40., 140., 140.]) + offsets[:, None]
        preds = InstanceData(priors=priors)
        assign = head.bbox_assigner.assign(preds, gt)
        inputs.append((assign, preds, gt))
    return sampler, feats, inputs


def test_ohem_cls_plus_box_ranks_by_the_box_loss():
    sampler, feats, inputs = _ohem_setup('cls+box', 'image')
    assign, preds, gt = inputs[0]
    result = sampler.sample(assign, preds, gt, feats=[f[:1] for f in feats])
    assert sorted(result.pos_inds.tolist()) == [2, 3]  # the two farthest off
    losses = sampler.roi_losses([f[:1] for f in feats], [preds.priors],
                                [torch.ones(4, dtype=torch.long)], [gt.bboxes.expand(4, 4)])
    cls_only = sampler.bbox_head.loss_cls.loss_weight * torch.log(torch.tensor(4.0))
    assert (losses > cls_only).all() and (losses.diff() > 0).all()
    sampler.rank_by = 'cls'
    cls = sampler.roi_losses([f[:1] for f in feats], [preds.priors],
                             [torch.ones(4, dtype=torch.long)], [gt.bboxes.expand(4, 4)])
    assert torch.allclose(cls, cls_only.expand(4))


def test_ohem_pooled_over_the_batch_takes_the_hardest_of_all_images():
    sampler, feats, inputs = _ohem_setup('cls+box', 'batch')
    results = sampler.sample_batch(*zip(*inputs), feats=feats)
    assert len(results[0].pos_inds) == 4 and len(results[1].pos_inds) == 0
    per_image, feats, inputs = _ohem_setup('cls+box', 'image')
    counts = [len(per_image.sample(a, p, g, feats=[f[i:i + 1] for f in feats]).pos_inds)
              for i, (a, p, g) in enumerate(inputs)]
    assert counts == [2, 2]
    with pytest.raises(ValueError, match="set roi_head=dict\\(type='OHEMRoIHead'\\)"):
        sampler.sample(*inputs[0], feats=feats)
    with pytest.raises(ValueError, match=r"rank_by must be one of \('cls', 'cls\+box'\)"):
        TASK_UTILS.build(dict(type='HardestRoISampler', num=2, rank_by='box'),
                         default_args=dict(context=None))

"""ShuffleNet V2 / V2* backbone: shapes, freezing, validation, Table 5 complexity."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

import sn2_det  # noqa: F401
from sn2_det.analysis.complexity import backbone_complexity, count_macs
from sn2_det.analysis.paper import TABLE5
from sn2_det.models.backbones import ShuffleNetV2

CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
            1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
@pytest.mark.parametrize('star', [False, True])
def test_output_channels_and_strides(widen_factor, star):
    net = ShuffleNetV2(widen_factor, out_indices=(0, 1, 2, 3), star=star).eval()
    outs = net(torch.rand(2, 3, 96, 128))
    assert [o.shape for o in outs] == [
        (2, c, 96 // s, 128 // s) for c, s in zip(CHANNELS[widen_factor], (8, 16, 32, 32))]
    assert net.out_channels == list(CHANNELS[widen_factor])
    assert net.out_strides == [8, 16, 32, 32]


def test_out_indices_select_and_order():
    net = ShuffleNetV2(0.5, out_indices=(1, 3)).eval()
    full = ShuffleNetV2(0.5, out_indices=(0, 1, 2, 3)).eval()
    full.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 64, 64)
    a, b = net(x), full(x)
    assert len(a) == 2 and torch.equal(a[0], b[1]) and torch.equal(a[1], b[3])


def test_downsample_split_shapes():
    official = ShuffleNetV2(1.0, downsample_split='official')
    even = ShuffleNetV2(1.0, downsample_split='even')
    unit_o, unit_e = official.layers[0][0], even.layers[0][0]
    assert unit_o.branch_proj[-1].conv.out_channels == 24
    assert unit_o.branch_main[-1].conv.out_channels == 92
    assert unit_e.branch_proj[-1].conv.out_channels == 58
    assert unit_e.branch_main[-1].conv.out_channels == 58
    # every other unit has the same shapes in both
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()
                        if not k.startswith('layers.0.0.')}
    assert shapes(official) == shapes(even)


def test_star_inserts_one_depthwise_before_first_pointwise():
    plain, star = ShuffleNetV2(1.0), ShuffleNetV2(1.0, star=True)
    for unit_p, unit_s in zip(plain.layers[1], star.layers[1]):
        assert len(unit_s.branch_main) == len(unit_p.branch_main) + 1
        extra, first_pw = unit_s.branch_main[0], unit_s.branch_main[1]
        assert extra.conv.groups == extra.conv.in_channels == first_pw.conv.in_channels
        assert extra.conv.kernel_size == (3, 3) and extra.conv.stride == (1, 1)
        assert extra.with_norm and not extra.with_activation
        assert first_pw.conv.kernel_size == (1, 1)
    # the projection branch of a downsampling unit is unchanged by default
    assert len(star.layers[1][0].branch_proj) == len(plain.layers[1][0].branch_proj)
    proj = ShuffleNetV2(1.0, star=True, star_proj=True).layers[1][0].branch_proj
    assert len(proj) == 3 and proj[1].conv.groups == proj[1].conv.in_channels
    act = ShuffleNetV2(1.0, star=True, star_act=True).layers[1][1].branch_main[0]
    assert act.with_activation


def test_star_enlarges_receptive_field():
    """An impulse reaches further in V2* (paper Sec. 5: larger receptive field)."""
    def reach(star):
        torch.manual_seed(0)
        net = ShuffleNetV2(0.5, out_indices=(0,), star=star).eval()
        x = torch.rand(1, 3, 128, 128, requires_grad=True)
        net(x)[0][0, :, 8, 8].sum().backward()
        rows = x.grad.abs().sum((0, 1, 3)).nonzero()
        return int(rows.max() - rows.min())
    assert reach(True) > reach(False)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages(frozen_stages):
    net = ShuffleNetV2(0.5, frozen_stages=frozen_stages)
    net.train()
    frozen = ([net.conv1] if frozen_stages >= 0 else []) + list(
        net.layers[:max(frozen_stages, 0)])
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    free = list(net.layers[max(frozen_stages, 0):])
    for module in free:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules() if isinstance(m, _BatchNorm))


def test_frozen_stem_statistics_do_not_move():
    net = ShuffleNetV2(0.5, frozen_stages=1).train()
    before = net.conv1.bn.running_mean.clone()
    stage2_before = net.layers[0][0].branch_main[0].bn.running_mean.clone()
    stage3_before = net.layers[1][0].branch_main[0].bn.running_mean.clone()
    net(torch.rand(2, 3, 64, 64))
    assert torch.equal(net.conv1.bn.running_mean, before)
    assert torch.equal(net.layers[0][0].branch_main[0].bn.running_mean, stage2_before)
    assert not torch.equal(net.layers[1][0].branch_main[0].bn.running_mean, stage3_before)


def test_norm_eval():
    net = ShuffleNetV2(0.5, norm_eval=True).train()
    assert all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))
    assert net.layers[2].training
    stats = net.layers[2][0].branch_main[0].bn.running_var.clone()
    net(torch.rand(2, 3, 64, 64))
    assert torch.equal(net.layers[2][0].branch_main[0].bn.running_var, stats)


def test_with_cp_same_output_and_grads():
    torch.manual_seed(0)
    a = ShuffleNetV2(0.5, out_indices=(0, 1, 2, 3)).train()
    b = ShuffleNetV2(0.5, out_indices=(0, 1, 2, 3), with_cp=True).train()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 64, 64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sum(o.sum() for o in a(xa)).backward()
    sum(o.sum() for o in b(xb)).backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    ga = a.layers[1][3].branch_main[0].conv.weight.grad
    gb = b.layers[1][3].branch_main[0].conv.weight.grad
    assert torch.allclose(ga, gb, atol=1e-5)


def test_channel_routing_matches_shuffle_definition():
    """A stride-1 unit = shuffle the previous unit's concat (the authors' way: reshape
    to (C/2, 2), transpose), split in halves, identity + main branch (Fig. 3c)."""
    torch.manual_seed(0)
    unit = ShuffleNetV2(0.5).layers[1][1].eval()
    prev_cat = torch.rand(1, 96, 8, 8)  # previous unit's concat, before its shuffle
    shuffled = prev_cat.view(1, 48, 2, 8, 8).transpose(1, 2).reshape(1, 96, 8, 8)
    identity, main = shuffled[:, :48], shuffled[:, 48:]
    out = unit(prev_cat)
    assert torch.equal(out[:, :48], identity)
    assert torch.allclose(out[:, 48:], unit.branch_main(main))


@pytest.mark.parametrize('kwargs,names', [
    (dict(widen_factor=0.7), ['widen_factor', '0.5', '2.0']),
    (dict(out_indices=(5,)), ['out_indices', '(0, 1, 2, 3)']),
    (dict(out_indices=()), ['out_indices']),
    (dict(out_indices=(1, 1)), ['out_indices']),
    (dict(frozen_stages=4), ['frozen_stages', '(-1, 0, 1, 2, 3)']),
    (dict(frozen_stages=-2), ['frozen_stages']),
    (dict(star='yes'), ['star', 'True or False']),
    (dict(star=1), ['star', 'True or False']),
    (dict(downsample_split='half'), ['downsample_split', "'official'", "'even'"]),
    (dict(norm_eval=None), ['norm_eval']),
])
def test_invalid_arguments(kwargs, names):
    with pytest.raises(ValueError) as err:
        ShuffleNetV2(**kwargs)
    for name in names:
        assert name in str(err.value)


def test_registered_and_buildable_from_config():
    from mmdet.registry import MODELS
    net = MODELS.build(dict(type='ShuffleNetV2', widen_factor=0.5, out_indices=(2,)))
    assert isinstance(net, ShuffleNetV2)


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
def test_table5_flops_and_params(widen_factor):
    """Paper Table 5: FLOPs and parameters within 3% (authors' split)."""
    paper_mflops, paper_mparams = TABLE5[widen_factor]
    result = backbone_complexity(dict(type='ShuffleNetV2', widen_factor=widen_factor))
    assert abs(result['macs'] / 1e6 / paper_mflops - 1) < 0.03
    assert abs(result['params'] / 1e6 / paper_mparams - 1) < 0.03
    star = backbone_complexity(dict(type='ShuffleNetV2', widen_factor=widen_factor,
                                    star=True))
    assert 0 < star['macs'] - result['macs'] < 0.1 * result['macs']


def test_mac_counter_against_mmengine():
    """Our hook counter agrees with mmengine's jit-based FlopAnalyzer."""
    from mmengine.analysis import FlopAnalyzer
    net = ShuffleNetV2(0.5, out_indices=(3,)).eval()
    x = torch.rand(1, 3, 64, 96)
    ours, _ = count_macs(net, x)
    theirs = FlopAnalyzer(net, x)
    theirs.unsupported_ops_warnings(False)
    theirs.uncalled_modules_warnings(False)
    by_op = theirs.by_operator()
    assert ours == by_op['conv']


def test_mac_counter_plain_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, groups=1), nn.Conv2d(8, 8, 3, 2, 1, groups=8),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    macs, _ = count_macs(model, torch.rand(1, 3, 8, 8))
    assert macs == 8 * 8 * 8 * 3 * 9 + 8 * 4 * 4 * 9 + 10 * 128

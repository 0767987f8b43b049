"""Table 7 comparison backbones (Xception, ShuffleNet v1, MobileNet v2) and the table."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

import sn2_det  # noqa: F401
from mmdet.models.backbones import MobileNetV2
from mmdet.registry import MODELS
from sn2_det.analysis.complexity import backbone_complexity
from sn2_det.models.backbones import (TABLE7_BACKBONES, TABLE7_LEVELS, ShuffleNetV1,
                                      ShuffleNetV2, StagedMobileNetV2, Xception,
                                      table7_backbone_cfg, table7_classifier_cfg,
                                      table7_width)
from sn2_det.models.backbones.shufflenet_v1 import channel_shuffle

# Channels of the outputs 0, 1, 2 (and 3 = final conv) per width, from the papers.
CHANNELS = {
    ShuffleNetV1: {0.5: (120, 240, 480), 1.0: (240, 480, 960),
                   1.5: (360, 720, 1440), 2.0: (480, 960, 1920)},
    Xception: {0.5: (72, 144, 288), 1.0: (144, 288, 576),
               1.5: (216, 432, 864), 2.0: (288, 576, 1152)},
    StagedMobileNetV2: {0.25: (8, 24, 80, 1280), 0.6: (24, 56, 192, 1280),
                        1.0: (32, 96, 320, 1280), 1.3: (40, 128, 416, 1664)},
}
CASES = [(cls, w) for cls, table in CHANNELS.items() for w in table]


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """These inputs are small: a second thread only adds synchronisation (10x slower
    on a busy 2-core machine). Restores the setting for the other test files."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def stage_modules(net):
    """[stem, stage 1, stage 2, stage 3] as lists of modules, for every backbone."""
    if isinstance(net, StagedMobileNetV2):
        return [[net.conv1, net.layer1, net.layer2], [net.layer3],
                [net.layer4, net.layer5], [net.layer6, net.layer7]]
    return [[net.conv1]] + [[layer] for layer in net.layers]


@pytest.mark.parametrize('cls,widen_factor', CASES)
def test_output_shapes_and_strides(cls, widen_factor):
    channels = CHANNELS[cls][widen_factor]
    indices = tuple(range(len(channels)))
    net = cls(widen_factor, out_indices=indices).eval()
    outs = net(torch.rand(2, 3, 64, 96))
    strides = (8, 16, 32, 32)[:len(channels)]
    assert [tuple(o.shape) for o in outs] == [
        (2, c, 64 // s, 96 // s) for c, s in zip(channels, strides)]
    assert net.out_channels == list(channels)
    assert net.out_strides == list(strides)
    last = cls(widen_factor, out_indices=(indices[-1], 1)).eval()
    assert last.out_channels == [channels[-1], channels[1]]
    assert last.out_strides == [strides[-1], 16]


@pytest.mark.parametrize('cls', list(CHANNELS))
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages(cls, frozen_stages):
    net = cls(1.0, frozen_stages=frozen_stages).train()
    stages = stage_modules(net)
    for i, modules in enumerate(stages):
        for module in modules:
            params = list(module.parameters())
            norms = [m for m in module.modules() if isinstance(m, _BatchNorm)]
            assert params and norms
            if i <= frozen_stages:
                assert not any(p.requires_grad for p in params)
                assert not any(m.training for m in norms)
            else:
                assert all(p.requires_grad for p in params)
                assert all(m.training for m in norms)
    net(torch.rand(2, 3, 64, 64))  # a training step leaves frozen statistics alone
    stem_bn = [m for m in stages[0][0].modules() if isinstance(m, _BatchNorm)][0]
    assert torch.equal(stem_bn.running_mean, torch.zeros_like(stem_bn.running_mean)) \
        == (frozen_stages >= 0)


@pytest.mark.parametrize('cls', list(CHANNELS))
def test_norm_eval(cls):
    net = cls(1.0, norm_eval=True).train()
    assert net.training
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert all(p.requires_grad for p in net.parameters())
    before = [m.running_var.clone() for m in norms]
    net(torch.rand(2, 3, 64, 64))
    assert all(torch.equal(m.running_var, b) for m, b in zip(norms, before))
    moving = cls(1.0).train()
    moving(torch.rand(2, 3, 64, 64))
    assert not torch.equal(moving.conv1.bn.running_var, torch.ones_like(before[0]))


@pytest.mark.parametrize('cls', [ShuffleNetV1, Xception])
def test_with_cp_same_output_and_grads(cls):
    torch.manual_seed(0)
    plain = cls(0.5, out_indices=(0, 1, 2)).train()
    ckpt = cls(0.5, out_indices=(0, 1, 2), with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sum(o.sum() for o in plain(xa)).backward()
    sum(o.sum() for o in ckpt(xb)).backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)


@pytest.mark.parametrize('kwargs,names', [
    (dict(widen_factor=0.75), ['widen_factor', '0.5', '2.0']),
    (dict(out_indices=(3,)), ['out_indices', '(0, 1, 2)']),
    (dict(out_indices=()), ['out_indices']),
    (dict(out_indices=(0, 0)), ['out_indices']),
    (dict(frozen_stages=4), ['frozen_stages', '(-1, 0, 1, 2, 3)']),
    (dict(norm_eval=1), ['norm_eval', 'True or False']),
    (dict(with_cp='no'), ['with_cp', 'True or False']),
])
@pytest.mark.parametrize('cls', [ShuffleNetV1, Xception])
def test_invalid_arguments(cls, kwargs, names):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize('kwargs,names', [
    (dict(widen_factor=0), ['widen_factor']),
    (dict(widen_factor=True), ['widen_factor']),
    (dict(out_indices=(4,)), ['out_indices', '(0, 1, 2, 3)']),
    (dict(out_indices=(7,)), ['out_indices', '(0, 1, 2, 3)']),
    (dict(frozen_stages=5), ['frozen_stages', '(-1, 0, 1, 2, 3)']),
    (dict(norm_eval='yes'), ['norm_eval', 'True or False']),
])
def test_mobilenet_invalid_arguments(kwargs, names):
    with pytest.raises(ValueError) as err:
        StagedMobileNetV2(**kwargs)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize('ratio', [0, 1.5, True, '3/16'])
def test_xception_invalid_bottleneck_ratio(ratio):
    with pytest.raises(ValueError, match='bottleneck_ratio'):
        Xception(bottleneck_ratio=ratio)


def test_shufflenet_v1_unit_layout():
    """v1 paper Fig. 2 with g=3: grouped 1x1 convs (but stage2's first), mid = out/4."""
    net = ShuffleNetV1(1.0)
    first, later = net.layers[0][0], net.layers[0][1]
    assert first.pw_reduce.conv.groups == 1 and first.pw_reduce.conv.in_channels == 24
    assert first.pw_expand.conv.out_channels == 240 - 24
    for unit in (later, net.layers[1][0], net.layers[2][3]):
        assert unit.pw_reduce.conv.groups == 3 and unit.pw_expand.conv.groups == 3
        assert unit.depthwise.conv.groups == unit.depthwise.conv.in_channels
    assert later.pw_reduce.conv.out_channels == 60
    assert net.layers[1][0].pw_expand.conv.out_channels == 480 - 240


def test_shufflenet_v1_downsampling_concatenates_pooled_input():
    unit = ShuffleNetV1(0.5).layers[1][0].eval()
    x = torch.rand(1, 120, 8, 8)
    out = unit(x)
    assert out.shape == (1, 240, 4, 4)
    assert torch.allclose(out[:, :120], nn.functional.avg_pool2d(x, 3, 2, 1))


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.).view(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_xception_block_receptive_field_is_seven():
    """Three 3x3 depthwise convs per block (ShuffleNet V2 paper Sec. 5: 7 vs 3)."""
    block = Xception(0.5).layers[1][1].eval()
    x = torch.rand(1, 144, 15, 15, requires_grad=True)
    block.residual(x)[0, :, 7, 7].sum().backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero().flatten()
    assert rows.tolist() == list(range(4, 11))


# (class, out_indices of the whole network, the layers a stage-1 output leaves unbuilt)
UNBUILT = [(ShuffleNetV2, (0, 1, 2, 3), ('layers.2', 'layers.3')),
           (ShuffleNetV1, (0, 1, 2), ('layers.2',)),
           (Xception, (0, 1, 2), ('layers.2',)),
           (StagedMobileNetV2, (0, 1, 2, 3), ('layer6', 'layer7', 'conv2'))]


@pytest.mark.parametrize('cls,whole_indices,unbuilt', UNBUILT)
def test_unbuilt_layers_come_from_a_whole_network_checkpoint(cls, whole_indices, unbuilt,
                                                              tmp_path):
    """A backbone read at stage 1 builds nothing past it; a whole-network checkpoint
    loads into it (the unbuilt layers' keys dropped by name) and computes the whole
    network's stage-1 output. A checkpoint without those layers is refused naming
    them, and so is one of another width (keys and shapes)."""
    from sn2_det.utils.checkpoint import CheckpointError
    torch.manual_seed(0)
    whole = cls(0.5, out_indices=whole_indices).eval()
    for m in whole.modules():  # statistics that are not the initial ones
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
    saved = whole.state_dict()
    path = tmp_path / 'whole.pth'
    torch.save(dict(state_dict=saved), path)
    part = cls(0.5, out_indices=(1,), init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    assert part.unbuilt_layers == unbuilt
    own = part.state_dict()
    assert not any(k.startswith(f'{name}.') for k in own for name in unbuilt)
    assert set(own) == {k for k in saved if not any(k.startswith(f'{name}.')
                                                     for name in unbuilt)}
    part.init_weights()
    assert all(torch.equal(v, saved[k]) for k, v in part.state_dict().items())
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(part.eval()(x)[0], whole(x)[1])

    torch.save(dict(state_dict={k: v for k, v in saved.items()
                                if not k.startswith(f'{unbuilt[-1]}.')}), path)
    with pytest.raises(CheckpointError, match=rf'missing keys:\n    {unbuilt[-1]}\.\* '
                                              r'\(not built'):
        cls(0.5, out_indices=(1,), init_cfg=dict(type='Pretrained',
                                                 checkpoint=str(path))).init_weights()
    torch.save(dict(state_dict=cls(1.0, out_indices=whole_indices).state_dict()), path)
    with pytest.raises(CheckpointError, match='shape mismatches'):
        cls(0.5, out_indices=(1,), init_cfg=dict(type='Pretrained',
                                                 checkpoint=str(path))).init_weights()


def test_xception_bottleneck_width():
    net = Xception(1.0)
    mids = [stage[1].residual[0][1].conv.out_channels for stage in net.layers]
    assert mids == [27, 54, 108]
    assert Xception(1.0, bottleneck_ratio=0.25).layers[1][1].residual[1][1].conv \
        .out_channels == 72


def test_mobilenet_matches_mmdet_layers():
    """Same weights and modules as mmdet's MobileNetV2; our indices are its layers."""
    ours = StagedMobileNetV2(1.0, out_indices=(0, 1, 2, 3)).eval()
    theirs = MobileNetV2(1.0, out_indices=(2, 4, 6, 7))
    theirs.load_state_dict(ours.state_dict())
    theirs.eval()
    x = torch.rand(1, 3, 64, 64)
    for a, b in zip(ours(x), theirs(x)):
        assert torch.equal(a, b)


# Paper Table 8 FLOPs of the published widths (ShuffleNet v1 g=3, our Xception).
PAPER_MFLOPS = {ShuffleNetV1: (38, 140, 292, 524), Xception: (40, 145, 305, 525)}


@pytest.mark.parametrize('cls', list(PAPER_MFLOPS))
def test_paper_table8_flops(cls):
    for widen_factor, paper in zip((0.5, 1.0, 1.5, 2.0), PAPER_MFLOPS[cls]):
        cfg = dict(type=cls.__name__, widen_factor=widen_factor)
        macs = backbone_complexity(cfg)['macs'] / 1e6
        assert abs(macs / paper - 1) < 0.03, (widen_factor, macs)


# ShuffleNet V2 keeps the paper's 2.0x at the 500 level: 591 MFLOPs (Table 5).
ABOVE_LEVEL = {('shufflenet_v2', 500): 591, ('shufflenet_v2_star', 500): 591}


def test_table7_cells_flops():
    """Every cell within 10% of its level (224x224, classifier); see ABOVE_LEVEL."""
    for name in TABLE7_BACKBONES:
        for level in TABLE7_LEVELS:
            macs = backbone_complexity(table7_classifier_cfg(name, level))['macs'] / 1e6
            target = ABOVE_LEVEL.get((name, level))
            if target is None:
                assert abs(macs / level - 1) < 0.10, (name, level, macs)
            else:
                assert abs(macs / level - 1) > 0.10
                assert abs(macs / target - 1) < 0.03, (name, level, macs)


def test_table7_backbones_build_for_light_head():
    x = torch.rand(1, 3, 64, 96)
    for name in TABLE7_BACKBONES:
        for level in TABLE7_LEVELS:
            net = MODELS.build(dict(type='Table7Backbone', name=name, level=level)).train()
            assert net.widen_factor == table7_width(name, level)
            assert getattr(net, 'star', False) == (name == 'shufflenet_v2_star')
            assert net.out_strides == [16, 32]
            assert [tuple(o.shape) for o in net.eval()(x)] == [
                (1, net.out_channels[0], 4, 6), (1, net.out_channels[1], 2, 3)]
            net.train()
            assert not any(p.requires_grad for p in net.conv1.parameters())
            assert not any(m.training for m in net.modules() if isinstance(m, _BatchNorm))


def test_table7_cfg_values_and_overrides():
    cfg = table7_backbone_cfg('shufflenet_v2_star', 300)
    assert cfg == dict(type='ShuffleNetV2', widen_factor=1.5, star=True,
                       out_indices=(1, 2), frozen_stages=1, norm_eval=True,
                       norm_cfg=dict(type='BN', requires_grad=False))
    assert table7_backbone_cfg('xception', 40, frozen_stages=-1)['frozen_stages'] == -1
    assert [table7_width('shufflenet_v1', level) for level in TABLE7_LEVELS] == \
        [0.5, 1.0, 1.5, 2.0]
    net = MODELS.build(dict(type='Table7Backbone', name='shufflenet_v2', level=140,
                            out_indices=(0,)))
    assert isinstance(net, ShuffleNetV2) and net.out_strides == [8]


@pytest.mark.parametrize('name,level,names', [
    ('resnet', 140, ['name', "'xception'", "'shufflenet_v2_star'"]),
    ('xception', 150, ['level', '(40, 140, 300, 500)']),
    ('xception', '140', ['level']),
])
def test_table7_invalid_cells(name, level, names):
    for make in (table7_backbone_cfg, table7_classifier_cfg):
        with pytest.raises(ValueError) as err:
            make(name, level)
        for word in names:
            assert word in str(err.value)
    with pytest.raises(ValueError):
        MODELS.build(dict(type='Table7Backbone', name=name, level=level))


def test_comparison_backbone_pretrained_loads_strictly(tmp_path):
    """A checkpoint of another width fails loudly (mmengine's loader only warns)."""
    from sn2_det.utils.checkpoint import CheckpointError
    path = tmp_path / 'xception_0.5x.pth'
    torch.save(dict(state_dict=Xception(widen_factor=0.5).state_dict()), path)
    good = Xception(widen_factor=0.5, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    good.init_weights()
    wrong = Xception(widen_factor=1.0, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match='shape mismatches'):
        wrong.init_weights()
    mobile = StagedMobileNetV2(widen_factor=1.0,
                               init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match='missing keys'):
        mobile.init_weights()

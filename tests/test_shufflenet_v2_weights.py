"""Weight conversion from the three public layouts, checked against independent nets."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sn2_det  # noqa: F401
from sn2_det.models.backbones import ShuffleNetV2
from sn2_det.models.backbones.shufflenet_v2_weights import convert_shufflenet_v2
from sn2_det.utils.checkpoint import CheckpointError
from reference_shufflenet import (OfficialLayoutNet, TorchvisionLayoutNet, randomize,
                                  torchvision_to_mmpretrain_keys)

ROOT = Path(__file__).resolve().parents[1]


def _reference(layout, widen_factor):
    net = OfficialLayoutNet(widen_factor) if layout == 'official' \
        else TorchvisionLayoutNet(widen_factor)
    net = randomize(net, seed=int(widen_factor * 10))
    state = net.state_dict()
    if layout == 'official':
        state = {'module.' + k: v for k, v in state.items()}
    if layout == 'mmpretrain':
        state = torchvision_to_mmpretrain_keys(state)
    return net, state


@pytest.mark.parametrize('layout', ['official', 'torchvision', 'mmpretrain'])
@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
def test_conversion_reproduces_conv5(layout, widen_factor):
    reference, state = _reference(layout, widen_factor)
    converted, arch = convert_shufflenet_v2(state)
    split = 'official' if layout == 'official' and widen_factor != 0.5 else 'even'
    assert arch == dict(type='ShuffleNetV2', widen_factor=widen_factor,
                        downsample_split=split, star=False, star_act=False,
                        star_proj=False)
    ours = ShuffleNetV2(widen_factor, out_indices=(3,),
                        downsample_split=arch['downsample_split']).eval()
    result = ours.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference(x), ours(x)[0]
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


def test_convert_tool_and_pretrained_init(tmp_path):
    _, state = _reference('torchvision', 1.0)
    src, dst = tmp_path / 'tv.pth', tmp_path / 'ours.pth'
    torch.save(state, src)
    out = subprocess.run([sys.executable, str(ROOT / 'tools/convert_weights.py'),
                          str(src), str(dst)], capture_output=True, text=True, check=True)
    assert 'torchvision layout' in out.stdout and "'downsample_split': 'even'" in out.stdout
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['backbone']['widen_factor'] == 1.0
    assert saved['meta']['data_preprocessor']['bgr_to_rgb'] is True

    from mmdet.registry import MODELS
    net = MODELS.build(dict(type='ShuffleNetV2', widen_factor=1.0, downsample_split='even',
                            init_cfg=dict(type='Pretrained', checkpoint=str(dst))))
    net.init_weights()
    assert torch.equal(net.layers[3].conv.weight, saved['state_dict']['layers.3.conv.weight'])


def test_wrong_split_names_the_key(tmp_path):
    _, state = _reference('torchvision', 1.0)
    converted, arch = convert_shufflenet_v2(state)
    path = tmp_path / 'ours.pth'
    torch.save(dict(state_dict=converted, meta=dict(backbone=arch)), path)
    net = ShuffleNetV2(1.0, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match="downsample_split='even'"):
        net.init_weights()


def test_wrong_width_reports_keys_and_shapes(tmp_path):
    _, state = _reference('official', 0.5)
    converted, _ = convert_shufflenet_v2(state)
    path = tmp_path / 'plain.pth'
    torch.save(converted, path)  # no meta: the shape check must catch it
    net = ShuffleNetV2(1.0, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError) as err:
        net.init_weights()
    text = str(err.value)
    assert 'shape mismatches' in text
    assert ('layers.0.0.branch_main.0.conv.weight: checkpoint (24, 24, 1, 1) vs '
            'model (58, 24, 1, 1)') in text


def test_unknown_layout_is_rejected():
    with pytest.raises(ValueError, match='known layout'):
        convert_shufflenet_v2({'foo.weight': torch.zeros(1)})


def test_star_options_are_recorded_and_checked(tmp_path):
    source = ShuffleNetV2(0.5, star=True, star_act=True)
    path = tmp_path / 'star_act.pth'
    torch.save(dict(state_dict=source.state_dict(), meta=dict(backbone=source.arch_args())),
               path)
    assert source.arch_args()['star_act'] is True
    net = ShuffleNetV2(0.5, star=True, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match='star_act=True'):
        net.init_weights()

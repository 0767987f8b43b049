"""Independent plain-PyTorch ShuffleNet V2 networks in the two public key layouts.

Written from the definitions in docs/paper.md Sec. 1 (not from sn2_det), each with
its own routing: the authors' (no shuffle after a unit, identity = even channels)
and torchvision's (explicit shuffle after every unit, identity = first half).
``forward`` returns the conv5 features.
"""
import re

import torch
import torch.nn as nn

CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
            1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
REPEATS = (4, 8, 4)


def conv_bn(cin, cout, k=1, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU()] if relu else layers


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics, so that any channel mix-up shows."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (
                2.0 / m.weight[0].numel()) ** 0.5
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=g)
            m.bias.data = 0.1 * torch.randn(c, generator=g)
            m.running_mean = 0.1 * torch.randn(c, generator=g)
            m.running_var = 0.5 + torch.rand(c, generator=g)
    return net.eval()


class OfficialBlock(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        branch_in = inp if stride == 2 else inp // 2
        out = oup - inp if stride == 2 else oup // 2
        mid = oup // 2
        self.branch_main = nn.Sequential(*conv_bn(branch_in, mid),
                                         *conv_bn(mid, mid, 3, stride, mid, relu=False),
                                         *conv_bn(mid, out))
        if stride == 2:
            self.branch_proj = nn.Sequential(*conv_bn(inp, inp, 3, 2, inp, relu=False),
                                             *conv_bn(inp, inp))

    def forward(self, x):
        if self.stride == 2:
            return torch.cat([self.branch_proj(x), self.branch_main(x)], 1)
        c = x.shape[1]
        even = torch.arange(0, c, 2)
        return torch.cat([x[:, even], self.branch_main(x[:, even + 1])], 1)


class OfficialLayoutNet(nn.Module):
    """Keys of megvii-model/ShuffleNet-Series: first_conv, features.N, conv_last."""

    def __init__(self, widen_factor):
        super().__init__()
        chans = CHANNELS[widen_factor]
        self.first_conv = nn.Sequential(*conv_bn(3, 24, 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], 24
        for repeats, cout in zip(REPEATS, chans):
            for i in range(repeats):
                blocks.append(OfficialBlock(cin, cout, 2) if i == 0
                              else OfficialBlock(cout, cout, 1))
                cin = cout
        self.features = nn.Sequential(*blocks)
        self.conv_last = nn.Sequential(*conv_bn(cin, chans[3]))
        self.classifier = nn.Sequential(nn.Linear(chans[3], 1000, bias=False))

    def forward(self, x):
        return self.conv_last(self.features(self.maxpool(self.first_conv(x))))


class TorchvisionBlock(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride == 2:
            self.branch1 = nn.Sequential(*conv_bn(inp, inp, 3, 2, inp, relu=False),
                                         *conv_bn(inp, half))
        branch_in = inp if stride == 2 else half
        self.branch2 = nn.Sequential(*conv_bn(branch_in, half),
                                     *conv_bn(half, half, 3, stride, half, relu=False),
                                     *conv_bn(half, half))

    def forward(self, x):
        if self.stride == 2:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        else:
            c = x.shape[1]
            out = torch.cat([x[:, :c // 2], self.branch2(x[:, c // 2:])], 1)
        c = out.shape[1]
        order = [(i % 2) * (c // 2) + i // 2 for i in range(c)]
        return out[:, order]


class TorchvisionLayoutNet(nn.Module):
    """Keys of torchvision's shufflenet_v2_x*: conv1, stage2..4, conv5, fc."""

    def __init__(self, widen_factor):
        super().__init__()
        chans = CHANNELS[widen_factor]
        self.conv1 = nn.Sequential(*conv_bn(3, 24, 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 24
        for stage, (repeats, cout) in enumerate(zip(REPEATS, chans)):
            blocks = [TorchvisionBlock(cin, cout, 2)]
            blocks += [TorchvisionBlock(cout, cout, 1) for _ in range(repeats - 1)]
            setattr(self, f'stage{stage + 2}', nn.Sequential(*blocks))
            cin = cout
        self.conv5 = nn.Sequential(*conv_bn(cin, chans[3]))
        self.fc = nn.Linear(chans[3], 1000)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.conv5(x)


# torchvision's Sequential index -> mmpretrain's "ConvModule index.part", per branch.
MMPRETRAIN_SEQ = {'1': {0: '0.conv', 1: '0.bn', 2: '1.conv', 3: '1.bn'},
                  '2': {0: '0.conv', 1: '0.bn', 3: '1.conv', 4: '1.bn', 5: '2.conv',
                        6: '2.bn'}}
MMPRETRAIN_ENDS = {'conv1.0': 'conv1.conv', 'conv1.1': 'conv1.bn',
                   'conv5.0': 'layers.3.conv', 'conv5.1': 'layers.3.bn'}


def torchvision_to_mmpretrain_keys(state_dict):
    """Rename torchvision keys to an mmpretrain classifier's (``backbone.layers.K``)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            out['head.' + key] = value
            continue
        m = re.match(r'stage(\d)\.(\d+)\.branch(\d)\.(\d)\.(.*)', key)
        if m:
            seq = MMPRETRAIN_SEQ[m[3]][int(m[4])]
            key = f'layers.{int(m[1]) - 2}.{m[2]}.branch{m[3]}.{seq}.{m[5]}'
        else:
            head, tail = key.rsplit('.', 1)
            key = f'{MMPRETRAIN_ENDS[head]}.{tail}'
        out['backbone.' + key] = value
    return out

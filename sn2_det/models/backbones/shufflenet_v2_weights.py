"""Convert public ImageNet ShuffleNet V2 checkpoints to :class:`ShuffleNetV2`.

Three key layouts exist (see ``docs/paper.md`` Sec. 1): the authors' code
('official': ``first_conv``, ``features.N.branch_main/branch_proj``, ``conv_last``),
torchvision's ``shufflenet_v2_x*`` ('torchvision': ``conv1``, ``stageK.N.branch1/2``,
``conv5``) and mmpretrain's ('mmpretrain': ``conv1``, ``layers.K.N.branch1/2``).

Our backbone routes channels as the authors' code does, so 'official' weights only
need renaming. torchvision and mmpretrain shuffle after every unit instead; the two
networks are the same function up to a permutation of each branch's output channels.
We find that permutation by following channel identities: a channel made by a branch
is consumed by the main branch of a later unit (or leaves the stage). In both
routings this "consumption unit" depends only on the channel's position, so sorting
each branch's outputs by it in both networks pairs them up; the input columns of every
consuming conv are then permuted to match.
"""
from typing import Dict, List, Optional, Tuple

import torch

from ...utils.checkpoint import CheckpointError
from ...utils.errors import ConfigError
from .shufflenet_v2 import ARCH_CHANNELS, STAGE_REPEATS, arch_args

LAYOUTS = ('official', 'torchvision', 'mmpretrain')
BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')
# Layer names: 'stem', 'conv5', or (stage, unit, branch, index) with branch 'main'
# (pw, dw, pw) or 'proj' (dw, pw).
Layer = Dict[str, torch.Tensor]


def _source_prefixes(layout: str, name) -> Tuple[str, str]:
    """(conv prefix, BN prefix) of a layer in a source layout."""
    if layout == 'official':
        if name == 'stem':
            return 'first_conv.0.', 'first_conv.1.'
        if name == 'conv5':
            return 'conv_last.0.', 'conv_last.1.'
        stage, unit, branch, index = name
        seq = {'main': (0, 3, 5), 'proj': (0, 2)}[branch][index]
        base = f'features.{sum(STAGE_REPEATS[:stage]) + unit}.branch_{branch}.'
        return f'{base}{seq}.', f'{base}{seq + 1}.'
    if layout == 'torchvision':
        if name in ('stem', 'conv5'):
            base = 'conv1.' if name == 'stem' else 'conv5.'
            return base + '0.', base + '1.'
        stage, unit, branch, index = name
        seq = {'main': (0, 3, 5), 'proj': (0, 2)}[branch][index]
        base = f'stage{stage + 2}.{unit}.branch{1 if branch == "proj" else 2}.'
        return f'{base}{seq}.', f'{base}{seq + 1}.'
    if name in ('stem', 'conv5'):
        base = 'conv1.' if name == 'stem' else 'layers.3.'
    else:
        stage, unit, branch, index = name
        base = f'layers.{stage}.{unit}.branch{1 if branch == "proj" else 2}.{index}.'
    return base + 'conv.', base + 'bn.'


def _target_prefix(name) -> str:
    if name == 'stem':
        return 'conv1.'
    if name == 'conv5':
        return 'layers.3.'
    stage, unit, branch, index = name
    return f'layers.{stage}.{unit}.branch_{branch}.{index}.'


def _layer_names():
    yield 'stem'
    for stage, repeats in enumerate(STAGE_REPEATS):
        for unit in range(repeats):
            for index in range(3):
                yield stage, unit, 'main', index
            if unit == 0:
                yield stage, unit, 'proj', 0
                yield stage, unit, 'proj', 1
    yield 'conv5'


def detect_layout(state_dict: Dict[str, torch.Tensor]) -> str:
    keys = set(state_dict)
    if 'first_conv.0.weight' in keys:
        return 'official'
    if 'conv1.0.weight' in keys and 'stage2.0.branch1.0.weight' in keys:
        return 'torchvision'
    if 'conv1.conv.weight' in keys and 'layers.0.0.branch1.0.conv.weight' in keys:
        return 'mmpretrain'
    sample = ', '.join(sorted(keys)[:5])
    raise CheckpointError(f'not a ShuffleNet V2 checkpoint in a known layout {LAYOUTS}; '
                          f'first keys: {sample}')


def _unwrap(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The state dict of a checkpoint, without ``module.`` / ``backbone.`` prefixes."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointError('the checkpoint holds no state dict')
    for prefix in ('module.', 'backbone.'):
        if all(k.startswith(prefix) or k.startswith('head.') for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()
                          if k.startswith(prefix)}
    return state_dict


def _read_layers(state_dict, layout) -> Dict[object, Layer]:
    layers = {}
    for name in _layer_names():
        conv, bn = _source_prefixes(layout, name)
        try:
            layer = {'conv.weight': state_dict[conv + 'weight']}
            for key in BN_KEYS:
                layer['bn.' + key] = state_dict[bn + key]
        except KeyError as err:
            raise CheckpointError(f'{layout} ShuffleNet V2 checkpoint lacks key {err.args[0]}')
        layer['bn.num_batches_tracked'] = state_dict.get(
            bn + 'num_batches_tracked', torch.tensor(0, dtype=torch.long))
        layers[name] = layer
    return layers


def _permute(layer: Layer, rows: Optional[List[int]] = None,
             cols: Optional[List[int]] = None) -> Layer:
    """Reorder a conv+BN layer's output channels (rows) or input channels (cols)."""
    out = dict(layer)
    if rows is not None:
        out['conv.weight'] = layer['conv.weight'][rows]
        for key in BN_KEYS:
            out['bn.' + key] = layer['bn.' + key][rows]
    if cols is not None:
        out['conv.weight'] = out['conv.weight'][:, cols]
    return out


def _consumption(repeats: int, made: List[Tuple[int, List]], lazy: bool):
    """Unit at which each channel is consumed by a main branch (``repeats`` if never).

    ``made[u]`` lists the channels unit u creates, in output order (proj then main
    for unit 0, main only for the others). ``lazy`` is the authors' routing (no
    shuffle; identity = even channels); otherwise torchvision's (shuffle after every
    unit; identity = first half). Returns the consumption units, the input order of
    each unit's main branch, and the stage output order.
    """
    when, main_inputs = {}, []
    y = list(made[0])
    if not lazy:
        y = _shuffle(y)
    main_inputs.append(None)
    for unit in range(1, repeats):
        keep, used = (y[0::2], y[1::2]) if lazy else (y[:len(y) // 2], y[len(y) // 2:])
        for channel in used:
            when[channel] = unit
        main_inputs.append(used)
        y = keep + list(made[unit])
        if not lazy:
            y = _shuffle(y)
    for channel in y:
        when[channel] = repeats
    return when, main_inputs, y


def _shuffle(channels: List) -> List:
    half = len(channels) // 2
    return [c for pair in zip(channels[:half], channels[half:]) for c in pair]


def convert_shufflenet_v2(state_dict: Dict[str, torch.Tensor],
                          layout: Optional[str] = None):
    """Return ``(state_dict, arch)`` for :class:`ShuffleNetV2` from a public checkpoint
    (a state dict, or a dict holding one under 'state_dict').

    ``arch`` holds the constructor arguments the weights need (``type``,
    ``widen_factor``, ``downsample_split``, ``star``). The classifier is dropped.
    """
    state_dict = _unwrap(state_dict)
    layout = layout or detect_layout(state_dict)
    if layout not in LAYOUTS:
        raise ConfigError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    layers = _read_layers(state_dict, layout)

    stage2_out = sum(layers[(0, 0, b, 2 if b == 'main' else 1)]['conv.weight'].shape[0]
                     for b in ('main', 'proj'))
    widths = {ch[0]: wf for wf, ch in ARCH_CHANNELS.items()}
    if stage2_out not in widths:
        raise CheckpointError(f'stage2 has {stage2_out} output channels; ShuffleNet V2 has '
                              f'{sorted(widths)} for widen factors {tuple(ARCH_CHANNELS)}')
    widen_factor = widths[stage2_out]
    arch = arch_args(widen_factor, 'official' if layout == 'official' else 'even', False)

    if layout != 'official':
        layers = _reroute(layers, ARCH_CHANNELS[widen_factor])
    out = {}
    for name, layer in layers.items():
        for key, value in layer.items():
            out[_target_prefix(name) + key] = value.clone()
    return out, arch


def _reroute(layers: Dict[object, Layer], channels) -> Dict[object, Layer]:
    """Permute shuffle-after-unit weights for the authors' routing (module docstring)."""
    out = dict(layers)
    in_order = None  # our stage input channel p holds torchvision's channel in_order[p]
    for stage, (repeats, n) in enumerate(zip(STAGE_REPEATS, channels)):
        proj_out = layers[(stage, 0, 'proj', 1)]['conv.weight'].shape[0]
        tv_made = [[(0, 'proj', k) for k in range(proj_out)] +
                   [(0, 'main', k) for k in range(n - proj_out)]]
        ours_made = [[('slot', 0, k) for k in range(n)]]
        for unit in range(1, repeats):
            tv_made.append([(unit, 'main', k) for k in range(n // 2)])
            ours_made.append([('slot', unit, k) for k in range(n // 2)])
        tv_when, tv_inputs, tv_stage_out = _consumption(repeats, tv_made, lazy=False)
        our_when, _, _ = _consumption(repeats, ours_made, lazy=True)

        # Pair our output slots with torchvision channels of the same consumption unit.
        slot_to_tv = {}
        for unit in range(repeats):
            groups = [('proj', proj_out), ('main', n - proj_out)] if unit == 0 \
                else [('main', n // 2)]
            offset = 0
            for branch, size in groups:
                slots = ours_made[unit][offset:offset + size]
                tv = [c for c in tv_made[unit] if c[1] == branch]
                slots = sorted(slots, key=lambda s: (our_when[s], s))
                tv = sorted(tv, key=lambda c: (tv_when[c], c))
                if [our_when[s] for s in slots] != [tv_when[c] for c in tv]:
                    raise CheckpointError('channel routings do not match; this checkpoint '
                                          'cannot be expressed in the authors\' routing')
                pairs = dict(zip(slots, tv))
                slot_to_tv.update(pairs)
                rows = [pairs[s][2] for s in ours_made[unit][offset:offset + size]]
                last = (stage, unit, branch, 2 if branch == 'main' else 1)
                out[last] = _permute(out[last], rows=rows)
                offset += size

        # Our routing, now with torchvision's channel names in every slot.
        named = [[slot_to_tv[s] for s in made] for made in ours_made]
        _, our_inputs, our_stage_out = _consumption(repeats, named, lazy=True)
        if in_order is not None:  # the downsampling unit reads the whole stage input
            out[(stage, 0, 'main', 0)] = _permute(out[(stage, 0, 'main', 0)], cols=in_order)
            # the projection's depthwise conv keeps channels apart: its output follows
            # the input order, and so must the pointwise conv that reads it
            out[(stage, 0, 'proj', 0)] = _permute(out[(stage, 0, 'proj', 0)], rows=in_order)
            out[(stage, 0, 'proj', 1)] = _permute(out[(stage, 0, 'proj', 1)], cols=in_order)
        for unit in range(1, repeats):
            position = {c: i for i, c in enumerate(tv_inputs[unit])}
            first = (stage, unit, 'main', 0)
            out[first] = _permute(out[first], cols=[position[c] for c in our_inputs[unit]])
        position = {c: i for i, c in enumerate(tv_stage_out)}
        in_order = [position[c] for c in our_stage_out]
    out['conv5'] = _permute(out['conv5'], cols=in_order)
    return out


# Input normalisation each layout's ImageNet weights were trained with, as mmdet
# data_preprocessor keys: the authors' code feeds raw BGR pixels, torchvision and
# mmpretrain RGB scaled by the ImageNet mean and std.
TRAINED_INPUT = {
    'official': dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    'torchvision': dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                        bgr_to_rgb=True),
}
TRAINED_INPUT['mmpretrain'] = TRAINED_INPUT['torchvision']


def convert_checkpoint_file(src: str, dst: str, layout: Optional[str] = None) -> dict:
    """Convert the checkpoint file ``src`` and save it to ``dst``; return its meta.

    The saved meta records ``backbone`` (the constructor arguments the weights need;
    :func:`sn2_det.utils.checkpoint.load_backbone_checkpoint` checks them),
    ``source_layout`` and ``data_preprocessor`` (the input normalisation).
    """
    from ...utils.checkpoint import safe_torch_load

    source = safe_torch_load(src)
    if not isinstance(source, dict):
        raise CheckpointError(f'{src} holds no state dict')
    layout = layout or detect_layout(_unwrap(source))
    converted, arch = convert_shufflenet_v2(source, layout)
    meta = dict(backbone=arch, source=str(src), source_layout=layout,
                data_preprocessor=TRAINED_INPUT[layout])
    torch.save(dict(state_dict=converted, meta=meta), dst)
    return meta

"""metafile.yml (the model index) against the configs and the FLOPs counter."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

from sn2_det.analysis.model_index import index_configs, measure, model_entry

ROOT = Path(__file__).resolve().parents[1]
INDEX = yaml.safe_load((ROOT / 'metafile.yml').read_text())
MODELS = {m['Config']: m for m in INDEX['Models']}
# Measured under `make test`; the twenty Table 7 cells' FLOPs under `make test-slow`.
QUICK_FLOPS = ('configs/lighthead_sn2.py', 'configs/toy/lighthead_sn2_toy.py',
               'configs/swap/ssdlite_sn2-1.0x_8xb24-600e_coco.py')


def test_every_light_head_table7_and_swap_config_is_listed_once():
    expected = {str(p.relative_to(ROOT)) for pattern in (
        'configs/lighthead_sn2*.py', 'configs/table7/lighthead_*.py',
        'configs/toy/lighthead_*.py', 'configs/swap/*.py') for p in ROOT.glob(pattern)}
    # 5 ShuffleNet V2, 20 Table 7, 2 toy; 9 swap detectors, 7 of them also with V2*
    assert len(expected) == 27 + 16
    configs = [m['Config'] for m in INDEX['Models']]
    assert sorted(configs) == sorted(expected)
    assert [c for _, c in index_configs(str(ROOT))] == configs
    names = [m['Name'] for m in INDEX['Models']]
    assert len(set(names)) == len(names)
    collections = {c['Name'] for c in INDEX['Collections']}
    assert {m['In Collection'] for m in INDEX['Models']} == collections


def test_the_model_index_imports_the_metafile():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert index == {'Import': ['metafile.yml']}
    for name in ('model-index.yml', 'metafile.yml', 'configs'):
        assert (ROOT / 'sn2_det/.mim' / name).resolve() == (ROOT / name).resolve()


@pytest.mark.parametrize('config', sorted(MODELS))
def test_entry_matches_its_config(config):
    """Name, collection, backbone, data, schedule, input size and parameters as the
    config gives them now; weights and results empty until trained weights exist."""
    entry = MODELS[config]
    assert entry['Weights'] is None and entry['Results'] is None
    cfg = Config.fromfile(str(ROOT / config))
    measured = dict(measure(cfg, flops=False), macs=entry['Metadata']['FLOPs'],
                    backbone_macs=entry['Metadata']['Backbone FLOPs'])
    assert entry == model_entry(str(ROOT), entry['In Collection'], config, measured)


def _flops_cases():
    for config in sorted(MODELS):
        marks = () if config in QUICK_FLOPS else (pytest.mark.slow,)
        yield pytest.param(config, marks=marks, id=config)


@pytest.mark.parametrize('config', list(_flops_cases()))
def test_flops_are_the_counters(config):
    entry = MODELS[config]['Metadata']
    measured = measure(Config.fromfile(str(ROOT / config)))
    assert (entry['FLOPs'], entry['Backbone FLOPs'], entry['Parameters']) == (
        measured['macs'], measured['backbone_macs'], measured['params'])


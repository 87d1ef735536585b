"""Every address mmengine can load a checkpoint from goes through the weights-only reader.

A checkpoint whose pickle runs code (``__reduce__`` -> ``exec`` creating a file) is served
from 127.0.0.1 (fixture ``http_server``, tests/test_utils/conftest.py) and must be refused by
``mmengine.runner.load_checkpoint``, by mmengine's ``Pretrained`` init, by ``load_from``, by
the AOI backbones and by ``tools/test.py``'s reader, with the file never created; a benign
checkpoint served the same way must load.
"""
import io
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModule
from mmengine.runner import checkpoint as mm_ckpt
from mmengine.runner import load_checkpoint

from aoissl_mm import compat
from aoissl_mm.models.backbones import AOIViT, load_backbone_weights
from aoissl_mm.utils.checkpoint import check_checkpoint_matches, safe_torch_load


class _Evil:
    """Pickles as ``exec(<create marker>)``: a full unpickle creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


class _Net(BaseModule):
    """A small non-AOI module, initialised the way mmseg's baselines are (``init_cfg``)."""

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(2, 3, 1)


def _weights(seed):
    torch.manual_seed(seed)
    return _Net().state_dict()


def _serve(root, names, obj):
    for name in names:
        torch.save(obj, str(root / name))


def _raises_refusal(fn, url):
    name = url.split('/')[-1]
    with pytest.raises(RuntimeError, match=r'(?s)refusing to load checkpoint .*' + name):
        fn()


def test_control_mmengine_own_http_loader_runs_the_payload(http_server, tmp_path):
    """Without the shim: mmengine's registered HTTP loader unpickles fully (the reviewed hole)."""
    root, base, _ = http_server
    marker = tmp_path / 'control_pwned'
    _serve(root, ['control.pth'], {'state_dict': _weights(0), 'x': _Evil(marker)})
    mm_ckpt.load_from_http(f'{base}/control.pth', map_location='cpu')  # mmengine's function
    assert marker.exists()


def test_malicious_http_checkpoint_is_refused_on_every_path(http_server, tmp_path, monkeypatch,
                                                           make_toy_runner):
    root, base, requests = http_server
    marker = tmp_path / 'pwned'
    names = ['load_checkpoint.pth', 'pretrained.pth', 'pretrained_prefix.pth', 'load_from.pth',
             'openmmlab.pth', 'torchvision.pth', 'mmcls.pth', 'aoi_backbone.pth',
             'tools_test.pth']
    evil = {'state_dict': {**_weights(0), **{'backbone.' + k: v for k, v in _weights(0).items()}},
            'x': _Evil(marker)}
    _serve(root, names, evil)
    url = {n: f'{base}/{n}' for n in names}

    # mmengine.runner.load_checkpoint, as a user would call it after `import aoissl_mm`
    _raises_refusal(lambda: load_checkpoint(_Net(), url['load_checkpoint.pth']),
                    url['load_checkpoint.pth'])
    # mmengine's Pretrained init (baselines' backbones), without and with a prefix
    _raises_refusal(_Net(dict(type='Pretrained', checkpoint=url['pretrained.pth'])).init_weights,
                    url['pretrained.pth'])
    net = _Net(dict(type='Pretrained', checkpoint=url['pretrained_prefix.pth'], prefix='backbone.'))
    _raises_refusal(net.init_weights, url['pretrained_prefix.pth'])
    # load_from in training
    runner, _, _ = make_toy_runner(load_from=url['load_from.pth'])
    _raises_refusal(runner.train, url['load_from.pth'])
    # open-mmlab:// names resolve through $MMENGINE_HOME/open_mmlab.json to a URL
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    (home / 'open_mmlab.json').write_text(json.dumps({'aoi_evil': url['openmmlab.pth']}))
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    for scheme in ('open-mmlab://', 'openmmlab://'):
        _raises_refusal(lambda: load_checkpoint(_Net(), scheme + 'aoi_evil'), 'openmmlab.pth')
    # torchvision:// and mmcls:// names resolve through mmengine's tables to a URL
    monkeypatch.setattr(mm_ckpt, 'get_torchvision_models',
                        lambda: {'evilnet': url['torchvision.pth']})
    monkeypatch.setattr(mm_ckpt, 'get_mmcls_models', lambda: {'evilcls': url['mmcls.pth']})
    for name in ('torchvision://evilnet', 'modelzoo://evilnet'):
        _raises_refusal(lambda: load_checkpoint(_Net(), name), 'torchvision.pth')
    _raises_refusal(lambda: load_checkpoint(_Net(), 'mmcls://evilcls'), 'mmcls.pth')
    # the AOI backbones' own Pretrained loading and tools/test.py's reader
    vit = AOIViT(img_size=32, init_cfg=dict(type='Pretrained',
                                            checkpoint=url['aoi_backbone.pth']))
    _raises_refusal(vit.init_weights, url['aoi_backbone.pth'])
    _raises_refusal(lambda: check_checkpoint_matches(_Net(), url['tools_test.pth']),
                    url['tools_test.pth'])

    assert not marker.exists()
    fetched = {path.lstrip('/') for path, status in requests if status == 200}
    assert fetched == set(names)  # every path really downloaded its file
    # https:// takes the same loader (no TLS server here)
    loader = mm_ckpt.CheckpointLoader._get_checkpoint_loader('https://127.0.0.1:1/x.pth')
    assert loader is compat.load_from_http


def test_benign_http_checkpoint_loads_on_every_path(http_server, tmp_path, monkeypatch,
                                                    make_toy_runner):
    root, base, requests = http_server
    saved = _weights(1)
    loss = HistoryBuffer()
    loss.update(np.float64(0.5), 2)
    hub = {'log_scalars': {'loss': loss}}  # numpy inside HistoryBuffer: the allow-list
    _serve(root, ['good.pth'], {'meta': {'iter': 2}, 'message_hub': hub, 'state_dict': saved})
    prefixed = {'backbone.' + k: v for k, v in saved.items()}
    _serve(root, ['good_prefixed.pth'], {'state_dict': prefixed})
    url = f'{base}/good.pth'

    def assert_loaded(module):
        for k, v in saved.items():
            assert torch.equal(module.state_dict()[k], v), k

    fresh = _Net()
    assert not torch.equal(fresh.conv.weight, saved['conv.weight'])
    ckpt = load_checkpoint(fresh, url)
    assert ckpt['meta'] == {'iter': 2}
    assert ckpt['message_hub']['log_scalars']['loss'].current() == 0.5
    assert_loaded(fresh)
    net = _Net(dict(type='Pretrained', checkpoint=f'{base}/good_prefixed.pth', prefix='backbone.'))
    net.init_weights()
    assert_loaded(net)
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    (home / 'open_mmlab.json').write_text(json.dumps({'aoi_good': url}))
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    net = _Net()
    load_checkpoint(net, 'open-mmlab://aoi_good')
    assert_loaded(net)
    assert set(check_checkpoint_matches(_Net(), url)) == set(saved)
    # load_from: training starts from the served weights
    toy = {'net.lin.weight': torch.tensor([[1.0, 2.0, 3.0]]), 'net.lin.bias': torch.tensor([4.])}
    _serve(root, ['toy.pth'], {'state_dict': toy})
    runner, hook, _ = make_toy_runner(load_from=f'{base}/toy.pth')
    runner.train()
    assert all(torch.equal(hook.weights[k], v) for k, v in toy.items())
    # a second read of the same URL comes from $TORCH_HOME's cache, not the server
    n = len(requests)
    assert torch.equal(safe_torch_load(url)['state_dict']['conv.bias'], saved['conv.bias'])
    assert len(requests) == n
    assert osp.isfile(osp.join(str(tmp_path / 'torch_home'), 'hub', 'checkpoints', 'good.pth'))


def test_aoi_backbone_loads_from_url(http_server):
    root, base, _ = http_server
    torch.manual_seed(3)
    src = AOIViT(img_size=32)
    _serve(root, ['vit.pth'], {'state_dict': {'backbone.' + k: v
                                              for k, v in src.state_dict().items()}})
    torch.manual_seed(4)
    dst = AOIViT(img_size=32)
    assert not torch.equal(dst.pos_embed, src.pos_embed)
    loaded, missing, _ = load_backbone_weights(dst, f'{base}/vit.pth')
    assert missing == [] and len(loaded) == len(src.state_dict())
    assert torch.equal(dst.blocks[2].attn.qkv.weight, src.blocks[2].attn.qkv.weight)


def test_url_errors_name_the_url_and_the_cause(http_server):
    root, base, _ = http_server
    torch.save({'w': torch.arange(1000.)}, str(root / 'whole.pth'))
    data = (root / 'whole.pth').read_bytes()
    (root / 'cut.pth').write_bytes(data[:len(data) // 3])
    with pytest.raises(FileNotFoundError,
                       match=r'checkpoint not found: .*/absent\.pth \(HTTP 404\)'):
        safe_torch_load(f'{base}/absent.pth')
    with pytest.raises(RuntimeError, match=r"cannot read checkpoint '.*/cut\.pth \(cached as "
                                           r".*central directory") as err:
        safe_torch_load(f'{base}/cut.pth')
    assert 'weights-only' not in str(err.value)
    with pytest.raises(ValueError, match='does not end in a file name'):
        safe_torch_load(f'{base}/')
    with pytest.raises(FileNotFoundError, match=r'absent2\.pth'):
        load_checkpoint(_Net(), f'{base}/absent2.pth')


def test_s3_pavi_and_unknown_schemes(tmp_path, monkeypatch):
    import mmengine.fileio
    marker = tmp_path / 'pwned_s3'
    blobs = {}
    for name, obj in (('evil', {'state_dict': _weights(0), 'x': _Evil(marker)}),
                      ('good', {'state_dict': _weights(5)})):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        blobs[f's3://bucket/{name}.pth'] = buffer.getvalue()

    class FakeBackend:

        def get(self, filepath):
            return blobs[filepath]

    monkeypatch.setattr(mmengine.fileio, 'get_file_backend', lambda *a, **k: FakeBackend())
    _raises_refusal(lambda: load_checkpoint(_Net(), 's3://bucket/evil.pth'), 'evil.pth')
    assert not marker.exists()
    net = _Net()
    load_checkpoint(net, 's3://bucket/good.pth')
    assert torch.equal(net.conv.weight, _weights(5)['conv.weight'])
    with pytest.raises(RuntimeError, match=r"refusing to load checkpoint 'pavi://m/x\.pth'.*pavi"):
        load_checkpoint(_Net(), 'pavi://m/x.pth')

    # a scheme registered after `import aoissl_mm` by someone else is refused, not trusted
    def unsafe_loader(filename, map_location=None):
        return torch.load(filename[len('unsafe://'):], weights_only=False)

    schemes = dict(mm_ckpt.CheckpointLoader._schemes)
    mm_ckpt.CheckpointLoader.register_scheme('unsafe://', loader=unsafe_loader)
    try:
        with pytest.raises(RuntimeError, match=r"refusing to load checkpoint 'unsafe://x\.pth'.*"
                                               r'unsafe_loader'):
            load_checkpoint(_Net(), 'unsafe://x.pth')
    finally:
        mm_ckpt.CheckpointLoader._schemes = schemes

"""The one checkpoint reader: weights-only loading, container rules, key and shape checks."""
import io

import pytest
import torch
import torch.nn as nn

from aoissl_mm.utils import check_checkpoint_matches
from aoissl_mm.utils.checkpoint import (
    check_state_dict_matches,
    compare_state_dicts,
    extract_state_dict,
    preload_checkpoint,
    safe_torch_load,
    weights_only_load,
)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, good)
    assert set(check_checkpoint_matches(model, good)) == set(model.state_dict())
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))
    bad = str(tmp_path / 'other.pth')
    torch.save(other.state_dict(), bad)
    with pytest.raises(ValueError, match=r'other\.pth does not match.*0\.weight: model '
                                         r'\(4, 2, 3, 3\), checkpoint \(4, 3, 3, 3\)'
                                         r'.*not in model \[2\]: 3\.weight; 3\.bias'):
        check_checkpoint_matches(model, bad)


# ------------------------------------------------------------------ container rules
def test_extract_state_dict_container_rules():
    a, b = torch.zeros(2), torch.ones(3)
    # a raw state dict; non-tensor entries are dropped
    assert list(extract_state_dict({'x.a': a, 'x.b': b, 'n': 3}, 'f.pth')) == ['x.a', 'x.b']
    # the first mapping among state_dict, model, module holds the weights
    for key in ('state_dict', 'model', 'module'):
        got = extract_state_dict({'meta': {'iter': 1}, key: {'w': a}}, 'f.pth')
        assert list(got) == ['w'] and got['w'] is a
    got = extract_state_dict({'module': {'m': b}, 'model': {'md': b}, 'state_dict': {'s': a}},
                             'f.pth')
    assert list(got) == ['s']
    assert list(extract_state_dict({'model': {'md': b}, 'module': {'m': b}}, 'f.pth')) == ['md']
    # a tensor named like a container is a weight, not a container
    assert list(extract_state_dict({'model': a, 'head.w': b}, 'f.pth')) == ['model', 'head.w']
    # DDP prefixes are removed key by key, as mmengine does
    got = extract_state_dict({'state_dict': {'module.lin.weight': a, 'lin.bias': b}}, 'f.pth')
    assert list(got) == ['lin.weight', 'lin.bias']
    with pytest.raises(TypeError, match=r"checkpoint 'l\.pth'.*got list"):
        extract_state_dict([a], 'l.pth')
    with pytest.raises(TypeError, match=r"'e\.pth' holds no tensors.*\['meta', 'state_dict'\]"):
        extract_state_dict({'meta': {}, 'state_dict': {'n': 1}}, 'e.pth')


def test_compare_state_dicts_hand_made():
    own = {'a': torch.zeros(2, 3), 'b': torch.zeros(4), 'c': torch.zeros(1), 'e': torch.zeros(5)}
    state = {'d': torch.zeros(5), 'a': torch.zeros(3, 2), 'b': torch.ones(4), 'e': torch.zeros(5)}
    diff = compare_state_dicts(own, state)
    assert diff.missing == ['c']
    assert diff.unexpected == ['d']
    assert diff.mismatched == [('a', (2, 3), (3, 2))]
    assert compare_state_dicts(own, own) == ([], [], [])


def test_mismatch_message_lists_at_most_max_names():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(6)])  # 12 tensors
    with pytest.raises(ValueError, match=r'checkpoint x\.pth does not match the model '
                                         r'\(Sequential\)'
                                         r'.*missing in checkpoint \[12\]: 0\.weight; 0\.bias; '
                                         r'1\.weight; 1\.bias; 2\.weight \(\+7 more\) \| '
                                         r'not in model \[1\]: other$'):
        check_state_dict_matches(model, {'other': torch.zeros(1)}, 'x.pth', max_names=5)
    check_state_dict_matches(model, model.state_dict(), 'x.pth')  # exact match: no error


# ------------------------------------------------------------------ reading
def test_error_messages_say_the_real_cause(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, str(good))
    data = good.read_bytes()
    cases = {'trunc.pth': data[:len(data) // 2], 'empty.pth': b'', 'text.pth': b'not a checkpoint'}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(RuntimeError, match=r"cannot read checkpoint '.*trunc\.pth'.*"
                                           r'central directory') as err:
        safe_torch_load(str(tmp_path / 'trunc.pth'))
    assert 'weights-only' not in str(err.value)
    with pytest.raises(RuntimeError, match=r"cannot read checkpoint '.*empty\.pth': the file is "
                                           r'empty \(0 bytes\) \(EOFError\)'):
        safe_torch_load(str(tmp_path / 'empty.pth'))
    with pytest.raises(RuntimeError, match=r"checkpoint '.*text\.pth'"):  # torch: bad opcode
        safe_torch_load(str(tmp_path / 'text.pth'))
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        safe_torch_load(str(tmp_path / 'absent.pth'))
    assert torch.equal(safe_torch_load(str(good))['state_dict']['w'], torch.arange(1000.))


class _Evil:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


def test_reduce_payload_refused_from_file_and_buffer(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _Evil(str(marker))}, path)
    with pytest.raises(RuntimeError, match=r"(?s)refusing to load checkpoint '.*evil\.pth'.*"
                                           r'not a weights-only checkpoint.*GLOBAL exec'):
        weights_only_load(path)
    with open(path, 'rb') as f, pytest.raises(RuntimeError, match="checkpoint 's3://b/evil'"):
        weights_only_load(io.BytesIO(f.read()), name='s3://b/evil')
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: a full unpickle runs it
    assert marker.exists()


# ------------------------------------------------------------------ tools/test.py's single read
def test_preload_reads_once_checks_and_loads_at_the_runners_place(tmp_path, monkeypatch,
                                                                  make_toy_runner):
    w, b = torch.tensor([[0.5, -2.0, 3.0]]), torch.tensor([0.25])
    path = str(tmp_path / 'toy.pth')
    torch.save({'meta': {'iter': 7}, 'state_dict': {'module.net.lin.weight': w,
                                                    'module.net.lin.bias': b}}, path)
    runner, hook, metric = make_toy_runner(load_from=path)
    assert not torch.equal(runner.model.net.lin.weight.data, w)
    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    state = preload_checkpoint(runner, path)
    assert list(state) == ['net.lin.weight', 'net.lin.bias']
    runner.test()
    assert reads == [path]  # one read for the check and the load
    # mmengine's order: before_run hooks, then after_load_checkpoint with the checkpoint
    assert hook.calls == ['before_run', 'after_load_checkpoint']
    assert hook.loaded['meta'] == {'iter': 7}
    assert torch.equal(runner.model.net.lin.weight.data, w)
    assert len(metric.pairs) == 3
    for x, out in metric.pairs:  # y = w . x + b, written out
        expected = sum(float(w[0, i]) * float(x[i]) for i in range(3)) + float(b[0])
        assert abs(float(out[0]) - expected) < 1e-5
    # another file name still goes to the Runner's own (non-strict) loading
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'net.lin.bias': torch.tensor([9.0])}}, other)
    runner.load_checkpoint(other)
    assert float(runner.model.net.lin.bias.detach()) == 9.0


def test_preload_refuses_a_mismatch_before_anything_runs(tmp_path, make_toy_runner):
    path = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': {'net.lin.weight': torch.zeros(1, 4),
                               'net.lin.bias': torch.zeros(1)}}, path)
    runner, hook, _ = make_toy_runner(load_from=path)
    before = runner.model.net.lin.weight.detach().clone()
    with pytest.raises(ValueError, match=r'wide\.pth does not match.*net\.lin\.weight: model '
                                         r'\(1, 3\), checkpoint \(1, 4\)'):
        preload_checkpoint(runner, path)
    assert hook.calls == [] and torch.equal(runner.model.net.lin.weight.detach(), before)

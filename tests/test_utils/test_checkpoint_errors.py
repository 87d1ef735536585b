"""A damaged checkpoint gets one error naming the file and what is wrong with it.

Each file is built by hand (cut, emptied, a byte flipped inside a zip member, replaced by
an HTML page, a plain pickle, another zip, a cut legacy file) and the expected cause is
written out here; a genuine disallowed global keeps the security refusal. The same errors
come out of ``--resume``, ``load_from`` and ``tools/test.py``'s reader.
"""
import io
import os.path as osp
import pickle
import re
import struct
import zipfile

import pytest
import torch
from mmengine.runner import Runner

from aoissl_mm.utils import load_config, setup_train_cfg
from aoissl_mm.utils.checkpoint import preload_checkpoint, safe_torch_load, weights_only_load

from .conftest import ToyModel

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Evil:

    def __reduce__(self):
        return (exec, ('raise SystemExit("ran")', ))


def _good_bytes(**kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, buffer, **kwargs)
    return buffer.getvalue()


def _flip_first_byte_of(data: bytes, member_suffix: str) -> bytes:
    """Flip the first stored byte of a zip member (its local header: 30 bytes + name + extra)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    name_len, extra_len = struct.unpack('<HH', data[info.header_offset + 26:
                                                    info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _other_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr('weights.txt', '1 2 3')
    return buffer.getvalue()


def _evil_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({'x': _Evil()}, buffer)
    return buffer.getvalue()


GOOD = _good_bytes()
# name -> (bytes, pattern the message must match after "cannot read checkpoint '<path>': ")
CASES = {
    'cut.pth': (GOOD[:len(GOOD) // 2],
                rf'the zip archive is truncated or corrupt \({len(GOOD) // 2} bytes; .*cut short'
                r'.*\(RuntimeError: PytorchStreamReader failed .*central directory\)'),
    'empty.pth': (b'', r'the file is empty \(0 bytes\) \(EOFError\)$'),
    'flipped.pth': (_flip_first_byte_of(GOOD, '/data.pkl'),
                    r"the zip archive is corrupt: member '.*/data\.pkl' fails its CRC check"),
    'page.pth': (b'<!DOCTYPE html><html>Sign in</html>',
                 r"not a PyTorch checkpoint: .*starts with b'<!DOCTYPE html>"),
    'plain.pkl': (pickle.dumps({'w': [1, 2]}), r'a plain Python pickle, not a PyTorch checkpoint'),
    'other.zip': (_other_zip(), r"a zip archive, but not a PyTorch checkpoint \(no data\.pkl "
                                r"among \['weights\.txt'\]\)"),
    'legacy_cut.pth': (_good_bytes(_use_new_zipfile_serialization=False)[:60],
                       r'the legacy-format checkpoint ends early \(truncated, 60 bytes\)'),
}


def test_each_kind_of_damage_gets_its_own_message(tmp_path):
    for name, (data, pattern) in CASES.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(RuntimeError) as err:
            safe_torch_load(str(path))
        message = str(err.value)
        prefix = f"cannot read checkpoint '{path}': "
        assert message.startswith(prefix), message
        assert re.search(pattern, message[len(prefix):]), message
        # the security wording is kept for what really is a security refusal
        assert 'weights-only' not in message and 'refusing' not in message, message
        # a buffer (the s3:// loader) gets the same diagnosis, under the name it is given
        with pytest.raises(RuntimeError, match=r"cannot read checkpoint 's3://b/" + name):
            weights_only_load(io.BytesIO(data), name='s3://b/' + name)
    assert torch.equal(weights_only_load(io.BytesIO(GOOD))['state_dict']['w'],
                       torch.arange(1000.))


def test_a_disallowed_global_is_still_refused_as_such(tmp_path):
    path = tmp_path / 'evil.pth'
    path.write_bytes(_evil_bytes())
    with pytest.raises(RuntimeError, match=rf"refusing to load checkpoint '{path}': it is not a "
                                           r'weights-only checkpoint of allowed types '
                                           r'\(UnpicklingError: Unsupported global: GLOBAL '
                                           r'(builtins\.)?exec was not an allowed global') as err:
        safe_torch_load(str(path))
    assert 'weights_only` set to `False' not in str(err.value)  # torch's advice is dropped


def _toy_runner(tmp_path, **kwargs) -> Runner:
    data = [dict(inputs=torch.randn(3), labels=torch.randn(1)) for _ in range(2)]
    return Runner(
        model=ToyModel(), work_dir=str(tmp_path / 'toy'),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=1), default_hooks=dict(checkpoint=None),
        default_scope=None, experiment_name=f'toy_errors_{tmp_path.name}', **kwargs)


def test_resume_load_from_and_tools_test_report_the_cause(tmp_path):
    bad = tmp_path / 'iter_8.pth'
    bad.write_bytes(GOOD[:len(GOOD) - 100])  # the end (central directory) is missing
    expected = rf"cannot read checkpoint '{bad}': the zip archive is truncated or corrupt"
    # train --resume <file> (setup_train_cfg: resume=True, load_from=<file>) -> Runner.resume
    with pytest.raises(RuntimeError, match=expected):
        _toy_runner(tmp_path, resume=True, load_from=str(bad)).train()
    # load_from (fine-tuning) -> Runner.load_checkpoint
    with pytest.raises(RuntimeError, match=expected):
        _toy_runner(tmp_path, load_from=str(bad)).train()
    # tools/test.py reads its checkpoint with preload_checkpoint
    with pytest.raises(RuntimeError, match=expected):
        preload_checkpoint(_toy_runner(tmp_path), str(bad))


def test_resume_auto_refuses_a_stale_last_checkpoint(tmp_path):
    cfg_path = osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi_cpu.py')
    work = tmp_path / 'work'
    work.mkdir()
    # no last_checkpoint: a fresh start, as in mmengine
    cfg = setup_train_cfg(load_config(cfg_path), cfg_path, str(work), resume='auto')
    assert cfg.resume is True and cfg.load_from is None
    for content in ('', str(work / 'iter_300.pth')):
        (work / 'last_checkpoint').write_text(content)
        with pytest.raises(FileNotFoundError, match=rf"--resume: {work}/last_checkpoint names "
                                                    rf"'{content}', which is not a file"):
            setup_train_cfg(load_config(cfg_path), cfg_path, str(work), resume='auto')
    (work / 'iter_300.pth').write_bytes(GOOD)
    cfg = setup_train_cfg(load_config(cfg_path), cfg_path, str(work), resume='auto')
    assert cfg.resume is True

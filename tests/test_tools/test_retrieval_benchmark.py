"""tools/benchmark.py on a retrieval config: a tiny smoke run (64² crops, 10³ entries).

Checked against independent facts: an IVF search visiting every list
(nprobe = nlist) finds exactly the flat top-k (recall 1), and bytes per
patch follow the hand arithmetic D*2 + ceil(p*p*C/8) (+ 8 B id for IVF).
"""
import json
import math
import os.path as osp
import runpy
import sys

import numpy as np
import pytest

from aoissl_mm.utils.retrieval_scaling import distractor_stream, recall_at_k

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP, P, C, D = 64, 16, 4, 384
CFG = osp.join(ROOT, 'configs', 'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')


@pytest.fixture(scope='module')
def tiny_cfg(tmp_path_factory, tiny_retrieval_config):
    tmp = tmp_path_factory.mktemp('retrieval_bench')
    data_root, path, _ = tiny_retrieval_config(tmp, CROP)
    return tmp, data_root, path


def test_benchmark_tool_on_retrieval_config(tiny_cfg, monkeypatch, capsys):
    tmp, data_root, cfg_path = tiny_cfg
    out = str(tmp / 'bench.json')
    monkeypatch.setattr(sys, 'argv', [
        'benchmark.py', cfg_path, '--crop', str(CROP), '--batch', '2', '--warmup', '0',
        '--iters', '1', '--device', 'cpu', '--compare',
        osp.join(ROOT, 'configs', 'vit-tiny_upernet_aoi.py'), '--memory-size', '1e3',
        '--nlists', '4,8', '--nprobes', '1,2', '--sweep-queries', '32', '--add-images', '2',
        '--add-data-root', data_root, '--add-split', 'test', '--no-progress', '--json', out
    ])
    runpy.run_path(osp.join(ROOT, 'tools', 'benchmark.py'), run_name='__main__')
    printed = capsys.readouterr().out
    assert 'crops/s' in printed and 'RANDOM' in printed and 'recall@k' in printed
    res = json.load(open(out))
    assert {'throughput', 'compare', 'speedup', 'bytes_per_patch', 'scaling', 'add',
            'random_backbone', 'memory'} <= set(res)
    assert res['random_backbone'] is True
    # the memory: every 16x16 patch of the 3 training crops
    assert res['memory']['entries'] == 3 * (CROP // P)**2
    thr, cmp = res['throughput'], res['compare']
    assert thr['crop_size'] == [CROP, CROP] and thr['crops_per_s'] > 0 and cmp['crops_per_s'] > 0
    assert res['speedup'] == pytest.approx(thr['crops_per_s'] / cmp['crops_per_s'])
    # (b) hand arithmetic: fp16 key D*2 bytes + the p*p*C mask bit-packed
    b = res['bytes_per_patch']
    value = math.ceil(P * P * C / 8)
    assert b['formula_fp16'] == D * 2 + value == 896
    assert b['index_flat_fp16'] == 896 and b['index_flat_fp32'] == D * 4 + value
    assert b['index_ivf_fp16'] == 896 + 8
    assert b['on_disk_flat_fp16'] >= 896
    # (c) the exhaustive IVF search equals the exact one
    sc = res['scaling']
    assert sc['memory_size'] == 1000 and sc['real_entries'] == 48 and sc['distractors'] == 952
    assert [r['nlist'] for r in sc['exhaustive_check']] == [4, 8]
    for row in sc['exhaustive_check']:
        assert row['nprobe'] == row['nlist']
        assert row['recall'] == 1.0 and row['id_recall'] == 1.0
    assert {(r['nlist'], r['nprobe']) for r in sc['sweep']} == {(4, 1), (4, 2), (8, 1), (8, 2)}
    assert all(0 <= r['recall'] <= 1 for r in sc['sweep'])
    ch = sc['chosen']
    assert {'nlist', 'nprobe', 's_per_query_batch', 'recall', 'mIoU'} <= set(ch)
    assert sc['query_tokens'] == 2 * (CROP // P)**2 and sc['queries_per_batch'] == 32
    assert np.isfinite(sc['exact']['mIoU']) and sc['speedup'] > 0
    # (d) the two test images were added: 16 patches each
    a = res['add']
    assert a['added_entries'] == 2 * 16 and a['memory_after'] == 48 + 32 and a['seconds'] > 0


def test_recall_at_k_hand_example():
    exact_ids = np.array([[0, 1, 2], [5, 6, 7]])
    exact_sims = np.array([[0.9, 0.8, 0.7], [0.5, 0.5, 0.5]], np.float32)
    # row 0: id 9 is not among the exact top-3 and less similar; row 1: id 8 ties the 3rd
    ids = np.array([[0, 2, 9], [5, 8, -1]])
    sims = np.array([[0.9, 0.7, 0.6], [0.5, 0.5, -np.inf]], np.float32)
    rec, id_rec = recall_at_k(exact_sims, exact_ids, sims, ids)
    assert id_rec == pytest.approx(3 / 6) and rec == pytest.approx(4 / 6)


def test_distractor_stream_counts_norms_and_values():
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((5, 8)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    values = rng.integers(0, 2, (5, 4, 2)).astype(np.uint8)
    chunks = list(distractor_stream(keys, values, 5 + 23, noise=0.01, chunk=10))
    assert [c[0].shape[0] for c in chunks] == [5, 10, 10, 3]
    np.testing.assert_array_equal(chunks[0][0], keys)
    dk = np.concatenate([c[0] for c in chunks[1:]])
    dv = np.concatenate([c[1] for c in chunks[1:]])
    np.testing.assert_allclose(np.linalg.norm(dk, axis=1), 1.0, atol=1e-6)
    # tiny noise: each distractor's nearest real key is its source, whose value it copies
    src = np.argmax(dk @ keys.T, axis=1)
    np.testing.assert_array_equal(dv, values[src])
    empty = list(distractor_stream(keys, values, 9, values_mode='empty'))
    assert not empty[1][1].any()
    again = list(distractor_stream(keys, values, 5 + 23, noise=0.01, chunk=10))
    np.testing.assert_array_equal(np.concatenate([c[0] for c in again[1:]]), dk)
    with pytest.raises(ValueError, match='smaller than the 5 real'):
        next(distractor_stream(keys, values, 4))

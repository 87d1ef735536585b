"""Fixtures for the checkpoint tests: a toy mmengine Runner and a loopback HTTP server."""
import functools
import http.server
import threading
from typing import Callable, Iterator, List, Optional, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel


class ToyModel(BaseModel):
    """``net.lin``: a 3 -> 1 linear layer; ``predict`` returns its outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Module()
        self.net.lin = nn.Linear(3, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.net.lin(inputs)
        if mode == 'loss':
            labels = torch.stack(labels) if isinstance(labels, list) else labels
            return {'loss': F.mse_loss(out, labels)}
        if mode == 'predict':
            return list(out.detach())
        return out


class OutputsMetric(BaseMetric):
    """Keeps the model outputs and the inputs they came from."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: List[Tuple[torch.Tensor, torch.Tensor]] = []

    def process(self, data_batch, data_samples) -> None:
        for x, out in zip(data_batch['inputs'], data_samples):
            self.pairs.append((x.clone(), out.clone()))
        self.results.append(len(data_samples))

    def compute_metrics(self, results) -> dict:
        return {'n': float(sum(results))}


class RecordHook(Hook):
    """Records the hook calls around loading and the weights when training starts."""

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.loaded: Optional[dict] = None
        self.weights: Optional[dict] = None

    def before_run(self, runner) -> None:
        self.calls.append('before_run')

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        self.calls.append('after_load_checkpoint')
        self.loaded = checkpoint

    def before_train(self, runner) -> None:
        self.weights = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


@pytest.fixture
def make_toy_runner(tmp_path) -> Callable:
    """``make(load_from=None, max_iters=1) -> (runner, RecordHook, OutputsMetric)``.

    A toy Runner that trains on 4 samples and tests on 3 (outputs kept by the metric).
    """
    from mmengine.runner import Runner
    count = [0]

    def make(load_from=None, max_iters=1):
        count[0] += 1
        hook, metric = RecordHook(), OutputsMetric()
        torch.manual_seed(100 + count[0])
        data = [dict(inputs=torch.randn(3), labels=torch.randn(1)) for _ in range(4)]
        test_data = [dict(inputs=torch.randn(3)) for _ in range(3)]
        runner = Runner(
            model=ToyModel(), work_dir=str(tmp_path / f'runner{count[0]}'),
            train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                                  batch_size=2, num_workers=0),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1000),
            test_dataloader=dict(dataset=test_data, batch_size=2, num_workers=0,
                                 sampler=dict(type='DefaultSampler', shuffle=False)),
            test_cfg=dict(), test_evaluator=Evaluator([metric]),
            default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
            custom_hooks=[hook], load_from=load_from, default_scope=None,
            experiment_name=f'toy_ckpt_{tmp_path.name}_{count[0]}')
        return runner, hook, metric

    return make


class _Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 10  # seconds a connection may stall

    def log_message(self, format, *args) -> None:  # noqa: A002 (stdlib signature)
        pass

    def log_request(self, code='-', size='-') -> None:
        self.server.requests.append((self.path, int(code)))


@pytest.fixture
def http_server(tmp_path, monkeypatch) -> Iterator[Tuple[object, str, list]]:
    """Serve ``tmp_path/www`` on 127.0.0.1 (ephemeral port) from a thread.

    A fresh ``TORCH_HOME`` (torch.hub caches downloads by file name) and no
    proxy variables. Yields ``(root folder, base URL, [(path, status), ...])``.
    """
    root = tmp_path / 'www'
    root.mkdir()
    for var in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
                'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Handler, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05),
                              daemon=True)
    thread.start()
    try:
        yield root, f'http://127.0.0.1:{server.server_address[1]}', server.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

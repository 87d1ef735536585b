"""Install script for the ``aoissl_mm`` OpenMMLab plugin.

The only non-standard logic is the choice between the full ``mmcv`` and
``mmcv-lite``: both install the same ``mmcv`` Python package, so installing
both breaks either.  When a full ``mmcv`` (with compiled ops) is already in the
environment we keep it; otherwise we depend on ``mmcv-lite`` and
``aoissl_mm.compat`` provides the two ops mmseg imports at module level.
"""
import os
import subprocess
import sys
from importlib import metadata

from setuptools import find_packages, setup


def _installed_version(dist: str):
    """Version of ``dist`` in the target environment, or None.

    pip builds in an isolated environment that hides the target's
    site-packages, so we also ask the target interpreter in a clean subprocess.
    """
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONNOUSERSITE', 'PYTHONHOME')}
    code = ('import importlib.metadata as m, sys\n'
            'try: print(m.version(sys.argv[1]))\n'
            'except m.PackageNotFoundError: pass')
    try:
        out = subprocess.run([sys.executable, '-c', code, dist], env=env, cwd='/',
                             capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def _mmcv_requirement() -> str:
    version = _installed_version('mmcv')
    if version is None:
        return 'mmcv-lite==2.1.0'
    return f'mmcv=={version}' if version.startswith('2.1') else 'mmcv>=2.0.0rc4,<2.2.0'


def _faiss_requirement() -> str:
    # faiss-cpu and faiss-gpu both install the ``faiss`` package: keep a GPU build
    for dist in ('faiss-gpu', 'faiss-gpu-cu12', 'faiss-gpu-cu11'):
        version = _installed_version(dist)
        if version is not None:
            return f'{dist}=={version}'
    return 'faiss-cpu>=1.8'


install_requires = [
    'torch>=2.4',
    'torchvision',
    'mmengine==0.10.7',
    _mmcv_requirement(),
    'mmsegmentation==1.2.2',
    'mmpretrain==1.2.0',
    _faiss_requirement(),
    'numpy',
    'opencv-python',
    'ftfy',
    'regex',
    'tqdm',
    'prettytable',
    'matplotlib',
]

onnx_requires = ['onnx', 'onnxruntime', 'onnxscript']

setup(
    name='aoissl_mm',
    version='0.1.0',
    description='AOI-SSL as an OpenMMLab plugin: 2-channel multi-label segmentation '
    'of wire-bonded devices (mmseg + mmpretrain).',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['aoissl_mm', 'aoissl_mm.*']),
    include_package_data=True,
    install_requires=install_requires,
    extras_require={
        # ONNX export (tools/export_onnx.py) and the onnxruntime backend of AOIInferencer
        'onnx': onnx_requires,
        'test': ['pytest>=7', 'pytest-timeout', 'ruff'] + onnx_requires,
        'gpu': ['faiss-gpu>=1.8'],
    },
    license='Apache-2.0',
)

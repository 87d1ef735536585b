"""The tree passes the repository's lint configuration (ruff.toml)."""
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_ruff_check_passes():
    # ruff is part of the [test] extra; a missing ruff is a failed install, not a skip
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', ROOT],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""Create the isolated virtual environment in which the RecBole side of the benchmark runs.

RecBole 1.2.1 needs an old scientific stack (numpy 1.x, scipy 1.11, pandas 2.2) that must not
leak into leanrec's own environment, so it lives in its own venv, by default
``benchmarks/.venv-recbole`` (git-ignored).

Install order and pins (all verified on Python 3.11):

1. ``torch==2.13.0+cpu`` first, on its own, so that nothing later can pull in a CUDA build. The
   local-version pin makes pip fail loudly instead of silently picking the (multi-GB, CUDA)
   ``torch==2.13.0`` wheel when no CPU wheel is available; set ``RECBOLE_VENV_TORCH`` to another
   requirement (e.g. a wheel path) to override. Afterwards ``torch.version.cuda`` must be None.
2. numpy 1.26.4 / pandas 2.2.3 / scipy 1.11.4 and RecBole's runtime dependencies, with a
   constraints file that freezes the installed torch.
3. ``recbole==1.2.1`` with ``--no-deps``: its metadata requires ``ray<=2.6.3``, but ray is only
   imported by ``recbole.quick_start`` (hyper-parameter tuning), which the benchmark does not use,
   so the heavy ray wheel (and its grpc/jsonschema tree) is skipped.

``setuptools<70`` is NOT pinned: torch 2.13.0's metadata requires ``setuptools>=77.0.3``, and
nothing RecBole runs here needs ``pkg_resources`` (thop's ``distutils.version`` import still
works on Python 3.11 with a modern setuptools).

A marker file (``.recbole-ready.json``) records the pins of a finished install; when it matches,
``ensure_recbole_venv`` returns immediately.

Not a script: ``benchmarks.peers.recbole_runner`` builds the venv on first use. To build it alone,
from the repository root::

    python -c "from benchmarks.peers.recbole_env import ensure_recbole_venv; ensure_recbole_venv()"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.peers.peer_venv import PeerVenv, PipStep

TORCH_REQUIREMENT = os.environ.get("RECBOLE_VENV_TORCH", "torch==2.13.0+cpu")

# The scientific stack RecBole 1.2.1 is known to work with.
CORE_PINS = [
    "numpy==1.26.4",
    "pandas==2.2.3",
    "scipy==1.11.4",
]

# RecBole 1.2.1's install_requires minus torch/numpy/scipy/pandas (above) and ray (not needed).
# colorlog/colorama are pinned exactly by RecBole itself; the others are the versions that were
# verified to import and run with the core pins above.
RECBOLE_DEPS = [
    "tqdm==4.70.1",
    "colorlog==4.7.2",
    "colorama==0.4.4",
    "scikit-learn==1.9.1",
    "pyyaml==6.0.3",
    "tensorboard==2.21.0",  # torch.utils.tensorboard is imported at module level by recbole.utils
    "thop==0.1.1.post2209072238",
    "tabulate==0.10.0",
    "plotly==7.1.0",
    "texttable==1.7.2",
    "psutil==7.2.2",
]

RECBOLE_REQUIREMENT = "recbole==1.2.1"

MARKER_NAME = ".recbole-ready.json"

# Imports that must succeed for recbole_side.py to run.
SMOKE_TEST = (
    "import torch, numpy, scipy, pandas\n"
    "assert torch.version.cuda is None, f'CUDA torch installed: {torch.version.cuda}'\n"
    "import recbole\n"
    "from recbole.config import Config\n"
    "from recbole.data import create_dataset, data_preparation\n"
    "from recbole.model.general_recommender import LightGCN\n"
    "from recbole.trainer import Trainer\n"
    "print('recbole', recbole.__version__, 'torch', torch.__version__,"
    " 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'pandas', pandas.__version__)\n"
)


_DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-recbole"  # benchmarks/


def _peer(venv_dir: Path = _DEFAULT_VENV) -> PeerVenv:
    return PeerVenv(
        label="recbole-env",
        venv_dir=Path(venv_dir).resolve(),
        torch_requirement=TORCH_REQUIREMENT,
        torch_override_variable="RECBOLE_VENV_TORCH",
        steps=(
            PipStep(
                "numpy/pandas/scipy pins and RecBole's runtime dependencies (no ray)",
                [*CORE_PINS, *RECBOLE_DEPS],
            ),
            PipStep(f"{RECBOLE_REQUIREMENT} --no-deps", [RECBOLE_REQUIREMENT], no_deps=True),
        ),
        smoke_test=SMOKE_TEST,
        marker_name=MARKER_NAME,
        spec={
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "torch": TORCH_REQUIREMENT,
            "core": CORE_PINS,
            "deps": RECBOLE_DEPS,
            "recbole": RECBOLE_REQUIREMENT,
        },
    )


def ensure_recbole_venv(venv_dir: Path = _DEFAULT_VENV) -> Path:
    """Create ``venv_dir`` with RecBole and its pinned stack; return its python (idempotent,
    see ``peer_venv.py``)."""
    return _peer(venv_dir).ensure()


def marker_info(venv_dir: Path = _DEFAULT_VENV) -> dict:
    """Contents of the marker file of a finished install ({} if there is none)."""
    return _peer(venv_dir).marker_info()

"""Create the isolated virtual environment in which the DeepCTR-Torch side of the benchmark runs.

DeepCTR-Torch lives in its own venv, by default ``benchmarks/.venv-deepctr`` (git-ignored), so
that neither its dependencies nor its import-time side effects reach leanrec's environment.

Install order and pins (all verified on Python 3.11):

1. ``torch==2.13.0+cpu`` first, on its own, so that nothing later can pull in a CUDA build (the
   same torch as leanrec's environment, so both sides run the same kernels). Set
   ``DEEPCTR_VENV_TORCH`` to another requirement (e.g. a wheel path) to override. Afterwards
   ``torch.version.cuda`` must be None.
2. DeepCTR-Torch's runtime dependencies, pinned, with a constraints file that freezes the
   installed torch: numpy, scikit-learn (its metrics: AUC, log loss) and tqdm, which its
   metadata lists, plus ``requests``, which ``deepctr_torch/utils.py`` imports at package import
   time (for a PyPI version check in a background thread) but which its metadata does not list:
   without it ``import deepctr_torch`` fails. TensorFlow is NOT needed (the torch port never
   imports it).
3. ``deepctr-torch==0.3.0`` with ``--no-deps`` (everything it needs is in step 2).

A marker file (``.deepctr-ready.json``) records the pins and the ``pip freeze`` of a finished
install; when the pins match, ``ensure_deepctr_venv`` returns immediately.

Not a script: ``benchmarks.peers.vs_deepctr`` builds the venv on first use. To build it alone,
from the repository root::

    python -c "from benchmarks.peers.deepctr_env import ensure_deepctr_venv; ensure_deepctr_venv()"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.peers.peer_venv import PeerVenv, PipStep

TORCH_REQUIREMENT = os.environ.get("DEEPCTR_VENV_TORCH", "torch==2.13.0+cpu")

# deepctr-torch 0.3.0's install_requires (torch aside) plus requests (imported, not declared);
# numpy / scipy match leanrec's environment.
DEPENDENCY_PINS = [
    "numpy==2.4.6",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "tqdm==4.70.1",
    "requests==2.34.2",
]

DEEPCTR_REQUIREMENT = "deepctr-torch==0.3.0"

DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-deepctr"  # benchmarks/
MARKER_NAME = ".deepctr-ready.json"

# Imports that must succeed for deepctr_runner.py to run.
SMOKE_TEST = (
    "import torch, numpy, sklearn\n"
    "assert torch.version.cuda is None, f'CUDA torch installed: {torch.version.cuda}'\n"
    "import deepctr_torch\n"
    "from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat\n"
    "from deepctr_torch.models import DeepFM\n"
    "from deepctr_torch.callbacks import Callback\n"
    "print('deepctr_torch', deepctr_torch.__version__, 'torch', torch.__version__,"
    " 'numpy', numpy.__version__, 'sklearn', sklearn.__version__)\n"
)


def _peer(venv_dir: Path = DEFAULT_VENV) -> PeerVenv:
    return PeerVenv(
        label="deepctr-env",
        venv_dir=Path(venv_dir).resolve(),
        torch_requirement=TORCH_REQUIREMENT,
        torch_override_variable="DEEPCTR_VENV_TORCH",
        steps=(
            PipStep(
                "DeepCTR-Torch's dependencies (numpy, scikit-learn, tqdm, requests)",
                DEPENDENCY_PINS,
            ),
            PipStep(f"{DEEPCTR_REQUIREMENT} --no-deps", [DEEPCTR_REQUIREMENT], no_deps=True),
        ),
        smoke_test=SMOKE_TEST,
        marker_name=MARKER_NAME,
        spec={
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "torch": TORCH_REQUIREMENT,
            "deps": DEPENDENCY_PINS,
            "deepctr": DEEPCTR_REQUIREMENT,
        },
    )


def venv_python(venv_dir: Path) -> Path:
    """The python executable of ``venv_dir``."""
    return _peer(venv_dir).python


def ensure_deepctr_venv(venv_dir: Path = DEFAULT_VENV) -> Path:
    """Create ``venv_dir`` with DeepCTR-Torch and its pinned stack; return its python.

    Idempotent: returns at once when the marker file of a finished install with the same pins
    exists (see ``peer_venv.py``).
    """
    return _peer(venv_dir).ensure()


def marker_info(venv_dir: Path = DEFAULT_VENV) -> dict[str, object]:
    """Contents of the marker file of a finished install ({} if there is none)."""
    return _peer(venv_dir).marker_info()

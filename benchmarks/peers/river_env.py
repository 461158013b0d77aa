"""Create the isolated virtual environment in which the river side of ``vs_river`` runs.

river (online machine learning, one event at a time) lives in its own venv, by default
``benchmarks/.venv-river`` (git-ignored), so its dependency pins never reach leanrec's
environment. It does not use torch, so the build has no torch step (see ``peer_venv.py``).

Pins (verified on Python 3.11): numpy and scipy as in leanrec's environment, narwhals (river's
dataframe shim, a declared dependency), then ``river==0.26.1`` (a binary wheel; its Cython/Rust
parts need no compiler).

Not a script: ``benchmarks.peers.vs_river`` builds the venv on first use. To build it alone,
from the repository root::

    python -c "from benchmarks.peers.river_env import ensure_river_venv; ensure_river_venv()"
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.peers.peer_venv import PeerVenv, PipStep

DEPENDENCY_PINS = ["numpy==2.4.6", "scipy==1.17.1", "narwhals==2.29.0"]
RIVER_REQUIREMENT = "river==0.26.1"

DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-river"  # benchmarks/
MARKER_NAME = ".river-ready.json"

SMOKE_TEST = (
    "import numpy, river\n"
    "from river import facto, reco, metrics, optim\n"
    "model = facto.FMClassifier(n_factors=4, seed=0)\n"
    "model.learn_one({'u_1': 1.0, 'i_2': 1.0}, True)\n"
    "mf = reco.BiasedMF(n_factors=4, seed=0)\n"
    "mf.learn_one('1', '2', 4.0)\n"
    "print('river', river.__version__, 'numpy', numpy.__version__)\n"
)


def _peer(venv_dir: Path = DEFAULT_VENV) -> PeerVenv:
    return PeerVenv(
        label="river-env",
        venv_dir=Path(venv_dir).resolve(),
        torch_requirement=None,
        torch_override_variable="",
        steps=(
            PipStep("river's dependencies (numpy, scipy, narwhals)", DEPENDENCY_PINS),
            PipStep(f"{RIVER_REQUIREMENT} --no-deps", [RIVER_REQUIREMENT], no_deps=True),
        ),
        smoke_test=SMOKE_TEST,
        marker_name=MARKER_NAME,
        spec={
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "deps": DEPENDENCY_PINS,
            "river": RIVER_REQUIREMENT,
        },
    )


def ensure_river_venv(venv_dir: Path = DEFAULT_VENV) -> Path:
    """Create ``venv_dir`` with river and its pinned stack; return its python (idempotent)."""
    return _peer(venv_dir).ensure()


def marker_info(venv_dir: Path = DEFAULT_VENV) -> dict[str, object]:
    """Contents of the marker file of a finished install ({} if there is none)."""
    return _peer(venv_dir).marker_info()

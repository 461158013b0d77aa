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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

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

DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-deepctr"
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


def _log(msg: str) -> None:
    print(f"[deepctr-env] {msg}", flush=True)


def venv_python(venv_dir: Path) -> Path:
    """The python executable of ``venv_dir``."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _spec() -> dict[str, object]:
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "torch": TORCH_REQUIREMENT,
        "deps": DEPENDENCY_PINS,
        "deepctr": DEEPCTR_REQUIREMENT,
    }


def _run(cmd: list[str]) -> None:
    _log("$ " + " ".join(c if "\n" not in c else "<script>" for c in cmd))
    subprocess.run(cmd, check=True)


def _output(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _pip(py: Path, *args: str) -> None:
    # --require-virtualenv: refuse to install into the base interpreter (a venv whose
    # pyvenv.cfg is gone) instead of polluting it.
    _run([str(py), "-m", "pip", "install", "--require-virtualenv", "--progress-bar", "off", *args])


def _marker_ok(venv_dir: Path) -> bool:
    if not venv_python(venv_dir).exists():
        return False
    return marker_info(venv_dir).get("spec") == _spec()


@contextlib.contextmanager
def _install_lock(venv_dir: Path) -> Iterator[None]:
    """Serialise installs into the same venv (two concurrent builds would wreck each other)."""
    # In the temp dir: a lock file next to the venv would show up in git status.
    digest = hashlib.sha1(str(venv_dir).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"deepctr-venv-{digest}.lock"
    with open(lock_path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_deepctr_venv(venv_dir: Path = DEFAULT_VENV) -> Path:
    """Create ``venv_dir`` with DeepCTR-Torch and its pinned stack; return its python.

    Idempotent: returns at once when the marker file of a finished install with the same pins
    exists. An unfinished or outdated venv is wiped and rebuilt. Concurrent callers wait for
    each other (file lock in the temp dir).
    """
    venv_dir = Path(venv_dir).resolve()
    py = venv_python(venv_dir)
    if _marker_ok(venv_dir):
        return py
    with _install_lock(venv_dir):
        if not _marker_ok(venv_dir):  # another process may have built it while we waited
            _build(venv_dir, py)
    return py


def _build(venv_dir: Path, py: Path) -> None:
    started = time.perf_counter()
    if venv_dir.exists():
        _log(f"removing incomplete or outdated venv {venv_dir}")
        shutil.rmtree(venv_dir)
    _log(f"creating venv {venv_dir} with {sys.executable}")
    _run([sys.executable, "-m", "venv", str(venv_dir)])
    if _output([str(py), "-c", "import sys; print(sys.prefix != sys.base_prefix)"]).strip() != (
        "True"
    ):
        raise RuntimeError(f"{py} does not run inside the venv {venv_dir}")

    _log(f"step 1/3: {TORCH_REQUIREMENT} (alone, first)")
    _pip(py, TORCH_REQUIREMENT)
    torch_version, cuda = _output(
        [str(py), "-c", "import torch; print(torch.__version__, torch.version.cuda)"]
    ).split()
    if cuda != "None":
        raise RuntimeError(
            f"a CUDA build of torch was installed ({torch_version}, cuda {cuda}); "
            "set DEEPCTR_VENV_TORCH to a CPU wheel"
        )
    constraints = venv_dir / "constraints-torch.txt"
    constraints.write_text(f"torch=={torch_version}\n")

    _log("step 2/3: DeepCTR-Torch's dependencies (numpy, scikit-learn, tqdm, requests)")
    _pip(py, "-c", str(constraints), *DEPENDENCY_PINS)

    _log(f"step 3/3: {DEEPCTR_REQUIREMENT} --no-deps")
    _pip(py, "-c", str(constraints), "--no-deps", DEEPCTR_REQUIREMENT)

    _log("smoke test")
    _run([str(py), "-c", SMOKE_TEST])

    seconds = time.perf_counter() - started
    freeze = _output([str(py), "-m", "pip", "freeze"]).split()
    marker = {
        "spec": _spec(),
        "torch_version": torch_version,
        "freeze": freeze,
        "install_seconds": round(seconds, 1),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (venv_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
    _log(f"ready after {seconds:.0f}s: {venv_dir}")


def marker_info(venv_dir: Path = DEFAULT_VENV) -> dict[str, object]:
    """Contents of the marker file of a finished install ({} if there is none)."""
    try:
        data = json.loads((Path(venv_dir) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    print(ensure_deepctr_venv(parser.parse_args().venv))

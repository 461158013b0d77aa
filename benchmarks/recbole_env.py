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
from pathlib import Path

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


def _log(msg: str) -> None:
    print(f"[recbole-env] {msg}", flush=True)


def _venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _spec() -> dict:
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "torch": TORCH_REQUIREMENT,
        "core": CORE_PINS,
        "deps": RECBOLE_DEPS,
        "recbole": RECBOLE_REQUIREMENT,
    }


def _run(cmd: list[str], **kwargs) -> None:
    _log("$ " + " ".join(c if "\n" not in c else "<script>" for c in cmd))
    subprocess.run(cmd, check=True, **kwargs)


def _pip(py: Path, *args: str) -> None:
    _run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            # Refuse to run against the base interpreter (e.g. a venv whose pyvenv.cfg is gone).
            "--require-virtualenv",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            *args,
        ]
    )


def _marker_ok(venv_dir: Path) -> bool:
    marker = venv_dir / MARKER_NAME
    if not marker.is_file() or not _venv_python(venv_dir).exists():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return data.get("spec") == _spec()


@contextlib.contextmanager
def _install_lock(venv_dir: Path):
    """Serialise installs into the same venv (two concurrent builds would wreck each other)."""
    # Outside the repo (a file next to the venv would show up in git status).
    digest = hashlib.sha1(str(venv_dir).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"recbole-venv-{digest}.lock"
    with open(lock_path, "w") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_recbole_venv(venv_dir: Path = Path(__file__).parent / ".venv-recbole") -> Path:
    """Create ``venv_dir`` with RecBole 1.2.1 and its pinned stack; return its python.

    Idempotent: returns at once when the marker file of a finished install with the same pins
    exists. An unfinished or outdated venv is wiped and rebuilt. Concurrent callers wait for
    each other (file lock next to the venv).
    """
    venv_dir = Path(venv_dir).resolve()
    py = _venv_python(venv_dir)
    if _marker_ok(venv_dir):
        _log(f"ready: {venv_dir}")
        return py
    with _install_lock(venv_dir):
        if _marker_ok(venv_dir):  # built by another process while we waited
            _log(f"ready: {venv_dir}")
            return py
        _build(venv_dir, py)
    return py


def _build(venv_dir: Path, py: Path) -> None:
    t0 = time.perf_counter()
    if venv_dir.exists():
        _log(f"removing incomplete or outdated venv {venv_dir}")
        shutil.rmtree(venv_dir)
    _log(f"creating venv {venv_dir} with {sys.executable}")
    _run([sys.executable, "-m", "venv", str(venv_dir)])
    in_venv = subprocess.run(
        [str(py), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if in_venv != "True":
        raise RuntimeError(f"{py} does not run inside the venv {venv_dir}")

    _log(f"step 1/3: {TORCH_REQUIREMENT} (alone, first)")
    _pip(py, TORCH_REQUIREMENT)
    out = subprocess.run(
        [str(py), "-c", "import torch; print(torch.__version__); print(torch.version.cuda)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    torch_version, cuda = out[0], out[1]
    if cuda != "None":
        raise RuntimeError(
            f"a CUDA build of torch was installed ({torch_version}, cuda {cuda}); "
            "set RECBOLE_VENV_TORCH to a CPU wheel"
        )
    constraints = venv_dir / "constraints-torch.txt"
    constraints.write_text(f"torch=={torch_version}\n")

    _log("step 2/3: numpy/pandas/scipy pins and RecBole's runtime dependencies (no ray)")
    _pip(py, "-c", str(constraints), *CORE_PINS, *RECBOLE_DEPS)

    _log(f"step 3/3: {RECBOLE_REQUIREMENT} --no-deps")
    _pip(py, "-c", str(constraints), "--no-deps", RECBOLE_REQUIREMENT)

    _log("smoke test")
    _run([str(py), "-c", SMOKE_TEST])

    seconds = time.perf_counter() - t0
    (venv_dir / MARKER_NAME).write_text(
        json.dumps(
            {
                "spec": _spec(),
                "torch_version": torch_version,
                "install_seconds": round(seconds, 1),
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=2,
        )
        + "\n"
    )
    _log(f"ready after {seconds:.0f}s: {venv_dir}")


def marker_info(venv_dir: Path = Path(__file__).parent / ".venv-recbole") -> dict:
    """Contents of the marker file of a finished install ({} if there is none)."""
    try:
        return json.loads((Path(venv_dir) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(__file__).parent / ".venv-recbole")
    print(ensure_recbole_venv(parser.parse_args().venv))

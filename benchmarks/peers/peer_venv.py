"""An isolated virtual environment for a peer library that a benchmark compares against.

Shared by ``recbole_env.py``, ``deepctr_env.py`` and ``river_env.py``. A peer venv is built in
pinned steps:

1. the torch requirement alone and first (a ``+cpu`` local version makes pip fail loudly rather
   than pick a multi-GB CUDA wheel); afterwards ``torch.version.cuda`` must be None and a
   constraints file freezes the installed torch for every later step (a peer without torch,
   ``torch_requirement=None``, skips this step and installs under an empty constraints file);
2. the peer's dependency steps, each one ``pip install`` (optionally ``--no-deps``);
3. a smoke test script.

A marker file in the venv records the spec of a finished install; when it matches,
:meth:`PeerVenv.ensure` returns at once. An unfinished or outdated venv is wiped and rebuilt;
concurrent builders of one venv wait for each other (a file lock in the temp dir, so nothing
shows up in git status).

Not a script: imported as ``benchmarks.peers.peer_venv`` by the two environment builders.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PipStep:
    """One ``pip install`` of the build, under the torch constraints."""

    description: str
    requirements: Sequence[str]
    no_deps: bool = False


@dataclass
class PeerVenv:
    """How to build one peer's venv (see the module docstring)."""

    label: str
    """Short name for logs and the lock file (``recbole-env``)."""
    venv_dir: Path
    torch_requirement: str | None
    """None for a peer that does not use torch (no torch step)."""
    torch_override_variable: str
    """Environment variable a user sets to another torch requirement (named in errors)."""
    steps: Sequence[PipStep]
    smoke_test: str
    marker_name: str
    spec: dict[str, object] = field(default_factory=dict)
    """What a finished install is compared on (pins, Python version)."""

    def log(self, message: str) -> None:
        print(f"[{self.label}] {message}", flush=True)

    @property
    def python(self) -> Path:
        """The venv's python executable."""
        if os.name == "nt":
            return self.venv_dir / "Scripts" / "python.exe"
        return self.venv_dir / "bin" / "python"

    def marker_info(self) -> dict[str, object]:
        """Contents of the marker file of a finished install ({} if there is none)."""
        try:
            data = json.loads((self.venv_dir / self.marker_name).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def ready(self) -> bool:
        return self.python.exists() and self.marker_info().get("spec") == self.spec

    def ensure(self) -> Path:
        """Build the venv unless a finished install with the same spec exists; its python."""
        if self.ready():
            return self.python
        with self._install_lock():
            if not self.ready():  # another process may have built it while we waited
                self._build()
        return self.python

    # ------------------------------------------------------------------ plumbing
    def _run(self, cmd: list[str]) -> None:
        self.log("$ " + " ".join(c if "\n" not in c else "<script>" for c in cmd))
        subprocess.run(cmd, check=True)

    @staticmethod
    def _output(cmd: list[str]) -> str:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def _pip(self, *args: str) -> None:
        # --require-virtualenv: refuse to install into the base interpreter (a venv whose
        # pyvenv.cfg is gone) instead of polluting it.
        self._run(
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--require-virtualenv",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                *args,
            ]
        )

    @contextlib.contextmanager
    def _install_lock(self) -> Iterator[None]:
        digest = hashlib.sha1(str(self.venv_dir).encode()).hexdigest()[:12]
        lock_path = Path(tempfile.gettempdir()) / f"{self.label}-{digest}.lock"
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

    def _build(self) -> None:
        started = time.perf_counter()
        venv_dir, py = self.venv_dir, self.python
        if venv_dir.exists():
            self.log(f"removing incomplete or outdated venv {venv_dir}")
            shutil.rmtree(venv_dir)
        self.log(f"creating venv {venv_dir} with {sys.executable}")
        self._run([sys.executable, "-m", "venv", str(venv_dir)])
        inside = self._output([str(py), "-c", "import sys; print(sys.prefix != sys.base_prefix)"])
        if inside.strip() != "True":
            raise RuntimeError(f"{py} does not run inside the venv {venv_dir}")

        total = len(self.steps) + 1
        torch_version = None
        constraints = venv_dir / "constraints-torch.txt"
        if self.torch_requirement is None:
            self.log(f"step 1/{total}: no torch for this peer")
            constraints.write_text("")
        else:
            self.log(f"step 1/{total}: {self.torch_requirement} (alone, first)")
            self._pip(self.torch_requirement)
            torch_version, cuda = self._output(
                [str(py), "-c", "import torch; print(torch.__version__, torch.version.cuda)"]
            ).split()
            if cuda != "None":
                raise RuntimeError(
                    f"a CUDA build of torch was installed ({torch_version}, cuda {cuda}); "
                    f"set {self.torch_override_variable} to a CPU wheel"
                )
            constraints.write_text(f"torch=={torch_version}\n")
        for number, step in enumerate(self.steps, start=2):
            self.log(f"step {number}/{total}: {step.description}")
            no_deps = ["--no-deps"] if step.no_deps else []
            self._pip("-c", str(constraints), *no_deps, *step.requirements)

        self.log("smoke test")
        self._run([str(py), "-c", self.smoke_test])
        seconds = time.perf_counter() - started
        marker = {
            "spec": self.spec,
            "torch_version": torch_version,
            "freeze": self._output([str(py), "-m", "pip", "freeze"]).split(),
            "install_seconds": round(seconds, 1),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (venv_dir / self.marker_name).write_text(json.dumps(marker, indent=2) + "\n")
        self.log(f"ready after {seconds:.0f}s: {venv_dir}")

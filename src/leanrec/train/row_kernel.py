"""A compiled row kernel for ``sparse_adam``: the catch-up and the Adam step of the rows a
batch read, one loop per row, touching each row's weights and moments once.

Why: :class:`~leanrec.train.row_optim.RowWiseOptimizer`'s row path is about ten torch passes
over the ``k`` rows a step reads (gather the weights and both moments, the root, ``m`` times
each row's factor, the move, the two decays, then the step's own passes and three scatters);
at 600k-row tables each pass over ``(k, d)`` arrays and each random row read costs, and torch
cannot fuse them without changing a rounding. The loops here do the same arithmetic, in the
same order, each operation rounded where torch rounds it, so the results are **bit for bit**
torch's:

* ``catch_up_rows`` gathers rows ``r`` ``(k,)`` of the weights ``W``, ``m`` and ``v``
  ``(N, d)`` and applies each row's skipped steps (per-row factors ``c``, ``a₁``, ``a₂``
  ``(k,)``, computed by torch in float64 and rounded to float32 as the torch path does)::

      w ← w + (m · c) / √max(v, 2⁻¹²⁶),   m ← m · a₁,   v ← v · a₂

* ``adam_step_rows`` takes the held rows ``(k, d)`` and their gradient ``g`` ``(k, d)`` and
  writes each row's Adam step straight into the tables (and ``now`` into its last step)::

      g ← fma(w, λ, g)                  (only with weight decay λ: torch's add(alpha) is an FMA)
      m ← fma(g, 1 − β₁, m · β₁)
      v ← fma((1 − β₂) · g, g, v · β₂)  (torch's addcmul is an FMA of its scaled product)
      w ← w + (s · m) / (√v / √(1 − β₂ᵗ) + ε),   s = −η / (1 − β₁ᵗ)

The FMAs are written out (``fmaf``) where torch's vectorised CPU kernels fuse, and the
compiler is told not to fuse anything else (``-ffp-contract=off``, no fast-math). The square
roots are torch's own (:func:`torch_square_roots`: MKL's ``vmsSqrt``, which torch's float
``sqrt`` calls where torch has MKL, is not the correctly rounded root). The float64 powers of
the factors stay in torch (its vectorised ``pow`` rounds as no libm call is known to).

The source is plain C++ with a C interface, built by the system's ``g++`` into a shared
library on first use (under a second, no torch headers) and cached in torch's extension
directory (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``) under a name that
holds a digest of the source, the flags and the CPU's vector capability; it is called through
:mod:`ctypes` with the tensors' data pointers. Without a compiler, on a build error, or with
``LEANREC_ROW_KERNEL=0`` in the environment, :func:`load` returns None after one log line and
the optimiser runs its torch code: the same results, slower. The optimiser also checks the
kernel against its torch code on random rows at first use and keeps torch on any difference
(a CPU whose torch kernels round otherwise, e.g. without FMA).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["RowKernel", "load", "torch_square_roots"]

LOG = logging.getLogger(__name__)

SOURCE = r"""
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#define RESTRICT __restrict__

extern "C" {

// torch's float sqrt of n contiguous values: its own vectorised routine (MKL's vmsSqrt where
// torch was built with MKL, passed in with its mode) or, without one, the IEEE square root
typedef void (*VectorSqrt)(int n, const float* in, float* out, long long mode);

static void square_roots(void* vector_sqrt, long long mode, const float* RESTRICT in,
                         float* RESTRICT out, int64_t n) {
  if (vector_sqrt != nullptr) {
    reinterpret_cast<VectorSqrt>(vector_sqrt)(static_cast<int>(n), in, out, mode);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = std::sqrt(in[i]);
  }
}

// ask for a row's cache lines ahead of its use (the rows are at random places in large tables:
// a row read while others are still arriving)
static inline void prefetch_row(const float* row, int64_t d, bool for_write) {
  for (int64_t j = 0; j < d; j += 16) {
    if (for_write) {
      __builtin_prefetch(row + j, 1, 3);
    } else {
      __builtin_prefetch(row + j, 0, 3);
    }
  }
}

static const int64_t BLOCK = 32;  // rows whose roots are taken in one call

// MKL's mkl_set_num_threads_local, when the roots are MKL's: the kernel's calls are small (BLOCK
// rows), and MKL threading each one costs more than the call (far more on a busy machine)
typedef int (*SetThreads)(int threads);

struct OneThread {
  SetThreads set_threads;
  int before;
  explicit OneThread(void* function)
      : set_threads(reinterpret_cast<SetThreads>(function)),
        before(set_threads != nullptr ? set_threads(1) : 0) {}
  ~OneThread() {
    if (set_threads != nullptr) set_threads(before);
  }
};

// sparse_adam's catch-up of rows[0..k) of weight, exp_avg, exp_avg_sq ((N, d) each, row-major),
// gathered into out_* ((k, d) each): torch's
//   w.addcdiv_(m * move[:, None], sqrt(clamp_min(v, FLT_MIN)))
//   m.mul_(decay1[:, None]); v.mul_(decay2[:, None])
void catch_up_rows(const float* RESTRICT weight, const float* RESTRICT exp_avg,
                   const float* RESTRICT exp_avg_sq, const int64_t* RESTRICT rows, int64_t k,
                   int64_t d, const float* RESTRICT move, const float* RESTRICT decay1,
                   const float* RESTRICT decay2, float* RESTRICT out_weight,
                   float* RESTRICT out_exp_avg, float* RESTRICT out_exp_avg_sq,
                   void* vector_sqrt, int64_t sqrt_mode, void* set_threads) {
  OneThread one_thread(set_threads);
  const float smallest_normal = 1.17549435082228750797e-38f;
  std::vector<float> squares(BLOCK * d), roots(BLOCK * d);
  float* RESTRICT square = squares.data();
  const float* RESTRICT root = roots.data();
  for (int64_t first = 0; first < k; first += BLOCK) {
    const int64_t count = std::min(BLOCK, k - first);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = rows[first + i] * d;
      prefetch_row(weight + at, d, false);
      prefetch_row(exp_avg + at, d, false);
      if (first + BLOCK + i < k) prefetch_row(exp_avg_sq + rows[first + BLOCK + i] * d, d, false);
      const float* RESTRICT v = exp_avg_sq + at;
      for (int64_t j = 0; j < d; ++j) {
        square[i * d + j] = v[j] < smallest_normal ? smallest_normal : v[j];
      }
    }
    square_roots(vector_sqrt, sqrt_mode, squares.data(), roots.data(), count * d);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = rows[first + i] * d, out = (first + i) * d;
      const float* RESTRICT w = weight + at;
      const float* RESTRICT m = exp_avg + at;
      const float* RESTRICT v = exp_avg_sq + at;
      const float* RESTRICT r = root + i * d;
      float* RESTRICT ow = out_weight + out;
      float* RESTRICT om = out_exp_avg + out;
      float* RESTRICT ov = out_exp_avg_sq + out;
      const float c = move[first + i], a1 = decay1[first + i], a2 = decay2[first + i];
      for (int64_t j = 0; j < d; ++j) {
        ow[j] = w[j] + (m[j] * c) / r[j];
        om[j] = m[j] * a1;
        ov[j] = v[j] * a2;
      }
    }
  }
}

// sparse_adam's step of rows[0..k) (distinct) at global step `now`, from the held rows
// w, m, v ((k, d)) and their gradient g ((k, d)), written into weight, exp_avg, exp_avg_sq
// ((N, d)) and last ((N,)): torch's
//   g = g.add(w, alpha=weight_decay)                      (if has_decay)
//   m.mul_(beta1).add_(g, alpha=one_minus_beta1)
//   v.mul_(beta2).addcmul_(g, g, value=one_minus_beta2)
//   w.addcdiv_(m, (v.sqrt() / root_correction2).add_(eps), value=step_size)
void adam_step_rows(float* RESTRICT weight, float* RESTRICT exp_avg, float* RESTRICT exp_avg_sq,
                    float* RESTRICT last, const int64_t* RESTRICT rows, int64_t k, int64_t d,
                    const float* RESTRICT held_weight, const float* RESTRICT held_exp_avg,
                    const float* RESTRICT held_exp_avg_sq, const float* RESTRICT grad,
                    int64_t has_decay, double weight_decay, double beta1, double one_minus_beta1,
                    double beta2, double one_minus_beta2, double root_correction2, double eps,
                    double step_size, double now, void* vector_sqrt, int64_t sqrt_mode,
                    void* set_threads) {
  OneThread one_thread(set_threads);
  const float lambda = (float)weight_decay, b1 = (float)beta1, c1 = (float)one_minus_beta1;
  const float b2 = (float)beta2, c2 = (float)one_minus_beta2;
  const float r2 = (float)root_correction2, e = (float)eps, s = (float)step_size;
  const float step = (float)now;
  std::vector<float> moments(BLOCK * d), squares(BLOCK * d), roots(BLOCK * d);
  float* RESTRICT moment = moments.data();
  float* RESTRICT square = squares.data();
  const float* RESTRICT root = roots.data();
  for (int64_t first = 0; first < k; first += BLOCK) {
    const int64_t count = std::min(BLOCK, k - first);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = rows[first + i] * d, held = (first + i) * d;
      prefetch_row(weight + at, d, true);
      if (first + BLOCK + i < k) {
        const int64_t ahead = rows[first + BLOCK + i] * d;
        prefetch_row(exp_avg + ahead, d, true);
        prefetch_row(exp_avg_sq + ahead, d, true);
      }
      float* RESTRICT tm = exp_avg + at;
      float* RESTRICT tv = exp_avg_sq + at;
      const float* RESTRICT hw = held_weight + held;
      const float* RESTRICT hm = held_exp_avg + held;
      const float* RESTRICT hv = held_exp_avg_sq + held;
      const float* RESTRICT g = grad + held;
      float* RESTRICT mi = moment + i * d;
      float* RESTRICT vi = square + i * d;
      if (has_decay) {
        for (int64_t j = 0; j < d; ++j) {
          const float gj = std::fmaf(hw[j], lambda, g[j]);
          mi[j] = std::fmaf(gj, c1, hm[j] * b1);
          vi[j] = std::fmaf(c2 * gj, gj, hv[j] * b2);
        }
      } else {
        for (int64_t j = 0; j < d; ++j) {
          mi[j] = std::fmaf(g[j], c1, hm[j] * b1);
          vi[j] = std::fmaf(c2 * g[j], g[j], hv[j] * b2);
        }
      }
      for (int64_t j = 0; j < d; ++j) {
        tm[j] = mi[j];
        tv[j] = vi[j];
      }
    }
    square_roots(vector_sqrt, sqrt_mode, squares.data(), roots.data(), count * d);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t row = rows[first + i], held = (first + i) * d;
      const float* RESTRICT hw = held_weight + held;
      const float* RESTRICT mi = moment + i * d;
      const float* RESTRICT r = root + i * d;
      float* RESTRICT tw = weight + row * d;
      for (int64_t j = 0; j < d; ++j) tw[j] = hw[j] + (s * mi[j]) / (r[j] / r2 + e);
      last[row] = step;
    }
  }
}

}
"""

FLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno", "-fPIC", "-shared"]
"""``-ffp-contract=off``: no multiply-add fused where the source does not say ``fmaf``;
``-fno-math-errno`` lets ``sqrt`` be one instruction (its value is the same)."""

_VOID = ctypes.c_void_p
_INT = ctypes.c_int64
_DOUBLE = ctypes.c_double


VML_HA_FTZDAZ_OFF_ERRMODE_IGNORE = 0x2 | 0x140000 | 0x100
"""The mode torch passes to MKL's vector functions (``VML_HA | VML_FTZDAZ_OFF |
VML_ERRMODE_IGNORE``, ``ATen/cpu/vml.h``)."""


SquareRoot = tuple[int | None, int, int | None]
"""``(address of a vector square root, its mode, address of a function setting the calling
thread's threads for it)``, None where there is none."""


def torch_square_roots() -> list[SquareRoot]:
    """The square roots torch's float ``sqrt`` may take, most likely first: MKL's
    ``vmsSqrt`` inside torch's own library where torch was built with MKL (it is what
    ``torch.sqrt`` calls there: high accuracy, not always the correctly rounded root; the
    kernel calls it on 32 rows at a time with MKL's threads of the calling thread set to one
    by ``MKL_Set_Num_Threads_Local``), then ``(None, 0, None)``, the IEEE root (torch's
    vectorised ``sqrt`` without MKL). The optimiser keeps the first one whose results equal
    torch's."""
    choices: list[SquareRoot] = []
    if torch.backends.mkl.is_available():
        for name in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"):
            path = Path(torch.__file__).parent / "lib" / name
            if not path.exists():
                continue
            try:
                library = ctypes.CDLL(str(path))
                square_root, set_threads = library.vmsSqrt, library.MKL_Set_Num_Threads_Local
            except (OSError, AttributeError):
                continue
            choices.append(
                (
                    ctypes.cast(square_root, ctypes.c_void_p).value,
                    VML_HA_FTZDAZ_OFF_ERRMODE_IGNORE,
                    ctypes.cast(set_threads, ctypes.c_void_p).value,
                )
            )
    return [*choices, (None, 0, None)]


class RowKernel:
    """The loaded library's two functions, typed (see the module docstring), and the square
    root they call (:func:`torch_square_roots`; set by :meth:`use_square_root`)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library
        self.vector_sqrt: int | None = None
        self.sqrt_mode = 0
        self.set_threads: int | None = None
        self.catch_up_rows = library.catch_up_rows
        self.catch_up_rows.argtypes = [_VOID, _VOID, _VOID, _VOID, _INT, _INT]
        self.catch_up_rows.argtypes += [_VOID] * 7 + [_INT, _VOID]
        self.catch_up_rows.restype = None
        self.adam_step_rows = library.adam_step_rows
        argtypes: list[type[ctypes._SimpleCData[Any]]] = [_VOID] * 5 + [_INT, _INT]
        argtypes += [_VOID] * 4 + [_INT] + [_DOUBLE] * 9 + [_VOID, _INT, _VOID]
        self.adam_step_rows.argtypes = argtypes
        self.adam_step_rows.restype = None

    def use_square_root(self, choice: SquareRoot) -> None:
        """Take square roots as ``choice`` says (:func:`torch_square_roots`)."""
        self.vector_sqrt, self.sqrt_mode, self.set_threads = choice

    @property
    def square_root(self) -> SquareRoot:
        """The square root in use (:func:`torch_square_roots`)."""
        return self.vector_sqrt, self.sqrt_mode, self.set_threads


def _vector_flags() -> list[str]:
    """``-mavx2 -mfma`` where torch found AVX2 or AVX-512 (``fmaf`` is one instruction there;
    elsewhere a libm call of the same value)."""
    capability = torch.backends.cpu.get_cpu_capability()
    return ["-mavx2", "-mfma"] if capability in ("AVX2", "AVX512") else []


def _build_root() -> Path:
    """Where torch builds its extensions: ``TORCH_EXTENSIONS_DIR``, else its default."""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())


def _build(target: Path, flags: list[str]) -> None:
    """Compile :data:`SOURCE` into ``target``: in a temporary directory first, then renamed
    into place, so processes building at once each see a whole library."""
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r}) on the PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        source = Path(work) / "row_kernel.cpp"
        source.write_text(SOURCE)
        built = Path(work) / target.name
        result = subprocess.run(
            [compiler, *flags, str(source), "-o", str(built)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip()[:500]}")
        os.replace(built, target)


_LOADED: dict[str, RowKernel | None] = {}


def load() -> RowKernel | None:
    """The compiled kernel, built on first use and cached on disk; None (after one log line)
    where it cannot be built or loaded, or when ``LEANREC_ROW_KERNEL=0``."""
    if "kernel" in _LOADED:
        return _LOADED["kernel"]
    kernel: RowKernel | None = None
    if os.environ.get("LEANREC_ROW_KERNEL", "1") == "0":
        LOG.info("row kernel off (LEANREC_ROW_KERNEL=0): sparse_adam runs its torch code")
    else:
        flags = FLAGS + _vector_flags()
        digest = hashlib.sha256((SOURCE + " ".join(flags)).encode()).hexdigest()[:16]
        capability = torch.backends.cpu.get_cpu_capability().lower()
        target = _build_root() / "leanrec_row_kernel" / f"row_kernel-{capability}-{digest}.so"
        try:
            if not target.exists():
                _build(target, flags)
            kernel = RowKernel(ctypes.CDLL(str(target)))
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            LOG.warning("row kernel not built (%s): sparse_adam runs its torch code", error)
    _LOADED["kernel"] = kernel
    return kernel

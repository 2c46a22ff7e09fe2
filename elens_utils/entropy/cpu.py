"""A fused CPU kernel for one logits tile's statistics, compiled on first use (C++, torch's vectors).

The torch path of :func:`~elens_utils.entropy.streaming.lens_entropy` spends more time on the statistics
of a logits tile than on the matrix product that makes it when the product runs in bf16: max,
shift, exp, the sums and each Renyi order are separate passes over a 4 MB tile, each through
memory, and ``torch.exp`` is a slow, precise exponential. :func:`tile_stats` does them in two
passes over each row while the row sits in the core's L1 cache, with torch's vectorised
``exp_u20`` (max. error 2 ulp), in parallel over the rows:

* pass 1: the row maximum ``m`` and, for the bf16 path's exact top-K recomputation, the
  ``n_best`` groups of ``group`` adjacent tokens with the largest maxima;
* pass 2: with ``zc = max(z - m, floor)`` and ``e = exp(zc)``: ``s = sum e``,
  ``t = sum zc e`` and, per power ``a``, ``sum e^a`` (``sqrt e`` for 0.5, ``e * e`` for 2,
  ``exp(max(a (z - m), floor))`` otherwise). The same algebra and clamps as the torch path.

The extension is built by :func:`torch.utils.cpp_extension.load_inline` (a C++ compiler and the
``ninja`` package; about a minute, once per machine and torch version) into
``$ELENS_CACHE/kernels``, for the vector instructions the CPU has (AVX-512, AVX2, or plain C++).
Where it cannot be built the library says so once and keeps the torch path; ``ELENS_FUSED_CPU=0``
turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import warnings
from collections.abc import Sequence

import torch

__all__ = ["DISABLE_ENV", "available", "tile_stats"]

#: Set to 0 to keep the torch path.
DISABLE_ENV = "ELENS_FUSED_CPU"

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <cmath>
#include <limits>
#include <vector>

using at::vec::Vectorized;
using Vec = Vectorized<float>;

static inline float hsum(const Vec& v) {
  float buf[Vec::size()];
  v.store(buf);
  float acc = 0.f;
  for (int i = 0; i < Vec::size(); ++i) acc += buf[i];
  return acc;
}

static inline float hmax(const Vec& v) {
  float buf[Vec::size()];
  v.store(buf);
  float acc = buf[0];
  for (int i = 1; i < Vec::size(); ++i) acc = std::max(acc, buf[i]);
  return acc;
}

// Statistics of each row of a contiguous float tile [rows, cols], centred on the row's maximum:
// out[r] = (m, s, t, p_1 .. p_P); best[r] = the n_best groups (first column of each) of `group`
// adjacent columns with the largest maxima, when n_best > 0 (group a multiple of the vector size).
// With top_z/top_i ([rows, K], K > 0): the running K largest logits of each row and their ids,
// updated in place with the candidates of this tile (columns offset by v0): the entries of the
// n_best groups of `group` adjacent columns with the largest maxima, and any columns past the
// last whole group.
std::vector<at::Tensor> tile_stats(const at::Tensor& z, std::vector<double> powers, double floor_,
                                   int64_t group, int64_t n_best, at::Tensor top_z, at::Tensor top_i,
                                   int64_t v0) {
  TORCH_CHECK(z.dim() == 2 && z.is_contiguous() && z.scalar_type() == at::kFloat,
              "tile_stats: a contiguous float32 [rows, cols] tile");
  const int64_t rows = z.size(0), cols = z.size(1);
  const int64_t P = static_cast<int64_t>(powers.size());
  auto out = at::empty({rows, 3 + P}, z.options());
  auto best = at::zeros({rows, std::max<int64_t>(n_best, 1)}, z.options().dtype(at::kLong));
  const float* zp = z.data_ptr<float>();
  float* op = out.data_ptr<float>();
  int64_t* bp = best.data_ptr<int64_t>();
  const float fl = static_cast<float>(floor_);
  const int64_t V = Vec::size();
  const int64_t main = cols / V * V;
  const int64_t groups = (n_best > 0 && group > 0 && group % V == 0) ? cols / group : 0;
  std::vector<float> pw(powers.begin(), powers.end());
  const int64_t K = top_z.numel() > 0 ? top_z.size(1) : 0;
  TORCH_CHECK(K == 0 || (top_z.is_contiguous() && top_i.is_contiguous() && top_z.size(0) == rows &&
                         top_i.sizes() == top_z.sizes() && top_z.scalar_type() == at::kFloat &&
                         top_i.scalar_type() == at::kLong), "tile_stats: top_z/top_i [rows, K]");
  float* tzp = K ? top_z.data_ptr<float>() : nullptr;
  int64_t* tip = K ? top_i.data_ptr<int64_t>() : nullptr;
  at::parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> gmax(std::max<int64_t>(groups, 1));
    std::vector<Vec> acc(P);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = zp + r * cols;
      // pass 1: maximum (and group maxima)
      float m = -std::numeric_limits<float>::infinity();
      int64_t j = 0;
      if (groups > 0) {
        for (int64_t g = 0; g < groups; ++g) {
          Vec vm = Vec::loadu(row + g * group);
          for (int64_t k = V; k < group; k += V) vm = at::vec::maximum(vm, Vec::loadu(row + g * group + k));
          gmax[g] = hmax(vm);
          m = std::max(m, gmax[g]);
        }
        j = groups * group;
      }
      if (j < main) {
        Vec vm = Vec(-std::numeric_limits<float>::infinity());
        for (; j < main; j += V) vm = at::vec::maximum(vm, Vec::loadu(row + j));
        m = std::max(m, hmax(vm));
      }
      for (; j < cols; ++j) m = std::max(m, row[j]);
      // pass 2: the sums, every argument clamped at the floor
      const Vec vmx(m), vfl(fl);
      Vec vs(0.f), vt(0.f);
      for (int64_t q = 0; q < P; ++q) acc[q] = Vec(0.f);
      for (j = 0; j < main; j += V) {
        const Vec zr = Vec::loadu(row + j) - vmx;  // unclamped: a small order lifts the tail
        Vec zc = at::vec::maximum(zr, vfl);
        Vec e = zc.exp_u20();
        vs = vs + e;
        vt = at::vec::fmadd(zc, e, vt);
        for (int64_t q = 0; q < P; ++q) {
          const float a = pw[q];
          if (a == 0.5f) acc[q] = acc[q] + e.sqrt();
          else if (a == 2.f) acc[q] = at::vec::fmadd(e, e, acc[q]);
          else acc[q] = acc[q] + at::vec::maximum(zr * Vec(a), vfl).exp_u20();
        }
      }
      float s = hsum(vs), t = hsum(vt);
      std::vector<float> ps(P);
      for (int64_t q = 0; q < P; ++q) ps[q] = hsum(acc[q]);
      for (; j < cols; ++j) {
        const float zr = row[j] - m;
        const float zc = std::max(zr, fl);
        const float e = std::exp(zc);
        s += e;
        t += zc * e;
        for (int64_t q = 0; q < P; ++q) {
          const float a = pw[q];
          ps[q] += a == 0.5f ? std::sqrt(e) : a == 2.f ? e * e : std::exp(std::max(a * zr, fl));
        }
      }
      float* o = op + r * (3 + P);
      o[0] = m; o[1] = s; o[2] = t;
      for (int64_t q = 0; q < P; ++q) o[3 + q] = ps[q];
      // the n_best largest group maxima (n_best is small: a partial selection)
      float* kz = K ? tzp + r * K : nullptr;
      int64_t* ki = K ? tip + r * K : nullptr;
      int64_t kmin = 0;
      if (K) for (int64_t k = 1; k < K; ++k) if (kz[k] < kz[kmin]) kmin = k;
      auto offer = [&](int64_t c) {  // a candidate for the running top K
        if (row[c] > kz[kmin]) {
          kz[kmin] = row[c];
          ki[kmin] = v0 + c;
          for (int64_t k = 0; k < K; ++k) if (kz[k] < kz[kmin]) kmin = k;
        }
      };
      for (int64_t b = 0; b < n_best && groups > 0; ++b) {
        int64_t arg = -1;
        float v = -std::numeric_limits<float>::infinity();
        for (int64_t g = 0; g < groups; ++g)
          if (gmax[g] > v || arg < 0) { v = gmax[g]; arg = g; }
        bp[r * n_best + b] = arg * group;
        if (K) for (int64_t c = arg * group; c < (arg + 1) * group; ++c) offer(c);
        gmax[arg] = -std::numeric_limits<float>::infinity();
        if (b + 1 >= groups) break;
      }
      if (K) for (int64_t c = groups * group; c < cols; ++c) offer(c);
    }
  });
  return {out, best};
}
"""


# the source's digest names the build, so that an edited kernel is rebuilt, never a stale one loaded
_NAME = "elens_tile_stats_" + hashlib.sha256(_SOURCE.encode()).hexdigest()[:10]


def _capability() -> tuple[str, list[str]]:
    """The at::vec capability macro and compiler flags for this CPU (from its flags)."""
    from elens_utils.entropy.precision import cpu_flags

    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "AVX512", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
    if {"avx2", "fma"} <= flags:
        return "AVX2", ["-mavx2", "-mfma"]
    return "DEFAULT", []


_BUILD_LOCK = threading.Lock()


def _module():
    """The compiled extension, or None (with one warning saying why) where it cannot be built.

    Thread-safe: a caller waits for a build another thread started (:func:`build_in_background`).
    """
    with _BUILD_LOCK:
        return _build()


def build_in_background() -> None:
    """Start building (or loading) the kernel in a background thread and return at once.

    For work that leaves a core idle first: converting a GGUF file is mostly single-threaded
    parsing, during which the ~40 s compile runs beside it instead of after it. The thread is
    not a daemon: a process that ends sooner waits for the build, because a build killed
    midway leaves torch's lock file in the build directory, on which every later build waits.
    """
    if os.environ.get(DISABLE_ENV, "1") != "0":
        threading.Thread(target=_module, name="elens-kernel-build", daemon=False).start()


@functools.lru_cache(maxsize=1)
def _build():
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    try:
        from torch.utils import cpp_extension

        from elens_utils.core.paths import cache_dir

        cap, arch = _capability()
        build = cache_dir() / "kernels" / f"{_NAME}-torch{torch.__version__.split('+')[0]}-{cap}"
        build.mkdir(parents=True, exist_ok=True)
        return cpp_extension.load_inline(
            name=f"{_NAME}_{cap.lower()}",
            cpp_sources=_SOURCE,
            functions=["tile_stats"],
            extra_cflags=["-O3", f"-DCPU_CAPABILITY={cap}", f"-DCPU_CAPABILITY_{cap}", *arch],
            build_directory=str(build),
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, no headers: the torch path stays
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        warnings.warn(
            f"The fused CPU lens kernel could not be built ({first}); using the torch path, which "
            f"gives the same numbers more slowly. Install a C++ compiler and `pip install ninja`, or "
            f"set {DISABLE_ENV}=0 to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def available() -> bool:
    """Whether the fused kernel is built (building it on the first call) and not turned off."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return False
    return _module() is not None


def tile_stats(
    z: torch.Tensor,
    powers: Sequence[float],
    floor: float,
    group: int = 0,
    n_best: int = 0,
    top: tuple[torch.Tensor, torch.Tensor] | None = None,
    v0: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Statistics of each row of a float32 tile ``z [rows, cols]``, centred on the row maxima.

    Returns ``stats [rows, 3 + len(powers)]`` (``m, s, t, sum e^a ...``, as
    :func:`~elens_utils.entropy.streaming.logit_stats` with arguments clamped at ``floor``) and
    ``best [rows, n_best]`` int64: the first column of each of the ``n_best`` groups of ``group``
    adjacent columns with the largest maxima (columns past the last whole group are not
    grouped). With ``top = (top_z [rows, K] float32, top_i [rows, K] int64)``, the running K
    largest logits of each row and their ids are updated in place from those groups' entries and
    the columns past the last whole group (ids offset by ``v0``; start from ``-inf`` values).
    Call :func:`available` first.
    """
    empty = torch.empty(0)
    top_z, top_i = top if top is not None else (empty, empty.long())
    stats, best = _module().tile_stats(
        z.contiguous(), [float(a) for a in powers], float(floor), int(group), int(n_best), top_z, top_i, int(v0)
    )
    return stats, best[:, :n_best]

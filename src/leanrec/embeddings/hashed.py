"""Fixed-size tables that never grow with the ID space: the hashing trick and QR embeddings.

Both answer any ID at once (a new ID reads vectors it shares with others: cold start costs
nothing and allocates nothing), hold no per-ID state, and keep the same bytes whatever the
stream brings. Their knob is the table size.

* :class:`HashedEmbedding` (the hashing trick, Weinberger et al. 2009): ID ``i`` reads bucket
  ``h(i)`` of ``B`` buckets, ``h`` a fixed seeded universal hash
  ``h(i) = ((a * (i mod p) + b) mod p) mod B`` with ``p = 2**31 - 1`` (Carter-Wegman); IDs that
  collide share one vector. ``nbytes = 4 * d * B``.
* :class:`QREmbedding` (quotient-remainder compositional embedding, Shi et al. 2020): ID ``i``
  reads remainder row ``i mod m`` and quotient row ``(i // m) mod Q`` of two tables of ``m``
  and ``Q`` rows and combines them element-wise (product or sum). Each of the first ``m * Q``
  IDs gets its own pair, hence its own vector, from only ``m + Q`` rows; ``m = Q ~ sqrt(S)``
  covers ``S`` IDs with two ``sqrt(S)`` tables. IDs from ``m * Q`` on wrap around and share
  quotient rows with earlier ones. ``nbytes = 4 * d * (m + Q)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from leanrec.embeddings.base import StreamTable

HASH_PRIME = 2**31 - 1
"""The Mersenne prime ``p`` of the universal hash (IDs are reduced mod ``p`` first)."""

_MASK64 = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step in Python integers: ``(next state, output)`` (fixed forever, so a
    seed always gives the same hash, whatever NumPy or torch version)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def hash_coefficients(seed: int) -> tuple[int, int]:
    """``(a, b)`` of the universal hash for ``seed``: ``1 <= a < p`` and ``0 <= b < p``."""
    state, first = _splitmix64(seed & _MASK64)
    _, second = _splitmix64(state)
    return 1 + first % (HASH_PRIME - 1), second % HASH_PRIME


def hash_ids(ids: torch.Tensor, num_buckets: int, seed: int) -> torch.Tensor:
    """Bucket of each ID, ``((a * (i mod p) + b) mod p) mod B``; ``(n,)`` -> ``(n,)`` int64.

    ``a * (i mod p) < 2**62``, so the int64 arithmetic never overflows.
    """
    a, b = hash_coefficients(seed)
    return ((ids.to(torch.int64) % HASH_PRIME) * a + b) % HASH_PRIME % num_buckets


class HashedEmbedding(StreamTable):
    """The hashing trick: ``B`` bucket vectors, ID ``i`` reads bucket ``h(i)`` (see module).

    Bytes: ``nbytes = 4 * d * B`` (the buckets; the hash is two integers of the spec, and there
    is no per-ID state). :meth:`observe` keeps nothing; :meth:`extend_ids` only widens the
    accepted range.

    Args:
        num_embeddings: IDs known so far (``N``; the range checked by lookups).
        embedding_dim: vector width ``d``.
        num_buckets: ``B``.
        seed: seed of the fixed hash.
        init_std: std of the normal initialisation of the buckets.
        generator: RNG for the initialisation.

    Example (``B = 4``, ``d = 2``: 32 bytes whatever the number of IDs):
        >>> table = HashedEmbedding(1000, 2, num_buckets=4, seed=0)
        >>> table.nbytes(), table.num_parameters()
        (32, 8)
        >>> table.extend_ids(10**6); table.nbytes()
        32
    """

    kind = "hashed"
    spec_options = ("num_buckets", "seed", "init_std")

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_buckets: int,
        seed: int = 0,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_buckets <= 0 or embedding_dim <= 0 or num_embeddings < 0:
            raise ValueError("need num_buckets > 0, embedding_dim > 0, num_embeddings >= 0")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.num_buckets = num_buckets
        self.seed = seed
        self.init_std = init_std
        self.weight = nn.Parameter(torch.empty(num_buckets, embedding_dim))
        with torch.no_grad():
            self.weight.normal_(0.0, init_std, generator=generator)

    def buckets(self, ids: torch.Tensor) -> torch.Tensor:
        """Bucket of each ID; ``(B,)`` -> ``(B,)`` int64."""
        self._check_ids(ids)
        return hash_ids(ids, self.num_buckets, self.seed)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n,)`` IDs -> ``(n, d)`` bucket vectors."""
        return self.weight[self.buckets(ids)]

    def num_parameters(self) -> int:
        return self.weight.numel()

    def nbytes(self) -> int:
        """``4 * d * B`` for float32 buckets."""
        return super().nbytes()

    def extend_ids(self, num_embeddings: int) -> None:
        self.num_embeddings = max(self.num_embeddings, num_embeddings)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_buckets={self.num_buckets}"


Combine = Literal["mult", "add"]


class QREmbedding(StreamTable):
    """Quotient-remainder compositional embedding (Shi et al. 2020; see module).

    ID ``i`` reads ``remainder[i mod m]`` and ``quotient[(i // m) mod Q]``, combined by
    element-wise product (``"mult"``, the paper's best) or sum (``"add"``). With the product,
    the remainder rows start around 1 (``N(1, init_std)``) and the quotient rows around 0
    (``N(0, init_std)``): a product of two ``N(0, s)`` tables would start at scale ``s**2``
    with gradients scaled by ``s``, far from every other table's start. With the sum, both
    start at ``N(0, init_std / sqrt(2))``, so the vectors have std ``init_std``.

    Bytes: ``nbytes = 4 * d * (m + Q)``; no per-ID state.

    Args:
        num_embeddings: IDs known so far (``N``; the range checked by lookups).
        embedding_dim: vector width ``d``.
        num_remainders: ``m``, the remainder table's rows (Shi et al.'s "number of
            collisions": the IDs sharing one quotient row).
        num_quotients: ``Q``, the quotient table's rows.
        combine: ``"mult"`` or ``"add"``.
        init_std: scale of the initial vectors (see above).
        generator: RNG for the initialisation.

    Example (``S = 100`` distinct vectors from ``10 + 10`` rows of ``d = 4``):
        >>> table = QREmbedding.for_slots(1000, 4, slots=100)
        >>> (table.num_remainders, table.num_quotients, table.nbytes())
        (10, 10, 320)
    """

    kind = "qr"
    spec_options = ("num_remainders", "num_quotients", "combine", "init_std")

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        num_remainders: int,
        num_quotients: int,
        combine: Combine = "mult",
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_remainders <= 0 or num_quotients <= 0 or embedding_dim <= 0:
            raise ValueError("need num_remainders > 0, num_quotients > 0, embedding_dim > 0")
        if combine not in ("mult", "add"):
            raise ValueError(f"combine must be 'mult' or 'add', got {combine!r}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.num_remainders = num_remainders
        self.num_quotients = num_quotients
        self.combine = combine
        self.init_std = init_std
        self.remainder = nn.Parameter(torch.empty(num_remainders, embedding_dim))
        self.quotient = nn.Parameter(torch.empty(num_quotients, embedding_dim))
        with torch.no_grad():
            if combine == "mult":
                self.remainder.normal_(1.0, init_std, generator=generator)
                self.quotient.normal_(0.0, init_std, generator=generator)
            else:
                self.remainder.normal_(0.0, init_std / math.sqrt(2), generator=generator)
                self.quotient.normal_(0.0, init_std / math.sqrt(2), generator=generator)

    @classmethod
    def for_slots(
        cls,
        num_embeddings: int,
        embedding_dim: int,
        slots: int,
        combine: Combine = "mult",
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> QREmbedding:
        """Two tables of about ``sqrt(slots)`` rows (``m = ceil(sqrt(S))``,
        ``Q = ceil(S / m)``), giving the first ``S`` IDs distinct vectors."""
        if slots <= 0:
            raise ValueError(f"slots must be > 0, got {slots}")
        remainders = math.isqrt(slots - 1) + 1
        return cls(
            num_embeddings,
            embedding_dim,
            num_remainders=remainders,
            num_quotients=-(-slots // remainders),
            combine=combine,
            init_std=init_std,
            generator=generator,
        )

    def parts(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(remainder row, quotient row) of each ID, two ``(n,)`` int64 tensors."""
        self._check_ids(ids)
        ids = ids.to(torch.int64)
        return ids % self.num_remainders, (ids // self.num_remainders) % self.num_quotients

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n,)`` IDs -> ``(n, d)``: remainder row (x or +) quotient row."""
        remainder_rows, quotient_rows = self.parts(ids)
        remainder = self.remainder[remainder_rows]
        quotient = self.quotient[quotient_rows]
        return remainder * quotient if self.combine == "mult" else remainder + quotient

    def num_parameters(self) -> int:
        return self.remainder.numel() + self.quotient.numel()

    def nbytes(self) -> int:
        """``4 * d * (m + Q)`` for float32 tables."""
        return super().nbytes()

    def extend_ids(self, num_embeddings: int) -> None:
        self.num_embeddings = max(self.num_embeddings, num_embeddings)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, m={self.num_remainders}, Q={self.num_quotients}, "
            f"combine={self.combine}"
        )

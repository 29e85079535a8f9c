"""An in-memory near-duplicate index: MinHash + LSH, vectorised with numpy. Plain Python, no Django.

The same signatures as the version analysis (``datasets_app.analysis``, which uses this module): 64
multiply-shift permutations over the token 5-shingles of a problem's text (prompt + solution), LSH with
16 bands of 4 rows. Each band of a signature is folded into one 64-bit key; a bulk-built index keeps,
per band, the keys sorted with their row numbers (``np.searchsorted`` finds a bucket), and entries
added later go to a dict per band until the next compaction. A query gathers the rows sharing a band
with it and scores them all at once (the share of equal signature positions estimates the Jaccard
similarity of the two shingle sets). An exact map (SHA-1 of the normalised text) answers "the same
text" in O(1).

Memory: 64 x uint32 per entry for the signatures, 16 x (8 + 4) bytes for the bands: ~450 bytes per
entry, ~45 MB for 100k.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from datasets_app.parsing import text_hash

NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE = 5
PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
_TOKENS = re.compile(r"[A-Za-z_]\w*|\d+|[^\w\s]")
_rng = np.random.default_rng(20261125)
_A = _rng.integers(0, 1 << 63, PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
_B = _rng.integers(0, 1 << 63, PERMUTATIONS, dtype=np.uint64)
# Folding a band's 4 uint32 rows into one uint64 key: odd multipliers, summed with wrap-around.
_FOLD = (
    np.random.default_rng(20261204).integers(0, 1 << 63, ROWS, dtype=np.uint64) * np.uint64(2)
) + np.uint64(1)
_COMPACT_AT = 4096  # entries added since the last compaction before the pending dicts are merged


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text.lower())


def ngrams(text: str, n: int) -> set[int]:
    toks = tokens(text)
    if len(toks) < n:
        return {zlib.crc32(" ".join(toks).encode())} if toks else set()
    return {zlib.crc32(" ".join(toks[i : i + n]).encode()) for i in range(len(toks) - n + 1)}


def signature(text: str) -> np.ndarray:
    """The MinHash signature (PERMUTATIONS x uint32) of text's 5-shingles; all zeros for no tokens."""
    shingles = np.fromiter(ngrams(text, SHINGLE), dtype=np.uint64)
    if shingles.size == 0:
        return np.zeros(PERMUTATIONS, dtype=np.uint32)
    # Multiply-shift hashing: (a * x + b) mod 2**64 (uint64 wraps), the high 32 bits.
    with np.errstate(over="ignore"):
        hashed = (np.outer(_A, shingles) + _B[:, None]) >> np.uint64(32)
    minimum: np.ndarray = hashed.min(axis=1).astype(np.uint32)
    return minimum


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64: each band of each signature folded into one key."""
    rows = signatures.reshape(-1, BANDS, ROWS).astype(np.uint64)
    with np.errstate(over="ignore"):
        folded: np.ndarray = (rows * _FOLD).sum(axis=2, dtype=np.uint64)
    return folded


def exact_hash(text: str) -> str:
    """SHA-1 of the normalised text (lower case, runs of whitespace as one space), as at import."""
    return text_hash(text)


class DedupIndex:
    """MinHash signatures + LSH bands over (key, text) entries, in memory. Not thread-safe."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._sigs = np.zeros((0, PERMUTATIONS), dtype=np.uint32)
        self._count = 0  # rows of _sigs in use (it grows by doubling)
        self._sorted: list[tuple[np.ndarray, np.ndarray]] = []  # per band: (sorted keys, their rows)
        self._compacted = 0  # rows covered by _sorted
        self._pending: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(BANDS)]
        self._exact: dict[str, str] = {}
        self.benchmarks: set[str] = set()  # keys of benchmark problems (HumanEval...): contamination

    def __len__(self) -> int:
        return self._count

    @classmethod
    def build(cls, entries: Iterable[tuple[str, str]], *, benchmarks: Iterable[str] = ()) -> DedupIndex:
        """An index of (key, text) entries; ``benchmarks``: those keys that name benchmark problems."""
        index = cls()
        keys, sigs = [], []
        for key, text in entries:
            keys.append(key)
            sigs.append(signature(text))
            index._exact.setdefault(exact_hash(text), key)
        index.keys = keys
        index._sigs = np.array(sigs, dtype=np.uint32).reshape(-1, PERMUTATIONS)
        index._count = len(keys)
        index.benchmarks = set(benchmarks) & set(keys)
        index._compact()
        return index

    def copy(self) -> DedupIndex:
        """An independent index with the same entries (the sorted band arrays are shared: they are
        replaced, never changed in place)."""
        other = DedupIndex()
        other.keys = list(self.keys)
        other._sigs = self._sigs[: self._count].copy()
        other._count = self._count
        other._sorted = self._sorted
        other._compacted = self._compacted
        other._pending = [defaultdict(list, {k: list(v) for k, v in band.items()}) for band in self._pending]
        other._exact = dict(self._exact)
        other.benchmarks = set(self.benchmarks)
        return other

    def _compact(self) -> None:
        """Rebuild the sorted band arrays from every row; empty the pending dicts."""
        sigs = self._sigs[: self._count]
        live = np.flatnonzero(sigs.any(axis=1)).astype(np.int64)  # no tokens, no neighbours
        keys = band_keys(sigs[live]) if live.size else np.zeros((0, BANDS), dtype=np.uint64)
        self._sorted = []
        for band in range(BANDS):
            order = np.argsort(keys[:, band], kind="stable")
            self._sorted.append((keys[order, band], live[order]))
        self._compacted = self._count
        self._pending = [defaultdict(list) for _ in range(BANDS)]

    def add(self, key: str, text: str, *, benchmark: bool = False) -> None:
        sig = signature(text)
        if self._count == len(self._sigs):
            grown = np.zeros((max(16, 2 * len(self._sigs)), PERMUTATIONS), dtype=np.uint32)
            grown[: self._count] = self._sigs[: self._count]
            self._sigs = grown
        row = self._count
        self._sigs[row] = sig
        self._count += 1
        self.keys.append(key)
        self._exact.setdefault(exact_hash(text), key)
        if benchmark:
            self.benchmarks.add(key)
        if sig.any():
            for band, value in enumerate(band_keys(sig[None, :])[0]):
                self._pending[band][int(value)].append(row)
        if self._count - self._compacted >= _COMPACT_AT:
            self._compact()

    def _candidates(self, sig: np.ndarray) -> np.ndarray:
        """The rows sharing at least one band with sig, ascending."""
        keys = band_keys(sig[None, :])[0]
        # A mask over the rows, not np.unique of the buckets: a text like many others (template-made
        # problems) has buckets of thousands, and sorting them costs more than one pass over the mask.
        mask = np.zeros(self._count, dtype=bool)
        for band in range(BANDS):
            if self._sorted:
                sorted_keys, rows = self._sorted[band]
                lo = np.searchsorted(sorted_keys, keys[band], side="left")
                hi = np.searchsorted(sorted_keys, keys[band], side="right")
                if hi > lo:
                    mask[rows[lo:hi]] = True
            extra = self._pending[band].get(int(keys[band]))
            if extra:
                mask[extra] = True
        found: np.ndarray = np.flatnonzero(mask)
        return found

    def _hits(self, text: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, positions in agreement) of the LSH candidates at or above threshold, best first, then
        by row; all in numpy (a template-made text can have hundreds of hits)."""
        sig = signature(text)
        rows = self._candidates(sig) if sig.any() else np.zeros(0, dtype=np.int64)
        if rows.size == 0:
            return rows, rows
        equal = np.count_nonzero(self._sigs[rows] == sig, axis=1)
        keep = equal >= math.ceil(threshold * PERMUTATIONS - 1e-9)
        rows, equal = rows[keep], equal[keep]
        order = np.lexsort((rows, -equal))
        return rows[order], equal[order]

    def scores(self, text: str, *, threshold: float = 0.0) -> list[tuple[int, float]]:
        """(row, estimated Jaccard) for the LSH candidates of text at or above threshold, best first,
        then by row."""
        rows, equal = self._hits(text, threshold)
        return list(zip(rows.tolist(), (equal / PERMUTATIONS).tolist(), strict=True))

    def query(self, text: str, *, threshold: float = NEAR_DUPLICATE_JACCARD) -> list[tuple[str, float]]:
        """Keys whose estimated Jaccard similarity with text is >= threshold, best first."""
        rows, equal = self._hits(text, threshold)
        keys = self.keys
        return list(
            zip([keys[r] for r in rows.tolist()], np.round(equal / PERMUTATIONS, 3).tolist(), strict=True)
        )

    def exact(self, text: str) -> str | None:
        """The first key whose normalised text equals text's, or None."""
        return self._exact.get(exact_hash(text))

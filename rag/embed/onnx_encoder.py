"""The query encoder without torch: the same all-MiniLM-L6-v2, exported to ONNX at ingest, run by onnxruntime.

Importing torch and sentence-transformers takes about 4-7 s here, nearly all of a cold `rag ask`;
onnxruntime and tokenizers import and load the exported model in about 0.3 s. The export is made
once per index folder (`<index>/encoder/`), by the ingest that already has the torch model loaded,
and is kept only if its vectors match the torch model's on probe texts (`MAX_ERROR`); otherwise
queries keep using torch. The encoder folder holds:

    model.onnx      the transformer with mean pooling and L2 normalisation inside the graph
    tokenizer.json  the model's tokenizer (truncation to the model's max_seq_length, batch padding)
    encoder.json    model name, dimension, max_seq_length, the torch weights' size, the check's error, and the
                    sha256 of model.onnx and tokenizer.json
The encoder is used only if both files match the sha256 recorded at export (`EncoderMismatch` otherwise):
a replaced or truncated model.onnx would otherwise turn every question's vector, and so retrieval, into
garbage without a word. The bytes that are hashed are the bytes that are loaded. An export without
recorded hashes (made before they were) is not used either; the next `rag ingest` exports it again.

Not handled: a GPU provider (queries are single short texts; the CPU is enough).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

ENCODER_DIR = "encoder"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "encoder.json"
# Largest absolute difference between an ONNX and a torch vector for the export to be kept (measured: 2e-7).
MAX_ERROR = 1e-4
PROBES = (
    "How many vehicles did China export in 2023?",
    "EU",
    "The definitive duties are 17.0% for BYD, 18.8% for Geely and 35.3% for SAIC. " * 20,
)  # > max_seq_length


log = logging.getLogger(__name__)


class EncoderMismatch(ValueError):
    """An exported encoder's file does not match the sha256 recorded at export."""


def _verified(folder: Path, info: dict, name: str) -> bytes:
    """The file's bytes, when their sha256 is the one encoder.json records for it."""
    data = (folder / name).read_bytes()
    recorded = (info.get("sha256") or {}).get(name)
    if recorded is None:
        raise EncoderMismatch(f"{folder / INFO_FILE} records no sha256 for {name} (an export older than the check)")
    if hashlib.sha256(data).hexdigest() != recorded:
        raise EncoderMismatch(f"{folder / name} does not match the sha256 recorded when it was exported")
    return data


class OnnxEncoder:
    """Encodes texts like `SentenceTransformer.encode(..., normalize_embeddings=True)`. Thread-safe."""

    def __init__(self, folder: str | Path):
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        info = json.loads((self.folder / INFO_FILE).read_text(encoding="utf-8"))
        self.name, self.dimension = info["model"], int(info["dimension"])
        model_bytes = _verified(self.folder, info, MODEL_FILE)
        self._tokenizer = Tokenizer.from_str(_verified(self.folder, info, TOKENIZER_FILE).decode("utf-8"))
        self._tokenizer.enable_truncation(int(info["max_seq_length"]))
        self._tokenizer.enable_padding()  # to the longest text of each batch, as sentence-transformers does
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # One thread per call: a question is one short text, and concurrent questions run side by side; more
        # threads per call only spin (2 threads: 53 ms of CPU per question at concurrency 1, bench/concurrency.py).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = self._tokenizer.encode_batch(texts[start : start + batch_size])
            ids = np.asarray([e.ids for e in batch], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in batch], dtype=np.int64)
            out[start : start + len(batch)] = self._session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
        return out


def encoder_folder(index_dir: str | Path) -> Path:
    return Path(index_dir) / ENCODER_DIR


def load(index_dir: str | Path, model: str, dimension: int) -> OnnxEncoder | None:
    """The index's exported encoder, or None when there is none usable (no export, another model, no onnxruntime,
    a file that does not match its recorded sha256: that one is logged)."""
    encoder, problem = try_load(index_dir, model, dimension)
    if problem:
        log.warning(
            "not using the ONNX query encoder: %s; questions load torch until `rag ingest` exports it again", problem
        )
    return encoder


def try_load(index_dir: str | Path, model: str, dimension: int) -> tuple[OnnxEncoder | None, str | None]:
    """(the encoder, None), (None, None) when there is no usable export, or (None, why) when its files were altered."""
    folder = encoder_folder(index_dir)
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        if info.get("model") != model or int(info.get("dimension", 0)) != dimension:
            return None, None
        return OnnxEncoder(folder), None
    except EncoderMismatch as e:
        return None, str(e)
    except (OSError, ValueError, KeyError, ImportError, RuntimeError):
        return None, None  # queries then use the torch model: slower to start, same vectors


def export(model, index_dir: str | Path, name: str, dimension: int, weights_bytes: int = 0) -> float:
    """Export a loaded SentenceTransformer `model` into `<index_dir>/encoder/`, check it, and publish it atomically.

    Returns the largest difference from the torch vectors on `PROBES`; raises `ValueError` (and publishes
    nothing) when it exceeds `MAX_ERROR`.
    """
    import torch

    transformer = model[0].auto_model.eval()
    tokenizer = model.tokenizer
    max_seq_length = int(model.max_seq_length)

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    final = encoder_folder(index_dir)
    staging = final.with_name(f".{ENCODER_DIR}-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        sample = tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
        inputs = (sample["input_ids"], sample["attention_mask"], torch.zeros_like(sample["input_ids"]))
        names = ["input_ids", "attention_mask", "token_type_ids"]
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                Pooled(),
                inputs,
                str(staging / MODEL_FILE),
                input_names=names,
                output_names=["embedding"],
                opset_version=17,
                dynamo=False,
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            )
        tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
        hashes = {f: hashlib.sha256((staging / f).read_bytes()).hexdigest() for f in (MODEL_FILE, TOKENIZER_FILE)}
        (staging / INFO_FILE).write_text(
            json.dumps(
                {
                    "model": name,
                    "dimension": dimension,
                    "max_seq_length": max_seq_length,
                    "weights_bytes": weights_bytes,
                    "created": time.time(),
                    "sha256": hashes,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        expected = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        error = float(np.abs(OnnxEncoder(staging).encode(list(PROBES)) - expected).max())
        info = json.loads((staging / INFO_FILE).read_text(encoding="utf-8"))
        (staging / INFO_FILE).write_text(json.dumps({**info, "max_error": error}, indent=2), encoding="utf-8")
        if error > MAX_ERROR:
            raise ValueError(f"the ONNX export differs from the torch model by {error:.2g} (> {MAX_ERROR})")
        old = final.with_name(f".{ENCODER_DIR}-old-{os.getpid()}")
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return error
    finally:
        shutil.rmtree(staging, ignore_errors=True)

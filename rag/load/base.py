"""What every format loader returns, and the text decoding they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import IngestError
from rag.load.paragraphs import Block

# Share of control characters above which bytes are taken as binary, not text.
_BINARY_CONTROL_SHARE = 0.05


@dataclass
class Parsed:
    blocks: list[Block]
    meta: dict[str, str] = field(default_factory=dict)
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)


def decode_text(path: Path, data: bytes, warnings: list[str]) -> str:
    """Decode text bytes: UTF-8 (with or without BOM), UTF-16 with a BOM, then Windows-1252.

    Binary data with a text extension is refused rather than decoded into noise.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise IngestError(path, f"not valid UTF-16 text ({e.reason} at byte {e.start})") from e
    sample = data[:65536]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in sample or controls / max(len(sample), 1) > _BINARY_CONTROL_SHARE:
        raise IngestError(path, "looks like a binary file, not text (check the file type)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        try:
            decoded = data.decode("cp1252")
        except UnicodeDecodeError as e:
            raise IngestError(
                path, f"not UTF-8 (invalid byte at {utf8_error.start}) and not Windows-1252 either; re-save it as UTF-8"
            ) from e
        warnings.append(f"{path}: not valid UTF-8; decoded as Windows-1252")
        return decoded

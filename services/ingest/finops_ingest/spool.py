"""Streaming a billing file to local disk: hashed on the way, gunzipped on the way when it is gzip, and never
whole in memory. Decompression is capped, so a gzip bomb is refused before it fills the disk. Text (anything
but Parquet) is checked on the way too: it must be UTF-8 and no line may exceed `Limits.max_line_bytes`, so
those errors name their line instead of surfacing later as a vague parser error."""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from finops_ingest.bills.container import GZIP_MAGIC, PARQUET_MAGIC
from finops_ingest.rejection import BillingFileRejected

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Spooled:
    path: Path
    sha256: str
    size_bytes: int
    """Bytes as received (compressed size for gzip)."""
    gzip: bool


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 50 << 30
    """Largest file accepted, after decompression."""
    max_ratio: int = 200
    """Largest decompression ratio accepted once the output passes `ratio_floor` bytes."""
    ratio_floor: int = 64 << 20
    max_line_bytes: int = 1 << 20
    """Longest line of a text file."""


class _TextCheck:
    """UTF-8 validity and line length of a text stream, fed chunk by chunk; errors name the line."""

    def __init__(self, name: str, max_line_bytes: int) -> None:
        self._name = name
        self._max = max_line_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._line = 1
        self._line_length = 0

    def feed(self, data: bytes, *, final: bool = False) -> None:
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            line = self._line + data.count(b"\n", 0, max(exc.start, 0))
            raise BillingFileRejected(
                file=self._name,
                row=line,
                rule=f"line {line} is not UTF-8 text (byte {data[exc.start : exc.start + 1]!r})",
                hint="Export the file as UTF-8 (FOCUS files are UTF-8), or convert it with iconv.",
            ) from exc
        parts = data.split(b"\n")
        self._line_length += len(parts[0])
        for part in parts[1:]:
            self._check_length()
            self._line += 1
            self._line_length = len(part)
        self._check_length()

    def _check_length(self) -> None:
        if self._line_length > self._max:
            raise BillingFileRejected(
                file=self._name,
                row=self._line,
                rule=f"line {self._line} is longer than {self._max:,} bytes",
                hint="No billing row is that long: check that the file is a CSV export with line breaks.",
            )


async def spool(chunks: AsyncIterator[bytes], *, name: str, directory: str | None, limits: Limits) -> Spooled:
    """Write the stream to a temporary file; the caller deletes `path`. The checksum is of the bytes received."""
    digest = hashlib.sha256()
    received = written = 0
    inflater: zlib._Decompress | None = None
    text: _TextCheck | None = None
    started = False
    fd, temp = tempfile.mkstemp(prefix="finops-ingest-", dir=directory)
    path = Path(temp)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                if not chunk:
                    continue
                if received == 0 and chunk[:2] == GZIP_MAGIC:
                    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
                digest.update(chunk)
                received += len(chunk)
                pieces = [chunk] if inflater is None else _inflate(inflater, chunk)
                for piece in pieces:
                    if not started and piece:
                        started = True
                        if piece[:4] != PARQUET_MAGIC:
                            text = _TextCheck(name, limits.max_line_bytes)
                    written += len(piece)
                    _check(name, written, received, limits, compressed=inflater is not None)
                    if text is not None:
                        text.feed(piece)
                    out.write(piece)
            if inflater is not None:
                tail = inflater.flush()
                written += len(tail)
                _check(name, written, received, limits, compressed=True)
                if text is not None:
                    text.feed(tail)
                out.write(tail)
                if not inflater.eof:
                    raise BillingFileRejected(
                        file=name,
                        rule="the gzip stream is truncated",
                        hint="The upload was cut short or the file is damaged: compress and upload it again.",
                    )
            if text is not None:
                text.feed(b"", final=True)
    except zlib.error as exc:
        path.unlink(missing_ok=True)
        raise BillingFileRejected(
            file=name, rule=f"the gzip data is corrupt: {exc}", hint="Compress the file again with gzip."
        ) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path=path, sha256=digest.hexdigest(), size_bytes=received, gzip=inflater is not None)


def _inflate(inflater: zlib._Decompress, chunk: bytes) -> Iterator[bytes]:
    """At most _CHUNK bytes at a time, so the limits are checked before a bomb can expand in memory."""
    data = chunk
    while data:
        yield inflater.decompress(data, _CHUNK)
        data = inflater.unconsumed_tail


def _check(name: str, written: int, received: int, limits: Limits, *, compressed: bool) -> None:
    if written > limits.max_bytes:
        raise BillingFileRejected(
            file=name,
            rule=f"the file is larger than the {limits.max_bytes:,} bytes accepted",
            hint="Split the export by billing period, or raise FINOPS_MAX_FILE_BYTES.",
        )
    if compressed and written > limits.ratio_floor and written > limits.max_ratio * received:
        raise BillingFileRejected(
            file=name,
            rule=f"the gzip data expands more than {limits.max_ratio} times (a decompression bomb?)",
            hint="Billing exports compress about 10 to 30 times; upload the real export.",
        )

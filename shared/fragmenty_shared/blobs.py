"""Many small documents stored as one binary value: event blocks and listing histories.

A blob is the documents' BSON, one after another, zlib-compressed and marked by a Binary
subtype of our own (``COMPRESSED_BSON``). Stored events repeat the same keys and values, so a
blob is about 7 x smaller than its BSON. That matters most on FerretDB 1.x, which reads and
parses every byte of a collection for any query of it: the event log's 2,000-event window went
from 1.3 MB to 0.18 MB per query (200 ms -> 10 ms at load 4). Compressing 1,000 events costs
the writer about 2 ms. Blobs written before compression (plain BSON, subtype 0) read as they are.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import bson
from bson import Binary

Document = dict[str, Any]

# In the user-defined range of BSON binary subtypes (0x80-0xFF).
COMPRESSED_BSON = 0x80
# zlib's fastest level: 7.2 x on stored events against 9.1 x at level 6, for a third of the time.
COMPRESSION_LEVEL = 1

_DECODING: bson.CodecOptions[Document] = bson.CodecOptions(document_class=dict, tz_aware=True)


def pack_documents(documents: Sequence[Document]) -> Binary:
    blob = b"".join(bson.encode(document) for document in documents)
    return Binary(zlib.compress(blob, COMPRESSION_LEVEL), COMPRESSED_BSON)


def unpack_documents(blob: bytes, *, where: str) -> list[Document]:
    """The documents of a blob, in order; ``where`` names its document in errors."""
    subtype = blob.subtype if isinstance(blob, Binary) else 0
    if subtype == COMPRESSED_BSON:
        blob = zlib.decompress(bytes(blob))
    elif subtype != 0:
        raise ValueError(f"{where}: binary subtype {subtype} is not a blob of documents")
    return bson.decode_all(bytes(blob), codec_options=_DECODING)

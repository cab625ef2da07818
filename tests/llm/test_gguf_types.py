"""Reading the ggml types of a GGUF file's tensors from its header."""

import struct
from pathlib import Path

import pytest

from datarefinery.errors import ConfigError
from datarefinery.llm.gguf_types import tensor_types
from datarefinery.llm.models import default_model_path


def string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def tiny_gguf(path: Path, version: int = 3) -> Path:
    """A header with every kind of metadata value the reader must skip, and two tensors."""
    kv = [
        string("general.name") + struct.pack("<I", 8) + string("tiny"),
        string("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", 15),
        string("x.flag") + struct.pack("<I", 7) + b"\x01",
        string("x.scale") + struct.pack("<I", 12) + struct.pack("<d", 0.5),
        string("x.ids") + struct.pack("<IIQ", 9, 5, 3) + struct.pack("<3i", 1, 2, 3),
        string("x.words") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("bc"),
        string("x.nested")
        + struct.pack("<IIQ", 9, 9, 1)
        + struct.pack("<IQ", 6, 2)
        + struct.pack("<2f", 1, 2),
    ]
    tensors = [
        string("blk.0.ffn_down.weight") + struct.pack("<I2QIQ", 2, 256, 8, 14, 0),
        string("output_norm.weight") + struct.pack("<I1QIQ", 1, 256, 0, 4096),
    ]
    header = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    path.write_bytes(header + b"".join(kv) + b"".join(tensors) + b"\0" * 64)
    return path


def test_the_types_of_a_written_header(tmp_path: Path) -> None:
    assert tensor_types(tiny_gguf(tmp_path / "tiny.gguf")) == {14, 0}
    assert tensor_types(tiny_gguf(tmp_path / "v2.gguf", version=2)) == {14, 0}


def test_the_default_model_has_no_k_quant_weights() -> None:
    # F32, Q4_1, Q8_0: llama.cpp's tiled matmul takes none of them (llamacpp_rows)
    assert tensor_types(default_model_path()) == {0, 3, 8}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a model at all", "GGUF magic"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1, 1), "ends inside"),
    ],
)
def test_a_file_that_is_not_a_gguf_model_is_refused_with_its_path(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=says) as caught:
        tensor_types(path)
    assert str(path) in str(caught.value)

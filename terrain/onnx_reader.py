"""A minimal reader for the parts of an ONNX file a torch port needs: the
initializers (weights) and the nodes (op type, inputs, outputs) of the
main graph.

ONNX files are protocol buffers; this decodes the wire format directly
(varints and length-delimited fields), so loading the terrain model needs
neither the ``onnx`` package nor ``protobuf``.  Only what the exported
terrain U-Net uses is supported: tensors stored as ``raw_data`` or as
``float_data`` / ``int64_data``, no external data.  Attributes are not read.
Field numbers are those of ``onnx.proto3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# TensorProto.DataType -> numpy dtype (the ones an exported model uses)
DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """(field number, wire type, value) of one message; length-delimited
    values are memoryviews, varints ints, fixed-size ones raw bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {field}): not an ONNX file?")
        yield field, wire, value


def _packed_varints(value, wire) -> list[int]:
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(number)
    return out


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    dims, dtype, name, raw, floats, int64s = [], 1, "", None, [], []
    for field, wire, value in _fields(buf):
        if field == 1:
            dims.extend(_packed_varints(value, wire))
        elif field == 2:
            dtype = value
        elif field == 8:
            name = bytes(value).decode()
        elif field == 9:
            raw = bytes(value)
        elif field == 4:
            floats.append(np.frombuffer(bytes(value), "<f4"))  # packed, or one fixed32
        elif field == 7:
            int64s.extend(_packed_varints(value, wire))
        elif field == 14 and value == 1:
            raise ValueError(f"tensor {name!r} keeps its data outside the file (external data): not supported")
    if dtype not in DTYPES:
        raise ValueError(f"tensor {name!r} has ONNX data type {dtype}, which this reader does not know")
    np_dtype = np.dtype(DTYPES[dtype]).newbyteorder("<")
    if raw is not None:
        array = np.frombuffer(raw, dtype=np_dtype)
    elif floats:
        array = np.concatenate(floats).astype(np_dtype)
    else:
        array = np.asarray(int64s, dtype=np_dtype)
    # int64 dims are encoded as varints; negative values never occur in weights
    return name, array.reshape(dims).astype(np_dtype.newbyteorder("="), copy=True)


def _node(buf: memoryview) -> Node:
    inputs, outputs, op_type = [], [], ""
    for field, _, value in _fields(buf):
        if field == 1:
            inputs.append(bytes(value).decode())
        elif field == 2:
            outputs.append(bytes(value).decode())
        elif field == 4:
            op_type = bytes(value).decode()
    return Node(op_type, tuple(inputs), tuple(outputs))


@dataclass
class OnnxGraph:
    initializers: dict[str, np.ndarray]
    nodes: list[Node]
    metadata: dict[str, str]


def read_onnx(path: str | Path) -> OnnxGraph:
    """The main graph's initializers and nodes, and the model's metadata."""
    data = memoryview(Path(path).read_bytes())
    graph, metadata = None, {}
    for field, _, value in _fields(data):
        if field == 7:
            graph = value
        elif field == 14:
            entry = {f: bytes(v).decode() for f, _, v in _fields(value)}
            metadata[entry.get(1, "")] = entry.get(2, "")
    if graph is None:
        raise ValueError(f"{path}: no graph found; is it an ONNX model?")
    initializers, nodes = {}, []
    for field, _, value in _fields(graph):
        if field == 5:
            name, array = _tensor(value)
            initializers[name] = array
        elif field == 1:
            nodes.append(_node(value))
    return OnnxGraph(initializers, nodes, metadata)

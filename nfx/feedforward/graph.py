"""Free an ONNX graph's fixed spatial dimensions, in memory, without the `onnx` package.

The transformer of Ghiasi et al. 2017 ("Exploring the structure of a real-time, arbitrary
neural artistic stylization network") is fully convolutional: mirror pads, convolutions,
instance-norm moments by global average pooling and nearest-neighbour upsampling by *scales*,
so nothing inside it depends on the image's size. Its exported graph (tf2onnx from the TFLite
model) still declares its image input and output as 1x384x384x3, and onnxruntime refuses any
other shape. Naming those two dimensions symbolically ("height", "width") lets one session
render a whole image of any size in one pass, with no tiles and so no seams; the predictor
(a MobileNet ending in a global mean) is freed the same way so it can see a whole painting.

The edit walks the protobuf wire format by hand (ModelProto.graph = 7, GraphProto.input = 11
and output = 12, ValueInfoProto.name = 1 and type = 2, TypeProto.tensor_type = 1,
Tensor.shape = 2, TensorShapeProto.dim = 1, Dimension.dim_value = 1 and dim_param = 2, from
onnx.proto): a few dozen lines instead of a dependency on `onnx` for one field.
"""

from __future__ import annotations

from typing import Callable, Collection

_MODEL_GRAPH, _GRAPH_INPUT, _GRAPH_OUTPUT = 7, 11, 12
_VALUE_NAME, _VALUE_TYPE, _TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM = 1, 2, 1, 2, 1
_DIM_PARAM = 2
_LENGTH_DELIMITED = 2
SPATIAL_NAMES = {1: "height", 2: "width"}  # NHWC: the axes that become free


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(message: bytes) -> list[tuple[int, bytes, bytes | None]]:
    """(field number, the field's raw bytes, its payload if length-delimited) in order."""
    fields: list[tuple[int, bytes, bytes | None]] = []
    position = 0
    while position < len(message):
        start = position
        key, position = _read_varint(message, position)
        number, wire_type = key >> 3, key & 7
        payload: bytes | None = None
        if wire_type == 0:
            _, position = _read_varint(message, position)
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _read_varint(message, position)
            payload = message[position:position + length]
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, message[start:position], payload))
    return fields


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _map(message: bytes, number: int, change: Callable[[bytes], bytes]) -> bytes:
    """`message` with each length-delimited field `number` replaced by change(payload)."""
    return b"".join(_field(n, change(payload)) if n == number and payload is not None else raw
                    for n, raw, payload in _fields(message))


def _free_spatial(shape: bytes) -> bytes:
    dims = [payload for n, _, payload in _fields(shape) if n == _SHAPE_DIM]
    if len(dims) != 4:
        raise ValueError(f"expected an NHWC image shape, found {len(dims)} dimensions")
    parts, index = [], 0
    for n, raw, payload in _fields(shape):
        if n == _SHAPE_DIM and index in SPATIAL_NAMES:
            raw = _field(_SHAPE_DIM, _field(_DIM_PARAM, SPATIAL_NAMES[index].encode()))
        index += n == _SHAPE_DIM
        parts.append(raw)
    return b"".join(parts)


def free_spatial_dims(model: bytes, names: Collection[str]) -> bytes:
    """The serialised model with the height and width of the named graph inputs and outputs
    (NHWC images) made symbolic; everything else byte for byte as it was."""
    found: set[str] = set()

    def value_info(info: bytes) -> bytes:
        name = next((payload.decode() for n, _, payload in _fields(info)
                     if n == _VALUE_NAME and payload is not None), "")
        if name not in names:
            return info
        found.add(name)
        return _map(info, _VALUE_TYPE, lambda type_: _map(
            type_, _TYPE_TENSOR, lambda tensor: _map(tensor, _TENSOR_SHAPE, _free_spatial)))

    def graph(body: bytes) -> bytes:
        return _map(_map(body, _GRAPH_INPUT, value_info), _GRAPH_OUTPUT, value_info)

    edited = _map(model, _MODEL_GRAPH, graph)
    if missing := set(names) - found:
        raise ValueError(f"no graph input or output named {sorted(missing)}")
    return edited

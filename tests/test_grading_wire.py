"""What may cross between a student's worker and the grader: exact values in, nothing else out."""
import json
import math

import numpy as np
import pytest

from dlcourse.grading.wire import WireError, decode, encode


def cross(value):
    """``value`` as it arrives on the other side (through JSON text, as on the pipe)."""
    return decode(json.loads(json.dumps(encode(value), allow_nan=True)))


@pytest.mark.parametrize("value", [
    None, True, 0, -(2 ** 62), 2.5, "한국어", [], (), {},
    [1, (2.0, "a"), {"k": [None, False]}],
    {1: "int key", (1, "t"): "tuple key", "s": np.arange(3)},
])
def test_plain_values_cross_unchanged(value):
    arrived = cross(value)
    assert repr(arrived) == repr(value)
    assert type(arrived) is type(value)


@pytest.mark.parametrize("array", [
    np.array([0.1, -0.0, np.inf, -np.inf, 1e-300]), np.arange(12, dtype="int8").reshape(3, 4).T,
    np.array([[True, False]]), np.zeros((0, 4)), np.array(7.25, dtype="float32"),
    np.array(["가", "ab"]), np.arange(6, dtype=">i4"), np.array([1 + 2j], dtype="complex64"),
])
def test_arrays_cross_bit_for_bit_as_base_class_copies(array):
    arrived = cross(array)
    assert type(arrived) is np.ndarray and arrived.flags.writeable and arrived.flags.owndata
    assert arrived.shape == array.shape and arrived.dtype.kind == array.dtype.kind
    assert arrived.tobytes() == array.astype(arrived.dtype).tobytes()


def test_nan_and_numpy_scalars():
    assert math.isnan(cross(float("nan")))
    scalar = cross(np.float32(1.5))
    assert type(scalar) is np.float32 and scalar == 1.5
    assert type(cross(np.bool_(True))) is np.bool_


class Always(np.ndarray):
    def __eq__(self, other):
        return True


class Loud(list):
    pass


@pytest.mark.parametrize("value, message", [
    (np.zeros(2).view(Always), "subclass of ndarray"),
    (Loud([1]), "subclass of list"),
    (object(), "type object"),
    (np.array([object()]), "Python objects"),
    (np.zeros(2, dtype="datetime64[s]"), "dtype"),
    (lambda x: x, "type function"),
])
def test_the_sending_side_refuses_what_is_not_plain(value, message):
    with pytest.raises(WireError, match=message):
        encode(value)


@pytest.mark.parametrize("data", [
    {"array": "AAAAAAAAAAA=", "dtype": "|O8", "shape": [1]},        # object array
    {"array": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [2]},        # 8 bytes for 2 floats
    {"array": "not base64!", "dtype": "<f8", "shape": [1]},
    {"array": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [-1]},
    {"array": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [], "scalar": True, "extra": 1},
    {"array": "AAAAAAAAAAAAAAAAAAAAAA==", "dtype": "<f8", "shape": [2], "scalar": True},
    {"__reduce__": ["os.system", ["true"]]},
    {"tuple": "abc"},
    {"dict": [[[1, 2], "list key"]]},
    {"dict": [["only a key"]]},
])
def test_the_grader_refuses_anything_else_on_arrival(data):
    with pytest.raises(WireError):
        decode(data)


def test_deep_nesting_is_refused_both_ways():
    deep = []
    for _ in range(30):
        deep = [deep]
    with pytest.raises(WireError, match="nesting"):
        encode(deep)
    with pytest.raises(WireError, match="nesting"):
        decode(json.loads(json.dumps(deep)))

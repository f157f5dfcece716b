"""Plain data across the jail's wall: what the grader and a student's worker may send each other.

Values travel as JSON of a few shapes: numbers, text, ``None`` and lists as
themselves; ``{"tuple": [...]}``; ``{"dict": [[key, value], ...]}``; and
``{"array": base64, "dtype": "<f8", "shape": [2, 3]}`` for a NumPy array
(``"scalar": true`` for a NumPy scalar).  Arrays travel as their raw bytes,
so a float arrives bit for bit.

``encode`` turns a value into that form; it is lenient (array-likes become
arrays) because it runs on the side that sends.  ``decode`` is strict,
because the grader runs it on what a submission sent: it builds nothing but
built-in numbers, text, lists, tuples, dicts and base-class ``numpy.ndarray``
copies of a numeric, boolean or text dtype, and rejects everything else.  So
no object of the student's making (an ndarray subclass whose ``==`` is always
true, an object array, a number with its own methods) ever reaches the
instructor's asserts.

This file is also loaded by ``worker.py`` inside the jail, so it imports
nothing but the standard library and NumPy.
"""
import base64
import binascii
import re

MAX_DEPTH = 20
MAX_ARRAY_BYTES = 64 << 20
_DTYPE = re.compile(r"^(\|b1|\|[iu]1|<[iu][248]|<f[248]|<c(8|16)|<U\d{1,4})$")


class WireError(ValueError):
    """A value that cannot cross: the message says what it was."""


def _numpy():
    import numpy
    return numpy


def encode(value, depth=0):
    """``value`` as JSON-able plain data, or ``WireError``.

    Subclasses of built-in types and of ``numpy.ndarray`` are refused rather
    than converted: their methods are the student's, not Python's.  Other
    array-likes (a TensorFlow or Keras tensor) become arrays.
    """
    if depth > MAX_DEPTH:
        raise WireError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"tuple": [encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"dict": [[encode(key, depth + 1), encode(item, depth + 1)] for key, item in value.items()]}
    np = _numpy()
    if kind is np.ndarray or (isinstance(value, np.generic) and kind.__module__ == "numpy"):
        return _encode_array(value)
    if isinstance(value, (np.ndarray, np.generic, bool, int, float, str, list, tuple, dict)):
        raise WireError(f"a value of type {kind.__name__} (a subclass of {_base_name(value)}) is not plain data")
    if hasattr(value, "__array__"):
        return _encode_array(value)
    raise WireError(f"a value of type {kind.__name__} is not plain data")


def _base_name(value):
    for base in type(value).__mro__[1:]:
        if base.__module__ in ("builtins", "numpy"):
            return base.__name__
    return "a built-in type"


def _encode_array(value):
    np = _numpy()
    scalar = isinstance(value, np.generic)
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - whatever the array-like raised
        raise WireError(f"a {type(value).__name__} could not be turned into an array ({error})") from None
    if array.dtype.kind == "O":
        raise WireError(f"a {type(value).__name__} of Python objects is not plain data")
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if not _DTYPE.match(dtype.str):
        raise WireError(f"arrays of dtype {array.dtype} cannot be compared")
    array = array.astype(dtype, copy=False)
    if array.nbytes > MAX_ARRAY_BYTES:
        raise WireError(f"an array larger than {MAX_ARRAY_BYTES >> 20} MiB")
    encoded = {"array": base64.b64encode(array.tobytes(order="C")).decode("ascii"), "dtype": dtype.str,
               "shape": list(array.shape)}
    if scalar:
        encoded["scalar"] = True
    return encoded


def decode(data, depth=0):
    """The plain value that ``data`` (parsed JSON) stands for; ``WireError`` for anything else."""
    if depth > MAX_DEPTH:
        raise WireError(f"nesting deeper than {MAX_DEPTH}")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(item, depth + 1) for item in data]
    if kind is dict:
        keys = set(data)
        if keys == {"tuple"} and type(data["tuple"]) is list:
            return tuple(decode(item, depth + 1) for item in data["tuple"])
        if keys == {"dict"} and type(data["dict"]) is list:
            return _decode_dict(data["dict"], depth)
        if keys in ({"array", "dtype", "shape"}, {"array", "dtype", "shape", "scalar"}):
            return _decode_array(data)
    raise WireError(f"not plain data: a {kind.__name__} of an unknown shape")


def _decode_dict(pairs, depth):
    out = {}
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2:
            raise WireError("a dict entry that is not a [key, value] pair")
        key = decode(pair[0], depth + 1)
        if not _hashable_plain(key):
            raise WireError("a dict key that is not a number, text or a tuple of them")
        out[key] = decode(pair[1], depth + 1)
    return out


def _hashable_plain(key):
    if key is None or type(key) in (bool, int, float, str):
        return True
    return type(key) is tuple and all(_hashable_plain(item) for item in key)


def _decode_array(data):
    np = _numpy()
    dtype, shape, text = data["dtype"], data["shape"], data["array"]
    if type(dtype) is not str or not _DTYPE.match(dtype):
        raise WireError(f"an array of dtype {str(dtype)[:20]!r}")
    if type(shape) is not list or len(shape) > 32 or \
            not all(type(size) is int and 0 <= size <= MAX_ARRAY_BYTES for size in shape):
        raise WireError("an array with an invalid shape")
    if type(text) is not str or len(text) > (MAX_ARRAY_BYTES // 3 + 1) * 4:
        raise WireError("an array with invalid contents")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise WireError("an array with invalid contents") from None
    dtype = np.dtype(dtype)
    count = 1
    for size in shape:
        count *= size
    if count * dtype.itemsize != len(raw):
        raise WireError("an array whose contents do not match its shape")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if data.get("scalar") is True:
        if array.ndim:
            raise WireError("a scalar with a shape")
        return array[()]
    return array

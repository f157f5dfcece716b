"""Is a student's value the reference solution's value?  Both computed by the test, in the grader.

A test's last line gives a value built by the instructor's code from plain
data (``wire.py``): numbers, text, None, NumPy arrays, and lists, tuples and
dicts of them.  Numbers and arrays match within ``rtol``/``atol``
(``numpy.allclose``) and must have the same shape (truth values exactly);
lists and tuples item by item; dicts key by key; everything else must be
equal.  The reason for a mismatch says what differs, never the expected value.
"""
import numpy as np


def _is_numeric(value):
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"


def _kind(value):
    if value is None:
        return "None"
    if _is_numeric(value):
        return "number or array"
    if isinstance(value, (str, np.str_)):
        return "text"
    if isinstance(value, (list, tuple)):
        return "sequence"
    if isinstance(value, np.ndarray):
        return "text array"
    if isinstance(value, dict):
        return "dict"
    return f"unsupported type {type(value).__name__}"


def comparable(value, depth=0):
    """True when ``compare`` can judge ``value`` (checked on the reference's values)."""
    if depth > 20:
        return False
    if isinstance(value, (list, tuple)):
        return all(comparable(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(comparable(item, depth + 1) for item in value.values())
    return not _kind(value).startswith("unsupported")


def _is_boolean(value):
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype.kind == "b")


def compare(expected, actual, rtol, atol, where="value"):
    """``(True, "")`` when ``actual`` matches ``expected``, else ``(False, reason)``."""
    if _kind(expected) != _kind(actual):
        return False, f"{where} is {_kind(actual)}, the reference's is {_kind(expected)}"
    if _is_numeric(expected):
        expected_array = np.asarray(expected, dtype=float)
        actual_array = np.asarray(actual, dtype=float)
        if actual_array.shape != expected_array.shape:
            return False, f"{where} has shape {actual_array.shape}, the reference's has {expected_array.shape}"
        if _is_boolean(expected) and not np.array_equal(actual_array, expected_array):
            return False, f"{where}: {int((actual_array != expected_array).sum())} truth value(s) differ"
        if np.allclose(actual_array, expected_array, rtol=rtol, atol=atol, equal_nan=True):
            return True, ""
        difference = np.abs(actual_array - expected_array)
        difference = np.where(np.isnan(difference), np.inf, difference)
        worst = np.unravel_index(np.argmax(difference), difference.shape) if difference.ndim else ()
        at = f" at index {tuple(int(i) for i in worst)}" if worst else ""
        return False, (f"{where} differs from the reference (largest difference {float(difference.max()):.3g}"
                       f"{at}; tolerance rtol={rtol:g}, atol={atol:g})")
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            return False, f"{where} has {len(actual)} items, the reference's has {len(expected)}"
        for index, (item_expected, item_actual) in enumerate(zip(expected, actual)):
            same, reason = compare(item_expected, item_actual, rtol, atol, f"{where}[{index}]")
            if not same:
                return False, reason
        return True, ""
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return False, f"{where} has keys {sorted(map(repr, actual))}, the reference's has " \
                          f"{sorted(map(repr, expected))}"
        for key in expected:
            same, reason = compare(expected[key], actual[key], rtol, atol, f"{where}[{key!r}]")
            if not same:
                return False, reason
        return True, ""
    if isinstance(expected, np.ndarray):  # text arrays
        if expected.shape == actual.shape and np.array_equal(expected, actual):
            return True, ""
        return False, f"{where} differs from the reference"
    if expected == actual:
        return True, ""
    return False, f"{where} differs from the reference"

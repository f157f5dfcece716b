"""Is a student's value the reference solution's value?  Compared here, in the grader's process.

Values arrive as the JSON the worker wrote (``worker.encode``): numbers,
text, None, lists, ``{"__array__": ..., "shape": ..., "dtype": kind}`` and
``{"__dict__": {...}}``.  Numbers and arrays match within ``rtol``/``atol``
(``numpy.allclose``) and must have the same shape; everything else must be
equal.  The reason for a mismatch says what differs, never the expected value.
"""
import numpy as np

def _as_array(value):
    """A numeric array for a number or an encoded array; None for anything else."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return np.asarray(value, dtype=float)
    if isinstance(value, dict) and "__array__" in value:
        try:
            array = np.asarray(value["__array__"], dtype=float)
        except (TypeError, ValueError):
            return None
        if list(array.shape) != list(value.get("shape", array.shape)):
            return None
        return array
    return None


def _kind(value):
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        if "__array__" in value:
            return "array"
        if "__dict__" in value:
            return "dict"
        if "__unsupported__" in value:
            return f"unsupported type {value['__unsupported__']}"
    return "unknown"


def _is_boolean(value):
    return isinstance(value, bool) or (isinstance(value, dict) and value.get("dtype") == "b")


def compare(expected, actual, rtol, atol, where="value"):
    """``(True, "")`` when ``actual`` matches ``expected``, else ``(False, reason)``."""
    expected_array = _as_array(expected)
    if expected_array is not None:
        actual_array = _as_array(actual)
        if actual_array is None:
            return False, f"{where} is {_kind(actual)}, not a number or array"
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
    if _kind(expected) != _kind(actual):
        return False, f"{where} is {_kind(actual)}, the reference's is {_kind(expected)}"
    if isinstance(expected, list):
        if len(actual) != len(expected):
            return False, f"{where} has {len(actual)} items, the reference's has {len(expected)}"
        for index, (item_expected, item_actual) in enumerate(zip(expected, actual)):
            same, reason = compare(item_expected, item_actual, rtol, atol, f"{where}[{index}]")
            if not same:
                return False, reason
        return True, ""
    if isinstance(expected, dict) and "__dict__" in expected:
        expected_items, actual_items = expected["__dict__"], actual["__dict__"]
        if set(expected_items) != set(actual_items):
            return False, f"{where} has keys {sorted(actual_items)}, the reference's has {sorted(expected_items)}"
        for key in expected_items:
            same, reason = compare(expected_items[key], actual_items[key], rtol, atol, f"{where}[{key!r}]")
            if not same:
                return False, reason
        return True, ""
    if expected == actual:
        return True, ""
    return False, f"{where} differs from the reference"

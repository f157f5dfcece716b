"""Prints what ``import tensorflow`` and ``find_spec`` say under the blocker (tests/test_backends.py)."""
import importlib.util

try:
    import tensorflow  # noqa: F401
    print("imported")
except ModuleNotFoundError as error:
    print(type(error).__name__)
print(importlib.util.find_spec("tensorflow"))

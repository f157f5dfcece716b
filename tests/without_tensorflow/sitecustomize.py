"""Makes this Python behave as if TensorFlow were not installed (tests/test_backends.py).

Put this folder first on PYTHONPATH: ``site`` imports ``sitecustomize`` at
start-up, before any other code.  A ``None`` in ``sys.modules`` is Python's
own way to block a module: ``import tensorflow`` raises ModuleNotFoundError
and ``importlib.util.find_spec("tensorflow")`` returns None, exactly as on a
machine without it.
"""
import sys

for name in ("tensorflow", "tensorboard", "tensorflow_datasets", "tf_keras"):
    sys.modules[name] = None

"""Makes this Python behave as if TensorFlow were not installed (tests/test_backends.py).

Put this folder first on PYTHONPATH: ``site`` imports ``sitecustomize`` at
start-up, after the .pth files and before any other code.  Every module
finder is wrapped so that it finds nothing named tensorflow (or TensorBoard,
TFDS, tf_keras): ``import tensorflow`` raises ModuleNotFoundError,
``importlib.util.find_spec("tensorflow")`` returns None and ``"tensorflow"``
never appears in ``sys.modules`` — as on a machine without it.  (A ``None``
in ``sys.modules`` would block the import too, but Keras reads the mere key
as "TensorFlow is loaded".)
"""
import sys

HIDDEN = {"tensorflow", "tensorboard", "tensorflow_datasets", "tf_keras"}


class HidingFinder:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):  # invalidate_caches, find_distributions, ...
        return getattr(self.finder, attribute)


sys.meta_path[:] = [HidingFinder(finder) for finder in sys.meta_path]

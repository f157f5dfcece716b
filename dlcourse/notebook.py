"""What a course notebook sets up in its kernel, whatever folder Jupyter started the kernel in.

A notebook's first code cell calls ``setup()``: runs started from the notebook
then land in the repository's ``runs/`` (the same folder ``python -m labs...``
uses from the repository root), not in a ``notebooks/runs/`` that nobody
looks in.  ``DLCOURSE_RUNS_DIR``, when set, wins.  It also loads Keras and its
backend (TensorFlow unless ``KERAS_BACKEND`` says otherwise) without the lines
TensorFlow's C++ start-up prints on a machine without a GPU ("Could not find
cuda drivers", "failed call to cuInit"): they bypass
``TF_CPP_MIN_LOG_LEVEL`` and show in a notebook as red text that looks like
an error.
"""
import os
import pathlib
import sys

import dlcourse


def repository_root():
    """The checkout this package was installed from (``pip install -e``), or None for a plain install."""
    root = pathlib.Path(dlcourse.__file__).resolve().parent.parent
    return root if (root / "labs").is_dir() and (root / "notebooks").is_dir() else None


def load_backend_quietly():
    """Import Keras (and so its backend) with the process's stderr (fd 2) sent to /dev/null,
    and on TensorFlow let it look for GPUs there too.

    Only what the C++ side writes straight to fd 2 is dropped; Python's
    warnings and errors (a failed import included) still reach the notebook.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf
                tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def setup():
    """Point runs at the repository's ``runs/``, load Keras and its backend quietly; returns the runs folder."""
    if not os.environ.get("DLCOURSE_RUNS_DIR"):
        root = repository_root()
        os.environ["DLCOURSE_RUNS_DIR"] = str(root / "runs" if root else pathlib.Path.cwd() / "runs")
    runs = pathlib.Path(os.environ["DLCOURSE_RUNS_DIR"])
    load_backend_quietly()
    print(f"run 결과는 {runs}에 저장됩니다.")
    return runs

"""What a course notebook sets up in its kernel, whatever folder Jupyter started the kernel in.

A notebook's first code cell calls ``setup()``: runs started from the notebook
then land in the repository's ``runs/`` (the same folder ``python -m labs...``
uses from the repository root), not in a ``notebooks/runs/`` that nobody
looks in.  ``DLCOURSE_RUNS_DIR``, when set, wins.  TensorFlow's start-up
chatter is already silenced by importing ``dlcourse``.
"""
import os
import pathlib

import dlcourse


def repository_root():
    """The checkout this package was installed from (``pip install -e``), or None for a plain install."""
    root = pathlib.Path(dlcourse.__file__).resolve().parent.parent
    return root if (root / "labs").is_dir() and (root / "notebooks").is_dir() else None


def setup():
    """Point runs at the repository's ``runs/`` and say where they go; returns that folder."""
    if not os.environ.get("DLCOURSE_RUNS_DIR"):
        root = repository_root()
        os.environ["DLCOURSE_RUNS_DIR"] = str(root / "runs" if root else pathlib.Path.cwd() / "runs")
    runs = pathlib.Path(os.environ["DLCOURSE_RUNS_DIR"])
    print(f"run 결과는 {runs}에 저장됩니다.")
    return runs

"""Open the course's notebooks: register the course's Jupyter kernel, then start JupyterLab.

    python -m dlcourse.jupyter                 # JupyterLab at the repository root, notebooks/ open
    python -m dlcourse.jupyter --setup-only    # only register the kernel (``make notebook`` does both)
    python -m dlcourse.jupyter --no-browser --port 8899     # other flags go to JupyterLab

The kernel ("dlcourse (Keras 3)") is this virtual environment's Python, so
``import dlcourse`` and ``import labs`` work in every notebook, whatever
folder Jupyter starts the kernel in; it is registered inside the
environment (``--sys-prefix``), not in the user's home.  The same works on
Windows without ``make``: ``py -m venv .venv``, ``.venv\\Scripts\\python -m pip
install -e .[notebook]``, ``.venv\\Scripts\\python -m dlcourse.jupyter``.
"""
import argparse
import importlib.util
import os
import pathlib
import subprocess
import sys

from dlcourse.notebook import repository_root

KERNEL_NAME = "dlcourse"
DISPLAY_NAME = "dlcourse (Keras 3)"
FIRST_NOTEBOOK = "notebooks/00_시작하기.ipynb"


def register_kernel(prefix=sys.prefix):
    """Install (or refresh) the course's kernel spec under ``prefix``; returns its folder."""
    from ipykernel.kernelspec import install
    return pathlib.Path(install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=prefix))


def lab_command(root, extra=()):
    """The JupyterLab command: served from ``root``, the getting-started notebook open first."""
    opening = f"/lab/tree/{FIRST_NOTEBOOK}" if (root / FIRST_NOTEBOOK).is_file() else "/lab/tree/notebooks"
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers, Colab
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
            f"--LabApp.default_url={opening}", *as_root, *extra]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dlcourse.jupyter", description=__doc__.splitlines()[0])
    parser.add_argument("--setup-only", action="store_true", help="register the kernel and stop")
    options, extra = parser.parse_known_args(argv)
    if importlib.util.find_spec("jupyterlab") is None:
        print("JupyterLab is not installed here: run `make notebook`, or "
              "`python -m pip install -e \".[notebook]\"` in the repository", file=sys.stderr)
        return 1
    spec = register_kernel()
    print(f"kernel {DISPLAY_NAME!r} registered in {spec}")
    if options.setup_only:
        return 0
    root = repository_root() or pathlib.Path.cwd()
    try:
        return subprocess.call(lab_command(root, extra), cwd=root)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

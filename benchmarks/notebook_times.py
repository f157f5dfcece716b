"""How long each notebook takes to run from top to bottom, as a student runs it (not part of `make test`).

    .venv/bin/python benchmarks/notebook_times.py                 # every notebook, full size
    .venv/bin/python benchmarks/notebook_times.py week1_iris_ann  # some of them
    .venv/bin/python benchmarks/notebook_times.py --smoke         # with SMOKE = True

Each notebook runs in a fresh kernel (nbclient, the kernel of this Python), its
runs written to a temporary folder; the wall time of each and the machine are
written to benchmarks/notebook_times.json and printed as a Markdown table
(the one in notebooks/00_시작하기.ipynb).
"""
import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from tqdm import tqdm

REPO = pathlib.Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "notebook_times.json"


def run_notebook(path, out_dir, smoke):
    notebook = nbformat.read(path, as_version=4)
    index = next((i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])), None)
    if index is not None:
        overrides = f"OUT_DIR = {str(out_dir)!r}" + ("\nSMOKE = True\nEPOCHS = 1" if smoke else "")
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(overrides))
    started = time.perf_counter()
    NotebookClient(notebook, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - started


def minutes(seconds):
    return f"{seconds / 60:.1f}분" if seconds >= 60 else f"{seconds:.0f}초"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--smoke", action="store_true", help="run with SMOKE = True")
    options = parser.parse_args(argv)
    paths = sorted((REPO / "notebooks").glob("*.ipynb"))
    if options.names:
        paths = [path for path in paths if path.stem in options.names]
        if len(paths) != len(options.names):
            parser.error(f"unknown notebook among {options.names}")
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    key = "smoke" if options.smoke else "full"
    results.setdefault(key, {})
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as scratch:
        for path in tqdm(paths, desc="notebooks", unit="notebook"):
            seconds = run_notebook(path, pathlib.Path(scratch) / path.stem, options.smoke)
            results[key][path.stem] = round(seconds, 1)
            RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
            tqdm.write(f"{path.stem}: {seconds:.1f} s")
    for name, seconds in results[key].items():
        print(f"| `{name}.ipynb` | {minutes(seconds)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The same labs on every installed Keras backend: metric, wall time and epoch time side by side.

Each (lab, backend, seed) runs in its own process (``KERAS_BACKEND`` is read
once, when Keras is imported) as ``python -m labs.<lab> --seed S --out
DIR/<lab>/<backend>/seed<S>``, with the same data and options on every
backend.  A run whose metrics.json exists is not run again, so the benchmark
resumes after an interruption.  It writes ``DIR/backends.json`` (one row per
run) and ``DIR/backends.md`` (lab x backend: the lab's headline metric as mean
± half-range over the seeds, wall time, its ratio to TensorFlow's, the median
epoch time after the first epoch, and whether the backend is within the seed
noise of TensorFlow), and prints the table.

    python benchmarks/backends.py --smoke --labs softmax_mnist iris_ann
    python benchmarks/backends.py --labs mlp_mnist --seeds 1 2 3 -- --epochs 5

This script imports neither Keras nor a backend: a machine without
TensorFlow runs it too.
"""
import argparse
import ast
import csv
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
EXTRA_WEEKS_LABS = ("char_rnn", "rcnn")
# Set by the benchmark for every run; given after ``--`` they would contradict it.
OWN_OPTIONS = ("--seed", "--out")
NOISE_RULE = ("within noise of TensorFlow: |mean - TensorFlow's mean| <= the larger of the two "
              "backends' seed ranges (max - min over the seeds); with one seed per backend the ranges "
              "are 0 and only an identical result counts")


# ---------------------------------------------------------------------------
# What the labs say about themselves, read from their source (no Keras import)
# ---------------------------------------------------------------------------

def module_constant(module, name):
    """The literal value of ``name = ...`` at the top of ``labs/<module>.py``."""
    path = REPO / "labs" / f"{module}.py"
    if not path.is_file():
        raise ValueError(f"no lab {module!r} (no {path.relative_to(REPO)})")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name):
            return ast.literal_eval(node.value)
    raise ValueError(f"labs/{module}.py has no {name} = ... literal")


def headline_metric(lab):
    """The metric the lab reports first, as the week runners' summary table shows it
    (``REFERENCE["metric"]``, see ``dlcourse.weeks.run_week``)."""
    return module_constant(lab, "REFERENCE")["metric"]


def default_labs():
    return [*module_constant("week1", "LABS"), *EXTRA_WEEKS_LABS]


def installed_backends():
    return [backend for backend in BACKENDS if importlib.util.find_spec(backend) is not None]


def versions():
    found = {"python": platform.python_version()}
    for distribution in ("keras", "tensorflow", "jax", "jaxlib", "torch", "numpy"):
        try:
            found[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def epoch_seconds_after_first(run_dir):
    """epoch_seconds of every epoch but the first of each training phase (that one also traces
    and compiles), over history.csv and every history-<phase>.csv of the run."""
    seconds = []
    for path in sorted(Path(run_dir).glob("history*.csv")):
        with open(path, newline="") as stream:
            rows = {int(row["epoch"]): row for row in csv.DictReader(stream) if row.get("epoch")}
        for epoch in sorted(rows)[1:]:
            if rows[epoch].get("epoch_seconds"):
                seconds.append(float(rows[epoch]["epoch_seconds"]))
    return seconds


def last_line(path):
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def row_from_run_dir(lab, backend, seed, run_dir):
    """What a finished run directory says: the headline metric, wall time, epoch times, devices."""
    metrics = read_json(run_dir / "metrics.json") or {}
    metric = headline_metric(lab)
    later_epochs = epoch_seconds_after_first(run_dir)
    return {"lab": lab, "backend": backend, "seed": seed, "metric": metric, "value": metrics.get(metric),
            "wall_seconds": metrics.get("wall_seconds"), "epochs": metrics.get("epochs"),
            "median_epoch_seconds": round(statistics.median(later_epochs), 4) if later_epochs else None,
            "recorded_backend": metrics.get("backend"), "devices": metrics.get("devices"),
            "replicas": metrics.get("replicas"), "run_dir": str(run_dir)}


def run_one(lab, backend, seed, out, lab_options, timeout):
    """Run one lab in a fresh process (or reuse its finished run) and return its row."""
    run_dir = out / lab / backend / f"seed{seed}"
    if (run_dir / "metrics.json").exists():
        return {**row_from_run_dir(lab, backend, seed, run_dir), "status": "ok", "exit_status": None,
                "reused": True, "process_seconds": None, "error": None}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", f"labs.{lab}", "--seed", str(seed), "--out", str(run_dir), *lab_options]
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    stdout_log, stderr_log = run_dir.parent / f"seed{seed}.out.log", run_dir.parent / f"seed{seed}.err.log"
    started = time.perf_counter()
    with open(stdout_log, "w") as stdout, open(stderr_log, "w") as stderr:
        try:
            exit_status = subprocess.run(command, cwd=REPO, env=environment, stdout=stdout, stderr=stderr,
                                         timeout=timeout).returncode
            error = None
        except subprocess.TimeoutExpired:
            exit_status, error = None, f"timed out after {timeout} s"
    process_seconds = round(time.perf_counter() - started, 2)
    if exit_status == 130:
        raise KeyboardInterrupt
    finished = exit_status == 0 and (run_dir / "metrics.json").exists()
    if not finished and error is None:
        error = last_line(stderr_log) or f"exit status {exit_status}, no metrics.json"
    row = row_from_run_dir(lab, backend, seed, run_dir) if finished else {
        "lab": lab, "backend": backend, "seed": seed, "metric": headline_metric(lab), "value": None,
        "wall_seconds": None, "epochs": None, "median_epoch_seconds": None, "recorded_backend": None,
        "devices": None, "replicas": None, "run_dir": str(run_dir)}
    return {**row, "status": "ok" if finished else "failed", "exit_status": exit_status, "reused": False,
            "process_seconds": process_seconds, "error": error, "log": str(stderr_log)}


# ---------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------

def summarize(rows, labs, backends):
    """One entry per (lab, backend): mean ± half-range over the seeds that finished, and times."""
    summary = []
    for lab in labs:
        for backend in backends:
            runs = [row for row in rows if row["lab"] == lab and row["backend"] == backend]
            if not runs:
                continue
            done = [row for row in runs if row["status"] == "ok" and row["value"] is not None]
            values = [row["value"] for row in done]
            walls = [row["wall_seconds"] for row in done if row["wall_seconds"] is not None]
            epochs = [row["median_epoch_seconds"] for row in done if row["median_epoch_seconds"] is not None]
            summary.append({
                "lab": lab, "backend": backend, "metric": runs[0]["metric"], "seeds": len(runs),
                "seeds_ok": len(done), "values": values,
                "mean": statistics.fmean(values) if values else None,
                "half_range": (max(values) - min(values)) / 2 if values else None,
                "range": max(values) - min(values) if values else None,
                "wall_seconds": statistics.fmean(walls) if walls else None,
                "median_epoch_seconds": statistics.fmean(epochs) if epochs else None,
                "devices": done[0]["devices"] if done else None})
    by_key = {(entry["lab"], entry["backend"]): entry for entry in summary}
    for entry in summary:
        reference = by_key.get((entry["lab"], "tensorflow"))
        entry["wall_ratio_to_tensorflow"] = entry["difference_from_tensorflow"] = None
        entry["within_noise_of_tensorflow"] = None
        if entry["backend"] == "tensorflow" or reference is None or reference["mean"] is None:
            continue
        if entry["wall_seconds"] is not None and reference["wall_seconds"]:
            entry["wall_ratio_to_tensorflow"] = entry["wall_seconds"] / reference["wall_seconds"]
        if entry["mean"] is not None:
            entry["difference_from_tensorflow"] = entry["mean"] - reference["mean"]
            entry["noise"] = max(entry["range"], reference["range"])
            entry["within_noise_of_tensorflow"] = abs(entry["difference_from_tensorflow"]) <= entry["noise"] + 1e-12
    return summary


def _number(value, digits=4):
    return "—" if value is None else f"{value:.{digits}f}"


def _noise_cell(entry):
    if entry["backend"] == "tensorflow":
        return "(reference)"
    if entry["within_noise_of_tensorflow"] is None:
        return "n/a (no TensorFlow result)" if entry["mean"] is not None else "n/a"
    verdict = "yes" if entry["within_noise_of_tensorflow"] else "**no**"
    return f"{verdict} (Δ {entry['difference_from_tensorflow']:+.4f}, noise {entry['noise']:.4f})"


def markdown(summary, rows, meta):
    lines = [f"# Keras backends, {meta['created'][:10]}", "",
             f"Labs run with `{' '.join(meta['lab_options']) or '(their defaults)'}`, seeds "
             f"{', '.join(map(str, meta['seeds']))}; "
             + ", ".join(f"{name} {version}" for name, version in meta["versions"].items()) + ".", "",
             "| lab | metric | backend | mean ± half-range | seeds ok | wall s (mean) | wall / TensorFlow "
             "| epoch s (median after the 1st) | within noise of TensorFlow |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in summary:
        value = "failed" if entry["mean"] is None else f"{entry['mean']:.4f} ± {entry['half_range']:.4f}"
        ratio = "—" if entry["wall_ratio_to_tensorflow"] is None else f"{entry['wall_ratio_to_tensorflow']:.2f}×"
        lines.append(f"| {entry['lab']} | {entry['metric']} | {entry['backend']} | {value} "
                     f"| {entry['seeds_ok']}/{entry['seeds']} | {_number(entry['wall_seconds'], 1)} | {ratio} "
                     f"| {_number(entry['median_epoch_seconds'], 3)} | {_noise_cell(entry)} |")
    lines += ["", f"Rule: {NOISE_RULE}.  Wall time is metrics.json's `wall_seconds` (the lab's run, "
              "imports and process start-up excluded)."]
    devices = {}
    for entry in summary:
        if entry["devices"] and entry["backend"] not in devices:
            devices[entry["backend"]] = ", ".join(entry["devices"])
    if devices:
        lines += ["", "Devices (metrics.json): " + "; ".join(f"{name}: {text}" for name, text in devices.items())
                  + "."]
    failed = [row for row in rows if row["status"] != "ok"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {row['lab']} / {row['backend']} / seed {row['seed']}: exit status {row['exit_status']}: "
                  f"`{row['error']}` (log: {row.get('log')})" for row in failed]
    return "\n".join(lines) + "\n"


def write_results(out, rows, labs, backends, meta):
    summary = summarize(rows, labs, backends)
    document = {**meta, "rule": NOISE_RULE, "rows": rows, "summary": summary}
    (out / "backends.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    text = markdown(summary, rows, meta)
    (out / "backends.md").write_text(text, encoding="utf-8")
    return text


def check_settings(out, lab_options):
    """Refuse a folder whose finished runs were made with other lab options (they would be reused)."""
    path = out / "settings.json"
    previous = read_json(path)
    if previous is not None and previous.get("lab_options") != lab_options:
        sys.exit(f"{out} holds runs made with the lab options {previous.get('lab_options')}, not {lab_options}; "
                 "choose another --out (or delete that folder)")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"lab_options": lab_options}) + "\n", encoding="utf-8")


def parse_arguments(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Options after -- go to every lab unchanged (python -m labs.<lab> --help lists them); "
               "a lab that does not know one fails and is reported.")
    parser.add_argument("--labs", nargs="+", default=None,
                        help=f"labs to run (default: {' '.join(default_labs())})")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                        help="Keras backends (default: every one that is installed here: "
                             f"{' '.join(installed_backends()) or 'none'})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="seeds; two or more state the noise")
    parser.add_argument("--out", default="runs/benchmarks/backends", help="folder of the runs and the results")
    parser.add_argument("--smoke", action="store_true", help="pass --smoke to every lab (tiny data, seconds)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds one run may take (default: no limit)")
    args = parser.parse_args(argv)
    for option in OWN_OPTIONS:
        if any(token == option or token.startswith(option + "=") for token in extra):
            parser.error(f"{option} is set by the benchmark; use --seeds / --out before --")
    args.labs = args.labs or default_labs()
    args.backends = args.backends or installed_backends()
    if not args.backends:
        parser.error("no Keras backend (tensorflow, jax, torch) is installed")
    missing = [backend for backend in args.backends if importlib.util.find_spec(backend) is None]
    if missing:
        parser.error(f"not installed here: {', '.join(missing)}")
    try:
        for lab in args.labs:
            headline_metric(lab)
    except ValueError as error:
        parser.error(str(error))
    args.lab_options = (["--smoke"] if args.smoke else []) + extra
    return args


def main(argv=None):
    args = parse_arguments(argv)
    out = Path(args.out).resolve()
    check_settings(out, args.lab_options)
    meta = {"created": datetime.datetime.now().isoformat(timespec="seconds"), "command": sys.argv,
            "labs": args.labs, "backends": args.backends, "seeds": args.seeds, "lab_options": args.lab_options,
            "versions": versions(), "host": platform.node(), "cpus": os.cpu_count(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    plan = [(lab, seed, backend) for lab in args.labs for seed in args.seeds for backend in args.backends]
    # A run finished before keeps the process time and exit status it had then.
    before = {(row["lab"], row["backend"], row["seed"]): row
              for row in (read_json(out / "backends.json") or {}).get("rows", [])}
    rows = []
    try:
        for number, (lab, seed, backend) in enumerate(plan, 1):
            row = run_one(lab, backend, seed, out, args.lab_options, args.timeout)
            if row["reused"] and (lab, backend, seed) in before:
                row.update({key: before[(lab, backend, seed)].get(key) for key in ("process_seconds", "exit_status")})
            rows.append(row)
            if row["status"] == "ok":
                value = f"{row['value']:.4f}" if isinstance(row["value"], (int, float)) else row["value"]
                what = (f"ok      {row['metric']}={value}  wall {row['wall_seconds']} s"
                        + (" (finished before)" if row["reused"] else f" (process {row['process_seconds']} s)"))
            else:
                what = f"FAILED  exit {row['exit_status']}: {row['error']}"
            print(f"[{number:>{len(str(len(plan)))}}/{len(plan)}] {lab:<20} {backend:<10} seed {seed}  {what}",
                  flush=True)
            write_results(out, rows, args.labs, args.backends, meta)
    except KeyboardInterrupt:
        write_results(out, rows, args.labs, args.backends, meta)
        print(f"\ninterrupted; {len(rows)} of {len(plan)} runs in {out}/backends.json; "
              "the same command resumes", file=sys.stderr)
        return 130
    text = write_results(out, rows, args.labs, args.backends, meta)
    print(f"\n{out / 'backends.json'}\n{out / 'backends.md'}\n")
    print(text)
    return 1 if any(row["status"] != "ok" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

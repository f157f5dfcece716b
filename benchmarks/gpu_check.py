"""Week 1 on a GPU machine that has PyTorch and/or JAX but neither Keras nor TensorFlow.

Run it with the machine's own Python (the one that imports torch or jax),
from anywhere; it needs nothing but the standard library to start:

1. finds which of torch / jax (and tensorflow, should it be there) import,
   and whether each sees a GPU (``torch.cuda.is_available()``, a
   ``jax.devices()`` entry with platform ``gpu``);
2. installs what the week-1 labs need and this Python lacks -- the
   requirements of setup.cfg's ``install_requires`` that week 1 imports
   (``--all-requirements``: all of them), never TensorFlow, TensorBoard or
   TensorFlow Datasets -- into a venv with ``--system-site-packages``, so the
   machine's torch / jax / numpy are reused and pinned (pip may not change
   them), from ``--wheels DIR`` (``pip install --no-index --find-links DIR``,
   no network) or else from the package index;
3. runs ``python -m labs.week1`` on each backend (``KERAS_BACKEND``) with
   ``--out OUT/<backend>``, full or ``--smoke``; a lab whose metrics.json is
   already there is not run again;
4. writes one JSON file (``--json``, default gpu_check.json): whether a GPU was
   seen, per backend the devices metrics.json recorded, each lab's headline
   metric and wall time and the week's total, and the versions (Python, Keras,
   JAX / PyTorch, the GPU model from nvidia-smi).

Without a GPU it still runs (on the CPU) and writes ``"gpu": false``.

    python benchmarks/gpu_check.py --smoke --lab softmax_mnist      # a quick check
    python benchmarks/gpu_check.py --wheels /data/wheels            # offline, the whole week

Options it does not know go to ``labs.week1`` unchanged (``--epochs 2``).
Exit status: 0 every lab finished on every backend, 1 something failed.
"""
import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

from backends import check_settings, headline_metric, module_constant, read_json

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "jax", "tensorflow")
# What ``python -m labs.week1`` imports of install_requires (the rest serve weeks 2-5, the crawler
# and the grader).  Keras brings its own requirements (absl-py, rich, namex, optree, ml-dtypes, ...).
WEEK1_REQUIREMENTS = ("keras", "h5py", "numpy", "matplotlib", "tqdm")
# Never installed: TensorFlow itself and what only works with it.
TENSORFLOW_FAMILY = re.compile(r"^(tensorflow|tensorflow-.*|tensorboard|tensorboard-.*|tf-.*)$")
# The machine's packages pip must leave as they are (a newer numpy or ml-dtypes can break a jaxlib
# or torch built against the old one): pinned to their installed versions with a constraints file.
PROTECTED = re.compile(r"^(numpy|scipy|ml-dtypes|opt-einsum|jax|jaxlib|jax-.*|torch|torch.*|triton"
                       r"|nvidia-.*|pytorch-.*)$")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requires():
    """setup.cfg's install_requires, one requirement string per entry (comments dropped)."""
    requirements, inside = [], False
    for line in (REPO / "setup.cfg").read_text(encoding="utf-8").splitlines():
        if re.match(r"^install_requires\s*=", line):
            inside = True
            continue
        if inside:
            if line and not line[0].isspace():
                break
            text = line.split("#", 1)[0].strip()
            if text:
                requirements.append(text)
    return requirements


def requirement_name(requirement):
    return normalize(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0))


def wanted_requirements(everything):
    """The requirements to satisfy: week 1's (or all of setup.cfg's), TensorFlow's family left out."""
    chosen = [requirement for requirement in install_requires()
              if not TENSORFLOW_FAMILY.match(requirement_name(requirement))]
    if not everything:
        chosen = [requirement for requirement in chosen if requirement_name(requirement) in WEEK1_REQUIREMENTS]
    return chosen


# Run by the Python under test: for each requirement, its installed version and whether it fits.
CHECK = r"""
import importlib.metadata, json, sys
try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None
found = {}
for text in json.loads(sys.argv[1]):
    name = Requirement(text).name if Requirement else text.split()[0]
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = None
    fits = version is not None and (Requirement is None
                                    or Requirement(text).specifier.contains(version, prereleases=True))
    found[text] = {"installed": version, "fits": fits}
print(json.dumps(found))
"""

# Run by the Python under test: does this framework import, and which devices does it see.
PROBE = r"""
import json, sys
name, found = sys.argv[1], {"importable": False}
try:
    if name == "torch":
        import torch
        found.update(importable=True, version=torch.__version__, cuda=torch.version.cuda,
                     gpu=torch.cuda.is_available())
        found["devices"] = ([f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
                            if found["gpu"] else ["cpu"])
    elif name == "jax":
        import jax, jaxlib
        devices = jax.devices()
        found.update(importable=True, version=jax.__version__, jaxlib=jaxlib.__version__,
                     default_backend=jax.default_backend(), gpu=any(d.platform == "gpu" for d in devices),
                     devices=[f"{d.platform}:{d.id} {d.device_kind}" for d in devices])
    elif name == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        found.update(importable=True, version=tf.__version__, gpu=bool(gpus),
                     devices=[d.name for d in tf.config.list_physical_devices()])
except Exception as error:
    found["error"] = f"{type(error).__name__}: {error}"
print(json.dumps(found))
"""


def python_json(python, script, *arguments, timeout=600):
    """Run ``script`` with ``python`` and read the JSON it prints last; (None, error line) on failure."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([str(python), "-c", script, *arguments], capture_output=True, text=True,
                              timeout=timeout, env=environment)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, str(error)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return None, (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return json.loads(lines[-1]), None


def probe(python, names):
    """{framework: what PROBE found} for the frameworks this Python can find."""
    found = {}
    for name in names:
        result, error = python_json(python, PROBE, name)
        found[name] = result or {"importable": False, "error": error}
    return found


def missing(python, requirements):
    """The requirements ``python`` does not satisfy, and what it has of each."""
    found, error = python_json(python, CHECK, json.dumps(requirements))
    if found is None:
        raise RuntimeError(f"{python} could not check its packages: {error}")
    return [text for text in requirements if not found[text]["fits"]], found


def nvidia_smi():
    """The GPUs nvidia-smi lists (model, driver, memory), or None where there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"error": str(error)}
    if done.returncode != 0:
        return {"error": (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}")}
    gpus = []
    for line in done.stdout.strip().splitlines():
        name, driver, memory = ([part.strip() for part in line.split(",")] + ["", ""])[:3]
        gpus.append({"name": name, "driver_version": driver, "memory_total": memory})
    return {"gpus": gpus}


# ---------------------------------------------------------------------------
# Installing what is missing
# ---------------------------------------------------------------------------

def venv_python(venv):
    return venv / "bin" / "python"


def machine_site_directories():
    """This Python's site-packages (and user site): what the venv must see of the machine."""
    directories = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        directories.append(site.getusersitepackages())
    return directories


def machine_sees_system_packages():
    """Whether this Python sees the base interpreter's site-packages (true unless it is a venv
    made without --system-site-packages)."""
    if sys.prefix == sys.base_prefix:
        return True
    config = Path(sys.prefix) / "pyvenv.cfg"
    text = config.read_text(errors="replace") if config.exists() else ""
    return re.search(r"^\s*include-system-site-packages\s*=\s*true", text, re.MULTILINE | re.IGNORECASE) is not None


def pip_command(venv, log):
    """The venv's own pip, or (a venv made without ensurepip) this Python's pip aimed at the venv."""
    python = venv_python(venv)
    if subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [str(python), "-m", "pip"]
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        log.write("the venv has no pip: using this Python's pip with --python\n")
        return [sys.executable, "-m", "pip", "--python", str(python)]
    raise RuntimeError("neither the venv nor this Python has pip")


def make_venv(venv, log):
    """A venv that sees exactly what this Python sees, and can have more.

    This Python's own site-packages come in through ``--system-site-packages``
    where it is not a venv; where it is one, a venv of a venv would see the
    base interpreter's packages instead, so the new venv gets a .pth file that
    adds this Python's site-packages (their .pth files included), and sees
    the base interpreter's only if this Python does.
    """
    if venv_python(venv).exists():
        return
    in_a_venv = sys.prefix != sys.base_prefix
    system = ["--system-site-packages"] if machine_sees_system_packages() else []
    command = [sys.executable, "-m", "venv", *system, str(venv)]
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:  # Debian without python3-venv: no ensurepip
        shutil.rmtree(venv, ignore_errors=True)
        command.insert(3, "--without-pip")
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            raise RuntimeError(f"could not make a venv at {venv} (see {log.name})")
    if in_a_venv:
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        packages = Path(subprocess.run([str(venv_python(venv)), "-c", where], capture_output=True, text=True,
                                       check=True).stdout.strip())
        line = "import site; " + "; ".join(f"site.addsitedir({folder!r})" for folder in machine_site_directories())
        (packages / "_gpu_check_machine_packages.pth").write_text(line + "\n")


def install(requirements, venv, wheels, log_path):
    """Make ``venv`` (reusing this Python's packages) and install ``requirements`` into it."""
    started = time.perf_counter()
    with open(log_path, "a") as log:
        make_venv(venv, log)
        constraints = venv / "gpu_check-constraints.txt"
        pins = sorted({f"{normalize(dist.metadata['Name'])}=={dist.version}"
                       for dist in importlib.metadata.distributions()
                       if dist.metadata["Name"] and PROTECTED.match(normalize(dist.metadata["Name"]))})
        constraints.write_text("\n".join(pins) + "\n")
        source = ["--no-index", "--find-links", str(wheels)] if wheels else []
        command = [*pip_command(venv, log), "install", "--disable-pip-version-check", "--no-input",
                   "--only-binary=:all:", *source, "-c", str(constraints), *requirements]
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        lines = [line for line in Path(log_path).read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line] or lines[-1:]
        raise RuntimeError(f"pip failed ({errors[0].strip() if errors else done.returncode}); see {log_path}")
    return round(time.perf_counter() - started, 1), pins


def prepare_python(args, out):
    """The Python that runs the labs, and what was done to get it."""
    requirements = wanted_requirements(args.all_requirements)
    try:
        lacking, found = missing(sys.executable, requirements)
    except RuntimeError as error:
        return None, {"requirements": requirements, "ok": False, "error": str(error)}
    report = {"requirements": requirements, "this_python_has": {text: found[text]["installed"] for text in found},
              "missing": lacking, "installed": [], "source": None, "venv": None, "ok": True}
    if not lacking:
        return Path(sys.executable), report
    venv = Path(args.venv).resolve()
    report["venv"] = str(venv)
    report["source"] = f"wheels in {Path(args.wheels).resolve()}" if args.wheels else "package index"
    try:
        if venv_python(venv).exists():
            still_missing, _ = missing(venv_python(venv), requirements)
            if not still_missing:
                report.update(reused_venv=True, source=None)
                return venv_python(venv), report
            lacking = still_missing
        print(f"installing {' '.join(lacking)} into {venv} from the {report['source']} ...", flush=True)
        report["seconds"], report["pinned"] = install(lacking, venv, args.wheels, out / "install.log")
        still_missing, _ = missing(venv_python(venv), requirements)
        if still_missing:
            raise RuntimeError(f"still missing after pip: {', '.join(still_missing)}")
    except RuntimeError as error:
        report.update(ok=False, error=str(error))
        return None, report
    report["installed"] = lacking
    return venv_python(venv), report


# ---------------------------------------------------------------------------
# Running week 1
# ---------------------------------------------------------------------------

def lab_error(log_text, lab):
    """The last line of a lab's section of the week's log that looks like an error."""
    section = log_text.split(f"=== {lab} ===", 1)[-1].split("\n=== ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line) or "error:" in line]
    return (errors or lines or ["no output"])[-1]


def run_week(python, backend, labs, out, smoke, extra):
    """``python -m labs.week1`` on one backend, for the labs not finished before; one entry for the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    todo = [lab for lab in labs if not (out / lab / "metrics.json").exists()]
    command = [str(python), "-m", "labs.week1", "--out", str(out), *(["--smoke"] if smoke else []),
               *[token for lab in todo for token in ("--lab", lab)], *extra]
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    log_path = out / "week1.log"
    started, exit_status = time.perf_counter(), None
    if todo:
        print(f"\n##### {backend}: {' '.join(command[1:])}", flush=True)
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, errors="replace")
            for line in process.stdout:
                log.write(line)
                print(f"[{backend}] {line}", end="", flush=True)
            exit_status = process.wait()
    week_seconds = round(time.perf_counter() - started, 1)
    log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
    results, devices = {}, []
    for lab in labs:
        metrics = read_json(out / lab / "metrics.json")
        metric = headline_metric(lab)
        if metrics is None:
            results[lab] = {"status": "failed", "metric": metric, "value": None, "error": lab_error(log_text, lab)}
            continue
        results[lab] = {"status": "ok" if lab in todo else "finished before", "metric": metric,
                        "value": metrics.get(metric), "wall_seconds": metrics.get("wall_seconds"),
                        "epochs": metrics.get("epochs"), "recorded_backend": metrics.get("backend"),
                        "replicas": metrics.get("replicas"), "devices": metrics.get("devices")}
        devices += [device for device in metrics.get("devices") or [] if device not in devices]
    walls = [entry["wall_seconds"] for entry in results.values() if entry.get("wall_seconds") is not None]
    return {"out": str(out), "log": str(log_path), "command": command[1:], "exit_status": exit_status,
            "devices": devices, "labs": results,
            "total_wall_seconds": week_seconds if todo else None,
            "labs_wall_seconds": round(sum(walls), 1),
            "ok": all(entry["status"] != "failed" for entry in results.values())}


def distribution_versions(python):
    script = ("import importlib.metadata as m, json, platform\nfound = {'python': platform.python_version()}\n"
              "for name in ('keras', 'numpy', 'h5py', 'matplotlib', 'jax', 'jaxlib', 'torch', 'tensorflow'):\n"
              "    try: found[name] = m.version(name)\n"
              "    except m.PackageNotFoundError: pass\nprint(json.dumps(found))")
    found, error = python_json(python, script)
    return found or {"error": error}


def summary_lines(report):
    lines = [f"gpu: {report['gpu']}" + (f" ({', '.join(report['gpu_names'])})" if report["gpu_names"] else "")]
    for backend, entry in report["backends"].items():
        week = ("nothing left to run" if entry["total_wall_seconds"] is None
                else f"week1 process {entry['total_wall_seconds']} s")
        lines.append(f"{backend}: devices {', '.join(entry['devices']) or '?'}; {week}, "
                     f"labs {entry['labs_wall_seconds']} s (metrics.json)")
        for lab, result in entry["labs"].items():
            if result["status"] == "failed":
                lines.append(f"  {lab:<20} FAILED: {result['error']}")
            else:
                value = result["value"]
                value = f"{value:.4f}" if isinstance(value, (int, float)) else value
                lines.append(f"  {lab:<20} {result['metric']}={value}  wall {result['wall_seconds']} s"
                             + ("  (finished before)" if result["status"] != "ok" else ""))
    return lines


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Other options go to python -m labs.week1 unchanged (see its --help).")
    parser.add_argument("--smoke", action="store_true", help="tiny data: checks that everything runs, in minutes")
    parser.add_argument("--lab", action="append", default=None,
                        help="run only this week-1 lab (repeatable; default: all six)")
    parser.add_argument("--backends", nargs="+", choices=FRAMEWORKS, default=None,
                        help="Keras backends to run (default: each of torch, jax, tensorflow that imports)")
    parser.add_argument("--wheels", default=None,
                        help="a folder of wheels: install from it only (pip --no-index --find-links)")
    parser.add_argument("--all-requirements", action="store_true",
                        help="install all of setup.cfg's install_requires but TensorFlow's family "
                             "(weeks 2-5), not only week 1's")
    parser.add_argument("--venv", default=str(REPO / "runs" / "gpu_check" / "venv"),
                        help="where to make the venv if something is missing (default: %(default)s)")
    parser.add_argument("--out", default=None, help="run folder, one sub-folder per backend "
                                                    "(default: runs/gpu_check/smoke or /full in the repository)")
    parser.add_argument("--json", default="gpu_check.json", help="the report (default: %(default)s)")
    args, extra = parser.parse_known_args(argv)
    week1 = module_constant("week1", "LABS")
    for lab in args.lab or []:
        if lab not in week1:
            parser.error(f"--lab {lab}: not a week-1 lab ({', '.join(week1)})")
    args.labs = args.lab or list(week1)
    args.extra = extra
    for option in ("--out", "--lab", "--smoke"):
        if any(token == option or token.startswith(option + "=") for token in extra):
            parser.error(f"{option} is gpu_check's own option")
    if args.wheels and not Path(args.wheels).is_dir():
        parser.error(f"--wheels {args.wheels}: no such folder")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    out = Path(args.out or REPO / "runs" / "gpu_check" / ("smoke" if args.smoke else "full")).resolve()
    check_settings(out, (["--smoke"] if args.smoke else []) + args.extra)
    started = time.perf_counter()
    smi = nvidia_smi()
    frameworks = [name for name in FRAMEWORKS if importlib.util.find_spec(name) is not None]
    probes = probe(sys.executable, frameworks)
    report = {"created": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
              "mode": "smoke" if args.smoke else "full", "labs": args.labs, "week1_options": args.extra,
              "gpu": any(entry.get("gpu") for entry in probes.values()),
              "gpu_names": [gpu["name"] for gpu in (smi or {}).get("gpus", [])], "nvidia_smi": smi,
              "frameworks": probes, "machine_python": sys.executable}
    for name, entry in probes.items():
        if entry["importable"]:
            print(f"{name} {entry['version']}: GPU {'yes' if entry['gpu'] else 'no'} "
                  f"({', '.join(entry['devices'])})", flush=True)
        else:
            print(f"{name}: does not import ({entry.get('error')})", flush=True)
    if report["gpu_names"] and not report["gpu"]:
        report["note"] = "nvidia-smi lists a GPU but no framework sees it (a CPU-only build of torch / jaxlib?)"
    if not report["gpu"]:
        print("no GPU visible to any framework: a CPU dry run", flush=True)
    backends = args.backends or [name for name in FRAMEWORKS if probes.get(name, {}).get("importable")]
    python, report["install"] = prepare_python(args, out)
    report["python"] = str(python) if python else None
    report["backends"] = {}
    if python is not None and python != Path(sys.executable):
        script = ("import importlib.util, json, sys\n"
                  "print(json.dumps({name: importlib.util.find_spec(name) is not None for name in sys.argv[1:]}))")
        sees, error = python_json(python, script, *backends)
        report["install"]["venv_finds"] = sees or error
    if python is not None:
        report["versions"] = {**distribution_versions(python), "gpus": report["gpu_names"]}
        if "torch" in probes and probes["torch"].get("cuda"):
            report["versions"]["torch_cuda"] = probes["torch"]["cuda"]
        if not backends:
            report["error"] = "neither torch nor jax (nor tensorflow) imports with this Python"
        try:
            for backend in backends:
                report["backends"][backend] = run_week(python, backend, args.labs, out / backend, args.smoke,
                                                       args.extra)
        except KeyboardInterrupt:
            report["error"] = "interrupted; the same command resumes (finished labs are not run again)"
    report["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    report["ok"] = (python is not None and bool(backends) and "error" not in report
                    and all(entry["ok"] for entry in report["backends"].values()))
    json_path = Path(args.json).resolve()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n" + "\n".join(summary_lines(report)))
    if not report["install"]["ok"]:
        print(f"install failed: {report['install']['error']}", file=sys.stderr)
    print(f"\n{json_path}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

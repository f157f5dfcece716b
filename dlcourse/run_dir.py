"""Where a run keeps its files: one convention in one place.

A run lives in one directory (``--out`` or ``runs/<lab>/<timestamp>/``; ``runs/`` is
``DLCOURSE_RUNS_DIR`` when set, which notebooks set to the repository's ``runs/``)::

    config.json      the settings of the run (and the Keras backend)
    history.csv      one row per epoch (Keras CSVLogger), with epoch_seconds
    tensorboard/     TensorBoard logs (where TensorFlow, their writer, is installed)
    checkpoints/     best.keras, the best model by the validation metric
    backup/          BackupAndRestore state while training; gone when it ends
    (a lab that trains in phases, e.g. pre-training then fine-tuning, has
    history-<phase>.csv, backup-<phase>/ and checkpoints/best-<phase>.keras)
    metrics.json     the final numbers (written last: its presence means "finished")
    *.png            figures

Killing a run (even with ``kill -9``) and running the same command again
resumes from the last completed epoch: Keras's BackupAndRestore restores the
weights, optimizer state and epoch counter, a phase that already finished is
not trained again, and without ``--out`` the newest unfinished run with the
same settings is picked up again.  ``RunDirectory`` keeps this layout;
``dlcourse.training.Run`` trains into it.
"""
import csv
import datetime
import json
import os
import pathlib
import shutil
import zipfile

import h5py
import keras

from dlcourse.cli import UsageError
from dlcourse.files import atomic_write


def runs_root():
    """Where runs without ``--out`` go: ``runs/`` in the working folder, or ``DLCOURSE_RUNS_DIR``."""
    return pathlib.Path(os.environ.get("DLCOURSE_RUNS_DIR") or "runs")


# Settings that do not change what is computed, so a rerun that differs only
# in them still resumes the same run.
_NOT_PART_OF_IDENTITY = {"out", "verbose"}


def identity(config):
    """What config.json holds: the settings that make a run what it is, and the Keras backend."""
    settings = {key: value for key, value in vars(config).items() if key not in _NOT_PART_OF_IDENTITY}
    return {**settings, "backend": keras.backend.backend()}


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_history(path):
    """Rows of a history CSV, one per epoch (the last row wins if an epoch was logged twice)."""
    if not path.exists():
        return []
    with open(path, newline="") as stream:
        rows = {int(row["epoch"]): row for row in csv.DictReader(stream) if row.get("epoch")}
    return [rows[epoch] for epoch in sorted(rows)]


def completed_epochs(run_dir):
    """Epochs logged in a run directory, over all its training phases."""
    return sum(len(read_history(path)) for path in run_dir.glob("history*.csv"))


def _find_unfinished_run(lab_root, config):
    """The newest run directory of this lab with the same settings that never finished."""
    if not lab_root.is_dir():
        return None
    for candidate in sorted(lab_root.iterdir(), reverse=True):
        if (completed_epochs(candidate) and not (candidate / "metrics.json").exists()
                and _read_json(candidate / "config.json") == identity(config)):
            return candidate
    return None


def _choose_run_dir(config):
    """Where this run writes, and whether it continues an earlier, unfinished one."""
    if config.out is not None:
        run_dir = pathlib.Path(config.out)
        previous = _read_json(run_dir / "config.json")
        if previous is None:
            return run_dir, False
        if (run_dir / "metrics.json").exists():
            raise UsageError(f"{run_dir} already holds a finished run; choose another --out "
                             "(or delete that directory to redo it)")
        if previous != identity(config):
            raise UsageError(f"{run_dir} holds an unfinished run with other settings; "
                             "rerun with those settings to resume it, or choose another --out")
        return run_dir, completed_epochs(run_dir) > 0
    lab_root = runs_root() / config.lab
    unfinished = _find_unfinished_run(lab_root, config)
    if unfinished is not None:
        return unfinished, True
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return lab_root / stamp, False


def _readable_backup(weights, metadata):
    try:
        json.loads(metadata.read_text())
        with h5py.File(weights, "r") as store:  # read every array, not just the header
            store.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
        return True
    except Exception:  # any failure means "not usable", whatever raised it
        return False


def repair_after_kill(paths):
    """Make what a killed run left behind readable again, losing at most the epoch in flight.

    ``kill -9`` can land while Keras writes a file.  BackupAndRestore
    (with ``double_checkpoint``) falls back to its previous copy for unreadable
    weights, but not for a half-written first backup or metadata file; a
    half-written best checkpoint or history line would break the end of the run.
    """
    history = paths["history"]
    if history.exists():
        text = history.read_text()
        if text and not text.endswith("\n"):  # a row cut off mid-line
            with atomic_write(history) as stream:
                stream.write(text[:text.rfind("\n") + 1])
    backup = paths["backup"]
    weights, metadata = backup / "latest.weights.h5", backup / "training_metadata.json"
    previous = weights.with_name(weights.name + ".bkp"), metadata.with_name(metadata.name + ".bkp")
    if backup.exists() and not _readable_backup(weights, metadata):
        if _readable_backup(*previous):
            shutil.copyfile(previous[0], weights)
            shutil.copyfile(previous[1], metadata)
            print("The last backup was cut off by the interruption; using the one before it")
        else:
            shutil.rmtree(backup)
            print("The only backup was cut off by the interruption; this phase starts again")
    best = paths["best"]
    if best.exists():
        try:
            with zipfile.ZipFile(best) as archive:
                damaged = archive.testzip() is not None
        except zipfile.BadZipFile:
            damaged = True
        if damaged:
            best.unlink()


def rewrite_history(path):
    """Drop an epoch logged twice (a kill between logging and backing up repeats it)."""
    rows = read_history(path)
    if rows:
        with atomic_write(path, newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


class RunDirectory:
    """The directory of one run: chosen (or resumed) from the settings, with its phase paths."""

    def __init__(self, config):
        self.dir, resuming = _choose_run_dir(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.dir / "config.json") as stream:
            stream.write(json.dumps(identity(config), indent=2) + "\n")
        self.resumed_from_epoch = completed_epochs(self.dir) if resuming else 0
        if resuming:
            print(f"Resuming the unfinished run in {self.dir} after {self.resumed_from_epoch} epoch(s)")
        else:
            print(f"Run directory: {self.dir}")

    def path(self, name):
        return self.dir / name

    def phase_paths(self, phase):
        """history, backup and best-checkpoint paths of one training phase (None: the only one)."""
        suffix = f"-{phase}" if phase else ""
        return {"history": self.path(f"history{suffix}.csv"), "backup": self.path(f"backup{suffix}"),
                "best": self.path("checkpoints") / f"best{suffix}.keras",
                "tensorboard": self.path("tensorboard") / phase if phase else self.path("tensorboard")}

    def history(self, phase=None):
        """Rows of the history CSV of ``phase``, one per completed epoch."""
        return read_history(self.phase_paths(phase)["history"])

    def completed_epochs(self):
        return completed_epochs(self.dir)

    def write_metrics(self, metrics):
        """metrics.json, atomically: written last, it marks the run as finished."""
        with atomic_write(self.path("metrics.json"), encoding="utf-8") as stream:
            stream.write(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")

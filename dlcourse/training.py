"""How every lab trains, saves and reports: one convention in one place.

A run lives in one directory (``--out`` or ``runs/<lab>/<timestamp>/``; ``runs/`` is
``DLCOURSE_RUNS_DIR`` when set, which notebooks set to the repository's ``runs/``)::

    config.json      the settings of the run
    history.csv      one row per epoch (Keras CSVLogger), with epoch_seconds
    tensorboard/     TensorBoard logs
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
same settings is picked up again.
"""
import csv
import datetime
import json
import os
import pathlib
import shutil
import sys
import time
import zipfile

import h5py
import keras
import tensorflow as tf

from dlcourse.cli import UsageError
from dlcourse.data import DataError, as_dataset
from dlcourse.evaluation import evaluate_classifier
from dlcourse.files import atomic_write
from dlcourse.optimizers import make_optimizer, warmup_cosine


def runs_root():
    """Where runs without ``--out`` go: ``runs/`` in the working folder, or ``DLCOURSE_RUNS_DIR``."""
    return pathlib.Path(os.environ.get("DLCOURSE_RUNS_DIR") or "runs")


# Settings that do not change what is computed, so a rerun that differs only
# in them still resumes the same run.
_NOT_PART_OF_IDENTITY = {"out", "verbose"}


def _identity(config):
    return {key: value for key, value in vars(config).items() if key not in _NOT_PART_OF_IDENTITY}


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_history(path):
    """Rows of a history CSV, one per epoch (the last row wins if an epoch was logged twice)."""
    if not path.exists():
        return []
    with open(path, newline="") as stream:
        rows = {int(row["epoch"]): row for row in csv.DictReader(stream) if row.get("epoch")}
    return [rows[epoch] for epoch in sorted(rows)]


def _completed_epochs(run_dir):
    """Epochs logged in a run directory, over all its training phases."""
    return sum(len(_read_history(path)) for path in run_dir.glob("history*.csv"))


def _find_unfinished_run(lab_root, config):
    """The newest run directory of this lab with the same settings that never finished."""
    if not lab_root.is_dir():
        return None
    for candidate in sorted(lab_root.iterdir(), reverse=True):
        if (_completed_epochs(candidate) and not (candidate / "metrics.json").exists()
                and _read_json(candidate / "config.json") == _identity(config)):
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
        if previous != _identity(config):
            raise UsageError(f"{run_dir} holds an unfinished run with other settings; "
                             "rerun with those settings to resume it, or choose another --out")
        return run_dir, _completed_epochs(run_dir) > 0
    lab_root = runs_root() / config.lab
    unfinished = _find_unfinished_run(lab_root, config)
    if unfinished is not None:
        return unfinished, True
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return lab_root / stamp, False


def _split_cpu(logical_cpus):
    """Present the CPU as ``logical_cpus`` devices; only possible before TensorFlow starts."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)]
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != logical_cpus:
            raise UsageError("--logical-cpus must be set before TensorFlow starts "
                             "(restart the kernel or run it from a fresh process)") from None


def make_strategy(name):
    """The ``tf.distribute`` strategy named on the command line."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy multiworker needs the TF_CONFIG environment variable "
                             "(cluster and task of this worker)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"unknown strategy {name!r}")


def _readable_backup(weights, metadata):
    try:
        json.loads(metadata.read_text())
        with h5py.File(weights, "r") as store:  # read every array, not just the header
            store.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
        return True
    except Exception:  # any failure means "not usable", whatever raised it
        return False


def _repair_after_kill(paths):
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


class EpochTime(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) to the epoch's logs,
    so that history.csv records how long every epoch took."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started


def training_steps(config, num_examples, epochs=None):
    """Optimizer steps in ``epochs`` (default ``--epochs``) passes over ``num_examples``."""
    return (epochs or config.epochs) * -(-num_examples // config.batch_size)


class Run:
    """One training run: its directory, strategy and callbacks, and what it reports."""

    def __init__(self, config):
        self.started = time.time()
        self.config = config
        if config.logical_cpus:
            _split_cpu(config.logical_cpus)
        keras.utils.set_random_seed(config.seed)
        keras.mixed_precision.set_dtype_policy("mixed_float16" if config.mixed_precision else "float32")
        self.strategy = make_strategy(config.strategy)
        self.dir, resuming = _choose_run_dir(config)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(_identity(config), indent=2) + "\n")
        self.resumed_from_epoch = _completed_epochs(self.dir) if resuming else 0
        if resuming:
            print(f"Resuming the unfinished run in {self.dir} after {self.resumed_from_epoch} epoch(s)")
        else:
            print(f"Run directory: {self.dir}")

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    def path(self, name):
        return self.dir / name

    def _phase_paths(self, phase):
        suffix = f"-{phase}" if phase else ""
        return {"history": self.path(f"history{suffix}.csv"), "backup": self.path(f"backup{suffix}"),
                "best": self.path("checkpoints") / f"best{suffix}.keras"}

    @property
    def best_checkpoint(self):
        return self._phase_paths(None)["best"]

    def history_path(self, phase=None):
        return self._phase_paths(phase)["history"]

    def figure_path(self, name, phase=None):
        """``<name>.png``, or ``<name>-<phase>.png`` for one phase of a multi-phase lab."""
        return self.path(f"{name}-{phase}.png" if phase else f"{name}.png")

    def history(self, phase=None):
        """Rows of the history CSV of ``phase``, one per completed epoch."""
        return _read_history(self._phase_paths(phase)["history"])

    def optimizer(self, total_steps=None, lr_scale=1.0, **kwargs):
        """The ``--optimizer`` at ``--lr`` × ``lr_scale``; ``--schedule cosine`` needs ``total_steps``."""
        learning_rate = self.config.lr * lr_scale
        if self.config.schedule == "cosine":
            if not total_steps:
                raise ValueError("--schedule cosine needs the number of training steps")
            learning_rate = warmup_cosine(learning_rate, total_steps)
        return make_optimizer(self.config.optimizer, learning_rate, **kwargs)

    def compile(self, model, loss, metrics=("accuracy",), total_steps=None, lr_scale=1.0,
                optimizer_options=None):
        """``model.compile`` with the run's optimizer, learning-rate schedule and ``--jit``.

        ``optimizer_options`` go to the optimizer (e.g. ``{"clipnorm": 5.0}``).
        """
        optimizer = self.optimizer(total_steps, lr_scale, **(optimizer_options or {}))
        model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics),
                      jit_compile=True if self.config.jit else "auto")
        return model

    def callbacks(self, monitor="val_accuracy", mode="max", phase=None):
        """The Keras callbacks every lab trains with."""
        paths = self._phase_paths(phase)
        best_so_far = [float(row[monitor]) for row in self.history(phase) if row.get(monitor)]
        best = None
        if best_so_far and paths["best"].exists():  # else the next epoch must write one
            best = (max if mode == "max" else min)(best_so_far)
        paths["best"].parent.mkdir(exist_ok=True)
        log_dir = self.path("tensorboard") / phase if phase else self.path("tensorboard")
        # Order matters for a kill between two of them: the epoch is logged and
        # checkpointed before it is backed up, so at worst it is trained again.
        return [
            EpochTime(),
            keras.callbacks.CSVLogger(str(paths["history"]), append=True),
            keras.callbacks.ModelCheckpoint(str(paths["best"]), monitor=monitor, mode=mode,
                                            save_best_only=True, initial_value_threshold=best),
            keras.callbacks.BackupAndRestore(str(paths["backup"]), double_checkpoint=True),
            keras.callbacks.TensorBoard(str(log_dir), profile_batch=0),
        ]

    def fit(self, model, train_data, validation_data, monitor="val_accuracy", mode="max",
            epochs=None, phase=None, extra_callbacks=()):
        """Train with the standard callbacks, then restore the best checkpoint's weights.

        ``phase`` names one stage of a lab that trains several times (its files
        get the suffix); a phase that finished in an earlier, interrupted run
        is not trained again: its best weights are loaded instead.
        ``extra_callbacks`` run before the standard ones, so a metric they add
        to the epoch's logs can be the ``monitor`` of the best checkpoint.
        """
        epochs = epochs or self.config.epochs
        paths = self._phase_paths(phase)
        finished_before = (len(self.history(phase)) >= epochs and not paths["backup"].exists()
                           and paths["best"].exists())
        if finished_before:
            print(f"{phase or 'training'}: finished in an earlier run, loading its best weights")
        else:
            # BackupAndRestore resumes by setting the model's private _initial_epoch,
            # which Keras never clears: a later fit of the same model (the next
            # phase) would skip its first epochs.  Start every phase from 0.
            model._initial_epoch = None
            _repair_after_kill(paths)
            # The tf.data pipelines shuffle themselves (seeded); fit must not try to.
            model.fit(train_data, validation_data=validation_data, shuffle=False, epochs=epochs,
                      callbacks=list(extra_callbacks) + self.callbacks(monitor, mode, phase),
                      verbose=self._verbosity())
            self._rewrite_history(paths["history"])
        if paths["best"].exists():
            # Layer weights only: the checkpoint's optimizer state is of no use here.
            best = keras.models.load_model(paths["best"], compile=False)
            model.set_weights(best.get_weights())
        return model

    def _verbosity(self):
        """A progress bar on a terminal; one line per epoch in logs and notebooks."""
        if self.config.verbose is not None:
            return self.config.verbose
        return 1 if sys.stdout.isatty() else 2

    @staticmethod
    def _rewrite_history(path):
        """Drop an epoch logged twice (a kill between logging and backing up repeats it)."""
        rows = _read_history(path)
        if rows:
            with atomic_write(path, newline="") as stream:
                writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

    def finish(self, **metrics):
        """Write metrics.json (last, so that it marks the run as finished) and return it."""
        metrics = {"lab": self.config.lab, **metrics,
                   "wall_seconds": round(time.time() - self.started, 2),
                   "epochs": _completed_epochs(self.dir),
                   "resumed_from_epoch": self.resumed_from_epoch,
                   "replicas": self.replicas,
                   "dtype_policy": keras.mixed_precision.dtype_policy().name,
                   "devices": [device.name for device in tf.config.list_logical_devices()
                               if device.device_type in ("GPU", "CPU")],
                   "run_dir": str(self.dir)}
        with atomic_write(self.path("metrics.json"), encoding="utf-8") as stream:
            stream.write(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        return metrics


def train_classifier(config, splits, build_model, loss, class_names, image_shape=None):
    """The algorithm part every classifier lab shares, start to finish.

    ``splits`` maps train/validation/test to ``(features, labels)``;
    ``build_model()`` makes a fresh model (called inside the strategy's scope).
    Trains with the run's optimizer and callbacks, evaluates the best
    checkpoint on the test split, draws the figures and writes metrics.json.
    """
    training_run = Run(config)
    train = as_dataset(*splits["train"], config.batch_size, shuffle=True, seed=config.seed)
    validation = as_dataset(*splits["validation"], config.batch_size)
    with training_run.strategy.scope():
        model = training_run.compile(build_model(), loss,
                                     total_steps=training_steps(config, len(splits["train"][0])))
    training_run.fit(model, train, validation)
    metrics = evaluate_classifier(training_run, model, splits["test"], class_names, image_shape)
    return training_run.finish(**metrics)


def load_run_checkpoint(run_dir, lab_name, companions=()):
    """The best model of a finished (or interrupted) run directory, for the labs' subcommands
    (``generate``, ``predict``, ``detect``).

    Checks, each with one readable ``DataError``: the directory exists, holds
    ``checkpoints/best.keras`` and every file in ``companions`` (a vocabulary,
    settings), and the checkpoint loads.  Returns ``(model, run_dir)``.
    """
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    checkpoint = run_dir / "checkpoints" / "best.keras"
    for path in (checkpoint, *(run_dir / name for name in companions)):
        if not path.is_file():
            raise DataError(f"{run_dir}: not a {lab_name} run directory ({path.name} is missing)")
    try:
        model = keras.models.load_model(checkpoint, compile=False)
    except Exception as error:  # a damaged or foreign file: say which, in one line
        raise DataError(f"{checkpoint}: could not be loaded ({type(error).__name__})") from None
    return model, run_dir


def check_same_run(run_dir, companion, checkpoint_size, companion_size):
    """One line when a run directory's checkpoint and ``companion`` (its vocabulary or its
    settings) come from different runs, which their sizes (output classes, tokens) betray."""
    if checkpoint_size != companion_size:
        raise DataError(f"{run_dir}: the checkpoint and {companion} do not belong together")

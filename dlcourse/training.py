"""How every lab trains: process-wide settings, then compile, callbacks and fit.

A training run has three parts, each in one place:

* the process's settings — seed, dtype policy, devices and the distribution
  strategy of the Keras backend — are set once, by ``configure``; what differs
  between TensorFlow, JAX and PyTorch is in ``dlcourse.backend``;
* the run directory — where its files go, resuming an unfinished run, and
  metrics.json — is ``dlcourse.run_dir.RunDirectory`` (its docstring states
  the file layout);
* ``Run`` here is the thin part a lab calls: ``compile`` with the run's
  optimizer, ``fit`` with the standard callbacks (history, best checkpoint,
  backup for resuming, TensorBoard), and ``finish``.
"""
import pathlib
import sys
import time

import keras

from dlcourse import backend
from dlcourse.data import DataError, as_dataset
from dlcourse.evaluation import evaluate_classifier
from dlcourse.optimizers import make_optimizer, warmup_cosine
from dlcourse.run_dir import RunDirectory, repair_after_kill, rewrite_history, runs_root

__all__ = ["Run", "configure", "runs_root", "training_steps", "train_classifier",
           "load_run_checkpoint", "check_same_run"]


def configure(config):
    """Set what holds for the whole process (devices first: TensorFlow fixes them when it starts),
    the seeds and the dtype policy; returns the ``--strategy`` of this backend."""
    if config.logical_cpus:
        backend.split_cpu(config.logical_cpus)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy("mixed_float16" if config.mixed_precision else "float32")
    return backend.make_strategy(config.strategy)


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
    """One training run: the process's settings, its directory, and compile/fit/finish."""

    def __init__(self, config):
        self.started = time.time()
        self.config = config
        self.strategy = configure(config)
        self.directory = RunDirectory(config)
        self.dir = self.directory.dir
        self.resumed_from_epoch = self.directory.resumed_from_epoch

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    def path(self, name):
        return self.directory.path(name)

    @property
    def best_checkpoint(self):
        return self.directory.phase_paths(None)["best"]

    def history_path(self, phase=None):
        return self.directory.phase_paths(phase)["history"]

    def figure_path(self, name, phase=None):
        """``<name>.png``, or ``<name>-<phase>.png`` for one phase of a multi-phase lab."""
        return self.path(f"{name}-{phase}.png" if phase else f"{name}.png")

    def history(self, phase=None):
        """Rows of the history CSV of ``phase``, one per completed epoch."""
        return self.directory.history(phase)

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
        paths = self.directory.phase_paths(phase)
        best_so_far = [float(row[monitor]) for row in self.history(phase) if row.get(monitor)]
        best = None
        if best_so_far and paths["best"].exists():  # else the next epoch must write one
            best = (max if mode == "max" else min)(best_so_far)
        paths["best"].parent.mkdir(exist_ok=True)
        # Order matters for a kill between two of them: the epoch is logged and
        # checkpointed before it is backed up, so at worst it is trained again.
        callbacks = [
            EpochTime(),
            keras.callbacks.CSVLogger(str(paths["history"]), append=True),
            keras.callbacks.ModelCheckpoint(str(paths["best"]), monitor=monitor, mode=mode,
                                            save_best_only=True, initial_value_threshold=best),
            keras.callbacks.BackupAndRestore(str(paths["backup"]), double_checkpoint=True),
            backend.tensorboard_callback(paths["tensorboard"]),
        ]
        return [callback for callback in callbacks if callback is not None]

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
        paths = self.directory.phase_paths(phase)
        finished_before = (len(self.history(phase)) >= epochs and not paths["backup"].exists()
                           and paths["best"].exists())
        if finished_before:
            print(f"{phase or 'training'}: finished in an earlier run, loading its best weights")
        else:
            # BackupAndRestore resumes by setting the model's private _initial_epoch,
            # which Keras never clears: a later fit of the same model (the next
            # phase) would skip its first epochs.  Start every phase from 0.
            model._initial_epoch = None
            repair_after_kill(paths)
            # The data pipelines shuffle themselves (seeded); fit must not try to.
            model.fit(train_data, validation_data=validation_data, shuffle=False, epochs=epochs,
                      callbacks=list(extra_callbacks) + self.callbacks(monitor, mode, phase),
                      verbose=self.verbosity())
            rewrite_history(paths["history"])
        if paths["best"].exists():
            # Layer weights only: the checkpoint's optimizer state is of no use here.
            best = keras.models.load_model(paths["best"], compile=False)
            model.set_weights(best.get_weights())
        return model

    def verbosity(self):
        """A progress bar on a terminal; one line per epoch in logs and notebooks."""
        if self.config.verbose is not None:
            return self.config.verbose
        return 1 if sys.stdout.isatty() else 2

    def finish(self, **metrics):
        """Write metrics.json (last, so that it marks the run as finished) and return it."""
        metrics = {"lab": self.config.lab, **metrics,
                   "wall_seconds": round(time.time() - self.started, 2),
                   "epochs": self.directory.completed_epochs(),
                   "resumed_from_epoch": self.resumed_from_epoch,
                   "backend": backend.name(),
                   "replicas": self.replicas,
                   "dtype_policy": keras.mixed_precision.dtype_policy().name,
                   "devices": backend.devices(),
                   "run_dir": str(self.dir)}
        self.directory.write_metrics(metrics)
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

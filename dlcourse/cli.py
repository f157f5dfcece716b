"""The command line every lab shares: common flags, one-line errors, configs for notebooks.

A lab describes itself with ``lab_parser(...)`` (plus its own flags) and
calls ``main(parser, run, argv)``; a lab that also uses a trained run
(``generate``, ``predict``, ``detect``) builds that sub-command with
``run_dir_parser`` and passes it to ``main``.  Notebooks get the same
settings without a command line through ``make_config(parser, epochs=2,
smoke=True)``, so the parser is the single source of every default.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import sys

from dlcourse.data import IMAGE_DATASETS, SOURCES, DataError

# Here rather than in dlcourse.optimizers so that a command line can list them
# without importing Keras (the crawler and the grader never need it).
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop",
                   "adam", "amsgrad", "custom_adam", "custom_amsgrad")
STRATEGIES = ("default", "mirrored", "multiworker")
SCHEDULES = ("constant", "cosine")


class UsageError(ValueError):
    """A flag or setting the lab cannot work with; reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one readable line (and exit code 2), not a usage dump."""

    def error(self, message):
        raise UsageError(message)


def _number(kind, zero_allowed=False):
    """An argparse ``type`` for a positive (or, with ``zero_allowed``, non-negative) number."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < 0 or (value == 0 and not zero_allowed):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if zero_allowed else 'positive'}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


positive_int = _number(int)
positive_float = _number(float)
non_negative_int = _number(int, zero_allowed=True)
non_negative_float = _number(float, zero_allowed=True)


def _unit_interval(zero_allowed):
    """An argparse ``type`` for a number in [0, 1) (``zero_allowed``) or in (0, 1]."""
    bounds = "[0, 1)" if zero_allowed else "(0, 1]"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (0 <= value < 1 if zero_allowed else 0 < value <= 1):
            raise argparse.ArgumentTypeError(f"must be in {bounds}, got {text}")
        return value
    return parse


# A rate such as dropout: 0 is "none", 1 would drop everything.
fraction = _unit_interval(zero_allowed=True)
# A share of something (a width, a threshold, part of a data set): 1 is "all of it".
positive_fraction = _unit_interval(zero_allowed=False)


def lab_parser(name, description, *, epochs, batch_size, lr, optimizer, schedule="constant",
               epochs_help="training epochs"):
    """A parser with the flags every lab has; the lab passes its own defaults (``epochs=None`` and
    an ``epochs_help`` that says what the lab decides, where that depends on other flags)."""
    parser = OneLineParser(prog=f"python -m labs.{name}", description=description,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(lab=name)
    add_common_arguments(parser, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                         schedule=schedule, epochs_help=epochs_help)
    return parser


def add_image_dataset_argument(parser):
    """``--dataset mnist|fashion_mnist`` for the week-1 classifiers: Fashion-MNIST is the harder drop-in."""
    parser.add_argument("--dataset", choices=tuple(IMAGE_DATASETS), default="mnist",
                        help="mnist, or fashion_mnist (not bundled: needs --data-source online or tfds; "
                             "the course's reference figures are MNIST's)")


def add_common_arguments(parser, *, epochs, batch_size, lr, optimizer, schedule, epochs_help="training epochs"):
    """The flags of DESIGN.md's conventions, with the lab's defaults."""
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=epochs_help)
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help="global batch size (split across replicas)")
    parser.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=optimizer,
                        help="custom_adam / custom_amsgrad are the course's own Adam (dlcourse.optimizers)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                        help="constant: --lr throughout; cosine: warm up to --lr over the first 10%% "
                             "of steps, then cosine decay to 0")
    parser.add_argument("--seed", type=int, default=1, help="random seed (Python, NumPy, TensorFlow)")
    parser.add_argument("--out", default=None,
                        help="run directory (default: runs/<lab>/<timestamp>, or the unfinished "
                             "run with the same settings, which is then resumed)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data and one short epoch: checks that everything runs, in seconds")
    parser.add_argument("--data-source", choices=SOURCES, default="bundled",
                        help="bundled = the checksummed copy in data/ (offline); online = Keras's mirror; "
                             "tfds = TensorFlow Datasets (downloaded once into $TFDS_DATA_DIR or "
                             "~/tensorflow_datasets)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy; multiworker reads TF_CONFIG")
    parser.add_argument("--logical-cpus", type=positive_int, default=None,
                        help="split the CPU into N logical devices (to try --strategy mirrored without GPUs)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="float16 compute with float32 variables (for GPUs with tensor cores)")
    parser.add_argument("--jit", action="store_true", help="compile the training step with XLA")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch "
                             "(default: bar on a terminal, a line per epoch otherwise)")


def _common_settings():
    parser = argparse.ArgumentParser(add_help=False)
    add_common_arguments(parser, epochs=None, batch_size=None, lr=None, optimizer=None, schedule=None)
    return frozenset(vars(parser.parse_args([])))


# The settings (argparse ``dest``) of the common flags; the rest of a lab's are its own.
COMMON_SETTINGS = _common_settings()


def run_dir_parser(lab, command, description):
    """The parser of ``python -m labs.<lab> <command> --run RUN_DIR``: a sub-command that uses a
    trained run (``generate``, ``predict``, ``detect``).  The lab adds its own flags."""
    parser = OneLineParser(prog=f"python -m labs.{lab} {command}", description=description,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run", required=True, help="the run directory of a training run")
    return parser


def make_config(parser, **overrides):
    """The settings a command line with no flags would give, changed by ``overrides``.

    For notebooks: ``make_config(parser, smoke=True, epochs=2)``.
    """
    config = parser.parse_args([])
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise UsageError(f"unknown setting {key!r}; known: {', '.join(sorted(vars(config)))}")
        setattr(config, key, value)
    return config


def report_error(prog, error):
    print(f"{prog}: error: {error}", file=sys.stderr)


def main(parser, run, argv=None, subcommands=None):
    """Parse ``argv``, call ``run(config)``, and turn expected failures into one line.

    ``subcommands`` maps a first word of ``argv`` to ``(parser, function)``:
    ``python -m labs.char_rnn generate --run RUN_DIR`` calls ``function`` with
    what that parser read from the rest.  Exit codes: 0 done, 1 the data or
    the run failed, 2 a bad flag or value.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if subcommands:
        parser.epilog = parser.epilog or "sub-commands: " + ", ".join(
            f"{parser.prog} {name} --help" for name in subcommands)
        if argv[:1] and argv[0] in subcommands:
            (parser, run), argv = subcommands[argv[0]], argv[1:]
    try:
        config = parser.parse_args(argv)
        run(config)
    except UsageError as error:
        report_error(parser.prog, error)
        return 2
    except DataError as error:
        report_error(parser.prog, error)
        return 1
    except KeyboardInterrupt:
        report_error(parser.prog, "interrupted; run the same command again to resume")
        return 130
    return 0


def configured_backend():
    """The Keras backend a new process will load: ``KERAS_BACKEND``, else ~/.keras/keras.json's
    (``KERAS_HOME`` moves that folder), else tensorflow — read without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = pathlib.Path(os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def exit_if_backend_missing(prog="python -m labs"):
    """One line and exit code 2, instead of Keras's traceback, when the backend is not installed."""
    backend = configured_backend()
    if backend in ("tensorflow", "jax", "torch") and importlib.util.find_spec(backend) is None:
        installed = [name for name in ("tensorflow", "jax", "torch") if importlib.util.find_spec(name)]
        choice = (f"or choose an installed one: KERAS_BACKEND={installed[0]}" if installed
                  else "pip install -e '.[jax]' or '.[torch]' for another")
        report_error(prog, f"Keras's backend {backend} is not installed (pip install -e '.[{backend}]', "
                           f"{choice})")
        raise SystemExit(2)

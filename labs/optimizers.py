"""Week 2 · how parameters are learned: gradient descent by hand, and the optimizer zoo.

Four experiments, each a figure:

* every optimizer (SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam,
  AMSGrad — the NumPy versions in ``dlcourse.numpy_optimizers``) walking down
  three 2-D surfaces from the same start with the same number of steps;
* plain gradient descent with a learning rate too small, about right and too
  large (the last one diverges, and the figure shows it);
* Adam with and without bias correction in its first steps;
* a network written from scratch in NumPy (forward, backward, update) trained
  on MNIST, then the same Keras MLP trained with every Keras optimizer and
  with the course's ``CustomAdam`` (also with AMSGrad and with decay).

``--optimizer``/``--lr`` choose the optimizer of the from-scratch network
(``custom_adam`` is Adam there: CustomAdam computes exactly Adam's update).

    python -m labs.optimizers
"""
import csv
import sys
import time

import keras
import numpy as np
from matplotlib.figure import Figure

from dlcourse import cli, data, figures, layers, numpy_net, numpy_optimizers
from dlcourse.optimizers import make_optimizer
from dlcourse.training import Run

NAME = "optimizers"
REFERENCE = {"metric": "test_accuracy", "course": None}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=8, batch_size=128, lr=1e-3,
                        optimizer="adam")
parser.add_argument("--hidden", type=cli.positive_int, nargs="+", default=[256, 128],
                    help="hidden layer sizes of the from-scratch NumPy network")
parser.add_argument("--keras-epochs", type=cli.positive_int, default=5,
                    help="epochs of the Keras MLP per optimizer in the comparison")
parser.add_argument("--surface-steps", type=cli.positive_int, default=400,
                    help="optimizer steps on each 2-D surface")


# 1. The data.  (a) Three 2-D loss surfaces, each a function with its gradient and a start.
class Surface:
    """A loss function of two parameters, its gradient, where to start and what to draw."""

    def __init__(self, name, value, gradient, start, x_range, y_range, minimum):
        self.name, self.value, self.gradient = name, value, gradient
        self.start, self.x_range, self.y_range, self.minimum = start, x_range, y_range, minimum


SURFACES = (
    Surface("ill-conditioned quadratic  f = x²/20 + y²",
            lambda x, y: x ** 2 / 20 + y ** 2,
            lambda x, y: np.array([x / 10, 2 * y]),
            start=(-9.0, 2.0), x_range=(-10, 10), y_range=(-3, 3), minimum=(0, 0)),
    Surface("Rosenbrock  f = (1-x)² + 100(y-x²)²",
            lambda x, y: (1 - x) ** 2 + 100 * (y - x ** 2) ** 2,
            lambda x, y: np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)]),
            start=(-1.2, 1.0), x_range=(-2, 2), y_range=(-1, 3), minimum=(1, 1)),
    Surface("saddle  f = x² - y² (+ y⁴/4 to stay bounded)",
            lambda x, y: x ** 2 - y ** 2 + y ** 4 / 4,
            lambda x, y: np.array([2 * x, -2 * y + y ** 3]),
            start=(-2.0, 0.01), x_range=(-2.5, 2.5), y_range=(-2.5, 2.5), minimum=(0, np.sqrt(2))),
)

# Learning rates per surface that let every optimizer show its character in the step budget.
SURFACE_LEARNING_RATES = {
    "sgd": (0.4, 0.002, 0.1), "momentum": (0.1, 0.001, 0.05), "nesterov": (0.1, 0.001, 0.05),
    "adagrad": (1.0, 1.0, 0.5), "adadelta": (50.0, 10.0, 50.0), "rmsprop": (0.1, 0.01, 0.05),
    "adam": (0.3, 0.3, 0.1), "amsgrad": (0.3, 0.3, 0.1),
}
DIVERGED = 1e6


# (b) MNIST, flattened, for the from-scratch network and the Keras MLP.
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke, flatten=True)


# 2. The models.  (a) A point (x, y) on a surface is the whole "model".
def descend(surface, optimizer, steps):
    """The path of ``optimizer`` from the surface's start: an array (steps + 1, 2).

    Stops early (the path is shorter) once the point runs off to infinity.
    """
    params = {"xy": np.array(surface.start, dtype="float64")}
    state = optimizer.init_state(params)
    path = [params["xy"]]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            params, state = optimizer.step(params, {"xy": surface.gradient(*params["xy"])}, state)
            path.append(params["xy"])
            if not np.all(np.isfinite(params["xy"])) or np.abs(params["xy"]).max() > DIVERGED:
                break
    return np.array(path)


# (b) The from-scratch NumPy network and (c) the same kind of MLP in Keras.
def numpy_optimizer_name(name):
    """CustomAdam computes Adam's update, so the NumPy network uses Adam for it."""
    return {"custom_adam": "adam", "custom_amsgrad": "amsgrad"}.get(name, name)


def build_keras_mlp(hidden):
    return keras.Sequential([keras.Input(shape=(784,)), layers.dense_stack(hidden, name="hidden"),
                             layers.classifier_head(10)], name="mlp")


# 3. The losses: the surface value itself; cross-entropy for the networks.
KERAS_LOSS = keras.losses.SparseCategoricalCrossentropy()

# 4. The algorithms: every optimizer, each at a learning rate that suits it.
KERAS_COMPARISON = (
    ("sgd", 0.1, {}), ("momentum", 0.01, {}), ("nesterov", 0.01, {}), ("adagrad", 0.05, {}),
    ("adadelta", 1.0, {}), ("rmsprop", 1e-3, {}), ("adam", 1e-3, {}), ("amsgrad", 1e-3, {}),
    ("custom_adam", 1e-3, {}), ("custom_amsgrad", 1e-3, {}), ("custom_adam", 1e-3, {"decay": 1e-3}),
)


def comparison_label(name, kwargs):
    return name + "".join(f" {key}={value:g}" for key, value in kwargs.items())


def plot_surface_paths(surface, paths, path=None):
    """Contours of the surface with every optimizer's path on top."""
    figure = Figure(figsize=(7, 5))
    axes = figure.add_subplot()
    xs = np.linspace(*surface.x_range, 300)
    ys = np.linspace(*surface.y_range, 300)
    grid_x, grid_y = np.meshgrid(xs, ys)
    values = surface.value(grid_x, grid_y)
    levels = np.quantile(values, np.linspace(0.0, 0.95, 25))
    axes.contour(grid_x, grid_y, values, levels=np.unique(levels), cmap="Greys", linewidths=0.6)
    for name, trajectory in paths.items():
        diverged = len(trajectory) and (not np.all(np.isfinite(trajectory[-1]))
                                        or np.abs(trajectory[-1]).max() > DIVERGED)
        axes.plot(trajectory[:, 0], trajectory[:, 1], ".-", markersize=2, linewidth=1.2,
                  label=name + (" (diverged)" if diverged else ""))
    axes.plot(*surface.start, "ko")
    axes.plot(*surface.minimum, "r*", markersize=12)
    axes.set_xlim(*surface.x_range)
    axes.set_ylim(*surface.y_range)
    axes.set_title(surface.name)
    axes.legend(fontsize=7, loc="best")
    return figures.save(figure, path)


def surface_experiment(training_run, steps):
    """Every NumPy optimizer on every surface; returns the final loss of each."""
    final_losses = {}
    for index, surface in enumerate(SURFACES):
        paths = {}
        for name, learning_rates in SURFACE_LEARNING_RATES.items():
            optimizer = numpy_optimizers.make_numpy_optimizer(name, learning_rates[index])
            paths[f"{name} lr={learning_rates[index]:g}"] = descend(surface, optimizer, steps)
        plot_surface_paths(surface, paths, training_run.path(f"surface{index + 1}.png"))
        final_losses[surface.name.split("  ")[0]] = {
            name.split(" ")[0]: float(surface.value(*trajectory[-1])) for name, trajectory in paths.items()}
    return final_losses


def learning_rate_experiment(training_run, steps):
    """Plain gradient descent on the quadratic with three learning rates; one of them diverges."""
    surface = SURFACES[0]
    paths = {f"lr={rate:g} ({verdict})": descend(surface, numpy_optimizers.SGD(rate), steps)
             for rate, verdict in ((0.02, "too small"), (0.9, "about right"), (1.1, "too large"))}
    plot_surface_paths(surface, paths, training_run.path("learning_rates.png"))
    return {name: len(trajectory) - 1 for name, trajectory in paths.items()}


def bias_correction_experiment(training_run, steps=30):
    """The size of Adam's first steps with and without bias correction on the quadratic."""
    surface = SURFACES[0]
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    first_steps = {}
    for corrected in (True, False):
        optimizer = numpy_optimizers.Adam(0.1, bias_correction=corrected)
        trajectory = descend(surface, optimizer, steps)
        step_sizes = np.linalg.norm(np.diff(trajectory, axis=0), axis=1)
        label = "with bias correction" if corrected else "without bias correction"
        axes.plot(np.arange(1, len(step_sizes) + 1), step_sizes, "o-", markersize=3, label=label)
        first_steps[label] = float(step_sizes[0])
    axes.set_xlabel("step")
    axes.set_ylabel("|Δθ|")
    axes.set_title("Adam, lr = 0.1: the first steps")
    axes.legend()
    figures.save(figure, training_run.path("adam_bias_correction.png"))
    return first_steps


def numpy_experiment(training_run, splits):
    """Train the from-scratch network; returns its metrics (and draws its loss curve)."""
    config = training_run.config
    train_x, train_y = splits["train"]
    params = numpy_net.init_params([784, *config.hidden, 10], seed=config.seed, dtype="float32")
    optimizer = numpy_optimizers.make_numpy_optimizer(numpy_optimizer_name(config.optimizer), config.lr)
    started = time.time()
    params, history = numpy_net.train(params, train_x, train_y, optimizer, epochs=config.epochs,
                                      batch_size=config.batch_size, seed=config.seed,
                                      validation=splits["validation"], progress=config.verbose != 0)
    seconds = time.time() - started
    with open(training_run.path("numpy_history.csv"), "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    np.savez(training_run.path("numpy_mlp.npz"), **params)
    test_accuracy = numpy_net.accuracy(params, *splits["test"])
    return {"test_accuracy": round(float(test_accuracy), 5), "numpy_train_seconds": round(seconds, 1)}


def keras_experiment(training_run, splits):
    """The same Keras MLP with every optimizer: one loss-curve figure and a table."""
    config = training_run.config
    table, curves = [], {}
    for name, learning_rate, kwargs in KERAS_COMPARISON:
        label = comparison_label(name, kwargs)
        phase = label.replace(" ", "_").replace("=", "")
        # The same initial weights and the same batches in the same order for everyone:
        # adam and custom_adam then end with the same numbers.
        keras.utils.set_random_seed(config.seed)
        train = data.as_dataset(*splits["train"], config.batch_size, shuffle=True, seed=config.seed)
        validation = data.as_dataset(*splits["validation"], config.batch_size)
        with training_run.strategy.scope():
            model = build_keras_mlp(config.hidden)
            model.compile(optimizer=make_optimizer(name, learning_rate, **kwargs),
                          loss=KERAS_LOSS, metrics=["accuracy"])
        training_run.fit(model, train, validation, epochs=config.keras_epochs, phase=phase)
        history = training_run.history(phase)
        _, accuracy = model.evaluate(*splits["test"], batch_size=1000, verbose=0)
        curves[label] = [float(row["loss"]) for row in history]
        table.append({"optimizer": label, "lr": learning_rate, "test_accuracy": round(float(accuracy), 5),
                      "seconds_per_epoch": round(float(np.median(
                          [float(row["epoch_seconds"]) for row in history])), 2)})
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    for label, losses in curves.items():
        style = "s--" if label.startswith("custom") else "o-"  # the course's own Adam: dashed
        axes.plot(np.arange(1, len(losses) + 1), losses, style, label=label)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.set_yscale("log")
    axes.set_title("the same MLP, every optimizer")
    axes.legend(fontsize=7)
    figures.save(figure, training_run.path("keras_optimizers.png"))
    return table


def format_table(rows):
    lines = [f"{'optimizer':28s} {'lr':>8s} {'test acc':>9s} {'s/epoch':>8s}"]
    lines += [f"{row['optimizer']:28s} {row['lr']:8g} {row['test_accuracy']:9.4f} "
              f"{row['seconds_per_epoch']:8.2f}" for row in rows]
    return "\n".join(lines)


def run(config):
    training_run = Run(config)
    splits = load_data(config)
    surfaces = surface_experiment(training_run, config.surface_steps)
    learning_rates = learning_rate_experiment(training_run, config.surface_steps)
    first_steps = bias_correction_experiment(training_run)
    from_scratch = numpy_experiment(training_run, splits)
    table = keras_experiment(training_run, splits)
    print("\nKeras MLP, every optimizer:\n" + format_table(table))
    print(f"\nfrom-scratch NumPy network: test accuracy {from_scratch['test_accuracy']:.4f} "
          f"in {from_scratch['numpy_train_seconds']} s")
    return training_run.finish(**from_scratch, optimizer_table=table, surface_final_loss=surfaces,
                               learning_rate_steps_taken=learning_rates,
                               adam_first_step=first_steps)


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

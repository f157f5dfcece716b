"""Is the course's CustomAdam as fast as keras.optimizers.Adam?

Both optimizers train the week-1 MLP (784→256→256→10) on the same bundled
MNIST batches, with the same initial weights, in one process.  After a
warm-up, the repeats alternate between the two (A B B A A B ...), so that
whatever else the machine is doing slows both alike.  Two things are timed:

- the training step, as ``model.fit`` runs it (forward, backward, update):
  the median time between consecutive batches;
- the optimizer update alone, ``apply_gradients`` of fixed gradients inside a
  ``tf.function``, where a slower optimizer cannot hide behind the matmuls.

Usage: python benchmarks/custom_adam_step_time.py [--steps N] [--repeats R]
"""
import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dlcourse.data import load_mnist  # noqa: E402
from dlcourse.optimizers import CustomAdam  # noqa: E402

OPTIMIZERS = {"builtin": lambda: keras.optimizers.Adam(1e-3),
              "custom": lambda: CustomAdam(1e-3)}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of each optimizer")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--jit", action="store_true", help="compile the training step with XLA")
    arguments = parser.parse_args(argv)
    if min(arguments.steps, arguments.repeats, arguments.batch_size) < 2:
        parser.error("--steps, --repeats and --batch-size must be at least 2")
    return arguments


def mlp():
    return keras.Sequential([keras.Input((784,)),
                             keras.layers.Dense(256, activation="relu"),
                             keras.layers.Dense(256, activation="relu"),
                             keras.layers.Dense(10)])


def mnist_dataset(batch_size):
    """The bundled MNIST training images as an endless, fixed-order tf.data pipeline."""
    (images, labels), _ = load_mnist()
    images = images.reshape(-1, 784).astype("float32") / 255.0
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype("int64")))
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat().prefetch(tf.data.AUTOTUNE)


class BatchClock(keras.callbacks.Callback):
    """Remembers when each training batch ended."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    def median_step(self):
        return statistics.median(np.diff(self.times[1:]))  # the first batch includes start-up


def time_training(model, dataset, steps):
    clock = BatchClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=[clock])
    return clock.median_step()


def update_timer(optimizer, model):
    """A function that times ``steps`` optimizer updates with fixed, random gradients."""
    variables = [tf.Variable(weight) for weight in model.get_weights()]
    gradients = [tf.random.stateless_normal(v.shape, seed=(index, 0)) * 1e-3
                 for index, v in enumerate(variables)]

    @tf.function
    def update():
        optimizer.apply_gradients(zip(gradients, variables))

    def time_updates(steps):
        update()  # make sure earlier work has finished (the tracing happens in warm-up)
        _ = variables[0].numpy()
        start = time.perf_counter()
        for _ in range(steps):
            update()
        _ = variables[-1].numpy()  # wait for the device
        return (time.perf_counter() - start) / steps
    return time_updates


def summarize(label, times):
    builtin, custom = statistics.median(times["builtin"]), statistics.median(times["custom"])
    paired = statistics.median(c / b for b, c in zip(times["builtin"], times["custom"]))
    print(f"{label}: builtin Adam {builtin * 1e3:.3f} ms, CustomAdam {custom * 1e3:.3f} ms, "
          f"ratio custom/builtin {custom / builtin:.3f} (median of paired ratios {paired:.3f})")
    return custom / builtin


def main(argv=None):
    arguments = parse_arguments(argv)
    keras.utils.set_random_seed(0)
    dataset = mnist_dataset(arguments.batch_size)
    initial_weights = mlp().get_weights()
    models, update_timers = {}, {}
    for name, make in OPTIMIZERS.items():
        models[name] = mlp()
        models[name].set_weights(initial_weights)
        models[name].compile(optimizer=make(), jit_compile=True if arguments.jit else "auto",
                             loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        update_timers[name] = update_timer(make(), models[name])

    devices = [device.device_type for device in tf.config.list_physical_devices()]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, devices {sorted(set(devices))}, "
          f"jit_compile={models['builtin'].jit_compile}")
    print(f"MLP 784-256-256-10, batch {arguments.batch_size}, "
          f"{arguments.steps} steps x {arguments.repeats} repeats, interleaved")

    for name in OPTIMIZERS:  # warm-up: tracing, memory allocation, caches
        time_training(models[name], dataset, min(arguments.steps, 50))
        update_timers[name](min(arguments.steps, 50))

    training = {name: [] for name in OPTIMIZERS}
    updates = {name: [] for name in OPTIMIZERS}
    for repeat in range(arguments.repeats):
        order = list(OPTIMIZERS) if repeat % 2 == 0 else list(reversed(OPTIMIZERS))
        for name in order:
            training[name].append(time_training(models[name], dataset, arguments.steps))
        for name in order:
            updates[name].append(update_timers[name](arguments.steps))

    ratio = summarize("training step (median)", training)
    summarize("optimizer update only (median)", updates)
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())

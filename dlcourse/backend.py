"""The one place where the labs meet TensorFlow, JAX or PyTorch directly.

Keras 3 runs the same model on all three (``KERAS_BACKEND=tensorflow``, the
default, ``jax`` or ``torch``).  What Keras does not cover lives here, one
function per need, each with a form for every backend:

* ``batches``: training batches from NumPy arrays — a ``tf.data`` pipeline on
  TensorFlow (what ``tf.distribute`` splits between replicas), a
  ``keras.utils.PyDataset`` elsewhere;
* ``compiled``: a function called once per generated token, traced once —
  ``tf.function`` on TensorFlow, ``jax.jit`` on JAX, eager under
  ``torch.no_grad`` on PyTorch;
* ``make_strategy`` and ``split_cpu``: data parallelism over several devices —
  ``tf.distribute`` strategies on TensorFlow, ``keras.distribution.DataParallel``
  on JAX; a strategy a backend cannot do is one readable ``UsageError``;
* ``gradients``: a loss's gradient with respect to Keras variables (what a
  notebook's test compares a student's hand-written backward pass with);
* ``devices`` and ``tensorboard_callback``: what metrics.json records, and
  TensorBoard logs when TensorFlow (which writes them) is installed.

TensorFlow is imported only by the functions that need it, so a machine with
JAX or PyTorch and no TensorFlow runs every lab.
"""
import contextlib
import importlib.util
import json
import math
import os

import keras
import numpy as np

from dlcourse.cli import UsageError


def name():
    """The Keras backend of this process: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def tensorflow_installed():
    return importlib.util.find_spec("tensorflow") is not None


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def _rows(arrays, rows, choices=None, variants=()):
    """``arrays[rows]``, or each array's rows when ``arrays`` is a dict (a model's named inputs or
    outputs); of an array named in ``variants``, the variant ``choices[i]`` of row ``rows[i]``."""
    if isinstance(arrays, dict):
        return {key: value[rows, choices] if key in variants else value[rows] for key, value in arrays.items()}
    return arrays[rows]


def _variant_count(inputs, targets, variants):
    """How many variants the arrays named in ``variants`` hold of each example (their second axis)."""
    if not variants:
        return 1
    named = {**(inputs if isinstance(inputs, dict) else {}), **(targets if isinstance(targets, dict) else {})}
    missing = sorted(set(variants) - set(named))
    if missing:
        raise ValueError(f"variants {missing} are not named inputs or targets ({sorted(named)})")
    counts = {np.shape(named[key])[1] for key in variants}
    if len(counts) != 1:
        raise ValueError(f"the arrays in variants hold different numbers of variants: {sorted(counts)}")
    return counts.pop()


def _count(arrays):
    """How many examples: the length of the array, or of the dict's first array."""
    return len(next(iter(arrays.values())) if isinstance(arrays, dict) else arrays)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of NumPy arrays in a new seeded order every epoch (the non-TensorFlow ``batches``).

    ``inputs`` and ``targets`` are each an array or a dict of arrays (a model
    with named inputs or outputs); every array has the examples along its
    first axis.  ``variants``: the names of arrays that hold several variants
    of each example on their second axis, of which every epoch takes one per
    example at random (``batches``).
    """

    def __init__(self, inputs, targets, batch_size, shuffle=False, seed=None, variants=()):
        super().__init__()
        self.inputs = inputs
        self.targets = targets if isinstance(targets, dict) else np.asarray(targets)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.variants = _variant_count(inputs, targets, variants), tuple(variants)
        self.epoch = 0
        self.order = self._order()
        self.choices = self._choices()

    def _choices(self):
        count, names = self.variants
        if not names:
            return None
        return np.random.default_rng([self.seed or 0, self.epoch, 1]).integers(count, size=_count(self.targets))

    def _order(self):
        count = _count(self.targets)
        if not self.shuffle:
            return np.arange(count)
        return np.random.default_rng([self.seed or 0, self.epoch]).permutation(count)

    def __len__(self):
        return math.ceil(_count(self.targets) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        choices = None if self.choices is None else self.choices[rows]
        names = self.variants[1]
        return _rows(self.inputs, rows, choices, names), _rows(self.targets, rows, choices, names)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()
        self.choices = self._choices()


def batches(inputs, targets, batch_size, shuffle=False, seed=None, variants=()):
    """Training or evaluation batches of ``(inputs, targets)``, each an array or a dict of arrays;
    ``shuffle`` reshuffles every epoch.

    ``variants`` names the arrays (keys of the dicts) that hold V variants of
    every example along their second axis, (N, V, ...): each epoch takes one of
    them per example, at random — new training examples every epoch without a
    Python generator in the loop (Fast R-CNN's regions drawn anew for every
    image, ``dlcourse.fast_rcnn``).

    On TensorFlow a cached, prefetched ``tf.data`` pipeline, which
    ``tf.distribute`` strategies split between replicas; on JAX and PyTorch an
    ``ArrayBatches``.  Either way Keras's ``fit`` must not shuffle again.
    """
    if name() != "tensorflow":
        return ArrayBatches(inputs, targets, batch_size, shuffle=shuffle, seed=seed, variants=variants)
    import tensorflow as tf
    count = _variant_count(inputs, targets, variants)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).cache()
    if shuffle:
        dataset = dataset.shuffle(_count(targets), seed=seed, reshuffle_each_iteration=True)
    if variants:
        # Dataset.random draws new numbers each time fit starts an epoch's iterator.
        choices = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

        def pick(example, choice):
            choice = choice % count
            return tuple({key: value[choice] if key in variants else value for key, value in part.items()}
                         if isinstance(part, dict) else part for part in example)
        dataset = tf.data.Dataset.zip(dataset, choices).map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------
# Generation steps
# ---------------------------------------------------------------------------

def _of_values(function, variables):
    """``function(*args)`` as a pure function ``(values, *args)`` of the variables' values (JAX):
    inside it every variable reads its value from ``values`` (``keras.StatelessScope``)."""
    def with_values(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return function(*args)
    return with_values


def compiled(function, variables):
    """``function`` (Keras layers in, Keras tensors out; no training) traced once per input shape.

    Text generation calls a one-token step hundreds of times; tracing it
    skips Keras's per-call overhead.  ``variables`` are the Keras variables
    the function reads (its model's ``variables``): a trace must read their
    values at every call, not once, since the same step also writes samples
    between epochs while the weights change.  TensorFlow's ``tf.function``
    reads variables by reference; under ``jax.jit`` their values are passed in
    at every call (``keras.StatelessScope`` maps each variable to its value);
    PyTorch runs eagerly.  The function's arguments may be NumPy arrays or
    lists of them; its results go through ``to_numpy``.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax
        variables = list(variables)
        traced = jax.jit(_of_values(function, variables))
        return lambda *args: traced([variable.value for variable in variables], *args)
    if backend == "torch":
        import torch

        def without_gradients(*args):
            with torch.no_grad():
                return function(*args)
        return without_gradients
    return function


def gradients(function, variables):
    """d function() / d variable for every Keras variable in ``variables``, as NumPy arrays.

    ``function`` takes no argument and returns a scalar computed from the
    variables (a loss of a model's output).  Each backend differentiates in its
    own way: TensorFlow records a ``GradientTape``, JAX differentiates a pure
    function of the variables' values (``keras.StatelessScope`` maps each
    variable to the value being differentiated), PyTorch runs autograd.  A
    variable the function does not use gets None on TensorFlow and PyTorch,
    zeros on JAX.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            value = function()
        return [None if gradient is None else gradient.numpy()
                for gradient in tape.gradient(value, list(variables))]
    if backend == "jax":
        import jax
        variables = list(variables)
        found = jax.grad(_of_values(function, variables))([variable.value for variable in variables])
        return [np.asarray(gradient) for gradient in found]
    if backend == "torch":
        import torch
        found = torch.autograd.grad(function(), [v.value for v in variables], allow_unused=True)
        return [None if gradient is None else gradient.detach().cpu().numpy() for gradient in found]
    raise UsageError(f"no gradients for the {backend} backend")


def to_numpy(tensor):
    """A NumPy array of a backend tensor (what ``compiled`` functions return)."""
    if name() == "tensorflow":
        return tensor.numpy()  # convert_to_numpy warns about NumPy 2's copy keyword here
    return keras.ops.convert_to_numpy(tensor)


# ---------------------------------------------------------------------------
# Devices and strategies
# ---------------------------------------------------------------------------

def split_cpu(count):
    """Present the CPU as ``count`` devices (to try ``--strategy mirrored`` without GPUs).

    TensorFlow: logical devices, possible only before it starts.  JAX: XLA's
    host-platform device count, read when JAX first lists its devices.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) != count:
                raise UsageError("--logical-cpus must be set before TensorFlow starts "
                                 "(restart the kernel or run it from a fresh process)") from None
        return
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={count}"
        os.environ["XLA_FLAGS"] = " ".join(
            [part for part in os.environ.get("XLA_FLAGS", "").split()
             if not part.startswith("--xla_force_host_platform_device_count")] + [flag])
        import jax
        if len(jax.devices("cpu")) != count:
            raise UsageError("--logical-cpus must be set before JAX starts "
                             "(restart the kernel or run it from a fresh process)")
        return
    raise UsageError(f"--logical-cpus needs the tensorflow or jax backend, not {backend}")


class _KerasDistribution:
    """A ``keras.distribution`` (JAX) in the shape the labs use: ``scope()``, ``num_replicas_in_sync``."""

    def __init__(self, distribution, replicas):
        self.distribution, self.num_replicas_in_sync = distribution, replicas

    def scope(self):
        return self.distribution.scope()


class _OneDevice:
    """No distribution: what ``--strategy default`` is on JAX and PyTorch."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def make_strategy(strategy):
    """The ``--strategy`` for this backend: an object with ``scope()`` and ``num_replicas_in_sync``.

    * default: one device (TensorFlow's default strategy);
    * mirrored: every local device — ``tf.distribute.MirroredStrategy`` on
      TensorFlow, ``keras.distribution.DataParallel`` on JAX;
    * multiworker: ``tf.distribute.MultiWorkerMirroredStrategy``, TensorFlow only,
      with this worker's ``TF_CONFIG``.
    """
    backend = name()
    if strategy == "default":
        if backend == "tensorflow":
            import tensorflow as tf
            return tf.distribute.get_strategy()
        return _OneDevice()
    if strategy == "mirrored":
        if backend == "tensorflow":
            import tensorflow as tf
            return tf.distribute.MirroredStrategy()
        if backend == "jax":
            devices = keras.distribution.list_devices()
            distribution = keras.distribution.DataParallel(devices=devices)
            keras.distribution.set_distribution(distribution)
            return _KerasDistribution(distribution, len(devices))
        raise UsageError("--strategy mirrored needs the tensorflow or jax backend "
                         f"(KERAS_BACKEND is {backend})")
    if strategy == "multiworker":
        if backend != "tensorflow":
            raise UsageError("--strategy multiworker needs the tensorflow backend "
                             f"(KERAS_BACKEND is {backend})")
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy multiworker needs the TF_CONFIG environment variable "
                             "(cluster and task of this worker)")
        try:
            json.loads(os.environ["TF_CONFIG"])["cluster"]
        except (ValueError, TypeError, KeyError):
            raise UsageError("TF_CONFIG is not JSON with a \"cluster\" (and this worker's \"task\"), "
                             'e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}}') from None
        return _multi_worker_strategy()
    raise UsageError(f"unknown strategy {strategy!r}")


def _multi_worker_strategy():
    """``tf.distribute.MultiWorkerMirroredStrategy`` with a ``reduce`` that Keras 3's ``fit`` can use.

    Keras 3 (its TensorFlow trainer) calls ``strategy.reduce`` twice in ways
    this strategy, with two or more workers, rejects — see keras-team/keras#20585
    and tensorflow/tensorflow#72388:

    * on the first batch, an ``(inputs, targets)`` tuple of ``PerReplica``
      values, in one call (``_maybe_symbolic_build``): ``MirroredStrategy``
      reduces each value, this one tries to make the tuple one tensor;
    * on every step's loss and metrics, which are scalars, with ``axis=0``
      (``reduce_per_replica``), which a scalar does not have.

    Here each value of a tuple is reduced on its own, and a scalar across the
    replicas only: what ``MirroredStrategy`` computes in both cases.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            reduce = super().reduce

            def reduce_one(one):
                scalar = self.experimental_local_results(one)[0].shape.rank == 0
                return reduce(reduce_op, one, None if scalar else axis)
            return tf.nest.map_structure(reduce_one, value)

    return MultiWorkerMirroredStrategy()


def devices():
    """The accelerators this backend computes on (else its CPU), by name, for metrics.json.

    A GPU is named by its model where the backend says it ("gpu:0 NVIDIA H200").
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf
        models = {f"GPU:{index}": tf.config.experimental.get_device_details(gpu).get("device_name", "")
                  for index, gpu in enumerate(tf.config.list_physical_devices("GPU"))}
        return [f"{device.name} {models.get(device.name.split('device:')[-1], '')}".strip()
                for device in tf.config.list_logical_devices() if device.device_type in ("GPU", "CPU")]
    if backend == "jax":
        import jax
        return [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.devices()]
    if backend == "torch":
        import torch
        if torch.cuda.is_available():
            return [f"cuda:{index} {torch.cuda.get_device_name(index)}"
                    for index in range(torch.cuda.device_count())]
        return ["cpu"]
    return []


def tensorboard_callback(log_dir):
    """Keras's TensorBoard callback, or None (with a note) where TensorFlow, its writer, is missing."""
    if not tensorflow_installed():
        print("note: TensorFlow is not installed, so no TensorBoard logs are written")
        return None
    return keras.callbacks.TensorBoard(str(log_dir), profile_batch=0)

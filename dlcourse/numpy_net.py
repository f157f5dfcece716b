"""A fully-connected network in plain NumPy: forward, loss, backward, train.

Week 2 opens the black box that ``model.fit`` is.  Everything Keras does for
an MLP is written here by hand, one short function per idea:

- **the model**: ``init_params`` and ``forward_prop`` (ReLU hidden layers,
  then a softmax, sigmoid or linear output layer);
- **the loss**: ``loss``, the same losses Keras computes under those names;
- **the algorithm**: ``backward_prop`` (back-propagation, the chain rule
  layer by layer) and ``train`` (mini-batch gradient descent with any
  optimizer from ``dlcourse.numpy_optimizers``).

``gradient_check`` compares back-propagation with finite differences, the
standard way to find a mistake in a hand-written backward pass.

Shapes are row-major, as in Keras: ``X`` is (batch, features) and layer ``l``
computes ``A_l = activation(A_{l-1} @ W_l + b_l)`` with ``W_l`` of shape
(inputs, outputs).
"""
import numpy as np
from tqdm import tqdm

OUTPUTS = ("softmax", "sigmoid", "linear")


# --- Checking arguments ---------------------------------------------------------------------

def _check_output(output):
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")


def num_layers(params):
    """How many weight layers ``params`` holds (``W1`` ... ``WL``)."""
    return sum(1 for name in params if name.startswith("W"))


def _check_inputs(params, X):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (batch, features), got shape {X.shape}")
    expected = params["W1"].shape[0]
    if X.shape[1] != expected:
        raise ValueError(f"X has {X.shape[1]} features but the network expects {expected}")


def _check_targets(Y_hat, Y, output):
    """``Y`` as the loss needs it: integer labels (softmax) or an array shaped like ``Y_hat``."""
    batch, outputs = Y_hat.shape
    Y = np.asarray(Y)
    if output == "softmax":
        if Y.shape != (batch,):
            raise ValueError(f"softmax needs integer labels of shape ({batch},), "
                             f"got shape {Y.shape}")
        if not np.issubdtype(Y.dtype, np.integer):
            raise ValueError(f"softmax needs integer class labels, got dtype {Y.dtype}")
        if Y.size and (Y.min() < 0 or Y.max() >= outputs):
            raise ValueError(f"labels must be in [0, {outputs}), got {Y.min()}..{Y.max()}")
        return Y
    if Y.shape == (batch,) and outputs == 1:
        Y = Y.reshape(batch, 1)  # one output: a flat target vector is fine
    if Y.shape != Y_hat.shape:
        raise ValueError(f"{output} output needs targets of shape {Y_hat.shape}, got {Y.shape}")
    return Y


# --- The model --------------------------------------------------------------------------------

def init_params(layer_sizes, seed=0, dtype="float64"):
    """Weights and biases for layers of ``layer_sizes`` units, e.g. ``(784, 256, 10)``.

    Weights are drawn with He initialisation, normal with variance
    ``2 / fan_in``: it keeps the size of the activations roughly the same from
    layer to layer when half of the ReLU units are off.  Biases start at zero.
    """
    layer_sizes = [int(size) for size in layer_sizes]
    if len(layer_sizes) < 2 or min(layer_sizes) < 1:
        raise ValueError(f"layer_sizes needs at least two positive sizes (inputs, outputs), "
                         f"got {layer_sizes}")
    rng = np.random.default_rng(seed)
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        params[f"W{layer}"] = (rng.standard_normal((fan_in, fan_out))
                               * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)
    return params


def relu(Z):
    return np.maximum(Z, 0)


def sigmoid(Z):
    """1 / (1 + exp(-Z)), written with tanh so that no exp can overflow."""
    return 0.5 * (1 + np.tanh(0.5 * Z))


def softmax(Z):
    """Row-wise softmax; subtracting each row's maximum first keeps exp from overflowing."""
    exponentials = np.exp(Z - Z.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


_OUTPUT_ACTIVATIONS = {"softmax": softmax, "sigmoid": sigmoid, "linear": lambda Z: Z}


def forward_prop(params, X, output="softmax"):
    """The network's output ``Y_hat`` for inputs ``X``, and the ``cache`` that backward_prop needs.

    ``cache`` keeps every layer's input ``A{l-1}`` and pre-activation ``Z{l}``:
    back-propagation reuses them instead of computing them again.
    """
    _check_output(output)
    X = np.asarray(X)
    _check_inputs(params, X)
    last = num_layers(params)
    cache = {"A0": X}
    A = X
    for layer in range(1, last + 1):
        Z = A @ params[f"W{layer}"] + params[f"b{layer}"]
        A = _OUTPUT_ACTIVATIONS[output](Z) if layer == last else relu(Z)
        cache[f"Z{layer}"] = Z
        cache[f"A{layer}"] = A
    return A, cache


# --- The loss ---------------------------------------------------------------------------------

def loss(Y_hat, Y, output):
    """The mean loss over the batch, as a Python float; each is Keras's loss of the same kind.

    - ``softmax``: categorical cross-entropy, ``-mean(log p[label])``, with
      integer labels ``Y`` of shape (batch,) (Keras's sparse categorical one);
    - ``sigmoid``: binary cross-entropy with 0/1 targets ``Y`` of shape
      (batch, k), averaged over the batch *and* the k outputs;
    - ``linear``: plain mean squared error, ``mean((Y_hat - Y)**2)`` over the
      batch and the outputs (Keras's ``"mse"``; no factor 1/2).
    """
    _check_output(output)
    Y = _check_targets(Y_hat, Y, output)
    # Probabilities are kept at least one rounding step (eps) away from 0 and 1
    # before the log, so a confident wrong answer costs a large but finite loss.
    floor = np.finfo(Y_hat.dtype).eps
    if output == "softmax":
        picked = Y_hat[np.arange(len(Y)), Y]
        return float(-np.mean(np.log(np.clip(picked, floor, 1.0))))
    if output == "sigmoid":
        P = np.clip(Y_hat, floor, 1 - floor)
        return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
    return float(np.mean((Y_hat - Y) ** 2))


def _output_gradient(Y_hat, Y, output):
    """d(mean loss)/dZ for the last layer's pre-activation ``Z``.

    Each output activation is paired with its own loss, so the gradient is
    simply "prediction minus target", scaled by how the loss averages.
    """
    batch, outputs = Y_hat.shape
    if output == "softmax":
        dZ = Y_hat.copy()
        dZ[np.arange(batch), Y] -= 1  # softmax + cross-entropy: p - one_hot(y)
        return dZ / batch
    if output == "sigmoid":
        return (Y_hat - Y) / (batch * outputs)  # sigmoid + binary cross-entropy: p - y
    return 2 * (Y_hat - Y) / (batch * outputs)  # derivative of the squared error


# --- The algorithm: back-propagation ----------------------------------------------------------

def backward_prop(params, cache, Y, output):
    """Gradients of the mean loss, ``{"W1": dW1, "b1": db1, ...}`` (the same keys as ``params``).

    Starting from the output, each layer turns the gradient with respect to
    its pre-activation ``Z`` into the gradients of its weights and biases, and
    of its input, which is the previous layer's output (the chain rule).
    """
    _check_output(output)
    last = num_layers(params)
    Y = _check_targets(cache[f"A{last}"], Y, output)
    dZ = _output_gradient(cache[f"A{last}"], Y, output)
    grads = {}
    for layer in range(last, 0, -1):
        grads[f"W{layer}"] = cache[f"A{layer - 1}"].T @ dZ
        grads[f"b{layer}"] = dZ.sum(axis=0)
        if layer > 1:  # the gradient with respect to the data X itself is never needed
            dA = dZ @ params[f"W{layer}"].T
            dZ = dA * (cache[f"Z{layer - 1}"] > 0)  # ReLU passes gradient only where it was on
    return {name: grads[name] for name in params}


# --- Using the network ------------------------------------------------------------------------

def predict(params, X, output="softmax"):
    """Predictions: class indices (softmax), 0/1 per output (sigmoid), or the values (linear)."""
    Y_hat, _ = forward_prop(params, X, output)
    if output == "softmax":
        return Y_hat.argmax(axis=1)
    if output == "sigmoid":
        return (Y_hat >= 0.5).astype("int64")
    return Y_hat


def accuracy(params, X, labels):
    """Fraction of examples whose most probable class (softmax output) is the true label."""
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ValueError(f"labels must have shape ({len(X)},), got {labels.shape}")
    return float(np.mean(predict(params, X, "softmax") == labels))


# --- Checking the backward pass ---------------------------------------------------------------

def _loss_of(params, X, Y, output):
    Y_hat, _ = forward_prop(params, X, output)
    return loss(Y_hat, Y, output)


def numerical_gradient(params, X, Y, output, epsilon=1e-6):
    """Gradients by central differences, ``(L(p + eps) - L(p - eps)) / (2 eps)``, entry by entry.

    Slow (two forward passes per parameter) and only for small networks, but
    it needs no calculus, so it is a trustworthy reference.  It works in
    float64: in float32 the rounding error of the loss would swamp the tiny
    differences.
    """
    params = {name: np.array(value, dtype="float64") for name, value in params.items()}
    X = np.asarray(X, dtype="float64")
    grads = {}
    for name, value in params.items():
        gradient = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            original = value[index]
            value[index] = original + epsilon
            loss_plus = _loss_of(params, X, Y, output)
            value[index] = original - epsilon
            loss_minus = _loss_of(params, X, Y, output)
            value[index] = original
            gradient[index] = (loss_plus - loss_minus) / (2 * epsilon)
        grads[name] = gradient
    return grads


def gradient_check(params, X, Y, output):
    """The largest relative error between back-propagation and finite differences.

    For each parameter array the error is ``|a - n| / (|a| + |n|)`` with
    Euclidean norms, ``a`` the analytic and ``n`` the numerical gradient; the
    worst array is reported.  In float64, about 1e-7 or less means the
    backward pass is right; a bug usually gives 1e-2 or more.
    """
    params64 = {name: np.asarray(value, dtype="float64") for name, value in params.items()}
    X = np.asarray(X, dtype="float64")
    _, cache = forward_prop(params64, X, output)
    analytic = backward_prop(params64, cache, Y, output)
    numerical = numerical_gradient(params64, X, Y, output)
    worst = 0.0
    for name in params64:
        difference = np.linalg.norm(analytic[name] - numerical[name])
        scale = np.linalg.norm(analytic[name]) + np.linalg.norm(numerical[name])
        if scale > 0:
            worst = max(worst, float(difference / scale))
    return worst


# --- The algorithm: mini-batch training -------------------------------------------------------

def _check_training_data(X, Y, name):
    if len(X) != len(Y):
        raise ValueError(f"{name}: {len(X)} examples but {len(Y)} targets")
    if len(X) == 0:
        raise ValueError(f"{name}: no examples")


def evaluate(params, X, Y, output="softmax"):
    """``{"loss": ...}`` on (X, Y), plus ``"accuracy"`` for a softmax classifier."""
    Y_hat, _ = forward_prop(params, X, output)
    metrics = {"loss": loss(Y_hat, Y, output)}
    if output == "softmax":
        metrics["accuracy"] = float(np.mean(Y_hat.argmax(axis=1) == np.asarray(Y)))
    return metrics


def train(params, X, Y, optimizer, epochs, batch_size, output="softmax", seed=0,
          validation=None, progress=True):
    """Mini-batch gradient descent; returns the trained ``params`` and a per-epoch ``history``.

    Every epoch visits the examples once in a fresh random order (shuffling
    keeps consecutive batches from being alike), and each batch does one
    forward pass, one backward pass and one ``optimizer.step``.  ``params``
    itself is left unchanged.  Training runs in the dtype of ``params``:
    float32 parameters (``init_params(..., dtype="float32")``) are about twice
    as fast as float64, and ``X`` is converted to match.

    ``history`` holds one dict per epoch: ``epoch`` (from 1), ``loss`` (the
    mean training loss over the epoch's batches), and with
    ``validation=(X_val, Y_val)`` also ``val_loss`` and, for softmax,
    ``val_accuracy``.
    """
    _check_output(output)
    if not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    dtype = params["W1"].dtype
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y)
    _check_training_data(X, Y, "training data")
    if validation is not None:
        X_val, Y_val = np.asarray(validation[0], dtype=dtype), np.asarray(validation[1])
        _check_training_data(X_val, Y_val, "validation data")

    rng = np.random.default_rng(seed)
    state = optimizer.init_state(params)
    history = []
    epoch_bar = tqdm(range(1, epochs + 1), desc="epochs", unit="epoch", disable=not progress)
    for epoch in epoch_bar:
        order = rng.permutation(len(X))
        total_loss = 0.0
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            Y_hat, cache = forward_prop(params, X[batch], output)
            total_loss += loss(Y_hat, Y[batch], output) * len(batch)
            grads = backward_prop(params, cache, Y[batch], output)
            params, state = optimizer.step(params, grads, state)
        record = {"epoch": epoch, "loss": total_loss / len(X)}
        if validation is not None:
            record.update({f"val_{name}": value
                           for name, value in evaluate(params, X_val, Y_val, output).items()})
        history.append(record)
        epoch_bar.set_postfix({name: f"{value:.4f}" for name, value in record.items()
                               if name != "epoch"})
    return params, history

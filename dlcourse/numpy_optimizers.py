"""The optimizer zoo in plain NumPy, each one step for step the same as ``keras.optimizers``.

Every optimizer has one small interface, so the training loop never needs
to know which one it runs::

    optimizer = Adam(lr=1e-3)
    state = optimizer.init_state(params)                  # slots, as Keras starts them
    params, state = optimizer.step(params, grads, state)  # one update

``params``, ``grads`` and every slot in ``state`` are dicts of arrays with
the same keys (``"W1"``, ``"b1"``, ...).  ``step`` is pure: it returns new
dicts and never changes its inputs, so an old state can be kept and compared.

Each class follows the update that Keras 3 uses (``keras/src/optimizers/``),
so the NumPy and Keras parameters agree after any number of steps.  Where
Keras writes a formula differently from the paper or textbook, the class
docstring says how.
"""
import numbers

import numpy as np

# --- Checking hyper-parameters ----------------------------------------------------------------

def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_lr(lr):
    if not (_is_number(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    return float(lr)


def _check_decay_rate(name, value):
    """Momentum, beta and rho are fractions of the past that are kept: in [0, 1)."""
    if not (_is_number(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _check_non_negative(name, value):
    if not (_is_number(value) and value >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _zeros_like(params):
    return {name: np.zeros_like(value) for name, value in params.items()}


# --- Plain and momentum gradient descent ------------------------------------------------------

class SGD:
    """Plain gradient descent: ``p = p - lr * g``.  (Keras: ``SGD(lr)``, default lr 0.01.)"""

    def __init__(self, lr=0.01):
        self.lr = _check_lr(lr)

    def init_state(self, params):
        return {}

    def step(self, params, grads, state):
        new_params = {name: params[name] - self.lr * grads[name] for name in params}
        return new_params, state


class Momentum:
    """Gradient descent with momentum: a velocity that remembers past steps.

    ``v = momentum * v - lr * g``, then ``p = p + v``.  A direction the
    gradients keep pointing to builds up speed; directions that flip sign
    cancel out.  (Keras: ``SGD(lr, momentum=0.9)``.)
    """

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = _check_lr(lr)
        self.momentum = _check_decay_rate("momentum", momentum)

    def init_state(self, params):
        return {"velocity": _zeros_like(params)}

    def step(self, params, grads, state):
        velocity = {name: self.momentum * state["velocity"][name] - self.lr * grads[name]
                    for name in params}
        new_params = {name: params[name] + velocity[name] for name in params}
        return new_params, {"velocity": velocity}


class Nesterov(Momentum):
    """Nesterov accelerated gradient (NAG): momentum that looks ahead before it steps.

    The textbook form takes the gradient at the look-ahead point
    ``p + momentum * v``, not at ``p``.  Keras (and this class) keeps the
    parameters *at* the look-ahead point instead, so the gradient it is given
    is already the look-ahead one, and the update becomes::

        v = momentum * v - lr * g
        p = p + momentum * v - lr * g

    (substitute ``p_ahead = p + momentum * v`` into the textbook update to get
    it).  The velocity is the same in both forms.  (Keras:
    ``SGD(lr, momentum=0.9, nesterov=True)``.)
    """

    def step(self, params, grads, state):
        velocity = {name: self.momentum * state["velocity"][name] - self.lr * grads[name]
                    for name in params}
        new_params = {name: params[name] + (self.momentum * velocity[name] - self.lr * grads[name])
                      for name in params}
        return new_params, {"velocity": velocity}


# --- Per-parameter adaptive step sizes --------------------------------------------------------

class Adagrad:
    """Adagrad: each parameter's step shrinks with the sum of its squared gradients so far.

    ``s = s + g**2``, then ``p = p - lr * g / sqrt(s + epsilon)``.

    Two differences from the textbook ``lr * g / (sqrt(s) + epsilon)`` with
    ``s`` starting at 0, both taken from Keras: epsilon sits *inside* the
    square root, and ``s`` starts at ``initial_accumulator`` (0.1), which
    keeps the very first steps from being ``lr * sign(g)``, huge for tiny
    gradients.  (Keras: ``Adagrad(lr, initial_accumulator_value=0.1)``.)
    """

    def __init__(self, lr=0.001, initial_accumulator=0.1, epsilon=1e-7):
        self.lr = _check_lr(lr)
        self.initial_accumulator = _check_non_negative("initial_accumulator", initial_accumulator)
        self.epsilon = _check_non_negative("epsilon", epsilon)

    def init_state(self, params):
        return {"accumulator": {name: np.full_like(value, self.initial_accumulator)
                                for name, value in params.items()}}

    def step(self, params, grads, state):
        accumulator = {name: state["accumulator"][name] + grads[name] ** 2 for name in params}
        new_params = {name: params[name]
                      - self.lr * grads[name] / np.sqrt(accumulator[name] + self.epsilon)
                      for name in params}
        return new_params, {"accumulator": accumulator}


class RMSprop:
    """RMSprop: like Adagrad, but a moving average of g**2 forgets old gradients.

    ``s = rho * s + (1 - rho) * g**2``, then ``p = p - lr * g / sqrt(s + epsilon)``.
    As in Adagrad, Keras puts epsilon *inside* the square root (the lecture
    form is ``sqrt(s) + epsilon``).  Keras's extra options ``momentum`` and
    ``centered`` are left out (its defaults, 0 and False).  (Keras:
    ``RMSprop(lr, rho=0.9)``.)
    """

    def __init__(self, lr=0.001, rho=0.9, epsilon=1e-7):
        self.lr = _check_lr(lr)
        self.rho = _check_decay_rate("rho", rho)
        self.epsilon = _check_non_negative("epsilon", epsilon)

    def init_state(self, params):
        return {"mean_square": _zeros_like(params)}

    def step(self, params, grads, state):
        mean_square = {name: self.rho * state["mean_square"][name]
                       + (1 - self.rho) * grads[name] ** 2 for name in params}
        new_params = {name: params[name]
                      - self.lr * grads[name] / np.sqrt(mean_square[name] + self.epsilon)
                      for name in params}
        return new_params, {"mean_square": mean_square}


class Adadelta:
    """Adadelta: the step size comes from the sizes of recent steps, so no learning rate is needed.

    With moving averages ``s`` of ``g**2`` and ``d`` of squared updates::

        s = rho * s + (1 - rho) * g**2
        delta = -sqrt(d + epsilon) / sqrt(s + epsilon) * g
        d = rho * d + (1 - rho) * delta**2
        p = p + lr * delta

    This is Zeiler's (2012) algorithm, epsilon inside both square roots as
    in the paper, times ``lr``.  The paper has no learning rate, i.e.
    ``lr = 1.0``, the default here; Keras's default is 0.001, so pass
    ``learning_rate=1.0`` to Keras to compare.  (Keras: ``Adadelta(lr, rho=0.95)``.)
    """

    def __init__(self, lr=1.0, rho=0.95, epsilon=1e-7):
        self.lr = _check_lr(lr)
        self.rho = _check_decay_rate("rho", rho)
        self.epsilon = _check_non_negative("epsilon", epsilon)

    def init_state(self, params):
        return {"mean_square_grad": _zeros_like(params), "mean_square_delta": _zeros_like(params)}

    def step(self, params, grads, state):
        rho, epsilon = self.rho, self.epsilon
        new_params, mean_square_grad, mean_square_delta = {}, {}, {}
        for name in params:
            g = grads[name]
            mean_square_grad[name] = rho * state["mean_square_grad"][name] + (1 - rho) * g ** 2
            delta = -(np.sqrt(state["mean_square_delta"][name] + epsilon) * g
                      / np.sqrt(mean_square_grad[name] + epsilon))
            mean_square_delta[name] = (rho * state["mean_square_delta"][name]
                                       + (1 - rho) * delta ** 2)
            new_params[name] = params[name] + self.lr * delta
        return new_params, {"mean_square_grad": mean_square_grad,
                            "mean_square_delta": mean_square_delta}


# --- Adam and AMSGrad -------------------------------------------------------------------------

class Adam:
    """Adam: momentum (a moving mean ``m`` of g) divided by RMSprop's scale (``v``, of g**2).

    Step ``t = 1, 2, ...``::

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        p = p - alpha * m / (sqrt(v) + epsilon)

    ``m`` and ``v`` start at 0, so early on they are too small; dividing by
    ``1 - beta**t`` (bias correction) undoes that.  The paper corrects ``m``
    and ``v`` themselves and adds epsilon to ``sqrt(v_hat)``; Keras (and this
    class) folds both corrections into ``alpha`` and adds epsilon to the
    *uncorrected* ``sqrt(v)``, which equals the paper's form with its epsilon
    scaled by ``sqrt(1 - beta_2**t)``.

    ``bias_correction=False`` drops the correction (``alpha = lr``), the
    textbook Adam without it; there is no Keras counterpart.  Both moments
    then start too small, ``m`` by ``1 - beta_1**t`` but ``sqrt(v)`` by the
    much smaller ``sqrt(1 - beta_2**t)``, so with the default betas the early
    steps come out too *large*: ``(1 - beta_1**t) / sqrt(1 - beta_2**t)``
    times the corrected ones, about 3.2 at step 1 and 6.5 near step 10.
    ``amsgrad=True`` divides by the largest ``v`` seen so far (see ``AMSGrad``).
    (Keras: ``Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``.)
    """

    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, bias_correction=True,
                 amsgrad=False):
        self.lr = _check_lr(lr)
        self.beta_1 = _check_decay_rate("beta_1", beta_1)
        self.beta_2 = _check_decay_rate("beta_2", beta_2)
        self.epsilon = _check_non_negative("epsilon", epsilon)
        self.bias_correction = bool(bias_correction)
        self.amsgrad = bool(amsgrad)

    def init_state(self, params):
        state = {"step": 0, "m": _zeros_like(params), "v": _zeros_like(params)}
        if self.amsgrad:
            state["v_max"] = _zeros_like(params)
        return state

    def step_size(self, step, dtype="float64"):
        """``alpha`` for step number ``step`` (counting from 1), computed in ``dtype``.

        Keras computes it in the parameters' dtype, and in float32 the
        ``1 - beta_2**t`` of the first steps loses digits to cancellation
        (about 1e-5 relative at t = 1); doing the same keeps the two exactly equal.
        """
        if not self.bias_correction:
            return self.lr
        number = np.dtype(dtype).type  # e.g. np.float32
        beta_1_power = number(self.beta_1) ** number(step)
        beta_2_power = number(self.beta_2) ** number(step)
        return number(self.lr) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def step(self, params, grads, state):
        step = state["step"] + 1
        alpha = self.step_size(step, next(iter(params.values())).dtype)
        # m = beta_1 * m + (1 - beta_1) * g, written as Keras writes it: move m a
        # fraction (1 - beta_1) of the way toward g (and v toward g**2).
        m = {name: state["m"][name] + (grads[name] - state["m"][name]) * (1 - self.beta_1)
             for name in params}
        v = {name: state["v"][name] + (grads[name] ** 2 - state["v"][name]) * (1 - self.beta_2)
             for name in params}
        new_state = {"step": step, "m": m, "v": v}
        scale = v
        if self.amsgrad:
            scale = {name: np.maximum(state["v_max"][name], v[name]) for name in params}
            new_state["v_max"] = scale
        new_params = {name: params[name] - alpha * m[name] / (np.sqrt(scale[name]) + self.epsilon)
                      for name in params}
        return new_params, new_state


class AMSGrad(Adam):
    """Adam that divides by the largest ``v`` seen so far (Reddi et al., 2018).

    A run of small gradients then cannot shrink ``v`` and suddenly enlarge
    the steps.  As in Keras, the maximum is taken over the uncorrected ``v``.
    (Keras: ``Adam(lr, amsgrad=True)``.)
    """

    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, bias_correction=True):
        super().__init__(lr, beta_1, beta_2, epsilon, bias_correction, amsgrad=True)


NUMPY_OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
                    "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop,
                    "adam": Adam, "amsgrad": AMSGrad}


def make_numpy_optimizer(name, lr, **kwargs):
    """The NumPy optimizer called ``name`` (a key of NUMPY_OPTIMIZERS) with learning rate ``lr``."""
    if name not in NUMPY_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(NUMPY_OPTIMIZERS)}")
    return NUMPY_OPTIMIZERS[name](lr, **kwargs)

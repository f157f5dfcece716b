"""The NumPy optimizers: step for step equal to keras.optimizers, pure, strict about arguments."""
import copy

import keras
import numpy as np
import pytest

from dlcourse import numpy_optimizers as numpy_opt
from dlcourse.optimizers import OPTIMIZER_NAMES

STEPS = 50
SHAPES = {"W1": (5, 4), "b1": (4,), "W2": (4, 3), "b2": (3,)}


def random_arrays(rng, scale=1.0):
    return {name: (scale * rng.standard_normal(shape)).astype("float32")
            for name, shape in SHAPES.items()}


@pytest.fixture(scope="module")
def problem():
    """Initial float32 parameters and a fixed sequence of STEPS random gradients."""
    rng = np.random.default_rng(0)
    initial = random_arrays(rng)
    gradients = [random_arrays(rng) for _ in range(STEPS)]
    return initial, gradients


def run_numpy(optimizer, initial, gradients):
    params = dict(initial)
    state = optimizer.init_state(params)
    for grads in gradients:
        params, state = optimizer.step(params, grads, state)
    return params, state


def run_keras(optimizer, initial, gradients):
    variables = {name: keras.Variable(value, name=name) for name, value in initial.items()}
    for grads in gradients:
        optimizer.apply_gradients([(grads[name], variables[name]) for name in variables])
    return {name: variable.numpy() for name, variable in variables.items()}


def max_abs_difference(params_a, params_b):
    return max(float(np.max(np.abs(params_a[name] - params_b[name]))) for name in params_a)


# name -> (NumPy optimizer, the Keras optimizer that should do the same)
COUNTERPARTS = {
    "sgd": lambda: (numpy_opt.SGD(0.01), keras.optimizers.SGD(0.01)),
    "momentum": lambda: (numpy_opt.Momentum(0.01), keras.optimizers.SGD(0.01, momentum=0.9)),
    "nesterov": lambda: (numpy_opt.Nesterov(0.01),
                         keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)),
    "adagrad": lambda: (numpy_opt.Adagrad(0.05), keras.optimizers.Adagrad(0.05)),
    "adadelta": lambda: (numpy_opt.Adadelta(1.0), keras.optimizers.Adadelta(1.0)),
    "rmsprop": lambda: (numpy_opt.RMSprop(0.01), keras.optimizers.RMSprop(0.01)),
    "adam": lambda: (numpy_opt.Adam(0.01), keras.optimizers.Adam(0.01)),
    "amsgrad": lambda: (numpy_opt.AMSGrad(0.01), keras.optimizers.Adam(0.01, amsgrad=True)),
}


def test_every_optimizer_is_compared_and_listed():
    assert set(COUNTERPARTS) == set(numpy_opt.NUMPY_OPTIMIZERS)
    # Every Keras choice of the labs' --optimizer flag has a NumPy twin for week 2.
    assert {name for name in OPTIMIZER_NAMES if not name.startswith("custom_")} \
        == set(numpy_opt.NUMPY_OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(COUNTERPARTS))
def test_matches_keras_after_50_steps(problem, name):
    initial, gradients = problem
    numpy_optimizer, keras_optimizer = COUNTERPARTS[name]()
    numpy_params, _ = run_numpy(numpy_optimizer, initial, gradients)
    keras_params = run_keras(keras_optimizer, initial, gradients)

    assert all(value.dtype == np.float32 for value in numpy_params.values())
    assert max_abs_difference(numpy_params, initial) > 1e-2  # the parameters really moved
    assert max_abs_difference(numpy_params, keras_params) <= 1e-6


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "rmsprop", "adam", "amsgrad"])
def test_epsilon_sits_where_keras_puts_it(problem, name):
    """With a large epsilon, inside vs outside the square root changes every step visibly."""
    initial, gradients = problem
    lr = 1.0 if name == "adadelta" else 0.01
    keras_class = {"adagrad": keras.optimizers.Adagrad, "adadelta": keras.optimizers.Adadelta,
                   "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                   "amsgrad": lambda lr, **kwargs: keras.optimizers.Adam(lr, amsgrad=True,
                                                                         **kwargs)}[name]
    numpy_params, _ = run_numpy(numpy_opt.make_numpy_optimizer(name, lr, epsilon=0.5),
                                initial, gradients)
    keras_params = run_keras(keras_class(lr, epsilon=0.5), initial, gradients)
    small_epsilon_params, _ = run_numpy(numpy_opt.make_numpy_optimizer(name, lr),
                                        initial, gradients)
    assert max_abs_difference(numpy_params, small_epsilon_params) > 1e-3
    assert max_abs_difference(numpy_params, keras_params) <= 1e-6


def test_textbook_nesterov_is_the_same_velocity_seen_from_the_look_ahead_point():
    """Keras's Nesterov form, rewritten: the textbook update at p_ahead = p + momentum * v."""
    lr, momentum = 0.1, 0.9
    target = np.array([1.0, -2.0, 3.0])
    gradient_of = lambda p: p - target  # noqa: E731, loss 0.5 * |p - target|^2
    p, v = np.zeros(3), np.zeros(3)  # textbook: gradient taken at the look-ahead point
    optimizer = numpy_opt.Nesterov(lr, momentum)
    params = {"p": np.zeros(3)}  # Keras form: parameters kept at the look-ahead point
    state = optimizer.init_state(params)
    for _ in range(20):
        v = momentum * v - lr * gradient_of(p + momentum * v)
        p = p + v
        params, state = optimizer.step(params, {"p": gradient_of(params["p"])}, state)
        np.testing.assert_allclose(params["p"], p + momentum * v, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state["velocity"]["p"], v, rtol=0, atol=1e-12)


def test_defaults_are_keras_defaults():
    adam, keras_adam = numpy_opt.Adam(), keras.optimizers.Adam()
    assert (adam.lr, adam.beta_1, adam.beta_2, adam.epsilon) == pytest.approx(
        (float(keras_adam.learning_rate), keras_adam.beta_1, keras_adam.beta_2, keras_adam.epsilon))
    adagrad, keras_adagrad = numpy_opt.Adagrad(), keras.optimizers.Adagrad()
    assert (adagrad.lr, adagrad.initial_accumulator, adagrad.epsilon) == pytest.approx(
        (float(keras_adagrad.learning_rate), keras_adagrad.initial_accumulator_value,
         keras_adagrad.epsilon))
    rmsprop, keras_rmsprop = numpy_opt.RMSprop(), keras.optimizers.RMSprop()
    assert (rmsprop.lr, rmsprop.rho, rmsprop.epsilon) == pytest.approx(
        (float(keras_rmsprop.learning_rate), keras_rmsprop.rho, keras_rmsprop.epsilon))
    adadelta, keras_adadelta = numpy_opt.Adadelta(), keras.optimizers.Adadelta()
    assert (adadelta.rho, adadelta.epsilon) == (keras_adadelta.rho, keras_adadelta.epsilon)
    assert adadelta.lr == 1.0  # Zeiler's algorithm has no learning rate (Keras defaults to 0.001)
    assert numpy_opt.SGD().lr == pytest.approx(float(keras.optimizers.SGD().learning_rate))


# --- Adam without bias correction --------------------------------------------------------------

def test_adam_without_bias_correction_is_the_plain_formula(problem):
    initial, gradients = problem
    lr, beta_1, beta_2, epsilon = 0.01, 0.9, 0.999, 1e-7
    expected = {name: value.astype("float64") for name, value in initial.items()}
    m = {name: np.zeros(shape) for name, shape in SHAPES.items()}
    v = {name: np.zeros(shape) for name, shape in SHAPES.items()}
    for grads in gradients:
        for name in SHAPES:
            g = grads[name].astype("float64")
            m[name] = beta_1 * m[name] + (1 - beta_1) * g
            v[name] = beta_2 * v[name] + (1 - beta_2) * g ** 2
            expected[name] = expected[name] - lr * m[name] / (np.sqrt(v[name]) + epsilon)
    initial64 = {name: value.astype("float64") for name, value in initial.items()}
    gradients64 = [{name: value.astype("float64") for name, value in grads.items()}
                   for grads in gradients]
    params, _ = run_numpy(numpy_opt.Adam(lr, bias_correction=False), initial64, gradients64)
    assert max_abs_difference(params, expected) <= 1e-12
    corrected, _ = run_numpy(numpy_opt.Adam(lr), initial64, gradients64)
    assert max_abs_difference(params, corrected) > 1e-2  # the correction changes the result


def first_steps(optimizer, gradient, steps):
    """Sizes of the first ``steps`` updates for a constant gradient, and the final state."""
    params = {"p": np.zeros(1)}
    state = optimizer.init_state(params)
    sizes = []
    for _ in range(steps):
        new_params, state = optimizer.step(params, {"p": np.array([gradient])}, state)
        sizes.append(abs(float(new_params["p"][0] - params["p"][0])))
        params = new_params
    return np.array(sizes), state


def test_bias_correction_matters_in_the_first_steps():
    """The moments start at zero, so early on they are far too small; correction undoes that."""
    lr, gradient, steps = 0.01, 0.5, 10
    corrected_sizes, state = first_steps(numpy_opt.Adam(lr), gradient, steps)
    raw_sizes, _ = first_steps(numpy_opt.Adam(lr, bias_correction=False), gradient, steps)
    # The raw moving averages are much smaller than the gradient they estimate ...
    t = state["step"]
    assert state["m"]["p"][0] < 0.7 * gradient and np.sqrt(state["v"]["p"][0]) < 0.11 * gradient
    # ... and the corrected ones are exactly right for a constant gradient.
    assert state["m"]["p"][0] / (1 - 0.9 ** t) == pytest.approx(gradient)
    assert state["v"]["p"][0] / (1 - 0.999 ** t) == pytest.approx(gradient ** 2)
    # With the correction every step is lr (the gradient's sign times lr) ...
    np.testing.assert_allclose(corrected_sizes, lr, rtol=1e-5)
    # ... without it, v's bias (beta_2 near 1) dominates m's and the steps are several times
    # too large: (1 - 0.9**t) / sqrt(1 - 0.999**t) times lr, 3.2x at the first step.
    expected_ratio = (1 - 0.9 ** np.arange(1, steps + 1)) / np.sqrt(
        1 - 0.999 ** np.arange(1, steps + 1))
    np.testing.assert_allclose(raw_sizes / corrected_sizes, expected_ratio, rtol=1e-4)
    assert raw_sizes[0] > 3 * corrected_sizes[0] and raw_sizes.max() > 6 * lr


# --- One interface, pure steps -----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(numpy_opt.NUMPY_OPTIMIZERS))
def test_step_does_not_change_its_inputs(problem, name):
    initial, gradients = problem
    optimizer = numpy_opt.make_numpy_optimizer(name, 0.1)
    params, state = optimizer.step(initial, gradients[0], optimizer.init_state(initial))
    params_before, grads_before, state_before = (copy.deepcopy(params), copy.deepcopy(gradients[1]),
                                                 copy.deepcopy(state))
    new_params, new_state = optimizer.step(params, gradients[1], state)

    assert max_abs_difference(new_params, params) > 0
    for before, after in ((params_before, params), (grads_before, gradients[1])):
        assert all(np.array_equal(before[key], after[key]) for key in before)
    for slot, arrays in state_before.items():
        if isinstance(arrays, dict):
            assert all(np.array_equal(arrays[key], state[slot][key]) for key in arrays)
        else:
            assert state[slot] == arrays  # the step counter


@pytest.mark.parametrize("name, lr", [("sgd", 0.1), ("momentum", 0.05), ("nesterov", 0.05),
                                      ("adagrad", 0.5), ("adadelta", 1.0), ("rmsprop", 0.05),
                                      ("adam", 0.05), ("amsgrad", 0.05)])
def test_every_optimizer_minimises_a_quadratic(name, lr):
    """f(p) = 0.5 * |p - target|^2 with an ill-conditioned scale per coordinate."""
    target = np.array([1.0, -2.0, 0.5])
    curvature = np.array([1.0, 0.1, 3.0])
    optimizer = numpy_opt.make_numpy_optimizer(name, lr)
    params = {"p": np.zeros(3)}
    state = optimizer.init_state(params)
    for _ in range(300):
        params, state = optimizer.step(params, {"p": curvature * (params["p"] - target)}, state)
    start, end = np.linalg.norm(target), np.linalg.norm(params["p"] - target)
    assert end < 0.8 * start


# --- Arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs, word", [
    ("sgd", {"lr": -0.1}, "lr"),
    ("adam", {"lr": 0.0}, "lr"),
    ("adam", {"lr": 0.01, "beta_1": 1.0}, "beta_1"),
    ("amsgrad", {"lr": 0.01, "beta_2": -0.5}, "beta_2"),
    ("rmsprop", {"lr": 0.01, "rho": -0.1}, "rho"),
    ("adadelta", {"lr": 1.0, "rho": 1.0}, "rho"),
    ("momentum", {"lr": 0.01, "momentum": 1.5}, "momentum"),
    ("nesterov", {"lr": 0.01, "momentum": -0.2}, "momentum"),
    ("adagrad", {"lr": 0.01, "epsilon": -1e-7}, "epsilon"),
    ("adagrad", {"lr": 0.01, "initial_accumulator": -1.0}, "initial_accumulator"),
    ("sgd", {"lr": "fast"}, "lr"),
])
def test_bad_hyper_parameters_are_rejected_in_one_line(name, kwargs, word):
    with pytest.raises(ValueError) as caught:
        numpy_opt.NUMPY_OPTIMIZERS[name](**kwargs)
    message = str(caught.value)
    assert message.startswith(word) and "\n" not in message


def test_make_numpy_optimizer():
    optimizer = numpy_opt.make_numpy_optimizer("adam", 0.02, beta_1=0.8)
    assert isinstance(optimizer, numpy_opt.Adam) and not optimizer.amsgrad
    assert (optimizer.lr, optimizer.beta_1) == (0.02, 0.8)
    assert numpy_opt.make_numpy_optimizer("amsgrad", 0.01).amsgrad
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamw'; choose one of sgd, momentum"):
        numpy_opt.make_numpy_optimizer("adamw", 0.01)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        numpy_opt.make_numpy_optimizer("sgd", -1)

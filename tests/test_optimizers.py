"""CustomAdam against Keras's Adam, against the paper (in NumPy), and through save/load."""
import keras
import numpy as np
import pytest

from dlcourse.data import load_mnist
from dlcourse.optimizers import OPTIMIZER_NAMES, CustomAdam, make_optimizer

BATCH_SIZE = 64
TRAIN_STEPS = 100


@pytest.fixture(scope="module")
def mnist_batches():
    """The first TRAIN_STEPS batches of real MNIST, flattened, in a fixed order."""
    (x_train, y_train), _ = load_mnist()
    count = BATCH_SIZE * TRAIN_STEPS
    images = x_train[:count].reshape(count, 784).astype("float32") / 255.0
    labels = y_train[:count].astype("int64")
    return [(images[start:start + BATCH_SIZE], labels[start:start + BATCH_SIZE])
            for start in range(0, count, BATCH_SIZE)]


def small_mlp(hidden=64):
    return keras.Sequential([keras.Input((784,)),
                             keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(10)])


def train(initial_weights, optimizer, batches, hidden=64):
    model = small_mlp(hidden)
    model.set_weights(initial_weights)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for images, labels in batches:
        model.train_on_batch(images, labels)
    return model


def max_abs_difference(weights_a, weights_b):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(weights_a, weights_b))


# --- 1. Same parameters as keras.optimizers.Adam on a real model ---------------------------

@pytest.mark.parametrize("amsgrad", [False, True])
def test_matches_keras_adam_on_mnist_mlp(mnist_batches, amsgrad):
    keras.utils.set_random_seed(0)
    initial_weights = small_mlp().get_weights()
    builtin = train(initial_weights, keras.optimizers.Adam(1e-3, amsgrad=amsgrad), mnist_batches)
    custom = train(initial_weights, CustomAdam(1e-3, amsgrad=amsgrad), mnist_batches)

    assert int(custom.optimizer.iterations) == TRAIN_STEPS
    assert max_abs_difference(initial_weights, custom.get_weights()) > 1e-2  # it did train
    assert max_abs_difference(builtin.get_weights(), custom.get_weights()) <= 1e-6


# --- 2. Same steps as Algorithm 1 of Kingma & Ba, written in NumPy -------------------------

def numpy_adam(parameters, gradient_of, steps, learning_rate, beta_1, beta_2, epsilon,
               amsgrad=False, decay=0.0, epsilon_as_keras=True):
    """Algorithm 1 of Kingma & Ba (2015) in float64, plus AMSGrad and inverse-time decay.

    Returns the parameters after every step, shape (steps, parameters).

    Keras adds its epsilon to sqrt(v) *before* bias correction ("epsilon hat").
    Dividing numerator and denominator by sqrt(1 - beta_2**t) shows that this
    is Algorithm 1 with eps_t = epsilon / sqrt(1 - beta_2**t), which is what
    ``epsilon_as_keras`` uses; with it off, epsilon goes where Algorithm 1
    puts it, unscaled (used below to show the test can tell them apart).
    """
    theta = parameters.astype("float64")
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    trajectory = []
    for t in range(1, steps + 1):
        g = gradient_of(theta)
        alpha = learning_rate / (1.0 + decay * (t - 1))  # t - 1 steps already taken
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        if amsgrad:
            v_max = np.maximum(v_max, v)
        m_hat = m / (1 - beta_1 ** t)
        v_hat = (v_max if amsgrad else v) / (1 - beta_2 ** t)
        eps = epsilon / np.sqrt(1 - beta_2 ** t) if epsilon_as_keras else epsilon
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + eps)
        trajectory.append(theta)
    return np.array(trajectory)


def least_squares_problem(seed=0, samples=32, features=5):
    """Gradient of 0.5 * mean((X w - y)**2): a small problem whose gradient depends on w."""
    rng = np.random.default_rng(seed)
    features_matrix = rng.normal(size=(samples, features))
    targets = features_matrix @ rng.normal(size=features) + 0.1 * rng.normal(size=samples)

    def gradient_of(weights):
        return features_matrix.T @ (features_matrix @ weights - targets) / samples
    return gradient_of, rng.normal(size=features).astype("float32")


def keras_steps(optimizer, gradient_of, initial, steps):
    """Run ``optimizer`` on the NumPy gradient function; the parameters after every step."""
    variable = keras.Variable(initial, dtype="float32")
    trajectory = []
    for _ in range(steps):
        gradient = gradient_of(variable.numpy().astype("float64")).astype("float32")
        optimizer.apply_gradients([(gradient, variable)])
        trajectory.append(variable.numpy().astype("float64"))
    return np.array(trajectory)


# epsilon=0.01 is large on purpose: the gradients get that small, so its placement matters.
SETTINGS = dict(learning_rate=0.05, beta_1=0.9, beta_2=0.99, epsilon=0.01)
STEPS = 150


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.02])
def test_matches_numpy_algorithm_1(amsgrad, decay):
    gradient_of, initial = least_squares_problem()
    optimizer = CustomAdam(**SETTINGS, amsgrad=amsgrad, decay=decay)
    result = keras_steps(optimizer, gradient_of, initial, STEPS)
    expected = numpy_adam(initial, gradient_of, STEPS, **SETTINGS, amsgrad=amsgrad, decay=decay)

    assert np.max(np.abs(result[-1] - initial)) > 0.5  # it moved a long way
    assert np.max(np.abs(result - expected)) <= 1e-5  # at every one of the steps
    # The comparison is sharp enough to see where epsilon goes (in the early steps,
    # where sqrt(1 - beta_2**t) is far from 1).
    naive = numpy_adam(initial, gradient_of, STEPS, **SETTINGS, amsgrad=amsgrad, decay=decay,
                       epsilon_as_keras=False)
    assert np.max(np.abs(result - naive)) > 1e-2


# --- 3. Inverse-time decay -----------------------------------------------------------------

def test_decay_changes_the_result():
    gradient_of, initial = least_squares_problem(seed=1)
    without = keras_steps(CustomAdam(**SETTINGS), gradient_of, initial, 50)[-1]
    with_decay = keras_steps(CustomAdam(**SETTINGS, decay=0.05), gradient_of, initial, 50)[-1]
    assert np.max(np.abs(without - with_decay)) > 1e-2


def test_decay_follows_inverse_time_formula():
    # With a constant gradient and epsilon=0, m/sqrt(v) * sqrt(1-beta_2**t)/(1-beta_1**t) == 1,
    # so step t moves the variable by exactly learning_rate / (1 + decay * (t - 1)).
    learning_rate, decay, steps = 0.1, 0.5, 20
    optimizer = CustomAdam(learning_rate, epsilon=0.0, decay=decay)
    variable = keras.Variable([0.0, 0.0])
    gradient = np.array([3.0, -0.02], dtype="float32")
    positions = []
    for _ in range(steps):
        optimizer.apply_gradients([(gradient, variable)])
        positions.append(variable.numpy().copy())
    moves = -np.diff(np.concatenate([[[0.0, 0.0]], positions]), axis=0) * np.sign(gradient)
    expected = learning_rate / (1 + decay * np.arange(steps))
    np.testing.assert_allclose(moves, np.stack([expected, expected], axis=1), rtol=1e-4)


# --- 4. Save and load ----------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, mnist_batches):
    keras.utils.set_random_seed(1)
    model = small_mlp(hidden=16)
    model.compile(optimizer=CustomAdam(learning_rate=2e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                                       amsgrad=True, decay=1e-3, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for images, labels in mnist_batches[:3]:
        model.train_on_batch(images, labels)
    path = tmp_path / "custom_adam.keras"
    model.save(path)

    loaded = keras.models.load_model(path)  # no custom_objects: the class is registered

    assert type(loaded.optimizer) is CustomAdam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.get_config()["decay"] == 1e-3
    assert int(loaded.optimizer.iterations) == 3
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    images, labels = mnist_batches[3]
    np.testing.assert_array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))

    model.train_on_batch(images, labels)
    loaded.train_on_batch(images, labels)
    assert max_abs_difference(model.get_weights(), loaded.get_weights()) == 0.0


# --- 5. Bad arguments and the --optimizer factory ------------------------------------------

@pytest.mark.parametrize("arguments, message", [
    (dict(learning_rate=-0.01), "learning_rate"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(beta_1=1.0), "beta_1"),
    (dict(beta_2=-0.1), "beta_2"),
    (dict(epsilon=-1e-7), "epsilon"),
    (dict(decay=-0.1), "decay"),
])
def test_bad_hyper_parameters_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        CustomAdam(**arguments)


def test_make_optimizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw2'.*custom_amsgrad"):
        make_optimizer("adamw2", 0.01)
    with pytest.raises(ValueError, match="positive.*choices"):
        make_optimizer("adam", 0.0)
    with pytest.raises(ValueError, match="decay"):
        make_optimizer("adam", 0.01, decay=0.1)


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_every_optimizer_name_builds_and_steps(name):
    optimizer = make_optimizer(name, 0.1)
    assert make_optimizer(name, 0.1) is not optimizer  # a fresh one each time
    variable = keras.Variable([1.0, -2.0])
    optimizer.apply_gradients([(np.array([0.5, -0.5], dtype="float32"), variable)])
    assert np.all(variable.numpy() != [1.0, -2.0])
    assert isinstance(optimizer, CustomAdam) == name.startswith("custom_")
    assert getattr(optimizer, "amsgrad", False) == name.endswith("amsgrad")


def test_make_optimizer_passes_options_through():
    optimizer = make_optimizer("custom_amsgrad", 1, decay=0.01, clipnorm=1.0)  # int lr is fine
    assert (optimizer.amsgrad, optimizer.decay, optimizer.clipnorm) == (True, 0.01, 1.0)
    assert float(optimizer.learning_rate) == 1.0
    assert make_optimizer("nesterov", 0.1).nesterov
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert make_optimizer("custom_adam", schedule).get_config()["learning_rate"]["class_name"] \
        == "ExponentialDecay"

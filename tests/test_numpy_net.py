"""The NumPy network: back-propagation against finite differences, Keras's losses, and MNIST."""
import numpy as np
import pytest

from dlcourse import numpy_net as net
from dlcourse.data import mnist_splits
from dlcourse.numpy_optimizers import SGD, Adam

LAYER_SIZES = {"softmax": (5, 4, 3, 3), "sigmoid": (5, 4, 3, 2), "linear": (5, 4, 3, 2)}


def small_problem(output, batch=8, seed=1):
    """A 5 -> 4 -> 3 -> k network in float64 with random inputs and targets for ``output``."""
    rng = np.random.default_rng(seed)
    sizes = LAYER_SIZES[output]
    params = net.init_params(sizes, seed=seed)
    # Non-zero biases, so that their gradients are checked too.
    params = {name: value + 0.1 * rng.standard_normal(value.shape) if name.startswith("b")
              else value for name, value in params.items()}
    X = rng.standard_normal((batch, sizes[0]))
    if output == "softmax":
        Y = rng.integers(0, sizes[-1], size=batch)
    elif output == "sigmoid":
        Y = rng.integers(0, 2, size=(batch, sizes[-1])).astype("float64")
    else:
        Y = rng.standard_normal((batch, sizes[-1]))
    return params, X, Y


@pytest.fixture(scope="module")
def mnist_smoke():
    return mnist_splits(smoke=True, flatten=True)


# --- The model --------------------------------------------------------------------------------

def test_init_params_shapes_and_he_scale():
    params = net.init_params((784, 256, 10), seed=3, dtype="float32")
    assert list(params) == ["W1", "b1", "W2", "b2"]
    assert params["W1"].shape == (784, 256) and params["b1"].shape == (256,)
    assert params["W2"].shape == (256, 10) and params["b2"].shape == (10,)
    assert all(value.dtype == np.float32 for value in params.values())
    assert not params["b1"].any() and not params["b2"].any()
    assert params["W1"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    np.testing.assert_array_equal(params["W1"], net.init_params((784, 256, 10), seed=3)["W1"]
                                  .astype("float32"))
    with pytest.raises(ValueError, match="at least two positive sizes"):
        net.init_params((784,))


def test_forward_outputs_are_probabilities_and_cache_keeps_every_layer():
    params, X, _ = small_problem("softmax")
    Y_hat, cache = net.forward_prop(params, X, "softmax")
    assert Y_hat.shape == (8, 3)
    np.testing.assert_allclose(Y_hat.sum(axis=1), 1.0)
    assert sorted(cache) == ["A0", "A1", "A2", "A3", "Z1", "Z2", "Z3"]
    assert (cache["A1"] >= 0).all() and (cache["A1"] == np.maximum(cache["Z1"], 0)).all()
    sigmoid_output, _ = net.forward_prop(params, X, "sigmoid")
    assert ((sigmoid_output > 0) & (sigmoid_output < 1)).all()
    linear_output, _ = net.forward_prop(params, X, "linear")
    np.testing.assert_allclose(linear_output, cache["Z3"])


def test_huge_logits_give_finite_loss_and_gradients():
    params, X, _ = small_problem("softmax")
    huge = {name: value * 1e3 for name, value in params.items()}
    for output in net.OUTPUTS:
        _, _, Y = small_problem(output)
        if output != "softmax":
            huge["W3"] = 1e3 * np.ones((3, 2))
            huge["b3"] = np.zeros(2)
        Y_hat, cache = net.forward_prop(huge, X, output)
        value = net.loss(Y_hat, Y, output)
        grads = net.backward_prop(huge, cache, Y, output)
        assert np.isfinite(value) and value > 0
        assert all(np.isfinite(gradient).all() for gradient in grads.values())


# --- The loss: the same numbers as Keras's losses ---------------------------------------------

def test_losses_equal_keras_losses():
    import keras
    for output, keras_loss in (("softmax", keras.losses.SparseCategoricalCrossentropy()),
                               ("sigmoid", keras.losses.BinaryCrossentropy()),
                               ("linear", keras.losses.MeanSquaredError())):
        params, X, Y = small_problem(output)
        Y_hat, _ = net.forward_prop(params, X, output)
        expected = float(keras_loss(Y, Y_hat))
        assert net.loss(Y_hat, Y, output) == pytest.approx(expected, rel=1e-5)


def test_uniform_prediction_costs_log_of_the_class_count():
    Y_hat = np.full((4, 10), 0.1)
    assert net.loss(Y_hat, np.array([0, 3, 9, 2]), "softmax") == pytest.approx(np.log(10))


# --- The algorithm: back-propagation ----------------------------------------------------------

@pytest.mark.parametrize("output", net.OUTPUTS)
def test_backprop_matches_finite_differences(output):
    params, X, Y = small_problem(output)
    _, cache = net.forward_prop(params, X, output)
    grads = net.backward_prop(params, cache, Y, output)
    assert list(grads) == list(params)
    assert all(grads[name].shape == params[name].shape for name in params)
    assert all(np.abs(grads[name]).max() > 0 for name in params)  # nothing trivially zero
    assert net.gradient_check(params, X, Y, output) <= 1e-6


def test_gradient_check_catches_a_wrong_backward_pass(monkeypatch):
    params, X, Y = small_problem("softmax")
    assert net.gradient_check(params, X, Y, "softmax") <= 1e-6
    # A classic bug: forgetting to divide by the batch size.
    right = net._output_gradient
    monkeypatch.setattr(net, "_output_gradient",
                        lambda Y_hat, Y, output: right(Y_hat, Y, output) * len(Y))
    assert net.gradient_check(params, X, Y, "softmax") > 0.5


def test_numerical_gradient_works_in_float64_even_for_float32_params():
    params, X, Y = small_problem("linear")
    params32 = {name: value.astype("float32") for name, value in params.items()}
    numerical = net.numerical_gradient(params32, X, Y, "linear")
    _, cache = net.forward_prop(params, X, "linear")
    analytic = net.backward_prop(params, cache, Y, "linear")
    assert numerical["W1"].dtype == np.float64
    for name in params:  # close, up to the rounding of the params themselves to float32
        np.testing.assert_allclose(numerical[name], analytic[name], atol=1e-5)


# --- Arguments --------------------------------------------------------------------------------

def test_bad_arguments_raise_clear_value_errors():
    params, X, Y = small_problem("softmax")
    with pytest.raises(ValueError, match="unknown output 'tanh'; choose one of softmax"):
        net.forward_prop(params, X, "tanh")
    with pytest.raises(ValueError, match="X has 6 features but the network expects 5"):
        net.forward_prop(params, np.zeros((2, 6)))
    with pytest.raises(ValueError, match="2-D"):
        net.forward_prop(params, np.zeros(5))
    Y_hat, cache = net.forward_prop(params, X)
    with pytest.raises(ValueError, match=r"integer labels of shape \(8,\)"):
        net.loss(Y_hat, Y[:5], "softmax")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        net.backward_prop(params, cache, np.full(8, 3), "softmax")
    sigmoid_output, _ = net.forward_prop(params, X, "sigmoid")
    with pytest.raises(ValueError, match=r"targets of shape \(8, 3\)"):
        net.loss(sigmoid_output, np.zeros((8, 2)), "sigmoid")
    with pytest.raises(ValueError, match="8 examples but 7 targets"):
        net.train(params, X, Y[:7], SGD(0.1), epochs=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        net.train(params, X, Y, SGD(0.1), epochs=1, batch_size=0, progress=False)


# --- Training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", [Adam(1e-3), SGD(0.1)], ids=["adam", "sgd"])
def test_training_halves_the_loss_on_real_mnist(mnist_smoke, optimizer):
    images, labels = mnist_smoke["train"]
    params = net.init_params((784, 64, 10), seed=0, dtype="float32")
    before = net.evaluate(params, images, labels)
    trained, history = net.train(params, images, labels, optimizer, epochs=3, batch_size=32,
                                 validation=mnist_smoke["validation"], progress=False)
    after = net.evaluate(trained, images, labels)

    assert after["loss"] < 0.5 * before["loss"]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "loss", "val_loss", "val_accuracy"}
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_accuracy"] > 0.8
    assert trained["W1"].dtype == np.float32  # float32 in, float32 all the way
    assert net.accuracy(trained, *mnist_smoke["test"]) > 0.8
    # The caller's parameters are left as they were.
    np.testing.assert_array_equal(params["W1"], net.init_params((784, 64, 10), seed=0,
                                                                dtype="float32")["W1"])


def test_training_is_reproducible_and_the_seed_matters(mnist_smoke):
    images, labels = mnist_smoke["train"][0][:256], mnist_smoke["train"][1][:256]
    params = net.init_params((784, 16, 10), seed=0)

    def run(seed):
        return net.train(params, images, labels, SGD(0.1), epochs=2, batch_size=32, seed=seed,
                         progress=False)

    (first, first_history), (again, again_history) = run(0), run(0)
    other, _ = run(1)
    assert first_history == again_history and "val_loss" not in first_history[0]
    np.testing.assert_array_equal(first["W1"], again["W1"])
    assert not np.array_equal(first["W1"], other["W1"])  # reshuffled differently


def test_training_sigmoid_and_linear_outputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    targets = {"sigmoid": (X[:, :2] > 0).astype("float64"),  # two independent yes/no answers
               "linear": X @ np.array([[1.0], [-2.0], [0.5]])}
    for output, Y in targets.items():
        params = net.init_params((3, 16, Y.shape[1]), seed=0)
        start = net.loss(net.forward_prop(params, X, output)[0], Y, output)
        trained, history = net.train(params, X, Y, Adam(0.01), epochs=30, batch_size=20,
                                     output=output, validation=(X, Y), progress=False)
        assert history[-1]["val_loss"] < 0.25 * start
        assert "val_accuracy" not in history[-1]
    np.testing.assert_array_equal(net.predict(trained, X[:5], "linear"),
                                  net.forward_prop(trained, X[:5], "linear")[0])

"""Week 2 lab: the optimizer experiments in smoke mode, and the 2-D descent they are built on."""
import numpy as np
import pytest

from dlcourse import numpy_optimizers
from labs import optimizers
from tests.conftest import read_metrics, run_lab


@pytest.mark.parametrize("surface", optimizers.SURFACES, ids=lambda surface: surface.name.split()[0])
def test_gradients_of_the_surfaces_are_right(surface):
    point, step = np.array([0.7, -0.4]), 1e-6
    numerical = [(surface.value(*(point + step * unit)) - surface.value(*(point - step * unit))) / (2 * step)
                 for unit in np.eye(2)]
    np.testing.assert_allclose(surface.gradient(*point), numerical, rtol=1e-5, atol=1e-7)


def test_descent_reaches_the_minimum_and_stops_when_diverging():
    quadratic = optimizers.SURFACES[0]
    converged = optimizers.descend(quadratic, numpy_optimizers.SGD(0.9), 200)
    assert converged.shape == (201, 2)
    np.testing.assert_allclose(converged[-1], quadratic.minimum, atol=1e-3)
    diverged = optimizers.descend(quadratic, numpy_optimizers.SGD(1.1), 200)
    assert len(diverged) < 201 and np.abs(diverged[-1]).max() > optimizers.DIVERGED


def test_optimizers_lab_smoke(tmp_path):
    result = run_lab("labs.optimizers", "--smoke", "--epochs", 2, "--keras-epochs", 1,
                     "--surface-steps", 100, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_metrics(tmp_path)
    assert metrics["test_accuracy"] > 0.6  # from-scratch network, 1 024 images, 2 epochs
    table = {row["optimizer"]: row for row in metrics["optimizer_table"]}
    assert {"sgd", "adadelta", "adam", "custom_adam", "custom_amsgrad", "custom_adam decay=0.001"} <= set(table)
    assert all(0.1 < row["test_accuracy"] <= 1 and row["seconds_per_epoch"] > 0 for row in table.values())
    # Same weights, same batches: the course's Adam reproduces Keras's Adam in the table.
    assert table["custom_adam"]["test_accuracy"] == pytest.approx(table["adam"]["test_accuracy"], abs=2e-3)
    assert table["custom_amsgrad"]["test_accuracy"] == pytest.approx(
        table["amsgrad"]["test_accuracy"], abs=2e-3)
    steps = metrics["learning_rate_steps_taken"]
    assert [value for name, value in steps.items() if "too large" in name][0] < 100
    assert all(value == 100 for name, value in steps.items() if "too large" not in name)
    first = metrics["adam_first_step"]
    assert first["without bias correction"] > 2 * first["with bias correction"]
    for name in ("surface1.png", "surface2.png", "surface3.png", "learning_rates.png",
                 "adam_bias_correction.png", "keras_optimizers.png", "numpy_history.csv"):
        assert (tmp_path / name).is_file(), name


def test_custom_adam_runs_the_numpy_network_as_adam():
    assert optimizers.numpy_optimizer_name("custom_adam") == "adam"
    assert optimizers.numpy_optimizer_name("rmsprop") == "rmsprop"


import numpy as np
import pytest

from dlcourse import data
from tests.conftest import run_lab


def test_mnist_bundle_is_the_full_data_set():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    # Every digit is present in both splits in roughly equal numbers.
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.bincount(y_train).min() > 5000 and np.bincount(y_test).min() > 850
    # The published first training labels.
    assert list(y_train[:8]) == [5, 0, 4, 1, 9, 2, 1, 3]


def test_mnist_splits_are_scaled_and_disjoint():
    splits = data.mnist_splits(flatten=True)
    assert [len(splits[name][0]) for name in ("train", "validation", "test")] == [55000, 5000, 10000]
    images, _ = splits["train"]
    assert images.shape[1] == 784 and images.dtype == np.float32
    assert 0.0 == images.min() and images.max() == 1.0
    smoke = data.mnist_splits(smoke=True)
    assert smoke["train"][0].shape == (data.SMOKE_SIZES["train"], 28, 28, 1)


def test_iris_has_three_balanced_species():
    features, labels = data.load_iris()
    assert features.shape == (150, 4) and features.dtype == np.float32
    assert np.bincount(labels).tolist() == [50, 50, 50]
    np.testing.assert_allclose(features[0], [5.1, 3.5, 1.4, 0.2])


def test_dataset_pipeline_batches_everything_once():
    features = np.arange(10, dtype="float32")[:, None]
    labels = np.arange(10)
    batches = list(data.as_dataset(features, labels, batch_size=4, shuffle=True, seed=0))
    assert [len(batch_labels) for _, batch_labels in batches] == [4, 4, 2]
    assert sorted(np.concatenate([batch_labels for _, batch_labels in batches])) == list(range(10))


def test_corrupt_bundle_names_file_and_fix(data_copy):
    bundle = data_copy / "mnist.npz"
    bundle.write_bytes(bundle.read_bytes()[:-100])
    with pytest.raises(data.DataError) as caught:
        data.load_mnist(data_dir=data_copy)
    message = str(caught.value)
    assert "mnist.npz" in message and "corrupt" in message and "git checkout" in message
    assert "\n" not in message


def test_missing_bundle_names_file(data_copy):
    (data_copy / "iris.csv").unlink()
    with pytest.raises(data.DataError, match=r"iris\.csv: file is missing"):
        data.load_iris(data_dir=data_copy)


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="bundled, online"):
        data.load_mnist(source="floppy")


def test_cli_reports_corrupt_bundle_in_one_line(data_copy, tmp_path):
    (data_copy / "mnist.npz").write_bytes(b"not a zip file")
    result = run_lab("labs.softmax_mnist", "--smoke", "--out", tmp_path / "run",
                     env={"DLCOURSE_DATA_DIR": str(data_copy)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines()
                   if line.startswith("python -m labs.softmax_mnist: error:")]
    assert len(error_lines) == 1 and "mnist.npz" in error_lines[0] and "corrupt" in error_lines[0]


def test_online_source_failure_is_one_clear_line(monkeypatch):
    import keras

    def unreachable():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", unreachable)
    with pytest.raises(data.DataError, match="could not download MNIST .*drop --data-source online"):
        data.load_mnist(source="online")

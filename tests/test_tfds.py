"""``--data-source tfds``: TFDS data in the bundled loaders' layout, offline.

TFDS's own ``tfds.testing.mock_data`` stands in for the downloaded data sets:
random examples generated from each builder's feature spec, or examples we
construct (``as_dataset_fn``) where exact values are checked.  The download
failure is a real TFDS download through a proxy on 127.0.0.1 that refuses
connections: no network is used.
"""
import json
import socket

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from dlcourse import data, tfds_data


def striped_digits(count):
    """MNIST-shaped examples whose label is written in the image: label k = rows 2k…2k+2 white.

    Learnable in one epoch, so a lab can only score well if images and labels
    stay paired through the TFDS seam.
    """
    labels = np.arange(count) % 10
    images = np.zeros((count, 28, 28, 1), dtype="uint8")
    for label in range(10):
        images[labels == label, 2 * label:2 * label + 3] = 255
    return images, labels.astype("int64")


def mock_mnist(train_size, test_size):
    """``tfds.testing.mock_data`` serving ``striped_digits`` for ``tfds.load("mnist")``."""
    def as_dataset(builder, split, **options):
        images, labels = striped_digits(train_size if split.startswith("train") else test_size)
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def test_sources_list_tfds():
    assert data.SOURCES == ("bundled", "online", "tfds")


def test_mnist_through_tfds_has_the_bundled_arrays_shapes_and_dtypes():
    (bundled_x, bundled_y), _ = data.load_mnist()
    with tfds.testing.mock_data(num_examples=24):
        (x_train, y_train), (x_test, y_test) = data.load_mnist(source="tfds")
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        assert images.shape == (24,) + bundled_x.shape[1:] and images.dtype == bundled_x.dtype
        assert labels.shape == (24,) and labels.dtype == bundled_y.dtype
        assert 0 <= labels.min() and labels.max() <= 9


def test_mnist_splits_through_tfds_split_and_scale_like_the_bundled_path():
    with mock_mnist(train_size=5300, test_size=600):
        full = data.mnist_splits("tfds")
        smoke = data.mnist_splits("tfds", smoke=True, flatten=True)
    bundled = data.mnist_splits(smoke=True, flatten=True)
    # The last 5 000 training images are the validation split, as for the bundled copy.
    assert {name: len(labels) for name, (_, labels) in full.items()} == \
        {"train": 300, "validation": 5000, "test": 600}
    assert {name: len(labels) for name, (_, labels) in smoke.items()} == \
        {"train": 300, "validation": 256, "test": 512}
    for name, (images, labels) in smoke.items():
        assert images.shape[1:] == bundled[name][0].shape[1:] == (784,)
        assert images.dtype == bundled[name][0].dtype and labels.dtype == bundled[name][1].dtype
    assert full["train"][0].shape[1:] == (28, 28, 1)
    # Images scaled to [0, 1], still paired with their labels, in TFDS's order.
    images, labels = full["validation"]
    expected_images, expected_labels = striped_digits(5300)
    np.testing.assert_array_equal(labels, expected_labels[300:])
    np.testing.assert_array_equal(images, expected_images[300:] / 255.0)


def test_fashion_mnist_through_tfds_and_its_class_names():
    with tfds.testing.mock_data(num_examples=8):
        (x_train, y_train), (x_test, _) = data.load_fashion_mnist("tfds")
    assert x_train.shape == x_test.shape == (8, 28, 28) and x_train.dtype == y_train.dtype == np.uint8
    with tfds.testing.mock_data(num_examples=8):
        builder = tfds.builder("fashion_mnist")
    names = builder.info.features["label"].names
    assert len(data.IMAGE_DATASETS["fashion_mnist"]) == len(names) == 10
    assert [name.lower() for name in data.IMAGE_DATASETS["fashion_mnist"]] == [name.lower() for name in names]


def test_fashion_mnist_is_not_bundled_and_says_where_to_get_it():
    with pytest.raises(data.DataError, match="not bundled.*--data-source online or tfds"):
        data.load_fashion_mnist("bundled")
    with pytest.raises(ValueError, match="unknown image data set"):
        data.mnist_splits("tfds", dataset="cifar10")


def test_iris_through_tfds_gives_four_features_and_the_labs_stratified_split():
    with tfds.testing.mock_data(num_examples=150):
        features, labels = data.load_iris(source="tfds")
        splits = data.iris_splits(source="tfds")
    assert features.shape == (150, 4) and features.dtype == np.float32
    assert labels.shape == (150,) and labels.dtype == np.int64
    assert set(np.unique(labels)) <= {0, 1, 2}
    # The lab's own 60/20/20 split, stratified by species, of the 150 TFDS flowers.
    train, validation, test = data.stratified_split(labels, (0.6, 0.2, 0.2), seed=0)
    for name, indices in (("train", train), ("validation", validation), ("test", test)):
        np.testing.assert_array_equal(splits[name][0], features[indices])
        np.testing.assert_array_equal(splits[name][1], labels[indices])
    assert sum(len(labels) for _, labels in splits.values()) == 150
    assert abs(len(splits["train"][1]) - 90) <= 2


def test_iris_has_no_online_source():
    with pytest.raises(data.DataError, match="Iris has no online source.*bundled.*tfds"):
        data.load_iris(source="online")


def test_voc_box_of_voc2007_image_000001_becomes_the_labs_pixel_box():
    # 000001.jpg is 353 wide, 500 high; VOC's 1-based inclusive boxes: the dog 48 240 195 371,
    # the person 8 12 352 498.  TFDS stores them divided by the size, as (ymin, xmin, ymax, xmax).
    normalised = np.array([[240 / 500, 48 / 353, 371 / 500, 195 / 353],
                           [12 / 500, 8 / 353, 498 / 500, 352 / 353]], dtype="float32")
    boxes = tfds_data.voc_pixel_boxes(normalised, height=500, width=353)
    np.testing.assert_array_equal(boxes, [[47, 239, 195, 371], [7, 11, 352, 498]])
    assert boxes.dtype == np.int64
    # A box over the whole image is the whole image: image[0:500, 0:353].
    np.testing.assert_array_equal(tfds_data.voc_pixel_boxes([[1 / 500, 1 / 353, 1.0, 1.0]], 500, 353),
                                  [[0, 0, 353, 500]])


def voc_example():
    """VOC 2007's 000001.jpg as TFDS decodes it (a blank image): a dog, and a difficult person."""
    return {
        "image": np.zeros((500, 353, 3), dtype="uint8"),
        "image/filename": "000001.jpg",
        "objects": {
            "bbox": np.array([[240 / 500, 48 / 353, 371 / 500, 195 / 353],
                              [12 / 500, 8 / 353, 498 / 500, 352 / 353]], dtype="float32"),
            "label": np.array([tfds_data.VOC_CLASSES.index("dog"), tfds_data.VOC_CLASSES.index("person")]),
            "pose": np.array([0, 0]),
            "is_truncated": np.array([True, False]),
            "is_difficult": np.array([False, True]),
        },
        "labels": np.array([11, 14]),
        "labels_no_difficult": np.array([11]),
    }


def test_load_voc2007_maps_boxes_and_labels_through_tfds():
    def as_dataset(builder, split, **options):
        return tf.data.Dataset.from_tensors(voc_example())

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        [(image, boxes, labels)] = tfds_data.load_voc2007("train")
        [(_, all_boxes, all_labels)] = tfds_data.load_voc2007("test", include_difficult=True)
        class_names = tfds.builder("voc/2007").info.features["objects"]["label"].names
    assert image.shape == (500, 353, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(boxes, [[47, 239, 195, 371]])      # the difficult person is left out
    assert [tfds_data.VOC_CLASSES[label] for label in labels] == ["dog"]
    np.testing.assert_array_equal(all_boxes, [[47, 239, 195, 371], [7, 11, 352, 498]])
    assert [tfds_data.VOC_CLASSES[label] for label in all_labels] == ["dog", "person"]
    assert len(tfds_data.VOC_CLASSES) == 20 and list(tfds_data.VOC_CLASSES) == class_names


def test_load_voc2007_skips_images_left_without_objects_and_takes_the_first_images():
    only_difficult = voc_example()
    only_difficult["objects"] = {key: values[1:] for key, values in only_difficult["objects"].items()}
    requested = []

    def as_dataset(builder, split, **options):
        requested.append(split)
        return tf.data.Dataset.from_tensors(only_difficult).concatenate(
            tf.data.Dataset.from_tensors(voc_example()))

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        scenes = tfds_data.load_voc2007("validation", limit=2)
    assert requested == ["validation[:2]"]
    assert len(scenes) == 1 and scenes[0][1].tolist() == [[47, 239, 195, 371]]
    with pytest.raises(ValueError, match="unknown VOC split"):
        tfds_data.load_voc2007("trainval")


def test_rcnn_lab_takes_voc2007_scenes_and_class_names_through_tfds():
    from dlcourse import cli
    from labs import rcnn

    def as_dataset(builder, split, **options):
        return tf.data.Dataset.from_tensors(voc_example())

    config = cli.make_config(rcnn.parser, dataset="voc2007", data_source="tfds", smoke=True)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        splits, class_names = rcnn.load_scenes(config)
    assert class_names == tfds_data.VOC_CLASSES
    assert set(splits) == {"train", "validation", "test"}
    for scenes in splits.values():
        [(image, boxes, labels)] = scenes
        assert image.shape == (500, 353, 3)
        assert boxes.tolist() == [[47, 239, 195, 371]] and labels.tolist() == [class_names.index("dog")]
    for wrong in ({"data_source": "bundled"}, {"data_source": "tfds", "classes": (1, 2)}):
        with pytest.raises(cli.UsageError, match="--dataset voc2007"):
            rcnn.load_scenes(cli.make_config(rcnn.parser, dataset="voc2007", smoke=True, **wrong))


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty TFDS folder and every HTTP(S) request sent to a closed port on 127.0.0.1."""
    with socket.socket() as probe:           # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, closed)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    from tensorflow_datasets.core.download import downloader
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)  # TFDS's ten retries with back-off take minutes


def test_tfds_without_network_is_one_readable_line(no_network):
    with pytest.raises(data.DataError) as raised:
        data.load_mnist(source="tfds")
    message = str(raised.value)
    assert message.startswith("TFDS could not download or read mnist (no network?): ")
    assert message.endswith("; use --data-source bundled (the default, offline)")
    assert "\n" not in message


def test_lab_without_network_exits_1_with_one_line(no_network, capsys):
    from labs import iris_ann

    assert iris_ann.main(["--data-source", "tfds", "--epochs", "1"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith("python -m labs.iris_ann: error: TFDS could not download or read iris "
                                "(no network?)")


def test_softmax_lab_runs_end_to_end_on_tfds_data(tmp_path):
    from labs import softmax_mnist

    with mock_mnist(train_size=6024, test_size=600):
        status = softmax_mnist.main(["--smoke", "--epochs", "1", "--data-source", "tfds", "--verbose", "0",
                                     "--out", str(tmp_path)])
    assert status == 0
    assert json.loads((tmp_path / "config.json").read_text())["data_source"] == "tfds"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # The stripes say the label: only images still paired with their labels score this well.
    assert metrics["test_accuracy"] > 0.9


def test_a_week1_classifier_trains_on_fashion_mnist_through_tfds(tmp_path, capsys):
    from labs import softmax_mnist

    with mock_mnist(train_size=6024, test_size=600):  # served for tfds.load("fashion_mnist") too
        status = softmax_mnist.main(["--smoke", "--epochs", "1", "--data-source", "tfds", "--dataset",
                                     "fashion_mnist", "--verbose", "0", "--out", str(tmp_path / "run")])
    assert status == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "fashion_mnist"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"] > 0.9
    capsys.readouterr()
    assert softmax_mnist.main(["--dataset", "fashion_mnist", "--out", str(tmp_path / "bundled")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == ["python -m labs.softmax_mnist: error: Fashion-MNIST is not bundled in data/; "
                      "use --data-source online or tfds"]

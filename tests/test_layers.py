"""The shared blocks of dlcourse.layers, and that the labs really share them."""
import keras
import numpy as np
import pytest

from dlcourse import cli, data, layers
from dlcourse.training import Run
from labs import cnn_mnist, iris_ann, mlp_mnist, softmax_mnist, stacked_autoencoder


def layer_sizes(block):
    return [layer.units for layer in block.layers if isinstance(layer, keras.layers.Dense)]


def test_dense_stack_sizes_and_dropout():
    block = layers.dense_stack((32, 16), dropout=0.3, name="stack")
    output = block(np.zeros((5, 8), dtype="float32"))
    assert output.shape == (5, 16)
    assert layer_sizes(block) == [32, 16]
    assert [type(layer).__name__ for layer in block.layers] == ["Dense", "Dropout"] * 2
    assert layers.dense_stack((4,)).layers[-1].activation is keras.activations.relu


def test_classifier_head_gives_probabilities_in_float32_even_under_mixed_precision():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        head = layers.classifier_head(3, hidden=(8,), dropout=0.5)
        probabilities = keras.ops.convert_to_numpy(head(np.random.rand(4, 5).astype("float32")))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert layer_sizes(head) == [8, 3]


def test_autoencoder_blocks_mirror_each_other():
    encoder, decoder = layers.autoencoder_blocks(784, (256, 128))
    code = encoder(np.zeros((2, 784), dtype="float32"))
    reconstruction = keras.ops.convert_to_numpy(decoder(code))
    assert code.shape == (2, 128) and reconstruction.shape == (2, 784)
    assert layer_sizes(encoder) == [256, 128] and layer_sizes(decoder) == [256, 784]
    assert 0.0 <= reconstruction.min() and reconstruction.max() <= 1.0  # sigmoid pixels


@pytest.mark.parametrize("model", [
    softmax_mnist.build_model(), mlp_mnist.build_model(), cnn_mnist.build_model(),
    iris_ann.build_model(np.random.rand(10, 4).astype("float32")),
    stacked_autoencoder.build_models()[2],
], ids=["softmax", "mlp", "cnn", "iris", "stacked"])
def test_every_classifier_lab_ends_in_the_shared_head(model):
    assert model.layers[-1].name == "classifier"
    assert model.layers[-1].layers[-1].name == "softmax"


def test_mlp_is_the_course_network():
    model = mlp_mnist.build_model(dropout=0.0)
    assert layer_sizes(model.get_layer("hidden")) == [256, 256]
    assert model.count_params() == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def test_stacked_autoencoder_shares_one_encoder():
    encoder, autoencoder, classifier = stacked_autoencoder.build_models()
    assert autoencoder.get_layer("encoder") is encoder is classifier.get_layer("encoder")


def snapshot(block):
    return [np.array(weight) for weight in block.get_weights()]


def test_stacked_autoencoder_steps_keep_then_move_the_pretrained_encoder(tmp_path):
    config = cli.make_config(stacked_autoencoder.parser, smoke=True, epochs=2, out=str(tmp_path),
                             verbose=0)
    training_run = Run(config)
    splits = stacked_autoencoder.load_data(config)
    encoder, autoencoder, classifier = stacked_autoencoder.build_models()
    initial = snapshot(encoder)
    stacked_autoencoder.pretrain(training_run, autoencoder, splits)
    pretrained = snapshot(encoder)
    assert any(not np.allclose(a, b) for a, b in zip(initial, pretrained)), "step 1 trains the encoder"

    frozen = stacked_autoencoder.train_on_code(training_run, encoder, classifier, splits, fine_tune=False)
    # Step 2 starts from, and keeps, exactly the pre-trained encoder.
    assert all(np.array_equal(a, b) for a, b in zip(pretrained, snapshot(encoder)))
    assert 0.0 < frozen["test_accuracy"] <= 1.0

    stacked_autoencoder.train_on_code(training_run, encoder, classifier, splits, fine_tune=True)
    assert any(not np.allclose(a, b) for a, b in zip(pretrained, snapshot(encoder))), \
        "step 3 fine-tunes the encoder"


def test_iris_split_is_fixed_stratified_and_disjoint():
    first, second = data.iris_splits(), data.iris_splits()
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(first[name][0], second[name][0])
    assert [np.bincount(first[name][1]).tolist() for name in ("train", "validation", "test")] == \
        [[30, 30, 30], [10, 10, 10], [10, 10, 10]]
    _, labels = data.load_iris()
    parts = data.stratified_split(labels, (0.6, 0.2, 0.2))
    assert sorted(np.concatenate(parts).tolist()) == list(range(150))  # a partition
    assert not np.array_equal(parts[2], data.stratified_split(labels, (0.6, 0.2, 0.2), seed=1)[2])

"""Week 1 · convolutional network on MNIST (conv–pool–conv–pool–dense–dropout).

The course's network: two 5×5 convolution + 2×2 max-pooling stages (32 and
64 filters), a 256-unit dense layer with dropout 0.5, and softmax.  The
course trains it with Adam 1e-4 for 20 000 steps (~40 minutes on two CPU
cores, ~99.1 %).  Here the same layers train in 8 epochs: a larger peak
learning rate (2e-3) reached by a short linear warm-up and then lowered
along a cosine to zero (``--schedule cosine``) converges much faster than a
fixed 1e-4.

    python -m labs.cnn_mnist --epochs 8
"""
import sys

import keras

from dlcourse import cli, data, layers
from dlcourse.training import train_classifier

NAME = "cnn_mnist"
REFERENCE = {"metric": "test_accuracy", "course": 0.991}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=8, batch_size=128, lr=2e-3,
                        optimizer="adam", schedule="cosine")
parser.add_argument("--dropout", type=cli.fraction, default=0.5, help="dropout rate before the softmax layer")
cli.add_image_dataset_argument(parser)


# 1. The data: 28×28×1 images in [0, 1]; 55 000 train / 5 000 validation / 10 000 test.
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke,
                             dataset=config.dataset)


# 2. The model: features from two conv–pool stages, then a dense classifier head.
def build_model(dropout=0.5):
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(2, name="pool2"),
        keras.layers.Flatten(name="flatten"),
        layers.classifier_head(10, hidden=(256,), dropout=dropout),
    ], name=NAME)


# 3. The loss: cross-entropy of the softmax output.
LOSS = keras.losses.SparseCategoricalCrossentropy()


# 4. The algorithm: the chosen optimizer, by default Adam with warm-up + cosine decay.
def run(config):
    return train_classifier(config, load_data(config), lambda: build_model(config.dropout),
                            LOSS, data.IMAGE_DATASETS[config.dataset], image_shape=(28, 28))


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

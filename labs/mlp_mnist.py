"""Week 1 · multi-layer perceptron on MNIST (784 → 256 → 256 → 10, ReLU).

The course's network: two hidden layers of 256 ReLU units between the pixels
and the softmax (about 94.5 % in the course).  Two additions, both
switchable, lift it well above that (RESULTS.md): dropout after each hidden
layer (``--dropout``, 0 gives the course's network) and Adam with warm-up +
cosine decay (``--schedule constant`` gives a fixed learning rate).

    python -m labs.mlp_mnist --epochs 20
"""
import sys

import keras

from dlcourse import cli, data, layers
from dlcourse.training import train_classifier

NAME = "mlp_mnist"
REFERENCE = {"metric": "test_accuracy", "course": 0.945}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=20, batch_size=128, lr=1e-3,
                        optimizer="adam", schedule="cosine")
parser.add_argument("--hidden", type=cli.positive_int, nargs="+", default=[256, 256],
                    help="sizes of the hidden layers")
parser.add_argument("--dropout", type=cli.fraction, default=0.2, help="dropout after each hidden layer")
cli.add_image_dataset_argument(parser)


# 1. The data: images flattened to 784 values in [0, 1].
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke, flatten=True,
                             dataset=config.dataset)


# 2. The model: a stack of ReLU layers, then the softmax classifier head.
def build_model(hidden=(256, 256), dropout=0.2):
    return keras.Sequential([
        keras.Input(shape=(784,)),
        layers.dense_stack(hidden, activation="relu", dropout=dropout, name="hidden"),
        layers.classifier_head(10),
    ], name=NAME)


# 3. The loss: cross-entropy.
LOSS = keras.losses.SparseCategoricalCrossentropy()


# 4. The algorithm: back-propagation with the chosen optimizer (default Adam, cosine schedule).
def run(config):
    return train_classifier(config, load_data(config),
                            lambda: build_model(config.hidden, config.dropout),
                            LOSS, data.IMAGE_DATASETS[config.dataset], image_shape=(28, 28))


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Week 1 · softmax regression on MNIST (784 → 10).

The simplest classifier of the course: every pixel votes for every digit with
one weight, and softmax turns the ten vote totals into probabilities.  The
course reaches about 91.8 % test accuracy with it; a linear model of pixels
cannot be expected to do much better.

    python -m labs.softmax_mnist --epochs 10
"""
import sys

import keras

from dlcourse import cli, data, layers
from dlcourse.training import train_classifier

NAME = "softmax_mnist"
REFERENCE = {"metric": "test_accuracy", "course": 0.918}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0],
                        epochs=10, batch_size=100, lr=0.5, optimizer="sgd")
cli.add_image_dataset_argument(parser)


# 1. The data: 55 000 training, 5 000 validation and 10 000 test images, flattened to 784.
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke, flatten=True,
                             dataset=config.dataset)


# 2. The model: y = softmax(xW + b), nothing else (a classifier head with no hidden layer).
def build_model():
    return keras.Sequential([keras.Input(shape=(784,)), layers.classifier_head(10)], name=NAME)


# 3. The loss: cross-entropy between the predicted distribution and the true digit.
LOSS = keras.losses.SparseCategoricalCrossentropy()


# 4. The algorithm: mini-batch gradient descent (any --optimizer), then evaluation.
def run(config):
    return train_classifier(config, load_data(config), build_model, LOSS,
                            data.IMAGE_DATASETS[config.dataset], image_shape=(28, 28))


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

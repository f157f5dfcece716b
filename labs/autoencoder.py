"""Week 1 · autoencoder on MNIST (784 → 256 → 128 → 256 → 784).

An autoencoder learns to copy its input through a narrow middle layer, the
*code* (128 numbers for 784 pixels).  No labels are used: the target is the
image itself, and whatever the code keeps is what the network found most
useful for drawing the digit again.

    python -m labs.autoencoder --epochs 20
"""
import sys

import keras

from dlcourse import autoencoding, cli, data, layers
from dlcourse.training import Run

NAME = "autoencoder"
REFERENCE = {"metric": "test_reconstruction_mse", "course": None}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=20, batch_size=128, lr=2e-3,
                        optimizer="adam", schedule="cosine")
parser.add_argument("--code-sizes", type=cli.positive_int, nargs="+", default=[256, 128],
                    help="encoder layer sizes; the last one is the code")


# 1. The data: images flattened to 784 values in [0, 1]; inputs and targets are the same.
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke, flatten=True)


# 2. The model: an encoder down to the code, and a decoder back up to 784 pixels.
def build_model(code_sizes=(256, 128)):
    encoder, decoder = layers.autoencoder_blocks(784, code_sizes)
    return keras.Sequential([keras.Input(shape=(784,)), encoder, decoder], name=NAME)


# 3. The loss: mean squared error between the input pixels and the reconstruction.
LOSS = keras.losses.MeanSquaredError()


# 4. The algorithm: the optimizer (default Adam, cosine schedule) on (image, image) pairs.
def run(config):
    training_run = Run(config)
    splits = load_data(config)
    with training_run.strategy.scope():
        model = build_model(config.code_sizes)
    autoencoding.fit_autoencoder(training_run, model, splits, LOSS)
    report = autoencoding.reconstruction_report(training_run, model, splits["test"][0])
    return training_run.finish(**report)


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

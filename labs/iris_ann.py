"""Week 1 homework · an artificial neural network that tells three Iris species apart.

Four measurements per flower (sepal and petal length and width, in cm), 150
flowers, three species.  The split is fixed and stratified (90 train / 30
validation / 30 test, the same on every machine), so everybody's test
accuracy can be compared.

    python -m labs.iris_ann
"""
import sys

import keras

from dlcourse import cli, data, layers
from dlcourse.training import train_classifier

NAME = "iris_ann"
REFERENCE = {"metric": "test_accuracy", "course": None}

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=150, batch_size=16, lr=0.01,
                        optimizer="adam")
parser.add_argument("--hidden", type=cli.positive_int, nargs="+", default=[16, 16],
                    help="sizes of the hidden layers")


# 1. The data: 4 features per flower, in the fixed stratified split (already tiny: --smoke changes nothing);
#    --data-source tfds takes the 150 flowers from TensorFlow Datasets instead of data/.
def load_data(config):
    return data.iris_splits(source=config.data_source)


# 2. The model: standardise each feature (mean 0, variance 1, learned from the training
#    split only), then a small ReLU network and a 3-way softmax.
def build_model(train_features, hidden=(16, 16)):
    standardise = keras.layers.Normalization(name="standardise")
    standardise.adapt(train_features)
    return keras.Sequential([
        keras.Input(shape=(4,)),
        standardise,
        layers.dense_stack(hidden, activation="relu", name="hidden"),
        layers.classifier_head(len(data.IRIS_SPECIES)),
    ], name=NAME)


# 3. The loss: cross-entropy over the three species.
LOSS = keras.losses.SparseCategoricalCrossentropy()


# 4. The algorithm: Adam on mini-batches of 16 flowers.
def run(config):
    splits = load_data(config)
    return train_classifier(config, splits, lambda: build_model(splits["train"][0], config.hidden),
                            LOSS, list(data.IRIS_SPECIES))


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

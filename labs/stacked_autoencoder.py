"""Week 1 · stacked autoencoder: unsupervised pre-training, then a classifier on the code.

Three steps, as in the course:

1. pre-train the autoencoder 784→256→128→256→784 on the images alone;
2. put a softmax classifier on the 128-number code and train only that,
   with the pre-trained encoder frozen;
3. fine-tune encoder and classifier together.

``metrics.json`` reports the test accuracy after step 2 and after step 3, so
the effect of fine-tuning can be seen.

    python -m labs.stacked_autoencoder --epochs 15
"""
import sys

import keras

from dlcourse import autoencoding, cli, data, evaluation, layers
from dlcourse.training import Run, training_steps

NAME = "stacked_autoencoder"
REFERENCE = {"metric": "test_accuracy", "course": 0.966}
DIGITS = [str(digit) for digit in range(10)]

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=15, batch_size=128, lr=2e-3,
                        optimizer="adam", schedule="cosine")
parser.add_argument("--code-sizes", type=cli.positive_int, nargs="+", default=[256, 128],
                    help="encoder layer sizes; the last one is the code")
parser.add_argument("--finetune-lr-factor", type=cli.positive_float, default=1.0,
                    help="step 3 learning rate = --lr × this factor (try 0.1: smaller steps stay "
                         "closer to the pre-trained features)")


# 1. The data: images flattened to 784 values; labels are used only in steps 2 and 3.
def load_data(config):
    return data.mnist_splits(config.data_source, smoke=config.smoke, flatten=True)


# 2. The models: one encoder object, shared by the autoencoder and the classifier.
def build_models(code_sizes=(256, 128)):
    """Return ``(encoder, autoencoder, classifier)``; training either one moves the encoder."""
    encoder, decoder = layers.autoencoder_blocks(784, code_sizes)
    autoencoder = keras.Sequential([keras.Input(shape=(784,)), encoder, decoder], name="autoencoder")
    classifier = keras.Sequential([keras.Input(shape=(784,)), encoder, layers.classifier_head(10)],
                                  name="classifier_on_code")
    return encoder, autoencoder, classifier


# 3. The losses: reconstruction error for step 1, cross-entropy for steps 2 and 3.
RECONSTRUCTION_LOSS = keras.losses.MeanSquaredError()
CLASSIFICATION_LOSS = keras.losses.SparseCategoricalCrossentropy()


# 4. The algorithm: the three steps.
def pretrain(training_run, autoencoder, splits):
    """Step 1: the autoencoder learns to redraw the training images (no labels)."""
    return autoencoding.fit_autoencoder(training_run, autoencoder, splits, RECONSTRUCTION_LOSS,
                                        phase="pretrain")


def train_on_code(training_run, encoder, classifier, splits, fine_tune):
    """Step 2 (``fine_tune=False``: encoder frozen) or step 3 (everything trains)."""
    config = training_run.config
    encoder.trainable = fine_tune
    train = data.as_dataset(*splits["train"], config.batch_size, shuffle=True, seed=config.seed)
    validation = data.as_dataset(*splits["validation"], config.batch_size)
    optimizer_scale = config.finetune_lr_factor if fine_tune else 1.0
    with training_run.strategy.scope():
        training_run.compile(classifier, CLASSIFICATION_LOSS, lr_scale=optimizer_scale,
                             total_steps=training_steps(config, len(splits["train"][0])))
    phase = "finetune" if fine_tune else "classifier"
    training_run.fit(classifier, train, validation, phase=phase)
    return evaluation.evaluate_classifier(training_run, classifier, splits["test"], DIGITS,
                                          image_shape=(28, 28), phase=phase)


def run(config):
    training_run = Run(config)
    splits = load_data(config)
    with training_run.strategy.scope():
        encoder, autoencoder, classifier = build_models(config.code_sizes)
    pretrain(training_run, autoencoder, splits)
    reconstruction = autoencoding.reconstruction_report(training_run, autoencoder,
                                                        splits["test"][0], phase="pretrain")
    frozen = train_on_code(training_run, encoder, classifier, splits, fine_tune=False)
    tuned = train_on_code(training_run, encoder, classifier, splits, fine_tune=True)
    return training_run.finish(
        **tuned, test_accuracy_before_finetuning=frozen["test_accuracy"],
        finetuning_gain=round(tuned["test_accuracy"] - frozen["test_accuracy"], 5), **reconstruction)


def main(argv=None):
    return cli.main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())

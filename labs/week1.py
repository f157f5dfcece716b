"""Week 1: the MNIST family and the Iris homework.
``python -m labs.week1 [--lab NAME] [any option of its labs]`` (``--help`` lists them)."""
import sys

from dlcourse import weeks

LABS = ("softmax_mnist", "mlp_mnist", "cnn_mnist", "autoencoder", "stacked_autoencoder", "iris_ann")


def main(argv=None):
    return weeks.main("week1", LABS, argv)


if __name__ == "__main__":
    sys.exit(main())

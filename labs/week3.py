"""Week 3: the Korean Char-RNN (LSTM/GRU text generation).  ``python -m labs.week3 [any option of the lab]``."""
import sys

from dlcourse import weeks

LABS = ("char_rnn",)


def main(argv=None):
    return weeks.main("week3", LABS, argv)


if __name__ == "__main__":
    sys.exit(main())

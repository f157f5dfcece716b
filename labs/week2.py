"""Week 2: gradient descent from scratch and the optimizer zoo.  ``python -m labs.week2 [any option of the lab]``."""
import sys

from dlcourse import weeks

LABS = ("optimizers",)


def main(argv=None):
    return weeks.main("week2", LABS, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Week 4: news titles with a GRU encoder–decoder (offline corpus → train → evaluate).
``python -m labs.week4 [any option of the lab]``; crawling a real site: ``python -m labs.news_seq2seq crawl``."""
import sys

from dlcourse import weeks

LABS = ("news_seq2seq",)


def main(argv=None):
    return weeks.main("week4", LABS, argv)


if __name__ == "__main__":
    sys.exit(main())

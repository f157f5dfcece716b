"""``python -m dlcourse.crawler [flags]``: the same command as ``python -m labs.news_seq2seq crawl``."""
import sys

from dlcourse.crawler.command import main

sys.exit(main())

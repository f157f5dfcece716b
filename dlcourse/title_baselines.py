"""Two baselines for writing a news title, so the seq2seq model's ROUGE means something.

* **lead**: the first words of the body.  News often says the essential
  thing first, so this is a strong, free baseline.  How many words is tuned
  on the training titles (their median length), never on the test split.
* **nearest neighbour**: the title of the most similar training body.  If
  the model only memorised titles of similar articles, it would do no better
  than this.
"""
import statistics

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


def lead_titles(bodies, num_words):
    """The first ``num_words`` whitespace-separated words of every body, joined by single spaces."""
    if num_words < 1:
        raise ValueError(f"num_words must be at least 1, got {num_words}")
    return [" ".join(body.split()[:num_words]) for body in bodies]


def lead_length(train_titles):
    """The median number of words of the training titles, rounded half up, at least 1."""
    counts = [len(title.split()) for title in train_titles]
    if not counts:
        raise ValueError("no training titles")
    return max(1, int(statistics.median(counts) + 0.5))


def nearest_neighbour_titles(train_bodies, train_titles, test_bodies):
    """For every test body, the title of the training body with the highest TF-IDF cosine similarity.

    Features are character 1- to 3-grams inside word boundaries
    (``analyzer="char_wb"``): Korean words change their endings ('정부가',
    '정부는'), and without a morphological analyser shared character n-grams
    are what shows that two texts talk about the same thing.  ``sublinear_tf``
    (1 + log tf) keeps a character repeated many times from dominating.

    The vectorizer (vocabulary and IDF) is fitted on the training bodies only.
    The vectors are L2-normalised, so a dot product is the cosine.  Ties go to
    the lowest training index (an empty test body, similar to nothing, gets
    the first training title).
    """
    if len(train_bodies) != len(train_titles):
        raise ValueError(f"{len(train_bodies)} training bodies but {len(train_titles)} titles")
    if not train_bodies:
        raise ValueError("no training bodies")
    if not test_bodies:
        return []
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    train_vectors = vectorizer.fit_transform(train_bodies)
    test_vectors = vectorizer.transform(test_bodies)
    similarities = (test_vectors @ train_vectors.T).toarray()  # (test, train)
    nearest = np.argmax(similarities, axis=1)  # the first maximum wins ties
    return [train_titles[index] for index in nearest]

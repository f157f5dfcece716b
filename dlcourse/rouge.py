"""Character-level ROUGE for Korean titles.

ROUGE compares a predicted text with a reference by counting what they share:
ROUGE-N counts common n-grams, ROUGE-L the longest common subsequence (LCS).
Precision divides by the prediction's size, recall by the reference's, and
F1 is their harmonic mean.

Here the units are *characters*, not words.  A Korean word carries its
particles and endings ('정부가', '정부는', '정부의' are three different words
for one noun), so a word-level ROUGE would score a title that says the same
thing as a near miss; characters count the shared part.  All whitespace is
removed first, so '대통령 선거' and '대통령선거' are equal: Korean spacing
varies from writer to writer and should not change the score.
"""
import collections
import unicodedata

Score = collections.namedtuple("Score", "precision recall f1")


def characters(text):
    """The characters of ``text`` (NFC, so a syllable is one character) without any whitespace."""
    return [char for char in unicodedata.normalize("NFC", text) if not char.isspace()]


def _score(overlap, prediction_size, reference_size):
    """Precision, recall and F1 from an overlap count; 0 whenever a side is empty."""
    if overlap == 0 or prediction_size == 0 or reference_size == 0:
        return Score(0.0, 0.0, 0.0)
    precision, recall = overlap / prediction_size, overlap / reference_size
    return Score(precision, recall, 2 * precision * recall / (precision + recall))


def ngram_counts(chars, n):
    """How many times each run of ``n`` consecutive characters occurs."""
    return collections.Counter(tuple(chars[start:start + n]) for start in range(len(chars) - n + 1))


def rouge_n(prediction, reference, n):
    """ROUGE-N on characters: the n-grams the two texts share, each counted at most as often
    as it occurs in both (a prediction that repeats '한' five times gets credit for as many
    '한' as the reference has, not five)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    predicted = ngram_counts(characters(prediction), n)
    wanted = ngram_counts(characters(reference), n)
    overlap = sum((predicted & wanted).values())  # & keeps the smaller count of each n-gram
    return _score(overlap, sum(predicted.values()), sum(wanted.values()))


def lcs_length(first, second):
    """The length of the longest common subsequence of two sequences (dynamic programming)."""
    # previous[j]: the LCS length of the items of ``first`` read so far and second[:j].
    previous = [0] * (len(second) + 1)
    for item in first:
        current = [0]
        for j, other in enumerate(second, start=1):
            if item == other:
                current.append(previous[j - 1] + 1)
            else:
                current.append(max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction, reference):
    """ROUGE-L on characters: the longest common subsequence, so order counts but gaps are allowed."""
    predicted, wanted = characters(prediction), characters(reference)
    return _score(lcs_length(predicted, wanted), len(predicted), len(wanted))


def corpus_rouge(predictions, references):
    """Mean F1 over the pairs: ``{"rouge1": …, "rouge2": …, "rougeL": …}``.

    Every title counts the same (the average of sentence scores), so a long
    title does not weigh more than a short one.
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not references:
        raise ValueError("no titles to score")
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references):
        totals["rouge1"] += rouge_n(prediction, reference, 1).f1
        totals["rouge2"] += rouge_n(prediction, reference, 2).f1
        totals["rougeL"] += rouge_l(prediction, reference).f1
    return {name: total / len(references) for name, total in totals.items()}

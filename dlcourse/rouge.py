"""ROUGE for Korean titles, over characters or over morphemes.

ROUGE compares a predicted text with a reference by counting what they share:
ROUGE-N counts common n-grams, ROUGE-L the longest common subsequence (LCS).
Precision divides by the prediction's size, recall by the reference's, and
F1 is their harmonic mean.

By default the units are *characters*, not words.  A Korean word carries its
particles and endings ('정부가', '정부는', '정부의' are three different words
for one noun), so a word-level ROUGE would score a title that says the same
thing as a near miss; characters count the shared part.  All whitespace is
removed first, so '대통령 선거' and '대통령선거' are equal: Korean spacing
varies from writer to writer and should not change the score.

``unit="morpheme"`` counts morphemes instead, a unit Korean summarisation
evaluations commonly use: a morphological analyser (Kiwi, the PyPI package
``kiwipiepy``) splits '데비안을 설치하는 방법' into 데비안 을 설치 하 는 방법,
so a title that keeps the stems but changes a particle or an ending keeps
most of its score, while two words that merely share a syllable ('정부' and
'정리') share nothing.  The analyser is optional: ``pip install kiwipiepy``
(or ``pip install -e .[korean]``); it then works offline.
"""
import collections
import functools
import importlib.util
import unicodedata

Score = collections.namedtuple("Score", "precision recall f1")

UNITS = ("character", "morpheme")

# Kiwi's tags for punctuation and symbols (Sejong tag set): sentence-final, pause, quotes and
# brackets, ellipsis, dash and other symbols.  Numbers (SN), Latin words (SL) and hanja (SH)
# carry meaning in a title and are kept.
PUNCTUATION_TAGS = frozenset({"SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SB"})

_ANALYSER_PACKAGE = "kiwipiepy"


class MorphemeAnalyserMissing(ImportError):
    """Morpheme ROUGE was asked for, but the analyser package is not installed."""


def morpheme_rouge_available():
    """Whether ``unit="morpheme"`` can work here: the analyser and its model are installed
    (checked without importing them)."""
    try:
        return all(importlib.util.find_spec(name) is not None
                   for name in (_ANALYSER_PACKAGE, "kiwipiepy_model"))
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


@functools.cache
def analyser():
    """The Kiwi analyser, loaded once per process (a second or two, and its first sentence
    takes as long again, so it analyses one here).  Its model ships in the ``kiwipiepy_model``
    package: no network is needed."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as error:
        raise MorphemeAnalyserMissing(
            f"morpheme ROUGE needs the Korean morphological analyser Kiwi: "
            f"pip install {_ANALYSER_PACKAGE} (or pip install -e .[korean])") from error
    # One worker thread: the titles are short and analysed one at a time.
    kiwi = Kiwi(num_workers=1)
    kiwi.tokenize("형태소 분석기를 준비합니다.")
    return kiwi


def morphemes(text):
    """The morphemes of ``text`` as Kiwi writes them, without their tags and without
    punctuation or symbols (:data:`PUNCTUATION_TAGS`).

    Forms, not form/tag pairs: 하 is 하 whether Kiwi tags it a verb or a suffix in a given
    title, and a tag error should not cost a shared stem.  The forms are Kiwi's: contracted
    syllables are taken apart ('발표했다' gives 발표 하 었 다, '쓴' gives 쓰 and the ending ᆫ,
    a jamo) and allomorphs are merged (the past tense of 잡았다, 늘렸다, 했다 is 었 in all three).
    Raises :class:`MorphemeAnalyserMissing` when ``kiwipiepy`` is not installed.
    """
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        return []
    return [token.form for token in analyser().tokenize(text) if token.tag not in PUNCTUATION_TAGS]


def units(text, unit="character"):
    """``text`` cut into ROUGE's units: :func:`characters` or :func:`morphemes`."""
    if unit == "character":
        return characters(text)
    if unit == "morpheme":
        return morphemes(text)
    raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")


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
    """How many times each run of ``n`` consecutive items (characters or morphemes) occurs."""
    return collections.Counter(tuple(chars[start:start + n]) for start in range(len(chars) - n + 1))


def _rouge_n_units(predicted, wanted, n):
    predicted, wanted = ngram_counts(predicted, n), ngram_counts(wanted, n)
    overlap = sum((predicted & wanted).values())  # & keeps the smaller count of each n-gram
    return _score(overlap, sum(predicted.values()), sum(wanted.values()))


def rouge_n(prediction, reference, n, unit="character"):
    """ROUGE-N on characters (or morphemes): the n-grams the two texts share, each counted at
    most as often as it occurs in both (a prediction that repeats '한' five times gets credit
    for as many '한' as the reference has, not five)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return _rouge_n_units(units(prediction, unit), units(reference, unit), n)


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


def _rouge_l_units(predicted, wanted):
    return _score(lcs_length(predicted, wanted), len(predicted), len(wanted))


def rouge_l(prediction, reference, unit="character"):
    """ROUGE-L on characters (or morphemes): the longest common subsequence, so order counts
    but gaps are allowed."""
    return _rouge_l_units(units(prediction, unit), units(reference, unit))


def corpus_rouge(predictions, references, unit="character"):
    """Mean F1 over the pairs: ``{"rouge1": …, "rouge2": …, "rougeL": …}``.

    Every title counts the same (the average of sentence scores), so a long
    title does not weigh more than a short one.  ``unit`` is ``"character"``
    or ``"morpheme"`` (see :func:`morphemes`; needs ``kiwipiepy``).
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not references:
        raise ValueError("no titles to score")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references):
        # Cut each text once: the analyser is the slow part of morpheme ROUGE.
        predicted, wanted = units(prediction, unit), units(reference, unit)
        totals["rouge1"] += _rouge_n_units(predicted, wanted, 1).f1
        totals["rouge2"] += _rouge_n_units(predicted, wanted, 2).f1
        totals["rougeL"] += _rouge_l_units(predicted, wanted).f1
    return {name: total / len(references) for name, total in totals.items()}

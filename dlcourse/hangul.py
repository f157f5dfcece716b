"""Hangul text utilities for the Korean Char-RNN (week 3).

A Hangul syllable such as '한' is one Unicode character, but it is written
with two or three letters (jamo): an initial consonant (초성) 'ᄒ', a vowel
(중성) 'ᅡ' and, optionally, a final consonant (종성) 'ᆫ'.  A character-level
model can therefore read Korean at two levels:

- ``"syllable"``: one token per character ('한국' → '한', '국');
- ``"jamo"``: one token per jamo ('한국' → 'ᄒ', 'ᅡ', 'ᆫ', 'ᄀ', 'ᅮ', 'ᆨ').

Unicode already knows how syllables are built, so we let ``unicodedata`` do
the work instead of writing tables by hand: NFD normalisation splits a
syllable into its conjoining jamo (U+1100–U+11FF) and NFC normalisation puts
them back together.

Everything here expects NFC text (what ``dlcourse.data.read_text_corpus``
returns), where every syllable is a single code point.
"""
import collections
import functools
import json
import math
import pathlib
import unicodedata

import numpy as np

FIRST_SYLLABLE, LAST_SYLLABLE = "\uac00", "\ud7a3"  # '가' and '힣'
SYLLABLE_COUNT = 11172  # 19 initial consonants × 21 vowels × 28 finals (27 + none)
# Conjoining jamo: the basic block and the two blocks of old-Hangul extensions.
CONJOINING_JAMO_RANGES = (("\u1100", "\u11ff"), ("\ua960", "\ua97f"), ("\ud7b0", "\ud7ff"))
LEVELS = ("syllable", "jamo")


def is_syllable(char):
    """True for a precomposed Hangul syllable, '가' (U+AC00) to '힣' (U+D7A3)."""
    return FIRST_SYLLABLE <= char <= LAST_SYLLABLE


def is_conjoining_jamo(char):
    """True for a conjoining jamo, the letters that NFD splits a syllable into."""
    return any(first <= char <= last for first, last in CONJOINING_JAMO_RANGES)


# ---------------------------------------------------------------------------
# Syllables <-> jamo
# ---------------------------------------------------------------------------

def to_jamo(text):
    """Split every Hangul syllable of ``text`` into its conjoining jamo.

    >>> [hex(ord(jamo)) for jamo in to_jamo("한")]
    ['0x1112', '0x1161', '0x11ab']

    Only Hangul syllables are decomposed.  NFD on the whole text would also
    split other characters (for example 'é' into 'e' and a combining accent),
    which would add tokens that have nothing to do with Korean; here every
    other character is kept exactly as it is.  With that rule
    ``from_jamo(to_jamo(text)) == text`` holds for every NFC text.
    """
    return "".join(unicodedata.normalize("NFD", char) if is_syllable(char) else char
                   for char in text)


def from_jamo(jamo_text):
    """Join conjoining jamo back into syllables (NFC normalisation).

    Jamo that do not form a syllable (a lone consonant, a vowel without an
    initial consonant) are left as they are; use ``complete_syllables`` to
    get rid of them.
    """
    return unicodedata.normalize("NFC", jamo_text)


@functools.cache
def compatibility_jamo(jamo):
    """The stand-alone letter (compatibility jamo, ㄱ–ㅣ) for a conjoining jamo, or ''.

    Both kinds of jamo have Unicode names built the same way, so the name
    gives the mapping without a table: 'HANGUL CHOSEONG KIYEOK' (ᄀ) and
    'HANGUL JONGSEONG KIYEOK' (ᆨ) both become 'HANGUL LETTER KIYEOK' (ㄱ).
    Old-Hangul jamo without such a letter give ''.
    """
    name = unicodedata.name(jamo, "")
    words = name.split(" ", 2)  # e.g. ["HANGUL", "JUNGSEONG", "A"]
    if len(words) != 3 or words[1] not in ("CHOSEONG", "JUNGSEONG", "JONGSEONG"):
        return ""
    try:
        return unicodedata.lookup("HANGUL LETTER " + words[2])
    except KeyError:
        return ""


def is_complete(jamo_text):
    """True when every jamo in ``jamo_text`` belongs to a complete syllable.

    A text generated jamo by jamo can stop in the middle of a syllable
    ('ᄒ' alone) or contain jamo in an impossible order ('ᅡ' with no
    initial consonant); then this is False.
    """
    return not any(is_conjoining_jamo(char) for char in from_jamo(jamo_text))


def complete_syllables(jamo_text):
    """Turn any jamo sequence into clean NFC text.

    Jamo are first joined into syllables (``from_jamo``).  Every conjoining
    jamo left over (an orphan, or an incomplete syllable at the end) becomes
    the stand-alone letter that Koreans type on their own, as in 'ㅋㅋ':
    'ᄒ' → 'ㅎ', 'ᅡ' → 'ㅏ'.  Old-Hangul jamo with no such letter are
    dropped.  The result is always NFC and has no conjoining jamo in it.

    >>> complete_syllables(to_jamo("한국") + "\u1112")  # cut after an initial consonant
    '한국ㅎ'
    """
    text = from_jamo(jamo_text)
    text = "".join(compatibility_jamo(char) if is_conjoining_jamo(char) else char
                   for char in text)
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------------------
# Tokens and bits per character
# ---------------------------------------------------------------------------

def _check_level(level):
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")


def split_tokens(text, level):
    """The tokens of ``text`` at ``level``: characters, or characters of ``to_jamo(text)``."""
    _check_level(level)
    text = unicodedata.normalize("NFC", text)
    return list(to_jamo(text) if level == "jamo" else text)


def count_characters(text):
    """The number of characters of ``text`` once NFC-normalised (a syllable counts once)."""
    return len(unicodedata.normalize("NFC", text))


def characters_per_token(text, level):
    """How many characters of ``text`` one token stands for, on average.

    Always 1.0 at the syllable level.  At the jamo level a syllable takes two
    or three tokens while spaces, digits and punctuation take one, so the
    shipped corpus gives about 0.55.
    """
    tokens = len(split_tokens(text, level))
    if tokens == 0:
        raise ValueError("the text is empty")
    return count_characters(text) / tokens


def bits_per_character(loss_per_token, text, level):
    """Convert a mean loss per token (in nats, as Keras reports it) on ``text`` to bits per character.

    A jamo-level model predicts more tokens than a syllable-level model for
    the same text, so its loss per token is not comparable.  Bits per
    character of the NFC text is:

        total loss in bits / characters
        = loss_per_token × tokens / ln 2 / characters
        = loss_per_token / ln 2 / characters_per_token

    which measures both levels on the same text with the same ruler.
    """
    return loss_per_token / math.log(2) / characters_per_token(text, level)


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
DEFAULT_SPECIALS = (PAD, UNK)
UNKNOWN_CHARACTER = "\ufffd"  # '�', what decode() writes for <unk>


class Vocabulary:
    """A fixed mapping between tokens (single characters) and integer ids.

    By default ids 0 and 1 are the two special tokens:

    - ``<pad>`` (0) fills up sequences of different lengths in one batch; no
      real character gets id 0, so ``keras.layers.Embedding(mask_zero=True)``
      can ignore padding.  ``decode`` skips it.
    - ``<unk>`` (1) stands for every character not seen when the vocabulary
      was built.  ``decode`` writes it as '�' (U+FFFD).

    A model that needs more markers passes its own ``specials``, for example
    ``("<pad>", "<s>", "</s>", "<unk>")`` for a decoder that must know where a
    title starts and ends (``dlcourse.seq2seq``).  ``<pad>`` always comes
    first; ``decode`` skips every special token except ``<unk>``.

    The real tokens follow in code-point order, so building from the same
    text always gives the same ids (at the jamo level, initial consonants,
    vowels and final consonants get three separate runs of ids).

    Build one with ``Vocabulary.from_text(text, level)``.
    """

    def __init__(self, tokens, level="syllable", specials=DEFAULT_SPECIALS):
        """``tokens``: the regular tokens (single characters) in id order, without the specials.

        ``specials``: the special tokens, which take the first ids in this
        order; the first must be ``<pad>`` and ``<unk>`` must be among them.
        """
        _check_level(level)
        specials = tuple(specials)
        if specials[:1] != (PAD,) or UNK not in specials or len(set(specials)) != len(specials):
            raise ValueError(f"the special tokens must be distinct, start with {PAD} and include "
                             f"{UNK}, got {specials}")
        tokens = list(tokens)
        for token in tokens:
            if not isinstance(token, str) or len(token) != 1:
                raise ValueError(f"a token must be one character, got {token!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the tokens of a vocabulary must be distinct")
        self.level = level
        self.specials = specials
        self.unk_id = specials.index(UNK)
        self.tokens = [*specials, *tokens]
        self.token_to_id = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def from_text(cls, text, level="syllable", min_count=1, specials=DEFAULT_SPECIALS):
        """Every token of ``text`` that occurs at least ``min_count`` times, in code-point order."""
        counts = collections.Counter(split_tokens(text, level))
        return cls(sorted(token for token, count in counts.items() if count >= min_count), level,
                   specials)

    @property
    def size(self):
        """The number of ids, the special tokens included (the model's output size)."""
        return len(self.tokens)

    def __len__(self):
        return self.size

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and (self.level, self.tokens) == (other.level, other.tokens)

    def __repr__(self):
        return f"Vocabulary(level={self.level!r}, size={self.size})"

    def tokenize(self, text):
        """The tokens of ``text`` at this vocabulary's level."""
        return split_tokens(text, self.level)

    def encode(self, text):
        """Token ids of ``text`` as an int32 array; unseen characters become ``<unk>``."""
        return np.array([self.token_to_id.get(token, self.unk_id) for token in self.tokenize(text)],
                        dtype="int32")

    def decode(self, ids):
        """NFC text for a sequence of ids (a list, a NumPy array or a tensor).

        At the jamo level the jamo are joined into syllables with
        ``complete_syllables``, so even a sequence that stops in the middle of
        a syllable gives clean text.
        """
        characters = []
        for token_id in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= token_id < self.size:
                raise ValueError(f"id {token_id} is outside the vocabulary (size {self.size})")
            if token_id == self.unk_id:
                characters.append(UNKNOWN_CHARACTER)
            elif token_id >= len(self.specials):  # <pad> and other markers are not text
                characters.append(self.tokens[token_id])
        text = "".join(characters)
        if self.level == "jamo":
            return complete_syllables(text)
        return unicodedata.normalize("NFC", text)

    def save(self, path):
        """Write the vocabulary as UTF-8 JSON: its level and all tokens in id order.

        Special tokens other than the default two are written as a
        ``"specials"`` list too; files of default vocabularies stay as before.
        """
        content = {"level": self.level, "tokens": self.tokens}
        if self.specials != DEFAULT_SPECIALS:
            content["specials"] = list(self.specials)
        pathlib.Path(path).write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n",
                                      encoding="utf-8")

    @classmethod
    def load(cls, path):
        """Read a vocabulary written by ``save``; the ids are exactly the same."""
        path = pathlib.Path(path)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            level, tokens = content["level"], content["tokens"]
            specials = list(content.get("specials", DEFAULT_SPECIALS))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a saved Vocabulary ({error})") from None
        if tokens[:len(specials)] != specials:
            raise ValueError(f"{path}: not a saved Vocabulary "
                             f"(the first tokens must be {', '.join(specials)})")
        return cls(tokens[len(specials):], level, specials)

"""Week 3 text pieces: the Korean corpus, its loaders and the Hangul utilities."""
import importlib.util
import math
import random
import unicodedata
import zipfile

import numpy as np
import pytest

from dlcourse import data, hangul
from tests.conftest import REPO

ALL_SYLLABLES = "".join(chr(code) for code in range(0xAC00, 0xD7A4))
MIXED_TEXT = ("대한민국 헌법 제1조 ① 대한민국은 민주공화국이다.\n"
              "Hello, World! 123-456 (café, naïve)\t“인용” 「괄호」 ㅋㅋ ㅏ\n"
              "  끝.  \n\n")


def no_conjoining_jamo(text):
    return not any(hangul.is_conjoining_jamo(char) for char in text)


# --- syllables <-> jamo -------------------------------------------------------

def test_every_syllable_round_trips_through_jamo():
    assert len(ALL_SYLLABLES) == hangul.SYLLABLE_COUNT == 11172
    lengths = []
    for syllable in ALL_SYLLABLES:
        jamo = hangul.to_jamo(syllable)
        assert all(hangul.is_conjoining_jamo(char) for char in jamo)
        assert hangul.from_jamo(jamo) == syllable
        lengths.append(len(jamo))
    # 19 initials × 21 vowels have no final consonant; all the others have one.
    assert lengths.count(2) == 19 * 21 and lengths.count(3) == 11172 - 19 * 21
    assert hangul.from_jamo(hangul.to_jamo(ALL_SYLLABLES)) == ALL_SYLLABLES


def test_jamo_counts():
    assert hangul.to_jamo("한") == "\u1112\u1161\u11ab"  # ᄒ ᅡ ᆫ
    assert len(hangul.to_jamo("하")) == 2
    assert len(hangul.to_jamo("한국어")) == 3 + 3 + 2


def test_mixed_text_round_trips_and_only_hangul_is_split():
    assert unicodedata.is_normalized("NFC", MIXED_TEXT)
    jamo = hangul.to_jamo(MIXED_TEXT)
    assert hangul.from_jamo(jamo) == MIXED_TEXT
    # Everything that is not a syllable is kept as it was, accented Latin included.
    assert [char for char in jamo if not hangul.is_conjoining_jamo(char)] == \
        [char for char in MIXED_TEXT if not hangul.is_syllable(char)]
    assert "café" in jamo and "naïve" in jamo


def test_incomplete_jamo_become_clean_nfc_text():
    word = hangul.to_jamo("한국")
    assert hangul.is_complete(word)
    cut = word + "\u1112"  # stops after the initial consonant of the next syllable
    assert not hangul.is_complete(cut)
    assert hangul.complete_syllables(cut) == "한국ㅎ"
    assert hangul.complete_syllables(hangul.to_jamo("한")[:2]) == "하"  # a syllable without its final
    orphans = "\u1161" + "\u11ab" + "\u1100\u11a8" + "a" + "\u1113"  # ᅡ ᆫ ᄀᆨ a, old-Hangul ᄓ
    assert not hangul.is_complete(orphans)
    assert hangul.complete_syllables(orphans) == "ㅏㄴㄱㄱa"


def test_every_modern_jamo_has_a_letter():
    modern = [chr(code) for code in [*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]]
    assert len(modern) == 19 + 21 + 27
    for jamo in modern:
        assert "\u3131" <= hangul.compatibility_jamo(jamo) <= "\u3163"


def test_random_jamo_sequences_always_complete_to_nfc():
    generator = random.Random(0)
    alphabet = [chr(code) for code in range(0x1100, 0x1200)] + list(" .가a\n")
    for _ in range(300):
        sequence = "".join(generator.choice(alphabet) for _ in range(generator.randint(1, 12)))
        text = hangul.complete_syllables(sequence)
        assert unicodedata.is_normalized("NFC", text) and no_conjoining_jamo(text)
        assert hangul.is_complete(text)


# --- vocabulary ------------------------------------------------------------

@pytest.mark.parametrize("level", hangul.LEVELS)
def test_vocabulary_round_trip_and_unknown_characters(level, tmp_path):
    vocabulary = hangul.Vocabulary.from_text(MIXED_TEXT, level)
    ids = vocabulary.encode(MIXED_TEXT)
    assert ids.dtype == np.int32 and ids.min() >= 2 and ids.max() < vocabulary.size
    assert len(ids) == len(hangul.split_tokens(MIXED_TEXT, level))
    assert vocabulary.decode(ids) == MIXED_TEXT
    assert vocabulary.decode(list(ids)) == MIXED_TEXT

    unseen = vocabulary.encode("한X")
    assert unseen[-1] == hangul.UNK_ID
    assert vocabulary.decode(unseen) == "한\ufffd"
    assert vocabulary.decode([hangul.PAD_ID, *unseen, hangul.PAD_ID]) == "한\ufffd"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocabulary.decode([vocabulary.size])

    path = tmp_path / "vocabulary.json"
    vocabulary.save(path)
    loaded = hangul.Vocabulary.load(path)
    assert loaded == vocabulary and loaded.level == level
    np.testing.assert_array_equal(loaded.encode(MIXED_TEXT), ids)


def test_vocabulary_ids_are_fixed():
    syllables = hangul.Vocabulary.from_text("나가다 가나")
    assert syllables.tokens == ["<pad>", "<unk>", " ", "가", "나", "다"] and syllables.size == 6
    jamo = hangul.Vocabulary.from_text("한", level="jamo")
    assert jamo.tokens[2:] == ["\u1112", "\u1161", "\u11ab"]
    assert hangul.Vocabulary.from_text("가가나", min_count=2).tokens[2:] == ["가"]
    # A jamo-level sequence that stops mid-syllable still decodes to clean text.
    assert jamo.decode(jamo.encode("한")[:1]) == "ㅎ"
    with pytest.raises(ValueError, match="syllable, jamo"):
        hangul.Vocabulary.from_text("가", level="word")


def test_loading_a_bad_vocabulary_file_fails(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text('{"level": "jamo"}')
    with pytest.raises(ValueError, match="not a saved Vocabulary"):
        hangul.Vocabulary.load(path)


def test_bits_per_character_makes_the_levels_comparable():
    assert hangul.characters_per_token(MIXED_TEXT, "syllable") == 1.0
    assert hangul.characters_per_token("한국", "jamo") == 2 / 6
    assert hangul.count_characters(unicodedata.normalize("NFD", "한국")) == 2
    # A jamo model with loss L per token spends 6 L nats on '한국': 3 L per character.
    assert hangul.bits_per_character(0.5, "한국", "jamo") == pytest.approx(3 * 0.5 / math.log(2))
    assert hangul.bits_per_character(math.log(2), "한국", "syllable") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        hangul.characters_per_token("", "jamo")


# --- the shipped corpus --------------------------------------------------------

def test_korean_corpus_is_shipped_clean():
    text = data.load_korean_corpus()
    assert len(text) == 64549
    assert text.startswith("대한민국헌법\n\n유구한 역사와 전통에")
    assert "대한민국" in text and "지방공무원법 일부개정법률안" in text
    assert unicodedata.is_normalized("NFC", text)
    assert "\r" not in text and "\f" not in text and text.endswith("\n") and not text.endswith("\n\n")
    assert all(line == line.rstrip() for line in text.split("\n"))
    assert sum(hangul.is_syllable(char) for char in set(text)) == 445
    assert (REPO / "data" / "korean_corpus.txt").read_bytes().decode("utf-8") == text


def test_corrupt_korean_corpus_names_file_and_fix(data_copy):
    corpus = data_copy / "korean_corpus.txt"
    corpus.write_bytes(corpus.read_bytes() + "추가".encode())
    with pytest.raises(data.DataError) as caught:
        data.load_korean_corpus(data_dir=data_copy)
    message = str(caught.value)
    assert "korean_corpus.txt" in message and "corrupt" in message and "git checkout" in message
    assert "\n" not in message


def load_make_bundles():
    spec = importlib.util.spec_from_file_location("make_bundles", REPO / "data" / "make_bundles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_builder_orders_and_cleans_documents(tmp_path):
    make_bundles = load_make_bundles()
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(make_bundles.KONLPY_BILLS_FOLDER + "2.txt", "둘째 법안  \n\n\f- 2 -\n\n\f")
        archive.writestr(make_bundles.KONLPY_CONSTITUTION, "\r\n헌법 \r\n\r\n제1조\r\n")
        archive.writestr(make_bundles.KONLPY_BILLS_FOLDER + "1.txt",
                         unicodedata.normalize("NFD", "첫째 법안") + "\n")
    text = make_bundles.korean_corpus_from_wheel(wheel)
    assert text == "헌법\n\n제1조\n\n첫째 법안\n\n둘째 법안\n\n- 2 -\n"


# --- reading a user's own text ---------------------------------------------------

def test_user_text_file_is_normalised(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(b"\xef\xbb\xbf" + unicodedata.normalize("NFD", "한글\r\n문장\r\n").encode("utf-8"))
    assert data.read_text_corpus(path) == "한글\n문장\n"


@pytest.mark.parametrize("content, problem", [
    ("한국어".encode("cp949"), "not UTF-8"),
    (b"", "contains no text"),
    (b" \n\t\r\n", "contains no text"),
])
def test_bad_user_text_file_is_one_clear_line(tmp_path, content, problem):
    path = tmp_path / "mine.txt"
    path.write_bytes(content)
    with pytest.raises(data.DataError) as caught:
        data.read_text_corpus(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {problem}") and "\n" not in message


def test_missing_user_text_file(tmp_path):
    with pytest.raises(data.DataError, match=r"nothing\.txt: file is missing"):
        data.read_text_corpus(tmp_path / "nothing.txt")
    with pytest.raises(data.DataError, match="is a folder"):
        data.read_text_corpus(tmp_path)


# --- train / validation split --------------------------------------------------

def test_split_text_blocks_are_contiguous_disjoint_and_cover_the_text():
    text = data.load_korean_corpus()
    train_text, validation_text = data.split_text(text, validation_fraction=0.1, blocks=10)
    bounds = data.split_text_bounds(len(text), 0.1, 10)
    assert len(bounds) == 10 and bounds[0][0] == 0 and bounds[-1][2] == len(text)
    for (start, cut, end), (next_start, _, _) in zip(bounds, bounds[1:] + [(len(text), 0, 0)]):
        assert start < cut < end == next_start
        assert (end - cut) / (end - start) == pytest.approx(0.1, abs=0.001)
    assert train_text == "".join(text[start:cut] for start, cut, _ in bounds)
    assert validation_text == "".join(text[cut:end] for _, cut, end in bounds)
    assert len(train_text) + len(validation_text) == len(text)
    assert len(validation_text) / len(text) == pytest.approx(0.1, abs=0.001)
    assert data.split_text(text) == (train_text, validation_text)  # deterministic


def test_split_text_small_and_bad_arguments():
    assert data.split_text("abcdefghij", 0.2, blocks=1) == ("abcdefgh", "ij")
    assert data.split_text("abcdef", 0.1, blocks=3) == ("ace", "bdf")  # at least one each side
    with pytest.raises(ValueError, match="too few"):
        data.split_text("abc", blocks=2)
    with pytest.raises(ValueError, match="validation_fraction"):
        data.split_text("abcdef", validation_fraction=1.5, blocks=1)
    with pytest.raises(ValueError, match="blocks"):
        data.split_text("abcdef", blocks=0)

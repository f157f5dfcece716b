"""Week 4's transfer from week 3: the seq2seq's layers pre-trained as character language models."""
import math

import keras
import numpy as np
import pytest

from dlcourse import data, seq2seq, title_pretraining
from dlcourse.seq2seq import END_ID, PAD_ID, START_ID

TEXT = "가나다라 마바사"


def small_model(vocabulary_size, copy=True, layers=2, seed=0):
    keras.utils.set_random_seed(seed)
    return seq2seq.build_seq2seq(vocabulary_size, embedding_dim=8, units=16, layers=layers, dropout=0.1,
                                 encoder_length=7, decoder_length=5, copy=copy)


def weights(model, name):
    return [weight.copy() for weight in model.training_model.get_layer(name).get_weights()]


def changed(before, after):
    return any(not np.allclose(old, new) for old, new in zip(before, after))


# --- the text and its windows ----------------------------------------------------------

def test_windows_are_next_token_targets_with_padding_and_unknown_targets_masked():
    vocabulary = seq2seq.build_vocabulary([TEXT])  # ' '=4 가=5 나=6 다=7 라=8 마=9 바=10 사=11
    inputs, targets = title_pretraining.language_model_windows(
        vocabulary, [TEXT, "  \n ", "가X\n나"], window=4)
    # <s> 가 나 다 라 ' ' 마 바 사 </s>: windows of 5 tokens every 4, inputs then targets shifted by one.
    # The blank text gives nothing; "가X\n나" is read as "가X 나", and its <unk> target is not learned.
    assert inputs.tolist() == [[START_ID, 5, 6, 7], [8, 4, 9, 10], [11, PAD_ID, PAD_ID, PAD_ID],
                               [START_ID, 5, 3, 4], [6, PAD_ID, PAD_ID, PAD_ID]]
    assert targets.tolist() == [[5, 6, 7, 8], [4, 9, 10, 11], [END_ID, PAD_ID, PAD_ID, PAD_ID],
                                [5, PAD_ID, 4, 6], [END_ID, PAD_ID, PAD_ID, PAD_ID]]
    assert inputs.dtype == targets.dtype == np.int32
    with pytest.raises(ValueError, match="window"):
        title_pretraining.language_model_windows(vocabulary, [TEXT], window=0)
    with pytest.raises(ValueError, match="no text"):
        title_pretraining.language_model_windows(vocabulary, ["", " "], window=4)


def test_pretraining_texts_hold_the_training_split_and_the_corpus_lines_only():
    pairs = [{"title": f"제목{index}번", "body": f"본문{index}번 내용"} for index in range(30)]
    train, validation, test = data.split_pairs(pairs, (0.7, 0.1, 0.2), seed=0)
    texts = title_pretraining.pretraining_texts(train, "헌법 제1조\n\n  대한민국은   민주공화국이다.  \n")
    assert texts[-2:] == ["헌법 제1조", "대한민국은 민주공화국이다."]
    assert set(texts[:-2]) == {pair[key] for pair in train for key in ("title", "body")}
    joined = "\n".join(texts)
    for pair in validation + test:
        assert pair["title"] not in joined and pair["body"] not in joined
    assert title_pretraining.pretraining_texts(train) == texts[:-2]
    cut = title_pretraining.pretraining_texts(train[:2], body_characters=4)
    assert cut == [pair["body"][:4] for pair in train[:2]] + [pair["title"] for pair in train[:2]]
    with pytest.raises(ValueError, match="body_characters"):
        title_pretraining.pretraining_texts(train, body_characters=0)


# --- the language models ---------------------------------------------------------------

def test_the_decoder_language_model_is_the_seq2seq_decoder_with_zero_state_and_context():
    """Step by step, the one-step decoder started from zero states, with an all-zero body
    representation to attend to, gives the decoder language model's probabilities."""
    model = small_model(12, copy=False)
    language_model = title_pretraining.build_language_models(model)["decoder"]
    for name in ("embedding", "decoder_gru_1", "decoder_gru_2", "attention_output", "next_token"):
        assert language_model.get_layer(name) is model.training_model.get_layer(name)
    tokens = np.array([[START_ID, 5, 6, 7], [START_ID, 8, 4, 9]], dtype="int32")
    expected = keras.ops.convert_to_numpy(language_model(tokens, training=False))
    assert expected.shape == (2, 4, 12)
    outputs, ids = np.zeros((2, 3, 16), "float32"), np.full((2, 3), 5, "int32")
    states = [np.zeros((2, 16), "float32")] * 2
    for position in range(4):
        probabilities, states = model.step(tokens[:, position], outputs, ids, states)
        np.testing.assert_allclose(probabilities, expected[:, position], atol=1e-5)


def test_only_known_parts_are_built():
    model = small_model(12)
    assert set(title_pretraining.build_language_models(model, ("encoder",))) == {"encoder"}
    with pytest.raises(ValueError, match="parts"):
        title_pretraining.build_language_models(model, ("title",))


def test_the_joint_pretraining_model_saves_and_loads(tmp_path):
    vocabulary = seq2seq.build_vocabulary([TEXT])
    model = small_model(vocabulary.size)
    joint = title_pretraining.build_pretraining_model(model, title_pretraining.PARTS)
    inputs, _ = title_pretraining.language_model_windows(vocabulary, [TEXT, "가나"], window=6)
    expected = keras.ops.convert_to_numpy(joint(inputs, training=False))
    assert expected.shape == (3, 2 * 6, vocabulary.size)  # 2 + 1 windows; decoder, then encoder, along time
    path = tmp_path / "pretraining.keras"
    joint.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs, training=False)), expected, atol=1e-6)


@pytest.fixture(scope="module")
def pretrained():
    """A small copy model, its weights before, and the history of pre-training it on a repetitive text.

    One GRU layer a side: tracing the training step is most of the time this takes.
    """
    vocabulary = seq2seq.build_vocabulary([TEXT])
    model = small_model(vocabulary.size, layers=1)
    before = {name: weights(model, name) for name in
              ("embedding", "encoder_gru_1", "decoder_gru_1", "attention_output", "next_token", "copy_gate")}
    history = title_pretraining.pretrain(model, vocabulary, [TEXT] * 32, epochs=12, batch_size=16, window=8,
                                         parts=title_pretraining.PARTS, learning_rate=1e-2, verbose=0)
    return vocabulary, model, before, history


def test_pretraining_trains_the_seq2seq_layers_themselves(pretrained):
    _, model, before, history = pretrained
    for name in ("embedding", "encoder_gru_1", "decoder_gru_1", "attention_output", "next_token"):
        assert changed(before[name], weights(model, name)), name
    assert not changed(before["copy_gate"], weights(model, "copy_gate"))  # nothing to copy from
    # The encoder language model's own head is not part of the seq2seq.
    assert title_pretraining.ENCODER_HEAD not in {layer.name for layer in model.training_model.layers}
    # <s> 가 … 사 </s>: 10 tokens, so 2 windows of 8 and 9 targets per text.
    assert history["windows"] == 32 * 2 and history["tokens"] == 32 * 9
    assert history["seconds"] > 0


def test_pretraining_a_repetitive_text_lowers_both_losses_far_below_uniform(pretrained):
    vocabulary, _, _, history = pretrained
    uniform = math.log2(vocabulary.size)
    assert len(history["loss"]) == 12
    assert history["decoder_bits_per_character"][0] > 0.8 * uniform
    for part in ("decoder", "encoder"):
        assert history[f"{part}_bits_per_character"][-1] < 0.1 * uniform, part
    assert history["bits_per_character"][-1] == pytest.approx(history["loss"][-1] / math.log(2))


def test_a_pretrained_training_model_still_saves_loads_and_decodes(pretrained, tmp_path):
    vocabulary, model, _, _ = pretrained
    path = tmp_path / "best.keras"
    model.training_model.save(path)
    loaded = seq2seq.Seq2Seq.from_training_model(keras.models.load_model(path, compile=False))
    # The saved model is the seq2seq alone: no language-model layer went into it.
    assert ({layer.name for layer in loaded.training_model.layers}
            == {layer.name for layer in model.training_model.layers})
    encoder_ids, decoder_inputs, _ = seq2seq.encode_pairs(vocabulary, [TEXT, "마바사"], ["가나", "다"], 7, 5)
    inputs = {"encoder_tokens": encoder_ids, "decoder_tokens": decoder_inputs}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.training_model(inputs, training=False)),
                               keras.ops.convert_to_numpy(model.training_model(inputs, training=False)), atol=1e-6)
    # The rebuilt one-step decoder computes with the pre-trained weights too (called eagerly: no tracing).
    outputs, *states = [keras.ops.convert_to_numpy(value)
                        for value in loaded.encoder_model(encoder_ids, training=False)]
    first, *_ = loaded.decoder_step_model([decoder_inputs[:, :1], outputs, encoder_ids, *states], training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first),
                               keras.ops.convert_to_numpy(model.training_model(inputs, training=False))[:, 0],
                               atol=1e-5)


def test_no_epochs_change_nothing():
    vocabulary = seq2seq.build_vocabulary([TEXT])
    model = small_model(vocabulary.size)
    before = model.training_model.get_weights()
    history = title_pretraining.pretrain(model, vocabulary, [TEXT], epochs=0)
    assert history["loss"] == [] and history["windows"] == 1
    assert set(history) == {"loss", "bits_per_character", "decoder_bits_per_character", "windows", "tokens",
                            "seconds"}  # the decoder alone, by default
    assert all(np.array_equal(old, new) for old, new in zip(before, model.training_model.get_weights()))

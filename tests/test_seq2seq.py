"""The week-4 encoder–decoder: tokens, the three models, the loss, greedy and beam decoding."""
import itertools
import json

import keras
import numpy as np
import pytest

from dlcourse import figures, hangul, seq2seq
from dlcourse.seq2seq import END_ID, FORBIDDEN_IDS, PAD_ID, START_ID, UNK_ID


def small_model(vocabulary_size=11, layers=2, units=12, dropout=0.1, encoder_length=7,
                decoder_length=5, seed=0, copy=False):
    keras.utils.set_random_seed(seed)
    return seq2seq.build_seq2seq(vocabulary_size, embedding_dim=8, units=units, layers=layers,
                                 dropout=dropout, encoder_length=encoder_length,
                                 decoder_length=decoder_length, copy=copy)


def test_collapse_whitespace_makes_every_run_of_spaces_one_space():
    assert seq2seq.collapse_whitespace("  데비안\n\n설치  방법\t") == "데비안 설치 방법"


def random_ids(rng, shape, vocabulary_size):
    """Ids of real tokens only (no special token), as the encoder sees them."""
    return rng.integers(len(seq2seq.TITLE_SPECIALS), vocabulary_size, shape).astype("int32")


def sharpen(model, factor):
    """Scale the embedding and the softmax kernel: an untrained model's tiny embeddings give
    nearly the same, nearly uniform probabilities everywhere."""
    embedding = model.training_model.get_layer("embedding")
    embedding.set_weights([weight * factor for weight in embedding.get_weights()])
    layer = model.training_model.get_layer("next_token")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * factor, bias])


def set_output_bias(model, values):
    """Give the softmax layer a bias, e.g. to make some tokens far more likely than others."""
    layer = model.training_model.get_layer("next_token")
    kernel, bias = layer.get_weights()
    bias = bias.copy()
    for token_id, value in values.items():
        bias[token_id] = value
    layer.set_weights([kernel, bias])


# --- tokens ----------------------------------------------------------------------------

def test_title_vocabulary_has_four_special_tokens_and_round_trips(tmp_path):
    vocabulary = seq2seq.build_vocabulary(["가나", "나 다\n\n라"])
    assert vocabulary.tokens == ["<pad>", "<s>", "</s>", "<unk>", " ", "가", "나", "다", "라"]
    assert (PAD_ID, START_ID, END_ID, UNK_ID) == (0, 1, 2, 3)
    assert vocabulary.encode("가X").tolist() == [5, UNK_ID]
    assert vocabulary.decode([START_ID, 5, UNK_ID, 6, END_ID, PAD_ID]) == "가\ufffd나"

    path = tmp_path / "vocabulary.json"
    vocabulary.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["specials"] == list(seq2seq.TITLE_SPECIALS)
    loaded = seq2seq.load_vocabulary(path)
    assert loaded == vocabulary and loaded.specials == seq2seq.TITLE_SPECIALS

    # A Char-RNN vocabulary keeps its old file format and is refused as a title vocabulary.
    hangul.Vocabulary.from_text("가나").save(path)
    assert "specials" not in json.loads(path.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="special tokens"):
        seq2seq.load_vocabulary(path)
    with pytest.raises(ValueError, match="special tokens must"):  # <pad> must come first
        hangul.Vocabulary(["가"], specials=("<s>", "<pad>", "<unk>"))


def test_encode_pairs_by_hand():
    vocabulary = seq2seq.build_vocabulary(["가나 다라"])  # ' '=4 가=5 나=6 다=7 라=8
    encoder_ids, decoder_inputs, targets = seq2seq.encode_pairs(
        vocabulary, ["가나 다라가", "나"], ["가나다", "라"], encoder_length=4, decoder_length=3)
    # Bodies: the first 4 tokens, right-padded.
    assert encoder_ids.tolist() == [[5, 6, 4, 7], [6, 0, 0, 0]]
    # Titles: cut to 3 - 1 = 2 tokens, so <s> + title and title + </s> both fit in 3.
    assert decoder_inputs.tolist() == [[START_ID, 5, 6], [START_ID, 8, 0]]
    assert targets.tolist() == [[5, 6, END_ID], [8, END_ID, 0]]
    assert {array.dtype for array in (encoder_ids, decoder_inputs, targets)} == {np.dtype("int32")}
    # Line breaks and runs of spaces become one space.
    assert seq2seq.encode_bodies(vocabulary, ["가\n\n 나"], 4).tolist() == [[5, 4, 6, 0]]
    with pytest.raises(ValueError, match="2 bodies but 1 titles"):
        seq2seq.encode_pairs(vocabulary, ["가", "나"], ["가"])
    with pytest.raises(ValueError, match="special tokens"):
        seq2seq.encode_pairs(hangul.Vocabulary.from_text("가"), ["가"], ["가"])


# --- the three models --------------------------------------------------------------------

@pytest.mark.parametrize("copy", [False, True])
def test_the_three_models_have_the_documented_shapes(copy):
    model = small_model(copy=copy)
    rng = np.random.default_rng(0)
    inputs = {"encoder_tokens": random_ids(rng, (3, 7), 11),
              "decoder_tokens": random_ids(rng, (3, 5), 11)}
    probabilities = model.training_model(inputs).numpy()
    assert probabilities.shape == (3, 5, 11) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)

    outputs, *states = (np.asarray(array) for array in model.encoder_model(inputs["encoder_tokens"]))
    assert outputs.shape == (3, 7, 12) and [state.shape for state in states] == [(3, 12)] * 2
    step_probabilities, *new_states = model.decoder_step_model(
        [inputs["decoder_tokens"][:, :1], outputs, inputs["encoder_tokens"], *states])
    assert step_probabilities.shape == (3, 11) and [s.shape for s in new_states] == [(3, 12)] * 2
    assert model.vocabulary_size == 11
    assert {layer.name for layer in model.training_model.layers} >= {
        "embedding", "encoder_gru_1", "encoder_gru_2", "decoder_gru_1", "decoder_gru_2",
        "encoder_dropout_1", "attention", "attention_output", "next_token"}


@pytest.mark.parametrize("copy", [False, True])
def test_decoding_step_by_step_reproduces_the_training_model(copy):
    model = small_model(copy=copy)
    sharpen(model, 10)
    rng = np.random.default_rng(1)
    encoder_ids = random_ids(rng, (3, 7), 11)
    encoder_ids[0, 4:] = PAD_ID
    encoder_ids[1, 2:] = PAD_ID
    decoder_ids = random_ids(rng, (3, 5), 11)
    decoder_ids[:, 0] = START_ID
    decoder_ids[2, 3:] = PAD_ID
    expected = model.training_model({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids},
                                    training=False).numpy()

    outputs, ids, states = model.encode(encoder_ids)
    # Attention must ignore the padded encoder positions whatever is stored there.
    mask = ids != PAD_ID
    noisy_outputs = np.where(mask[:, :, None], outputs, rng.normal(size=outputs.shape) * 10)
    for position in range(5):
        probabilities, states = model.step(decoder_ids[:, position], noisy_outputs, ids, states)
        real = decoder_ids[:, position] != PAD_ID
        np.testing.assert_allclose(probabilities[real], expected[real, position], atol=1e-5)
    assert np.abs(expected[:, 0] - expected[:, 1]).max() > 0.01  # the check compares something


def test_mixed_precision_builds_the_copy_model_and_keeps_float32_probabilities():
    """`--mixed-precision`: float16 compute, but the softmax, the gate and the copy mixture stay float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = small_model(copy=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(2)
    encoder_ids = random_ids(rng, (3, 7), 11)
    decoder_ids = random_ids(rng, (3, 5), 11)
    decoder_ids[:, 0] = START_ID
    probabilities = model.training_model({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids},
                                         training=False).numpy()
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=2e-3)
    assert model.training_model.get_layer("embedding").compute_dtype == "float16"


def test_the_copy_gate_mixes_the_softmax_with_the_attention_over_the_body():
    """Gate shut (always copy): all probability sits on the tokens of the body, and the
    padding gets none; gate open (never copy): the plain softmax, the same as copy=False."""
    model = small_model(copy=True)
    encoder_ids = np.array([[5, 6, 5, 7, PAD_ID, PAD_ID, PAD_ID], [8, 9, 10, 4, 4, 4, 4]], "int32")
    decoder_ids = np.full((2, 5), START_ID, "int32")
    inputs = {"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids}
    gate = model.training_model.get_layer("copy_gate")
    kernel, bias = gate.get_weights()
    gate.set_weights([np.zeros_like(kernel), np.full_like(bias, -50.0)])  # sigmoid(-50) ≈ 0: copy
    copied = model.training_model(inputs, training=False).numpy()
    np.testing.assert_allclose(copied.sum(axis=-1), 1.0, atol=1e-5)
    for row, body in enumerate(encoder_ids):
        outside = np.setdiff1d(np.arange(11), body[body != PAD_ID])
        assert copied[row][:, outside].max() < 1e-6
    assert copied[0][:, 5].min() > copied[0][:, 7].min()  # token 5 is in two body positions

    gate.set_weights([np.zeros_like(kernel), np.full_like(bias, 50.0)])  # never copy
    written = model.training_model(inputs, training=False).numpy()
    plain = small_model(copy=False)
    for layer in plain.training_model.layers:
        if layer.weights:
            layer.set_weights(model.training_model.get_layer(layer.name).get_weights())
    np.testing.assert_allclose(written, plain.training_model(inputs, training=False).numpy(),
                               atol=1e-6)


def test_copy_gates_are_the_gate_and_attention_the_training_model_mixes_with():
    """p(token) = g · p_vocabulary(token) + (1 − g) · Σ_{i: x_i = token} a_i: what is left after
    taking the copy part away is g · (a distribution), so it is non-negative and sums to g."""
    model = small_model(copy=True)
    sharpen(model, 10)
    rng = np.random.default_rng(2)
    encoder_ids = random_ids(rng, (2, 7), 11)
    encoder_ids[1, 3:] = PAD_ID
    decoder_ids = random_ids(rng, (2, 5), 11)
    decoder_ids[:, 0] = START_ID
    gates, weights = model.copy_gates(encoder_ids, decoder_ids)
    assert gates.shape == (2, 5) and weights.shape == (2, 5, 7)
    assert gates.dtype == weights.dtype == np.float32
    assert np.all((gates > 0) & (gates < 1)) and np.ptp(gates) > 1e-4
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[1, :, 3:] == 0.0)  # never on the padding

    probabilities = model.training_model({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids},
                                         training=False).numpy()
    copied = np.einsum("btj,bjv->btv", weights, np.eye(11)[encoder_ids])
    written = probabilities - (1.0 - gates)[..., None] * copied
    assert written.min() > -1e-5
    np.testing.assert_allclose(written.sum(axis=-1), gates, atol=1e-5)
    again, _ = model.copy_gates(encoder_ids[:1], decoder_ids[:1])  # the model is built once, reused
    np.testing.assert_allclose(again, gates[:1], atol=1e-6)

    with pytest.raises(ValueError, match="no copy gate"):
        small_model(copy=False).copy_gates(encoder_ids, decoder_ids)


@pytest.mark.parametrize("font", [None, "DejaVu Sans"])
def test_plot_copy_gate_draws_the_copied_probability_and_the_gate(tmp_path, monkeypatch, font):
    monkeypatch.setattr(figures, "hangul_font", lambda: font)
    rng = np.random.default_rng(3)
    gates = rng.uniform(size=4)
    attention = rng.dirichlet(np.ones(6), size=4)
    title = ["가", "다", "라", "</s>"]
    path = tmp_path / "copy_gate.png" if font is None else None  # DejaVu has no Hangul: not drawn
    figure = figures.plot_copy_gate(gates, attention, list("가나 다라마"), title, path)
    assert path is None or path.stat().st_size > 0
    heat, bars = (axes for axes in figure.axes if axes.get_label() != "<colorbar>")
    np.testing.assert_allclose(heat.images[0].get_array(), (1 - gates)[:, None] * attention)
    np.testing.assert_allclose([patch.get_width() for patch in bars.patches], gates)
    labels = [label.get_text() for label in heat.get_yticklabels()]
    assert labels == (["0", "1", "2", "3"] if font is None else title)
    assert len(heat.get_xticklabels()) == 6
    with pytest.raises(ValueError, match="attention"):
        figures.plot_copy_gate(gates, attention[:, :5], list("가나 다라마"), title)


def test_masked_loss_ignores_padding():
    loss = seq2seq.masked_loss()
    rng = np.random.default_rng(0)
    targets = np.array([[5, 6, PAD_ID, PAD_ID]])
    probabilities = rng.dirichlet(np.ones(8), size=(1, 4)).astype("float32")
    other_padding = probabilities.copy()
    other_padding[0, 2:] = rng.dirichlet(np.ones(8), size=2)
    by_hand = -np.log(probabilities[0, [0, 1], [5, 6]]).mean()  # mean over the 2 real tokens
    assert float(loss(targets, probabilities)) == pytest.approx(by_hand, rel=1e-5)
    assert float(loss(targets, other_padding)) == pytest.approx(by_hand, rel=1e-5)


# --- decoding ----------------------------------------------------------------------------

def test_decoders_never_write_forbidden_tokens():
    model = small_model(layers=1)
    encoder_ids = random_ids(np.random.default_rng(2), (4, 7), 11)
    # Make <pad>, <s> and <unk> by far the most likely tokens, then </s>.
    set_output_bias(model, {PAD_ID: 20.0, START_ID: 20.0, UNK_ID: 20.0, END_ID: 10.0})
    assert seq2seq.greedy_decode(model, encoder_ids, max_length=6) == [[]] * 4
    # Now </s> is never likely: every row runs to max_length, without a forbidden token.
    set_output_bias(model, {PAD_ID: 20.0, START_ID: 20.0, UNK_ID: 20.0, END_ID: -20.0})
    titles = seq2seq.greedy_decode(model, encoder_ids, max_length=6)
    assert [len(title) for title in titles] == [6] * 4
    hypotheses = seq2seq.beam_search(model, encoder_ids[0], beam_width=3, max_length=6)
    assert len(hypotheses) == 3 and all(len(h.tokens) == 6 for h in hypotheses)
    for tokens in titles + [h.tokens for h in hypotheses]:
        assert not set(tokens) & set(FORBIDDEN_IDS) and END_ID not in tokens
    # As text: an empty body (all padding) works too, and no '\ufffd' for <unk> appears.
    vocabulary = seq2seq.build_vocabulary(["abcdefg"])
    for method in ("greedy", "beam"):
        texts = seq2seq.decode_titles(model, vocabulary, ["", "abc"], method=method, beam_width=2,
                                      encoder_length=7, max_length=6)
        assert [len(text) for text in texts] == [6, 6] and set("".join(texts)) <= set("abcdefg")


def sequence_log_probabilities(model, encoder_row, sequences, max_length):
    """Brute force: the log-probability of every sequence, from the teacher-forced training model.

    A sequence is a tuple of real tokens; if shorter than ``max_length`` it is followed by </s>.
    """
    decoder_inputs = np.zeros((len(sequences), max_length), dtype="int32")
    targets = np.zeros((len(sequences), max_length), dtype="int32")
    for row, tokens in enumerate(sequences):
        written = list(tokens) + ([END_ID] if len(tokens) < max_length else [])
        decoder_inputs[row, :len(written)] = [START_ID, *written[:-1]]
        targets[row, :len(written)] = written
    probabilities = model.training_model(
        {"encoder_tokens": np.repeat(encoder_row[None], len(sequences), axis=0),
         "decoder_tokens": decoder_inputs}, training=False).numpy().astype("float64")
    picked = np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0]
    return np.where(targets != PAD_ID, np.log(picked), 0.0).sum(axis=1)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_an_exhaustive_beam_search_finds_the_best_sequence(length_penalty):
    # 7 ids = 4 special + 3 real tokens; at most 3 steps: 1 + 3 + 9 sequences that end with
    # </s> and 27 that reach max_length.  A beam of 64 never drops any of them.
    model = small_model(vocabulary_size=7, layers=1, units=8, decoder_length=3, seed=3)
    sharpen(model, 4)
    encoder_row = random_ids(np.random.default_rng(3), (7,), 7)

    real_tokens = range(4, 7)
    sequences = [tokens for length in range(4)
                 for tokens in itertools.product(real_tokens, repeat=length)]
    log_probabilities = sequence_log_probabilities(model, encoder_row, sequences, max_length=3)
    lengths = np.array([min(len(tokens) + 1, 3) for tokens in sequences])  # </s> counts
    scores = log_probabilities / lengths ** length_penalty
    best = sequences[int(np.argmax(scores))]

    hypotheses = seq2seq.beam_search(model, encoder_row, beam_width=64, max_length=3,
                                     length_penalty=length_penalty)
    assert len(hypotheses) == len(sequences) == 40
    assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)
    assert tuple(hypotheses[0].tokens) == best
    found = {tuple(h.tokens): h for h in hypotheses}
    for tokens, log_probability, score in zip(sequences, log_probabilities, scores):
        assert found[tokens].log_probability == pytest.approx(log_probability, abs=1e-4)
        assert found[tokens].score == pytest.approx(score, abs=1e-4)

    (greedy,) = seq2seq.greedy_decode(model, encoder_row[None], max_length=3)
    assert tuple(greedy) in found
    # A beam of one is greedy decoding.
    assert seq2seq.beam_search(model, encoder_row, beam_width=1, max_length=3)[0].tokens == greedy


def test_a_small_model_learns_to_reverse_sequences():
    symbols = "abcdefgh"
    rng = np.random.default_rng(0)
    bodies = ["".join(rng.choice(list(symbols), rng.integers(3, 7))) for _ in range(260)]
    titles = [body[::-1] for body in bodies]
    vocabulary = seq2seq.build_vocabulary([symbols])
    encoder_ids, decoder_inputs, targets = seq2seq.encode_pairs(vocabulary, bodies[:200], titles[:200],
                                                                encoder_length=6, decoder_length=7)
    model = small_model(vocabulary.size, layers=1, units=32, dropout=0.0, encoder_length=6,
                        decoder_length=7)
    untrained = seq2seq.decode_titles(model, vocabulary, bodies[200:], encoder_length=6, max_length=7)
    model.training_model.compile(keras.optimizers.Adam(0.01), seq2seq.masked_loss())
    model.training_model.fit({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_inputs},
                             targets, batch_size=20, epochs=30, verbose=0)  # 300 steps

    held_out = titles[200:]
    for method in ("greedy", "beam"):
        written = seq2seq.decode_titles(model, vocabulary, bodies[200:], method=method, beam_width=3,
                                        encoder_length=6, max_length=7)
        assert np.mean([title == truth for title, truth in zip(written, held_out)]) >= 0.7, method
    assert np.mean([title == truth for title, truth in zip(untrained, held_out)]) < 0.1
    with pytest.raises(ValueError, match="greedy or beam"):
        seq2seq.decode_titles(model, vocabulary, bodies[:1], method="sample")


@pytest.mark.parametrize("copy", [False, True])
def test_a_saved_training_model_decodes_the_same_after_loading(tmp_path, copy):
    model = small_model(layers=2, copy=copy)
    set_output_bias(model, {END_ID: 1.5})  # some rows stop early
    encoder_ids = random_ids(np.random.default_rng(4), (5, 7), 11)
    encoder_ids[1, 3:] = PAD_ID
    path = tmp_path / "best.keras"
    model.training_model.save(path)
    loaded = seq2seq.Seq2Seq.from_training_model(keras.models.load_model(path, compile=False))

    assert seq2seq.greedy_decode(loaded, encoder_ids, 6) == seq2seq.greedy_decode(model, encoder_ids, 6)
    assert (seq2seq.beam_search(loaded, encoder_ids[1], 3, 6, 0.6)
            == seq2seq.beam_search(model, encoder_ids[1], 3, 6, 0.6))
    outputs, ids, states = loaded.encode(encoder_ids)
    first_step, _ = loaded.step(np.full(5, START_ID), outputs, ids, states)
    expected, _ = model.step(np.full(5, START_ID), *model.encode(encoder_ids))
    np.testing.assert_allclose(first_step, expected, atol=1e-6)

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    with pytest.raises(ValueError, match="not a seq2seq training model"):
        seq2seq.Seq2Seq.from_training_model(other)

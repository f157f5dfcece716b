"""The week-4 Transformer encoder–decoder: masks, the one-step decoder, the copy gate, decoding
through ``dlcourse.seq2seq``, saving, learning, and JAX."""
import collections
import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from dlcourse import seq2seq, transformer
from dlcourse.seq2seq import END_ID, FORBIDDEN_IDS, PAD_ID, START_ID
from tests.conftest import jax_test_environment


def small_model(vocabulary_size=11, layers=2, model_dim=16, heads=2, dropout=0.1, encoder_length=7,
                decoder_length=5, seed=0, copy=True, positions="sinusoidal"):
    keras.utils.set_random_seed(seed)
    return transformer.build_transformer(vocabulary_size, model_dim=model_dim, heads=heads,
                                         feed_forward_dim=2 * model_dim, layers=layers, dropout=dropout,
                                         encoder_length=encoder_length, decoder_length=decoder_length,
                                         copy=copy, positions=positions)


def random_ids(rng, shape, vocabulary_size=11):
    """Ids of real tokens only (no special token)."""
    return rng.integers(len(seq2seq.TITLE_SPECIALS), vocabulary_size, shape).astype("int32")


def teacher_forced(model, encoder_ids, decoder_ids):
    return np.asarray(model.training_model({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids},
                                           training=False))


def example_batch(seed):
    """Three bodies (two padded) and three titles that start with <s> (one padded)."""
    rng = np.random.default_rng(seed)
    encoder_ids = random_ids(rng, (3, 7))
    encoder_ids[0, 4:] = PAD_ID
    encoder_ids[1, 2:] = PAD_ID
    decoder_ids = random_ids(rng, (3, 5))
    decoder_ids[:, 0] = START_ID
    decoder_ids[2, 3:] = PAD_ID
    return encoder_ids, decoder_ids


# --- the models ----------------------------------------------------------------------------

@pytest.mark.parametrize("copy", [False, True])
def test_the_models_have_the_documented_shapes_and_named_layers(copy):
    model = small_model(copy=copy)
    encoder_ids, decoder_ids = example_batch(0)
    probabilities = teacher_forced(model, encoder_ids, decoder_ids)
    assert probabilities.shape == (3, 5, 11) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert model.vocabulary_size == 11 and model.decoder_length == 5

    outputs, ids, (prefix, index) = model.encode(encoder_ids)
    assert outputs.shape == (3, 7, 16) and np.array_equal(ids, encoder_ids)
    assert prefix.shape == (3, 5) and not prefix.any() and index.tolist() == [0, 0, 0]
    step_probabilities, (prefix, index) = model.step(decoder_ids[:, 0], outputs, ids, [prefix, index])
    assert step_probabilities.shape == (3, 11) and index.tolist() == [1, 1, 1]
    assert prefix[:, 0].tolist() == [START_ID] * 3 and not prefix[:, 1:].any()

    names = {layer.name for layer in model.training_model.layers}
    assert names >= {"embedding", "encoder_positions", "decoder_positions", "encoder_norm", "decoder_norm",
                     "encoder_1_self_attention", "encoder_2_feed_forward_1", "decoder_2_self_attention",
                     "decoder_2_cross_attention", "decoder_1_feed_forward_norm", "next_token"}
    assert ({"copy_gate", "copy_mixture"} <= names) == copy
    assert "encoder_3_self_attention" not in names
    with pytest.raises(ValueError, match="multiple of heads"):
        transformer.build_transformer(11, model_dim=10, heads=4)


def test_the_causal_mask_hides_later_title_tokens():
    """Changing title token k changes the predictions at k and after, never before."""
    model = small_model(dropout=0.0)
    encoder_ids, decoder_ids = example_batch(1)
    decoder_ids[2, 3:] = random_ids(np.random.default_rng(9), 2)  # no padding: every position is real
    before = teacher_forced(model, encoder_ids, decoder_ids)
    for position in range(1, 5):
        changed = decoder_ids.copy()
        changed[:, position] = 4 + (changed[:, position] - 4 + 3) % 7  # another real token
        after = teacher_forced(model, encoder_ids, changed)
        np.testing.assert_allclose(after[:, :position], before[:, :position], atol=1e-6)
        assert np.abs(after[:, position] - before[:, position]).max() > 1e-3  # it does see its own token


def test_padding_of_the_body_changes_nothing():
    """A body reads the same with 3 or with 6 padding positions after it, and the decoder never
    looks at what the encoder wrote at a padded position."""
    model = small_model(dropout=0.0, encoder_length=10)
    rng = np.random.default_rng(2)
    body = random_ids(rng, (2, 4))
    short = np.concatenate([body, np.zeros((2, 3), "int32")], axis=1)  # length 7
    long = np.concatenate([body, np.zeros((2, 6), "int32")], axis=1)  # length 10, the training length
    decoder_ids = random_ids(rng, (2, 5))
    decoder_ids[:, 0] = START_ID
    expected = teacher_forced(model, long, decoder_ids)

    outputs, ids, states = model.encode(short)
    noisy = outputs.copy()
    noisy[:, 4:] = rng.normal(size=noisy[:, 4:].shape) * 10  # garbage at the padded positions
    for position in range(5):
        probabilities, states = model.step(decoder_ids[:, position], noisy, ids, states)
        np.testing.assert_allclose(probabilities, expected[:, position], atol=1e-5)
    # The check compares something: a body token, unlike padding, does change the output.
    other = long.copy()
    other[:, 3] = 4 + (other[:, 3] - 4 + 1) % 7
    assert np.abs(teacher_forced(model, other, decoder_ids) - expected).max() > 1e-3


@pytest.mark.parametrize("copy", [False, True])
def test_decoding_step_by_step_reproduces_the_training_model(copy):
    model = small_model(copy=copy)
    encoder_ids, decoder_ids = example_batch(3)
    expected = teacher_forced(model, encoder_ids, decoder_ids)
    outputs, ids, states = model.encode(encoder_ids)
    for position in range(5):
        probabilities, states = model.step(decoder_ids[:, position], outputs, ids, states)
        real = decoder_ids[:, position] != PAD_ID
        np.testing.assert_allclose(probabilities[real], expected[real, position], atol=1e-5)
    assert np.abs(expected[:, 0] - expected[:, 1]).max() > 1e-3  # positions differ: the check compares something
    with pytest.raises(ValueError, match="at most 5 tokens"):  # a sixth token has no position
        model.step(decoder_ids[:, 0], outputs, ids, states)


def test_the_copy_gate_mixes_the_softmax_with_the_cross_attention():
    """Gate shut: all probability on the body's tokens (none on padding); the gate and weights
    that ``copy_gates`` reports are the ones the training model mixes with."""
    model = small_model(copy=True)
    encoder_ids = np.array([[5, 6, 5, 7, PAD_ID, PAD_ID, PAD_ID], [8, 9, 10, 4, 4, 4, 4]], "int32")
    decoder_ids = np.array([[START_ID, 5, 6, PAD_ID, PAD_ID], [START_ID, 9, 9, 9, 9]], "int32")
    probabilities = teacher_forced(model, encoder_ids, decoder_ids)
    gates, weights = model.copy_gates(encoder_ids, decoder_ids)
    assert gates.shape == (2, 5) and weights.shape == (2, 5, 7) and np.all((gates > 0) & (gates < 1))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[0, :, 4:] < 1e-6)  # never on the padding
    copied = np.einsum("btj,bjv->btv", weights, np.eye(11)[encoder_ids])
    written = probabilities - (1.0 - gates)[..., None] * copied
    assert written.min() > -1e-5
    np.testing.assert_allclose(written.sum(axis=-1), gates, atol=1e-5)
    short_gates, _ = model.copy_gates(encoder_ids, decoder_ids[:, :3])  # a shorter title: its positions
    np.testing.assert_allclose(short_gates, gates[:, :3], atol=1e-6)

    gate = model.training_model.get_layer("copy_gate")
    kernel, bias = gate.get_weights()
    gate.set_weights([np.zeros_like(kernel), np.full_like(bias, -50.0)])  # sigmoid(-50) ≈ 0: copy
    copied = teacher_forced(model, encoder_ids, decoder_ids)
    for row, body in enumerate(encoder_ids):
        outside = np.setdiff1d(np.arange(11), body[body != PAD_ID])
        assert copied[row][:, outside].max() < 1e-6
    with pytest.raises(ValueError, match="no copy gate"):
        small_model(copy=False).copy_gates(encoder_ids, decoder_ids)


def test_mixed_precision_keeps_float32_probabilities():
    """float16 compute, float32 output: the softmax, the gate and the copy mixture stay float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = small_model(copy=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    encoder_ids, decoder_ids = example_batch(5)
    probabilities = teacher_forced(model, encoder_ids, decoder_ids)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=2e-3)  # float16 attention weights
    assert model.training_model.get_layer("embedding").compute_dtype == "float16"
    step_probabilities, _ = model.step(decoder_ids[:, 0], *model.encode(encoder_ids))
    assert step_probabilities.dtype == np.float32
    np.testing.assert_allclose(step_probabilities, probabilities[:, 0], atol=1e-5)


# --- decoding, saving ------------------------------------------------------------------------

def test_greedy_and_beam_search_decode_titles_through_seq2seq():
    model = small_model(layers=1, decoder_length=6)
    vocabulary = seq2seq.build_vocabulary(["abcdefg"])  # 4 specials + 7 letters = 11 ids
    bodies = ["abc", "", "gfedcbaab", "dd"]  # an empty body is all padding
    encoder_ids = seq2seq.encode_bodies(vocabulary, bodies, encoder_length=7)
    greedy = seq2seq.greedy_decode(model, encoder_ids, max_length=6)
    for row, tokens in enumerate(greedy):
        assert len(tokens) <= 6 and not set(tokens) & {*FORBIDDEN_IDS, END_ID}
        # A beam of one is greedy decoding.
        assert seq2seq.beam_search(model, encoder_ids[row], beam_width=1, max_length=6)[0].tokens == tokens
    hypotheses = seq2seq.beam_search(model, encoder_ids[0], beam_width=3, max_length=6, length_penalty=0.6)
    assert 1 <= len(hypotheses) and [h.score for h in hypotheses] == sorted((h.score for h in hypotheses),
                                                                           reverse=True)
    for method in ("greedy", "beam"):
        texts = seq2seq.decode_titles(model, vocabulary, bodies, method=method, beam_width=2,
                                      encoder_length=7, max_length=6)
        assert len(texts) == 4 and set("".join(texts)) <= set("abcdefg ")
    assert seq2seq.decode_titles(model, vocabulary, bodies, encoder_length=7, max_length=6) == [
        seq2seq.collapse_whitespace(vocabulary.decode(tokens)) for tokens in greedy]
    with pytest.raises(ValueError, match="at most 6 tokens"):
        seq2seq.greedy_decode(model, encoder_ids, max_length=7)
    with pytest.raises(ValueError, match="reads at most 7 tokens"):
        seq2seq.decode_titles(model, vocabulary, bodies, encoder_length=8, max_length=6)


def test_a_saved_training_model_decodes_the_same_after_loading(tmp_path):
    encoder_ids, decoder_ids = example_batch(4)
    for positions in ("learned", "sinusoidal"):
        model = small_model(positions=positions, seed=4)
        path = tmp_path / f"{positions}.keras"
        model.training_model.save(path)
        loaded_model = keras.saving.load_model(path, compile=False)
        loaded = transformer.from_training_model(loaded_model)
        assert isinstance(loaded, transformer.TransformerSeq2Seq)
        assert loaded_model.get_layer("decoder_positions").kind == positions
        assert type(loaded_model.get_layer("decoder_1_cross_attention")) is transformer.CrossAttention
        np.testing.assert_allclose(teacher_forced(loaded, encoder_ids, decoder_ids),
                                   teacher_forced(model, encoder_ids, decoder_ids), atol=1e-6)
    # The loaded model's own encoder and one-step decoder (rebuilt from its layers' names).
    assert seq2seq.greedy_decode(loaded, encoder_ids, 5) == seq2seq.greedy_decode(model, encoder_ids, 5)


def test_from_training_model_tells_a_gru_model_from_a_transformer():
    gru = seq2seq.build_seq2seq(11, embedding_dim=8, units=8, layers=1, encoder_length=7, decoder_length=5,
                                copy=True)
    assert isinstance(transformer.from_training_model(gru.training_model), seq2seq.Seq2Seq)
    assert isinstance(transformer.from_training_model(small_model(layers=1).training_model),
                      transformer.TransformerSeq2Seq)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    with pytest.raises(ValueError, match="neither GRU nor Transformer"):
        transformer.from_training_model(other)
    with pytest.raises(ValueError, match="not a Transformer training model"):
        transformer.TransformerSeq2Seq.from_training_model(gru.training_model)


# --- learning --------------------------------------------------------------------------------

def fit(model, vocabulary, bodies, titles, encoder_length, decoder_length, epochs, batch_size, lr=3e-3):
    encoder_ids, decoder_inputs, targets = seq2seq.encode_pairs(vocabulary, bodies, titles, encoder_length,
                                                                decoder_length)
    model.training_model.compile(keras.optimizers.Adam(lr, clipnorm=5.0), seq2seq.masked_loss(), jit_compile=False)
    model.training_model.fit({"encoder_tokens": encoder_ids, "decoder_tokens": decoder_inputs}, targets,
                             batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)


def test_a_small_model_learns_the_titles_of_a_tiny_corpus():
    """Eight Korean (body, title) pairs, learnt by heart: every title comes back exactly, greedy
    and with beam search."""
    pairs = [("데비안은 자유 소프트웨어로 만든 운영체제입니다", "데비안이란"),
             ("패키지를 설치하려면 apt 명령을 씁니다", "패키지 설치"),
             ("김프에서 레이어를 추가하는 방법을 설명합니다", "레이어 추가"),
             ("커널을 새로 컴파일하는 과정은 길지만 어렵지 않습니다", "커널 컴파일"),
             ("네트워크 설정 파일은 etc 아래에 있습니다", "네트워크 설정"),
             ("브러시 크기는 도구 옵션에서 바꿉니다", "브러시 크기"),
             ("메일링 리스트에 가입하면 소식을 받습니다", "메일링 리스트"),
             ("버그를 보고하는 방법은 reportbug 입니다", "버그 보고")]
    bodies, titles = [body for body, _ in pairs], [title for _, title in pairs]
    vocabulary = seq2seq.build_vocabulary(bodies + titles)
    model = small_model(vocabulary.size, layers=1, model_dim=32, heads=2, dropout=0.0, encoder_length=24,
                        decoder_length=10)
    fit(model, vocabulary, bodies, titles, 24, 10, epochs=60, batch_size=8)  # 60 steps
    for method in ("greedy", "beam"):
        assert seq2seq.decode_titles(model, vocabulary, bodies, method=method, beam_width=3, encoder_length=24,
                                     max_length=10) == titles, method


def test_the_copy_model_writes_rare_body_characters():
    """The title is the body's first three syllables, drawn from 400: each one is the target of
    about eight training titles, and the held-out titles are new combinations.  Pointing at the
    body writes them; a softmax alone must learn every syllable from its few examples (measured:
    the same model with ``copy=False``, trained alike, wrote 10 of the 40 held-out titles)."""
    rng = np.random.default_rng(5)
    syllables = [chr(0xAC00 + index) for index in range(400)]
    train, test = (["".join(rng.choice(syllables, 8)) for _ in range(count)] for count in (1000, 40))
    vocabulary = seq2seq.build_vocabulary(train)
    test = [body for body in test if set(body) <= set(vocabulary.tokens)]  # no <unk> to write
    title_counts = collections.Counter("".join(body[:3] for body in train))
    assert np.median([title_counts[syllable] for body in test for syllable in body[:3]]) <= 10

    model = small_model(vocabulary.size, layers=1, model_dim=32, heads=2, dropout=0.0, encoder_length=8,
                        decoder_length=4, copy=True)
    fit(model, vocabulary, train, [body[:3] for body in train], 8, 4, epochs=12, batch_size=32)  # 384 steps
    written = seq2seq.decode_titles(model, vocabulary, test, encoder_length=8, max_length=4)
    assert np.mean([title == body[:3] for title, body in zip(written, test)]) >= 0.8
    # It writes them by copying: the gate gives almost all the probability to the body.
    encoder_ids, decoder_inputs, _ = seq2seq.encode_pairs(vocabulary, test, [body[:3] for body in test], 8, 4)
    gates, _ = model.copy_gates(encoder_ids, decoder_inputs)
    assert np.median(gates[:, :3]) < 0.1


# --- JAX -------------------------------------------------------------------------------------

ON_JAX = """
import keras, numpy as np
from dlcourse import backend, seq2seq, transformer
keras.utils.set_random_seed(0)
model = transformer.build_transformer(11, model_dim=16, heads=2, feed_forward_dim=32, layers=1,
                                      encoder_length=7, decoder_length=5)
rng = np.random.default_rng(0)
encoder_ids = rng.integers(4, 11, (3, 7)).astype("int32")
encoder_ids[1, 3:] = 0
decoder_ids = rng.integers(4, 11, (3, 5)).astype("int32")
decoder_ids[:, 0] = 1
inputs = {"encoder_tokens": encoder_ids, "decoder_tokens": decoder_ids}
# One jit-compiled call: op-by-op eager JAX compiles every op on its own (~20 s here).
teacher = backend.compiled(lambda inputs: model.training_model(inputs, training=False),
                           model.training_model.variables)
expected = backend.to_numpy(teacher(inputs))
outputs, ids, states = model.encode(encoder_ids)
for position in range(5):
    probabilities, states = model.step(decoder_ids[:, position], outputs, ids, states)
    np.testing.assert_allclose(probabilities, expected[:, position], atol=1e-5)
layer = model.training_model.get_layer("next_token")
kernel, bias = layer.get_weights()
layer.set_weights([kernel * 5, bias])  # as training does between two epochs
changed = backend.to_numpy(teacher(inputs))
first, _ = model.step(decoder_ids[:, 0], *model.encode(encoder_ids))
np.testing.assert_allclose(first, changed[:, 0], atol=1e-5)
assert np.abs(changed - expected).max() > 1e-3
print(backend.name(), len(seq2seq.greedy_decode(model, encoder_ids, 5)))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install -e .[jax])")
def test_the_transformer_runs_on_jax():
    """On JAX, without TensorFlow: the one-step decoder matches the training model, and still does
    after the weights change (jax.jit of the step must get them at every call).  About 25 s, most
    of it JAX building the model."""
    environment = {**os.environ, **jax_test_environment()}
    result = subprocess.run([sys.executable, "-c", ON_JAX], env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["jax", "3"]

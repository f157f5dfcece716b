"""Week 4 · a GRU encoder–decoder with attention that writes a news title from the article body.

The pieces, in the order the lab uses them:

* **Tokens.**  One token per character (syllable), spaces included, with four
  special tokens ``<pad>`` (0), ``<s>`` (1), ``</s>`` (2) and ``<unk>`` (3):
  the decoder starts from ``<s>`` and learns to stop by writing ``</s>``.
  The vocabulary is ``hangul.Vocabulary`` with these specials.
* **Teacher forcing.**  During training the decoder reads the *true* title
  shifted right by one (``<s>`` + title) and predicts the title + ``</s>``
  at every position in parallel (``encode_pairs``).
* **The model** (``build_seq2seq``): a shared embedding; an encoder of
  stacked GRUs over the body; a decoder of stacked GRUs that starts from the
  encoder's final states (layer by layer); Luong dot-product attention of the
  top decoder outputs over the top encoder outputs; ``[output, context]`` →
  Dense(tanh) → softmax.  With ``copy=True`` (the lab's default) the model
  is a *pointer-generator*: a gate mixes that softmax with the attention
  weights themselves, so the decoder can copy a character of the body it
  attends to, even one it rarely saw in a title (``CopyMixture``).
  ``Seq2Seq`` holds three Keras models over the same
  layers: one to train, and an encoder plus a one-step decoder to write titles;
  ``Seq2Seq.copy_gates`` reads the gate and the attention for given titles.
* **Decoding.**  ``greedy_decode`` takes the most likely token at each step;
  ``beam_search`` keeps the ``beam_width`` most likely prefixes.  Both feed
  one token per step and carry the GRU states, so a step never re-reads the
  prefix.
"""
import collections

import keras
import numpy as np

from dlcourse import backend, hangul

TITLE_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
PAD_ID, START_ID, END_ID, UNK_ID = range(len(TITLE_SPECIALS))
# A decoder never writes these: padding, a second start, or "some unknown character".
FORBIDDEN_IDS = (PAD_ID, START_ID, UNK_ID)
DECODE_BATCH = 64  # bodies decoded together by decode_titles (greedy)

Hypothesis = collections.namedtuple("Hypothesis", "tokens log_probability score")


# ---------------------------------------------------------------------------
# Tokens: vocabulary and padded id arrays
# ---------------------------------------------------------------------------

def collapse_whitespace(text):
    """``text`` with every run of whitespace (newlines included) turned into one space.

    A body's line breaks and double spaces carry no meaning for a title, and
    without this they would take vocabulary ids and encoder positions.
    """
    return " ".join(text.split())


def build_vocabulary(texts, min_count=1):
    """A syllable-level vocabulary with ``TITLE_SPECIALS`` of the characters of ``texts``.

    Pass the *training* bodies and titles only: characters seen fewer than
    ``min_count`` times (and all characters of other texts) become ``<unk>``,
    so the model learns how to read a character it does not know.
    """
    text = "".join(collapse_whitespace(text) for text in texts)
    return hangul.Vocabulary.from_text(text, "syllable", min_count=min_count, specials=TITLE_SPECIALS)


def load_vocabulary(path):
    """A vocabulary written by ``Vocabulary.save``; ValueError if it is not a title vocabulary."""
    vocabulary = hangul.Vocabulary.load(path)
    _check_vocabulary(vocabulary)
    return vocabulary


def _check_vocabulary(vocabulary):
    if tuple(vocabulary.specials) != TITLE_SPECIALS:
        raise ValueError(f"a title vocabulary needs the special tokens {TITLE_SPECIALS}, "
                         f"this one has {vocabulary.specials}")


def _pad(rows, length):
    """Rows of ids cut to ``length`` and right-padded with ``<pad>`` (0), as one int32 array."""
    array = np.full((len(rows), length), PAD_ID, dtype="int32")
    for index, row in enumerate(rows):
        row = list(row)[:length]
        array[index, :len(row)] = row
    return array


def encode_bodies(vocabulary, bodies, encoder_length=100):
    """The first ``encoder_length`` tokens of every body, right-padded with 0: (N, encoder_length)."""
    _check_vocabulary(vocabulary)
    return _pad([vocabulary.encode(collapse_whitespace(body)) for body in bodies], encoder_length)


def encode_pairs(vocabulary, bodies, titles, encoder_length=100, decoder_length=20):
    """``(encoder_ids, decoder_inputs, decoder_targets)``, three int32 arrays for teacher forcing.

    * ``encoder_ids`` (N, encoder_length): the body's first ``encoder_length``
      tokens, right-padded with 0.
    * The title is cut to its first ``decoder_length - 1`` tokens, so that
      ``<s>`` + title and title + ``</s>`` both fit in ``decoder_length``
      positions: a long title is shortened, and it still ends with ``</s>``.
    * ``decoder_inputs`` (N, decoder_length): ``<s>`` + title, padded with 0.
    * ``decoder_targets`` (N, decoder_length): title + ``</s>``, padded with 0:
      at position t the decoder has read ``<s>`` and the first t title tokens
      and must predict the next one.

    Inputs and targets are non-zero at exactly the same positions, so the
    loss (``masked_loss``) and the decoder's mask ignore the same padding.
    """
    _check_vocabulary(vocabulary)
    if len(bodies) != len(titles):
        raise ValueError(f"{len(bodies)} bodies but {len(titles)} titles")
    if decoder_length < 1:
        raise ValueError(f"decoder_length must be at least 1, got {decoder_length}")
    title_ids = [vocabulary.encode(collapse_whitespace(title))[:decoder_length - 1].tolist() for title in titles]
    decoder_inputs = _pad([[START_ID, *ids] for ids in title_ids], decoder_length)
    decoder_targets = _pad([[*ids, END_ID] for ids in title_ids], decoder_length)
    return encode_bodies(vocabulary, bodies, encoder_length), decoder_inputs, decoder_targets


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

def masked_loss():
    """Cross-entropy of the next title token; targets equal to ``<pad>`` (0) count for nothing.

    The mean is taken over the real target tokens only, so a batch of short
    titles weighs as much per token as a batch of long ones.
    """
    return keras.losses.SparseCategoricalCrossentropy(ignore_class=PAD_ID, name="masked_loss")


def _make_layers(vocabulary_size, embedding_dim, units, layers, dropout, copy=False):
    """Every layer of the model, by name.  The names are fixed: ``Seq2Seq.from_training_model``
    finds the layers of a loaded model by them."""
    # One embedding for both sides: body and title are written with the same
    # syllables, and the few title characters learn from every body too.
    # mask_zero: the GRUs skip padding, so the encoder's final states are its
    # states after the body's last real token.
    made = [keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")]
    for side in ("encoder", "decoder"):
        for index in range(1, layers + 1):
            made.append(keras.layers.GRU(units, return_sequences=True, return_state=True,
                                         name=f"{side}_gru_{index}"))
            if dropout and index < layers:
                made.append(keras.layers.Dropout(dropout, name=f"{side}_dropout_{index}"))
    made += [
        # Luong "dot" attention: score(decoder output, encoder output) = their dot product.
        keras.layers.Attention(name="attention"),
        keras.layers.Concatenate(name="attention_concat"),
        keras.layers.Dense(units, activation="tanh", name="attention_output"),
        # float32 even under mixed precision: a softmax over ~1 500 tokens needs it.
        keras.layers.Dense(vocabulary_size, activation="softmax", dtype="float32", name="next_token"),
    ]
    if copy:
        # p(write from the vocabulary) versus p(copy a body character), from [output, context].
        made += [keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="copy_gate"),
                 CopyMixture(dtype="float32", name="copy_mixture")]
    return {layer.name: layer for layer in made}


@keras.saving.register_keras_serializable(package="dlcourse")
class CopyMixture(keras.layers.Layer):
    """The pointer-generator output (See, Liu and Manning, 2017):

        p(token) = gate · p_vocabulary(token) + (1 − gate) · Σ attention weight of every
                   encoder position that holds ``token``

    The copy part scatters the attention weights onto the vocabulary with a
    one-hot of the encoder's token ids, so a title can reuse the body's rare
    words (names, terms) that the softmax alone learns slowly from a small corpus.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the decoder's padding mask passes through to the loss

    def call(self, vocabulary_probabilities, attention_weights, encoder_tokens, gate):
        vocabulary_size = keras.ops.shape(vocabulary_probabilities)[-1]
        body_tokens = keras.ops.one_hot(encoder_tokens, vocabulary_size, dtype="float32")  # (B, Te, V)
        copy_probabilities = keras.ops.matmul(keras.ops.cast(attention_weights, "float32"), body_tokens)
        return gate * vocabulary_probabilities + (1.0 - gate) * copy_probabilities


def _count_layers(layers, side):
    count = 0
    while f"{side}_gru_{count + 1}" in layers:
        count += 1
    return count


def _run_encoder(layers, encoder_tokens):
    """Embedding → stacked GRUs: ``(top outputs (B, Te, units), [final state of every layer])``."""
    hidden = layers["embedding"](encoder_tokens)
    states = []
    for index in range(1, _count_layers(layers, "encoder") + 1):
        hidden, state = layers[f"encoder_gru_{index}"](hidden)
        states.append(state)
        if f"encoder_dropout_{index}" in layers:
            hidden = layers[f"encoder_dropout_{index}"](hidden)
    return hidden, states


def _run_decoder(layers, decoder_tokens, encoder_outputs, encoder_tokens, states):
    """Embedding → stacked GRUs (layer i starts from ``states[i]``) → attention → softmax
    (→ copy mixture, when the model has one).

    ``(probabilities (B, Td, V), [final state of every layer])``.  The training
    model and the one-step decoder are both built with this function, so they
    compute exactly the same thing.
    """
    features, weights, new_states = _decode_features(layers, decoder_tokens, encoder_outputs,
                                                     encoder_tokens, states)
    probabilities = layers["next_token"](layers["attention_output"](features))
    if "copy_mixture" in layers:
        probabilities = layers["copy_mixture"](probabilities, weights, encoder_tokens,
                                               layers["copy_gate"](features))
    return probabilities, new_states


def _decode_features(layers, decoder_tokens, encoder_outputs, encoder_tokens, states):
    """The decoder up to the attention: ``([output; context] (B, Td, 2·units),
    attention weights (B, Td, Te), [final state of every layer])``."""
    hidden = layers["embedding"](decoder_tokens)
    new_states = []
    for index, state in enumerate(states, start=1):
        hidden, state = layers[f"decoder_gru_{index}"](hidden, initial_state=state)
        new_states.append(state)
        if f"decoder_dropout_{index}" in layers:
            hidden = layers[f"decoder_dropout_{index}"](hidden)
    # Every decoder position looks at all encoder positions but the padding.
    encoder_mask = keras.ops.not_equal(encoder_tokens, PAD_ID)
    context, weights = layers["attention"]([hidden, encoder_outputs], mask=[None, encoder_mask],
                                           return_attention_scores=True)
    return layers["attention_concat"]([hidden, context]), weights, new_states


def build_seq2seq(vocabulary_size, embedding_dim=128, units=300, layers=3, dropout=0.0,
                  encoder_length=100, decoder_length=20, copy=False):
    """A new, untrained ``Seq2Seq``; ``dropout`` is applied between stacked GRU layers.

    The training model has fixed input lengths (``encoder_length``,
    ``decoder_length``), so one traced program serves every batch.
    """
    named = _make_layers(vocabulary_size, embedding_dim, units, layers, dropout, copy)
    encoder_tokens = keras.Input((encoder_length,), dtype="int32", name="encoder_tokens")
    decoder_tokens = keras.Input((decoder_length,), dtype="int32", name="decoder_tokens")
    encoder_outputs, states = _run_encoder(named, encoder_tokens)
    probabilities, _ = _run_decoder(named, decoder_tokens, encoder_outputs, encoder_tokens, states)
    training_model = keras.Model({"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens},
                                 probabilities, name="seq2seq")
    return Seq2Seq.from_training_model(training_model)


class Seq2Seq:
    """Three Keras models that share one set of layers (and so one set of weights).

    * ``training_model``: ``{"encoder_tokens": (B, Te), "decoder_tokens": (B, Td)}``
      → probabilities (B, Td, V), float32.  Train it with teacher forcing and
      ``masked_loss``; save and load it like any Keras model.
    * ``encoder_model``: encoder tokens (B, any length) → ``[outputs (B, Te, units),
      state of GRU layer 1, …, state of layer L]``.
    * ``decoder_step_model``: ``[token (B, 1), encoder outputs, encoder token ids (B, Te)
      (0 = padding; the copy mixture needs the ids), state 1, …, state L]`` → ``[probabilities (B, V),
      new state 1, …, new state L]``: one decoder step.

    (Keras' ``summary()`` shows a shared layer with the shapes of its last
    use, so ``training_model.summary()`` lists one-step shapes such as
    (None, 1, 128); the parameter counts are right.)
    """

    def __init__(self, training_model, encoder_model, decoder_step_model):
        self.training_model = training_model
        self.encoder_model = encoder_model
        self.decoder_step_model = decoder_step_model
        self._copy_model = None  # built by copy_gates, on first use
        # Decoding calls the step once per token: traced once, it skips Keras' per-call overhead.
        self._encode = backend.compiled(self._encode_eagerly, training_model.variables)
        self._step = backend.compiled(self._step_eagerly, training_model.variables)

    @classmethod
    def from_training_model(cls, training_model):
        """Rebuild the encoder and one-step decoder around the layers of a (loaded) training model."""
        named = {layer.name: layer for layer in training_model.layers}
        for name in ("embedding", "encoder_gru_1", "decoder_gru_1", "attention", "next_token"):
            if name not in named:
                raise ValueError(f"not a seq2seq training model: it has no layer {name!r}")
        if _count_layers(named, "encoder") != _count_layers(named, "decoder"):
            raise ValueError("not a seq2seq training model: encoder and decoder depths differ")
        units = named["encoder_gru_1"].units

        encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
        encoder_outputs, states = _run_encoder(named, encoder_tokens)
        encoder_model = keras.Model(encoder_tokens, [encoder_outputs, *states], name="seq2seq_encoder")

        token = keras.Input((1,), dtype="int32", name="decoder_token")
        outputs_input = keras.Input((None, units), name="encoder_outputs")
        ids_input = keras.Input((None,), dtype="int32", name="encoder_ids")
        state_inputs = [keras.Input((units,), name=f"decoder_state_{index + 1}")
                        for index in range(len(states))]
        probabilities, new_states = _run_decoder(named, token, outputs_input, ids_input, state_inputs)
        decoder_step_model = keras.Model([token, outputs_input, ids_input, *state_inputs],
                                         [keras.ops.squeeze(probabilities, axis=1), *new_states],
                                         name="seq2seq_decoder_step")
        return cls(training_model, encoder_model, decoder_step_model)

    @property
    def vocabulary_size(self):
        return self.training_model.output_shape[-1]

    def copy_gates(self, encoder_ids, decoder_ids):
        """What the copy mechanism does while the decoder reads ``decoder_ids`` (teacher forcing):
        ``(gates (B, Td), attention weights (B, Td, Te))``, NumPy float32 arrays.

        ``gates[b, t]`` is g, the weight of the vocabulary softmax at decoder
        position t (1 − g goes to copying); ``weights[b, t, i]`` is the
        attention on encoder position i, which is also how the copy part
        shares 1 − g among the body's characters.  Values at padded decoder
        positions mean nothing.  ValueError for a model built with ``copy=False``.
        """
        if self._copy_model is None:
            named = {layer.name: layer for layer in self.training_model.layers}
            if "copy_gate" not in named:
                raise ValueError("this model has no copy gate (it was built with copy=False)")
            encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
            decoder_tokens = keras.Input((None,), dtype="int32", name="decoder_tokens")
            encoder_outputs, states = _run_encoder(named, encoder_tokens)
            features, weights, _ = _decode_features(named, decoder_tokens, encoder_outputs,
                                                    encoder_tokens, states)
            gates = keras.ops.squeeze(named["copy_gate"](features), axis=-1)
            self._copy_model = keras.Model([encoder_tokens, decoder_tokens], [gates, weights],
                                           name="seq2seq_copy_gates")
        gates, weights = self._copy_model([np.asarray(encoder_ids, dtype="int32"),
                                           np.asarray(decoder_ids, dtype="int32")], training=False)
        return (keras.ops.convert_to_numpy(gates).astype("float32"),
                keras.ops.convert_to_numpy(weights).astype("float32"))

    def _encode_eagerly(self, encoder_ids):
        return self.encoder_model(encoder_ids, training=False)

    def _step_eagerly(self, inputs):
        return self.decoder_step_model(inputs, training=False)

    def encode(self, encoder_ids):
        """``(encoder outputs, encoder ids, [states])`` as NumPy arrays for a batch of ids
        (the ids go back into every ``step``: they are its padding mask and what it copies)."""
        encoder_ids = np.asarray(encoder_ids, dtype="int32")
        outputs, *states = self._encode(encoder_ids)
        return backend.to_numpy(outputs), encoder_ids, [backend.to_numpy(state) for state in states]

    def step(self, token_ids, encoder_outputs, encoder_ids, states):
        """One decoder step for a batch: ``(probabilities (B, V), [new states])``, NumPy arrays."""
        token_ids = np.asarray(token_ids, dtype="int32").reshape(-1, 1)
        probabilities, *states = self._step([token_ids, encoder_outputs, encoder_ids, *states])
        return backend.to_numpy(probabilities), [backend.to_numpy(state) for state in states]


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

def _allowed_log_probabilities(probabilities):
    """log p for every token, -inf for the tokens a decoder must not write."""
    with np.errstate(divide="ignore"):
        log_probabilities = np.log(np.asarray(probabilities, dtype="float64"))
    log_probabilities[:, FORBIDDEN_IDS] = -np.inf
    return log_probabilities


def greedy_decode(seq2seq, encoder_ids, max_length=20):
    """The most likely token at every step, for every row of ``encoder_ids`` (N, Te) at once.

    A row stops at ``</s>`` or after ``max_length`` tokens (``</s>`` included).
    Returns one list of token ids per row, without ``<s>``, ``</s>`` or padding.
    """
    encoder_outputs, encoder_ids, states = seq2seq.encode(encoder_ids)
    rows = len(encoder_outputs)
    tokens = np.full(rows, START_ID, dtype="int32")
    titles = [[] for _ in range(rows)]
    finished = np.zeros(rows, dtype=bool)
    for _ in range(max_length):
        probabilities, states = seq2seq.step(tokens, encoder_outputs, encoder_ids, states)
        tokens = _allowed_log_probabilities(probabilities).argmax(axis=1).astype("int32")
        for row in np.flatnonzero(~finished):
            if tokens[row] == END_ID:
                finished[row] = True
            else:
                titles[row].append(int(tokens[row]))
        if finished.all():
            break
    return titles


def beam_search(seq2seq, encoder_ids_row, beam_width=4, max_length=20, length_penalty=0.0):
    """The best titles for one body, as ``Hypothesis(tokens, log_probability, score)``, best first.

    At each step every live prefix ("beam") is extended by every allowed token
    and the ``beam_width`` most probable extensions are kept; all beams go
    through the decoder as one batch.  An extension that ends with ``</s>``
    becomes a candidate and stops; beams still alive after ``max_length``
    tokens become candidates too.

    ``score = log_probability / length ** length_penalty``, where ``length``
    counts the generated tokens with the final ``</s>``.  A sum of log
    probabilities favours short titles (every token adds a negative number);
    ``length_penalty`` > 0 (0.6 is common) compensates, 0 ranks by the plain
    sum.  Beams of one step all have the same length, so pruning by log
    probability and by score is the same.  ``tokens`` has no ``<s>``/``</s>``.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    encoder_outputs, encoder_ids, states = seq2seq.encode(np.asarray(encoder_ids_row).reshape(1, -1))
    encoder_outputs = np.repeat(encoder_outputs, beam_width, axis=0)
    encoder_ids = np.repeat(encoder_ids, beam_width, axis=0)

    def hypothesis(tokens, log_probability, length):
        score = log_probability / length ** length_penalty
        return Hypothesis(tokens, float(log_probability), float(score))

    beams, log_probabilities = [[]], np.zeros(1)  # live prefixes and their log probabilities
    candidates = []
    for length in range(1, max_length + 1):
        count = len(beams)
        last_tokens = [beam[-1] if beam else START_ID for beam in beams]
        probabilities, states = seq2seq.step(last_tokens, encoder_outputs[:count],
                                             encoder_ids[:count], states)
        totals = log_probabilities[:, None] + _allowed_log_probabilities(probabilities)
        best = np.argsort(-totals, axis=None, kind="stable")[:beam_width]
        kept, kept_log_probabilities, origins = [], [], []
        for beam, token in zip(*np.unravel_index(best, totals.shape)):
            total = totals[beam, token]
            if not np.isfinite(total):  # a forbidden token: every later one is forbidden too
                break
            if token == END_ID:
                candidates.append(hypothesis(beams[beam], total, length))
            else:
                kept.append(beams[beam] + [int(token)])
                kept_log_probabilities.append(total)
                origins.append(beam)
        beams, log_probabilities = kept, np.array(kept_log_probabilities)
        if not beams:
            break
        states = [state[origins] for state in states]
    candidates += [hypothesis(beam, total, max_length) for beam, total in zip(beams, log_probabilities)]
    return sorted(candidates, key=lambda candidate: candidate.score, reverse=True)


def decode_titles(seq2seq, vocabulary, bodies, method="greedy", beam_width=4, length_penalty=0.0,
                  encoder_length=100, max_length=20):
    """A title (text) for every body, written by greedy decoding or beam search.

    Spaces are tidied as ``collapse_whitespace`` tidied the training titles, so an
    untrained model's run of spaces comes out as an empty title.
    """
    encoder_ids = encode_bodies(vocabulary, bodies, encoder_length)
    if method == "greedy":
        token_lists = []
        for start in range(0, len(encoder_ids), DECODE_BATCH):
            token_lists += greedy_decode(seq2seq, encoder_ids[start:start + DECODE_BATCH], max_length)
    elif method == "beam":
        token_lists = [beam_search(seq2seq, row, beam_width, max_length, length_penalty)[0].tokens
                       for row in encoder_ids]
    else:
        raise ValueError(f"unknown decoding method {method!r}; choose greedy or beam")
    return [collapse_whitespace(vocabulary.decode(tokens)) for tokens in token_lists]

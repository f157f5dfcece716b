"""Week 4 · a Transformer encoder–decoder that writes a news title from the article body.

The same task, tokens, loss and decoders as the GRU model of ``dlcourse.seq2seq``;
only the model changes (Vaswani et al. 2017, "Attention Is All You Need").

* **What replaces recurrence.**  A GRU reads a body one character after the
  other, so position 100 reaches position 1 through 99 steps.  Here every
  position looks at every other one in one step (*self-attention*), and a
  position knows where it is only from a *position embedding* added to its
  token embedding.  A block is attention then a position-wise feed-forward
  network, each with a residual connection and a layer normalization; the
  encoder stacks ``layers`` blocks over the body.  All positions are computed
  at once, which is what makes training parallel.
* **Why a causal mask.**  The decoder reads ``<s>`` + title (teacher forcing)
  and predicts the next character at every position in parallel.  If position
  t could attend to position t + 1, it would read the very answer it must
  predict; the causal mask lets position t see positions 0..t only.  Each
  decoder block then attends over the encoder's outputs (*cross-attention*,
  the counterpart of the GRU model's Luong attention); padding of the body is
  masked out there and in the encoder's self-attention.
* **The copy gate** (``copy=True``): as in the GRU model, a pointer-generator
  (``seq2seq.CopyMixture``).  The last decoder block's cross-attention
  weights, averaged over the heads, say which body characters the decoder is
  looking at; a sigmoid gate g, computed from [decoder output; cross-attention
  context], mixes ``g · softmax + (1 − g) · (attention mass on each body character)``,
  so a rare name or term of the body can be written by pointing at it.
* **Writing a title.**  ``TransformerSeq2Seq`` has the interface of
  ``seq2seq.Seq2Seq`` (``encode``, ``step``), so ``seq2seq.greedy_decode``,
  ``seq2seq.beam_search`` and ``seq2seq.decode_titles`` work on it unchanged.
  A GRU step carries a hidden state; a Transformer step has no state but the
  title written so far.  Its "state" is that prefix, padded to the decoder
  length, and the index of the position being written: each step writes the
  last token into the prefix, runs the decoder over all ``decoder_length``
  positions (the causal mask makes the positions not yet written irrelevant)
  and reads the probabilities at the index.  One shape for every step, so the
  compiled step is traced once.  (Real systems cache each layer's keys and
  values instead; a 20-token title does not need it.)

Pre-LN blocks (``x + Sublayer(LayerNorm(x))``, Xiong et al. 2020) rather than
the paper's post-LN (``LayerNorm(x + Sublayer(x))``): the residual path stays
an identity from the embedding to the output, so the model trains with a plain
Adam at 1e-3 and gradient clipping, as the GRU lab does, without the learning-
rate warm-up a post-LN Transformer needs.  A final LayerNorm closes each stack.
"""
import math

import keras
import numpy as np

from dlcourse import backend, seq2seq
from dlcourse.seq2seq import PAD_ID

POSITION_KINDS = ("learned", "sinusoidal")


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dlcourse")
class PositionEmbedding(keras.layers.Layer):
    """Token vectors (B, T, D) → token vectors · √D + a vector for each position 0..T−1.

    Attention itself is blind to order (it sees a set of positions); this
    vector tells each position where it is.  ``learned``: a trainable table
    of ``length`` vectors (one per position, as in BERT and GPT);
    ``sinusoidal``: the fixed sines and cosines of Vaswani et al., nothing to
    learn.  The token vectors are first scaled by √D (Vaswani et al.): the
    embedding starts with standard deviation 1/√D, so they start at unit
    scale, the sinusoids' scale.  Inputs may be shorter than ``length`` (the
    first T vectors are used), not longer.
    """

    def __init__(self, length, kind="learned", **kwargs):
        super().__init__(**kwargs)
        if kind not in POSITION_KINDS:
            raise ValueError(f"unknown position embedding {kind!r}; choose one of {POSITION_KINDS}")
        self.length, self.kind = int(length), kind

    def build(self, input_shape):
        dimension = input_shape[-1]
        if self.kind == "learned":
            self.positions = self.add_weight(shape=(self.length, dimension), name="positions",
                                             initializer=keras.initializers.RandomNormal(stddev=0.02))
        else:
            self.positions = keras.ops.convert_to_tensor(sinusoids(self.length, dimension))

    def call(self, inputs):
        length = keras.ops.shape(inputs)[1]
        positions = keras.ops.cast(self.positions[:length], inputs.dtype)
        return inputs * math.sqrt(inputs.shape[-1]) + positions[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "length": self.length, "kind": self.kind}


@keras.saving.register_keras_serializable(package="dlcourse")
class CrossAttention(keras.layers.MultiHeadAttention):
    """``MultiHeadAttention`` whose symbolic attention weights have the right shape (B, heads, Tq, Tk).

    Keras 3's ``MultiHeadAttention.compute_output_spec`` gives them (B, heads,
    Tq, Tq), the query length twice: fine for self-attention, wrong when a
    title of 20 positions attends over a body of 100, and the copy mixture,
    built on that shape, then fails to build.  The values were always right.
    """

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, **kwargs):
        spec = super().compute_output_spec(query, value, key, return_attention_scores=return_attention_scores,
                                           **kwargs)
        if not return_attention_scores:
            return spec
        output, _ = spec
        shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(shape, dtype=self.compute_dtype)


def sinusoids(length, dimension):
    """Vaswani et al.'s position table (length, dimension): sin and cos of position / 10000^(2i/D)."""
    positions = np.arange(length)[:, None]
    frequencies = 1.0 / 10000 ** (np.arange(0, dimension, 2) / dimension)
    table = np.zeros((length, dimension), dtype="float32")
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies)[:, :dimension // 2]
    return table


def _make_layers(vocabulary_size, model_dim, heads, feed_forward_dim, layers, dropout, encoder_length,
                 decoder_length, copy, positions):
    """Every layer of the model, by name.  The names are fixed:
    ``TransformerSeq2Seq.from_training_model`` finds the layers of a loaded model by them."""
    # One embedding for body and title, as in the GRU model: the same syllables on both sides.
    # No mask_zero: the attention layers get their padding masks explicitly.
    made = [keras.layers.Embedding(vocabulary_size, model_dim, name="embedding",
                                   embeddings_initializer=keras.initializers.RandomNormal(
                                       stddev=model_dim ** -0.5)),
            PositionEmbedding(encoder_length, positions, name="encoder_positions"),
            PositionEmbedding(decoder_length, positions, name="decoder_positions"),
            keras.layers.Dropout(dropout, name="encoder_embedding_dropout"),
            keras.layers.Dropout(dropout, name="decoder_embedding_dropout")]

    def attention(name, kind=keras.layers.MultiHeadAttention):
        return [keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm"),
                kind(heads, model_dim // heads, dropout=dropout, name=name),
                keras.layers.Dropout(dropout, name=f"{name}_dropout")]

    def feed_forward(name):
        return [keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm"),
                keras.layers.Dense(feed_forward_dim, activation="relu", name=f"{name}_1"),
                keras.layers.Dense(model_dim, name=f"{name}_2"),
                keras.layers.Dropout(dropout, name=f"{name}_dropout")]

    for index in range(1, layers + 1):
        made += attention(f"encoder_{index}_self_attention") + feed_forward(f"encoder_{index}_feed_forward")
    for index in range(1, layers + 1):
        made += (attention(f"decoder_{index}_self_attention")
                 + attention(f"decoder_{index}_cross_attention", CrossAttention)
                 + feed_forward(f"decoder_{index}_feed_forward"))
    made += [keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm"),
             keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm"),
             # float32 even under mixed precision: a softmax over ~1 500 tokens needs it.
             keras.layers.Dense(vocabulary_size, activation="softmax", dtype="float32", name="next_token")]
    if copy:
        # p(write from the vocabulary) versus p(copy a body character), from [output, context].
        made += [keras.layers.Concatenate(name="copy_features"),
                 keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="copy_gate"),
                 # float32: under mixed precision a float16 layer would cast the float32 softmax back.
                 seq2seq.CopyMixture(dtype="float32", name="copy_mixture")]
    return {layer.name: layer for layer in made}


def _count_blocks(layers, side):
    count = 0
    while f"{side}_{count + 1}_self_attention" in layers:
        count += 1
    return count


def _residual(layers, name, hidden, sublayer):
    """Pre-LN: ``hidden + Dropout(sublayer(LayerNorm(hidden)))``."""
    return hidden + layers[f"{name}_dropout"](sublayer(layers[f"{name}_norm"](hidden)))


def _feed_forward(layers, name, hidden):
    return _residual(layers, name, hidden, lambda x: layers[f"{name}_2"](layers[f"{name}_1"](x)))


def _run_encoder(layers, encoder_tokens):
    """Embedding + positions → blocks of (self-attention, feed-forward) → LayerNorm: (B, Te, D).

    A body position attends to every real body position, never to padding.
    """
    body = keras.ops.not_equal(encoder_tokens, PAD_ID)
    hidden = layers["encoder_embedding_dropout"](layers["encoder_positions"](layers["embedding"](encoder_tokens)))
    for index in range(1, _count_blocks(layers, "encoder") + 1):
        name = f"encoder_{index}_self_attention"
        hidden = _residual(layers, name, hidden, lambda x, name=name: layers[name](x, x, value_mask=body))
        hidden = _feed_forward(layers, f"encoder_{index}_feed_forward", hidden)
    return layers["encoder_norm"](hidden)


def _decode_features(layers, decoder_tokens, encoder_outputs, encoder_tokens):
    """The decoder up to the softmax: ``(output (B, Td, D), last cross-attention context (B, Td, D),
    its weights averaged over the heads (B, Td, Te))``.

    Self-attention is causal: position t sees the title tokens 0..t only.
    Title padding needs no mask of its own: it comes after the real tokens,
    so the causal mask already hides it from every real position.
    """
    body = keras.ops.not_equal(encoder_tokens, PAD_ID)
    hidden = layers["decoder_embedding_dropout"](layers["decoder_positions"](layers["embedding"](decoder_tokens)))
    found = {}

    def cross_attention(x, name):
        context, weights = layers[name](x, encoder_outputs, value_mask=body, return_attention_scores=True)
        found.update(context=context, weights=weights)
        return context

    for index in range(1, _count_blocks(layers, "decoder") + 1):
        name = f"decoder_{index}_self_attention"
        hidden = _residual(layers, name, hidden, lambda x, name=name: layers[name](x, x, use_causal_mask=True))
        name = f"decoder_{index}_cross_attention"
        hidden = _residual(layers, name, hidden, lambda x, name=name: cross_attention(x, name))
        hidden = _feed_forward(layers, f"decoder_{index}_feed_forward", hidden)
    weights = keras.ops.mean(found["weights"], axis=1)  # (B, heads, Td, Te) → (B, Td, Te)
    return layers["decoder_norm"](hidden), found["context"], weights


def _run_decoder(layers, decoder_tokens, encoder_outputs, encoder_tokens, position=None):
    """Probabilities of the next token at every decoder position, (B, Td, V) float32 (→ copy
    mixture, when the model has one).  The training model and the one-step decoder are both built
    with this function, so they compute exactly the same thing.

    ``position`` (B,) int: only that position's probabilities, (B, 1, V).  The softmax, the gate
    and the copy mixture work on each position alone, so the one-step decoder applies them to the
    one position it writes: the most expensive part of a step (a softmax over ~1 000 tokens and a
    one-hot of the body) once instead of ``decoder_length`` times.
    """
    output, context, weights = _decode_features(layers, decoder_tokens, encoder_outputs, encoder_tokens)
    if position is not None:
        pick = keras.ops.one_hot(position, keras.ops.shape(output)[1], dtype=output.dtype)[:, None, :]  # (B, 1, Td)
        output, context = keras.ops.matmul(pick, output), keras.ops.matmul(pick, context)
        weights = keras.ops.matmul(keras.ops.cast(pick, weights.dtype), weights)
    probabilities = layers["next_token"](output)
    if "copy_mixture" in layers:
        gate = layers["copy_gate"](layers["copy_features"]([output, context]))
        probabilities = layers["copy_mixture"](probabilities, weights, encoder_tokens, gate)
    return probabilities


def build_transformer(vocabulary_size, model_dim=128, heads=4, feed_forward_dim=256, layers=2, dropout=0.1,
                      encoder_length=100, decoder_length=20, copy=True, positions="sinusoidal"):
    """A new, untrained ``TransformerSeq2Seq``: ``layers`` encoder blocks and ``layers`` decoder blocks.

    ``model_dim`` must be a multiple of ``heads`` (each head attends in
    ``model_dim // heads`` dimensions); ``positions`` is "sinusoidal" or
    "learned" (``PositionEmbedding``): on the shipped corpus the fixed
    sinusoids wrote better titles (test ROUGE-L 0.234 against 0.209 after 15
    epochs, dropout 0.3), as a table of 120 learned vectors is more to learn
    from 1 236 pairs.  As in ``build_seq2seq``, the training model has fixed
    input lengths, so one traced program serves every batch.
    """
    if model_dim % heads:
        raise ValueError(f"model_dim ({model_dim}) must be a multiple of heads ({heads})")
    named = _make_layers(vocabulary_size, model_dim, heads, feed_forward_dim, layers, dropout, encoder_length,
                         decoder_length, copy, positions)
    encoder_tokens = keras.Input((encoder_length,), dtype="int32", name="encoder_tokens")
    decoder_tokens = keras.Input((decoder_length,), dtype="int32", name="decoder_tokens")
    encoder_outputs = _run_encoder(named, encoder_tokens)
    probabilities = _run_decoder(named, decoder_tokens, encoder_outputs, encoder_tokens)
    training_model = keras.Model({"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens},
                                 probabilities, name="transformer")
    return TransformerSeq2Seq.from_training_model(training_model)


# ---------------------------------------------------------------------------
# The three models
# ---------------------------------------------------------------------------

class TransformerSeq2Seq:
    """Three Keras models over one set of layers, with the interface of ``seq2seq.Seq2Seq``.

    * ``training_model``: ``{"encoder_tokens": (B, Te), "decoder_tokens": (B, Td)}``
      → probabilities (B, Td, V), float32.  Train it with teacher forcing and
      ``seq2seq.masked_loss``; save and load it like any Keras model.
    * ``encoder_model``: encoder tokens (B, T ≤ Te) → outputs (B, T, model_dim): a body
      may be read with less padding than in training (position i is position i either way).
    * ``decoder_step_model``: ``[prefix (B, Td), index (B,), encoder outputs, encoder ids]``
      → probabilities (B, V) of the token after ``prefix[:, :index + 1]``.

    ``encode`` and ``step`` wrap them for ``seq2seq.greedy_decode`` and
    ``seq2seq.beam_search``; the decoding "states" are ``[prefix, index]``.
    """

    def __init__(self, training_model, encoder_model, decoder_step_model, encoder_length, decoder_length):
        self.training_model = training_model
        self.encoder_model = encoder_model
        self.decoder_step_model = decoder_step_model
        self.encoder_length, self.decoder_length = encoder_length, decoder_length  # positions it has
        self._copy_model = None  # built by copy_gates, on first use
        # Traced once (one shape per step): Keras' per-call overhead is skipped, and the weights
        # are read at every call (dlcourse.backend.compiled), so decoding between epochs sees them.
        self._encode = backend.compiled(self._encode_eagerly, training_model.variables)
        self._step = backend.compiled(self._step_eagerly, training_model.variables)

    @classmethod
    def from_training_model(cls, training_model):
        """Rebuild the encoder and one-step decoder around the layers of a (loaded) training model."""
        named = {layer.name: layer for layer in training_model.layers}
        for name in ("embedding", "encoder_positions", "decoder_positions", "encoder_1_self_attention",
                     "decoder_1_self_attention", "decoder_1_cross_attention", "next_token"):
            if name not in named:
                raise ValueError(f"not a Transformer training model: it has no layer {name!r}")
        decoder_length = named["decoder_positions"].length
        model_dim = named["embedding"].output_dim

        encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
        encoder_model = keras.Model(encoder_tokens, _run_encoder(named, encoder_tokens),
                                    name="transformer_encoder")

        prefix = keras.Input((decoder_length,), dtype="int32", name="prefix")
        index = keras.Input((), dtype="int32", name="index")
        outputs_input = keras.Input((None, model_dim), name="encoder_outputs")
        ids_input = keras.Input((None,), dtype="int32", name="encoder_ids")
        probabilities = _run_decoder(named, prefix, outputs_input, ids_input, position=index)  # (B, 1, V)
        current = keras.ops.squeeze(probabilities, axis=1)
        decoder_step_model = keras.Model([prefix, index, outputs_input, ids_input], current,
                                         name="transformer_decoder_step")
        return cls(training_model, encoder_model, decoder_step_model, named["encoder_positions"].length,
                   decoder_length)

    @property
    def vocabulary_size(self):
        return self.training_model.output_shape[-1]

    def copy_gates(self, encoder_ids, decoder_ids):
        """What the copy mechanism does while the decoder reads ``decoder_ids`` (teacher forcing):
        ``(gates (B, Td), attention weights (B, Td, Te))``, NumPy float32 arrays, as
        ``Seq2Seq.copy_gates``: the gate g (1: write from the vocabulary) and the last
        cross-attention averaged over the heads.  ValueError for a model built with ``copy=False``.
        """
        if self._copy_model is None:
            named = {layer.name: layer for layer in self.training_model.layers}
            if "copy_gate" not in named:
                raise ValueError("this model has no copy gate (it was built with copy=False)")
            encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
            decoder_tokens = keras.Input((self.decoder_length,), dtype="int32", name="decoder_tokens")
            output, context, weights = _decode_features(named, decoder_tokens, _run_encoder(named, encoder_tokens),
                                                        encoder_tokens)
            gates = keras.ops.squeeze(named["copy_gate"](named["copy_features"]([output, context])), axis=-1)
            self._copy_model = keras.Model([encoder_tokens, decoder_tokens], [gates, weights],
                                           name="transformer_copy_gates")
        decoder_ids = np.asarray(decoder_ids, dtype="int32")
        length = decoder_ids.shape[1]
        if length > self.decoder_length:
            raise ValueError(f"decoder_ids has {length} positions, the model at most {self.decoder_length}")
        padded = np.full((len(decoder_ids), self.decoder_length), PAD_ID, dtype="int32")
        padded[:, :length] = decoder_ids  # the decoder's positions are fixed; padding comes after the title
        gates, weights = self._copy_model([np.asarray(encoder_ids, dtype="int32"), padded], training=False)
        return (keras.ops.convert_to_numpy(gates).astype("float32")[:, :length],
                keras.ops.convert_to_numpy(weights).astype("float32")[:, :length])

    def _encode_eagerly(self, encoder_ids):
        return self.encoder_model(encoder_ids, training=False)

    def _step_eagerly(self, inputs):
        return self.decoder_step_model(inputs, training=False)

    def encode(self, encoder_ids):
        """``(encoder outputs, encoder ids, [prefix, index])`` as NumPy arrays for a batch of ids:
        an empty prefix (all ``<pad>``) and index 0 for every row."""
        encoder_ids = np.asarray(encoder_ids, dtype="int32")
        if encoder_ids.shape[1] > self.encoder_length:
            raise ValueError(f"the encoder reads at most {self.encoder_length} tokens (its encoder_length), "
                             f"not {encoder_ids.shape[1]}")
        outputs = backend.to_numpy(self._encode(encoder_ids))
        rows = len(encoder_ids)
        return (outputs, encoder_ids,
                [np.full((rows, self.decoder_length), PAD_ID, dtype="int32"), np.zeros(rows, dtype="int32")])

    def step(self, token_ids, encoder_outputs, encoder_ids, states):
        """One decoder step for a batch: write ``token_ids`` at each row's index, run the decoder
        over the prefix, and return ``(probabilities (B, V), [new prefix, index + 1])``."""
        prefix, index = (np.asarray(state, dtype="int32") for state in states)
        if len(index) and index.max() >= self.decoder_length:
            raise ValueError(f"the decoder writes at most {self.decoder_length} tokens "
                             f"(its decoder_length); decode with max_length <= {self.decoder_length}")
        prefix = prefix.copy()
        prefix[np.arange(len(prefix)), index] = np.asarray(token_ids, dtype="int32").reshape(-1)
        probabilities = self._step([prefix, index, np.asarray(encoder_outputs), encoder_ids])
        return backend.to_numpy(probabilities), [prefix, index + 1]


def from_training_model(training_model):
    """The decoding wrapper for a (loaded) training model of either kind, told apart by its layers'
    names: a ``TransformerSeq2Seq`` or a GRU ``seq2seq.Seq2Seq``."""
    names = {layer.name for layer in training_model.layers}
    if "encoder_1_self_attention" in names:
        return TransformerSeq2Seq.from_training_model(training_model)
    if "encoder_gru_1" in names:
        return seq2seq.Seq2Seq.from_training_model(training_model)
    raise ValueError("not a seq2seq training model: it has neither GRU nor Transformer layers "
                     "('encoder_gru_1', 'encoder_1_self_attention')")

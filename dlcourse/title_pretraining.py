"""Week 4 · transfer from week 3: pre-train the title writer as a Korean character language model.

A small corpus of (body, title) pairs may be too little for the decoder to
learn Korean *and* what a title says.  Week 3 showed that a recurrent network learns
to write Korean syllables from plain text alone; here the encoder–decoder's
own layers learn that first, then fine-tune on the pairs:

* **The language models** (``build_language_models``) are Keras models over
  the *same layers* as the ``Seq2Seq`` (so the same weights):

  - decoder LM: ``embedding`` → ``decoder_gru_i`` from a zero state →
    ``attention_output`` on ``[output; zeros]`` (no body to attend to: the
    context part is zero) → ``next_token``.  The output layers are
    pre-trained too, so fine-tuning starts from a decoder that already writes
    Korean syllables; the copy gate is not (there is nothing to copy);
  - encoder LM: ``embedding`` → ``encoder_gru_i`` → a small softmax head of
    its own, discarded after pre-training.

* **The text** (``pretraining_texts``): the bodies and titles of the
  *training* split only (never a validation or test text), and the week-3
  corpus (``dlcourse.data.load_korean_corpus``) line by line.  It is read
  with the title vocabulary, unchanged: pre-training and fine-tuning use the
  same ids, and the vocabulary saved with the run is the one that fine-tuning
  built.  Characters the vocabulary lacks become ``<unk>``.
* **The windows** (``language_model_windows``): every text is ``<s>`` + its
  tokens + ``</s>`` (as a title is for the decoder), cut into windows of
  ``window + 1`` tokens that overlap by one; inputs are a window's first
  ``window`` tokens, targets its last ``window`` (the next token at every
  position), right-padded with ``<pad>``.  Every token is a target exactly
  once per epoch.  ``<unk>`` targets become ``<pad>`` (not learned): the
  decoder is never allowed to write ``<unk>``.
* **The loss** is ``seq2seq.masked_loss`` of the language models together
  (``pretrain``, ``parts``); the history reports it, and each model's, in bits per
  character (every token is one character).

What the measurements say (the shipped corpus of 1 766 pairs, 1 236 for
training; GRU 3 × 128 with copy, 10 fine-tuning epochs on 2 CPU cores):
pre-training does not help the titles here.  A few minutes of it leave the
language models on the plateau of a unigram model (~7 bits per character),
and a seq2seq fine-tuned from there starts worse; from the encoder's plateau
it stays worse (test ROUGE-L 0.22 and 0.13 in two such runs, against
0.27–0.28 from scratch with two seeds).  Pre-training the decoder alone, even
to a real language model (4.2 bits per character after 5 epochs, ~10
minutes), lowers the fine-tuning loss a lot but leaves ROUGE-L where it was
(0.26–0.27): with this many pairs what scores is copying the body's words,
which the copy mechanism learns from the pairs alone, not fluent Korean.
Hence ``DEFAULT_PARTS`` is the decoder alone, and training from scratch is
the better default for the lab.
"""
import math
import time

import keras
import numpy as np

from dlcourse import backend, seq2seq
from dlcourse.seq2seq import END_ID, PAD_ID, START_ID, UNK_ID

PARTS = ("decoder", "encoder")  # the language models there are
DEFAULT_PARTS = ("decoder",)  # what pre-trains by default (see the measurements above)
ENCODER_HEAD = "encoder_language_model_head"


# ---------------------------------------------------------------------------
# The text and its windows
# ---------------------------------------------------------------------------

def corpus_lines(text):
    """The non-empty lines of a plain text (the week-3 corpus), whitespace collapsed.

    A line of the corpus (a sentence or an article of the Constitution) is
    about as long as a title, and each becomes one ``<s>`` … ``</s>`` text.
    """
    return [line for line in (seq2seq.collapse_whitespace(line) for line in text.splitlines()) if line]


def pretraining_texts(train_pairs, corpus_text=None, body_characters=None):
    """The language models' texts: the bodies and titles of ``train_pairs``, then ``corpus_text``'s lines.

    Pass the *training* split only: a validation or test body read here would
    leak into the model that is then scored on it.  ``body_characters``: keep
    only the first that many characters of every body (the encoder reads
    only the first 100 tokens; a shorter text pre-trains in less time); None
    keeps whole bodies.
    """
    if body_characters is not None and body_characters < 1:
        raise ValueError(f"body_characters must be at least 1, got {body_characters}")
    texts = [seq2seq.collapse_whitespace(pair["body"])[:body_characters] for pair in train_pairs]
    texts += [pair["title"] for pair in train_pairs]
    if corpus_text:
        texts += corpus_lines(corpus_text)
    return texts


def language_model_windows(vocabulary, texts, window=32):
    """``(inputs, targets)``, two int32 arrays (N, window) of next-token windows of ``texts``.

    Each text is ``<s>`` + its tokens (whitespace collapsed) + ``</s>``; a
    window of ``window + 1`` tokens starts every ``window`` tokens; inputs
    are its first ``window`` tokens, targets its last ``window``, both
    right-padded with ``<pad>`` (0).  ``<unk>`` targets are ``<pad>``
    too, so no loss teaches the model to write an unknown character.
    """
    seq2seq._check_vocabulary(vocabulary)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    inputs, targets = [], []
    for text in texts:
        text = seq2seq.collapse_whitespace(text)
        if not text:
            continue
        ids = [START_ID, *vocabulary.encode(text).tolist(), END_ID]
        for start in range(0, len(ids) - 1, window):
            piece = ids[start:start + window + 1]
            inputs.append(piece[:-1])
            targets.append([PAD_ID if token == UNK_ID else token for token in piece[1:]])
    if not inputs:
        raise ValueError("no text to pre-train on")
    return seq2seq._pad(inputs, window), seq2seq._pad(targets, window)


# ---------------------------------------------------------------------------
# The language models
# ---------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dlcourse")
class ZeroContext(keras.layers.Layer):
    """``[hidden; zeros like hidden]``: the decoder's features with an all-zero attention context.

    What ``attention_concat`` gives the output layers, for a decoder with no
    body to attend to; unlike a concatenation with a tensor of zeros, it keeps
    the padding mask of ``hidden``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, hidden):
        return keras.ops.concatenate([hidden, keras.ops.zeros_like(hidden)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])


def _decoder_language_model(named, tokens):
    """Next-token probabilities (B, T, V) of the seq2seq's decoder reading ``tokens`` from a zero state."""
    hidden = named["embedding"](tokens)
    for index in range(1, seq2seq._count_layers(named, "decoder") + 1):
        hidden, _ = named[f"decoder_gru_{index}"](hidden)
        if f"decoder_dropout_{index}" in named:
            hidden = named[f"decoder_dropout_{index}"](hidden)
    features = ZeroContext(name="zero_context")(hidden)
    return named["next_token"](named["attention_output"](features))


def _language_model_outputs(seq2seq_model, tokens, parts):
    """``{part: next-token probabilities}`` of the seq2seq's layers reading ``tokens``."""
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"parts must be some of {PARTS}, got {tuple(parts)}")
    named = {layer.name: layer for layer in seq2seq_model.training_model.layers}
    outputs = {}
    for part in parts:
        if part == "decoder":
            outputs[part] = _decoder_language_model(named, tokens)
        else:
            hidden, _ = seq2seq._run_encoder(named, tokens)
            head = keras.layers.Dense(seq2seq_model.vocabulary_size, activation="softmax", dtype="float32",
                                      name=ENCODER_HEAD)
            outputs[part] = head(hidden)
    return outputs


def build_language_models(seq2seq_model, parts=PARTS):
    """``{part: keras.Model}``: token ids (B, T) → next-token probabilities (B, T, V), float32.

    The models share their layers (and weights) with ``seq2seq_model``, so
    training them trains the seq2seq; only the encoder's softmax head is
    new.  ``parts``: "decoder", "encoder" or both.  Build them inside the
    distribution strategy scope the seq2seq was built in.
    """
    models = {}
    for part in parts:
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        probabilities = _language_model_outputs(seq2seq_model, tokens, (part,))[part]
        models[part] = keras.Model(tokens, probabilities, name=f"{part}_language_model")
    return models


@keras.saving.register_keras_serializable(package="dlcourse")
class PartCrossEntropy(keras.metrics.Metric):
    """The masked next-token cross-entropy (nats per token) of one part of the joint model's output.

    The joint model puts its language models' predictions one after the
    other along the time axis; part ``index`` of ``count`` is one of them.
    """

    def __init__(self, index, count, name="part_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.index, self.count = index, count
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.tokens = self.add_variable((), initializer="zeros", name="tokens")

    def update_state(self, y_true, y_pred, sample_weight=None):
        width = keras.ops.shape(y_true)[1] // self.count
        y_true = keras.ops.cast(y_true[:, self.index * width:(self.index + 1) * width], "int32")
        y_pred = keras.ops.cast(y_pred[:, self.index * width:(self.index + 1) * width], "float32")
        real = keras.ops.cast(keras.ops.not_equal(y_true, PAD_ID), "float32")
        picked = keras.ops.take_along_axis(y_pred, keras.ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        losses = -keras.ops.log(keras.ops.clip(picked, 1e-7, 1.0))
        self.total.assign_add(keras.ops.sum(losses * real))
        self.tokens.assign_add(keras.ops.sum(real))

    def result(self):
        return self.total / keras.ops.maximum(self.tokens, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.tokens.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "index": self.index, "count": self.count}


def build_pretraining_model(seq2seq_model, parts=DEFAULT_PARTS):
    """One Keras model that trains every language model of ``parts`` at once.

    Token ids (B, T) → the parts' probabilities one after the other along the
    time axis, (B, len(parts)·T, V); its targets are the next-token targets
    repeated as many times (``pretraining_batches``), so ``masked_loss`` is
    the mean of the parts' losses.  It saves and loads as one ``.keras`` file
    (a lab may checkpoint it like any model).
    """
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    outputs = list(_language_model_outputs(seq2seq_model, tokens, parts).values())
    if len(outputs) > 1:
        outputs = keras.layers.Concatenate(axis=1, name="language_model_outputs")(outputs)
    else:
        outputs = outputs[0]
    return keras.Model(tokens, outputs, name="title_language_models")


# ---------------------------------------------------------------------------
# Pre-training
# ---------------------------------------------------------------------------

def pretraining_batches(vocabulary, texts, window=32, batch_size=64, seed=0, parts=DEFAULT_PARTS):
    """``(batches, windows, tokens)``: shuffled (seeded) training batches for ``build_pretraining_model``
    (``dlcourse.backend.batches``; the targets repeated once per part), the number of windows and of
    target tokens in one epoch."""
    inputs, targets = language_model_windows(vocabulary, texts, window)
    batches = backend.batches(inputs, np.tile(targets, (1, len(parts))), batch_size, shuffle=True, seed=seed)
    return batches, len(inputs), int(np.count_nonzero(targets))


def part_metrics(parts=DEFAULT_PARTS):
    """``<part>_loss`` of every part of ``build_pretraining_model``'s output, to pass to ``compile``."""
    return [PartCrossEntropy(index, len(parts), name=f"{part}_loss") for index, part in enumerate(parts)]


def pretrain(seq2seq_model, vocabulary, texts, epochs, batch_size=64, window=32, seed=0,
             parts=DEFAULT_PARTS, learning_rate=1e-3, clipnorm=5.0, verbose="auto"):
    """Train the language models of ``seq2seq_model`` (in place) on ``texts``; return the history.

    ``texts``: what ``pretraining_texts`` gives (the training split and the
    week-3 corpus).  ``epochs`` passes over their windows
    (``language_model_windows``), in a seeded order, with Adam at
    ``learning_rate`` and gradients clipped to ``clipnorm``; ``verbose`` as
    in Keras's ``fit``.  ``parts``: the language models trained together
    ("decoder", "encoder" or both; ``DEFAULT_PARTS``: the decoder).
    ``epochs=0`` changes nothing.  Call it inside the distribution strategy
    scope the seq2seq was built in, before compiling its training model.

    The history: ``{"loss": [...], "bits_per_character": [...],
    "<part>_bits_per_character": [...], "windows", "tokens", "seconds"}`` —
    per epoch, the mean loss of the parts (nats per token), the same in bits
    per character, and each part's; then the number of windows and of target
    tokens an epoch reads, and the wall time.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be at least 0, got {epochs}")
    started = time.time()
    batches, windows, tokens = pretraining_batches(vocabulary, texts, window, batch_size, seed, parts)
    history = {"loss": [], "bits_per_character": [], **{f"{part}_bits_per_character": [] for part in parts},
               "windows": windows, "tokens": tokens, "seconds": 0.0}
    if epochs == 0:
        return history
    model = build_pretraining_model(seq2seq_model, parts)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss=seq2seq.masked_loss(), metrics=part_metrics(parts))
    fitted = model.fit(batches, epochs=epochs, shuffle=False, verbose=verbose).history
    history["loss"] = [float(value) for value in fitted["loss"]]
    history["bits_per_character"] = [value / math.log(2) for value in history["loss"]]
    for part in parts:
        history[f"{part}_bits_per_character"] = [float(value) / math.log(2) for value in fitted[f"{part}_loss"]]
    history["seconds"] = time.time() - started
    return history

"""Week 3 · Korean Char-RNN: an LSTM/GRU that writes Korean text one token at a time.

A character-level language model reads a text and learns, at every position,
the probability of the next token.  Sampling from it, token after token,
writes new text in the style of the corpus (by default the Constitution of
the Republic of Korea and ten National Assembly bills, see data/README.md).

Korean can be read at two levels (``dlcourse.hangul``):

* ``--level syllable`` (the default): one token per character, '한국' → '한' '국'.
  The shipped corpus has ~490 syllables seen at least twice (``--min-count``);
  every step predicts a whole syllable.
* ``--level jamo``: a syllable becomes its 초성/중성/종성 letters,
  '한' → 'ᄒ' 'ᅡ' 'ᆫ'.  The vocabulary is small (~155), sequences are ~1.8×
  longer, and the model can invent syllables it never saw; generated jamo are
  recomposed into NFC text with ``hangul.complete_syllables``.

Why syllable by default: with the same 50-token window a syllable model sees
about 1.8× more text, and an epoch has 1.8× fewer steps; measured with the
defaults (RESULTS.md), both levels beat their bigram baselines by far, but
the syllable model is better and faster here.  The course's settings (2 LSTM layers × 128,
sequence 50, batch 50, Adam 0.002, clip 5) are the defaults; one addition,
dropout 0.2 after each recurrent layer (``--dropout 0`` removes it), lowers
the validation loss on this small corpus, where the model otherwise starts
to overfit after ~150 epochs.

Both levels are measured with the same ruler: bits per NFC character of the
validation text (``hangul.bits_per_character``), next to a unigram and a
bigram model (add-k smoothed, k chosen on held-out training text) fitted on
the same training text with the same vocabulary.

    python -m labs.char_rnn                        # train, evaluate, sample
    python -m labs.char_rnn --level jamo --cell gru
    python -m labs.char_rnn generate --run runs/char_rnn/<stamp> --prime "대한민국" \\
        --length 300 --temperature 0.8 --top-k 20
"""
import collections
import pathlib
import sys

import keras
import numpy as np
from matplotlib.figure import Figure

from dlcourse import backend, cli, data, figures, hangul
from dlcourse.data import DataError
from dlcourse.training import Run, check_same_run, load_run_checkpoint, training_steps

NAME = "char_rnn"
REFERENCE = {"metric": "val_bits_per_char", "course": None}
DEFAULT_PRIME = "대한민국"
SAMPLE_TEMPERATURES = (0.5, 1.0, 1.2)
FINAL_TEMPERATURE = 0.8
SMOKE_CHARACTERS = 6000  # --smoke trains on the first 6 000 characters only
ADD_K_CANDIDATES = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)

parser = cli.lab_parser(NAME, __doc__.splitlines()[0], epochs=200, batch_size=50, lr=2e-3,
                        optimizer="adam")
parser.add_argument("--corpus", default=None,
                    help="a UTF-8 text file to learn from (default: the shipped Korean corpus)")
parser.add_argument("--level", choices=hangul.LEVELS, default="syllable",
                    help="tokens: syllables (characters) or jamo (초성/중성/종성)")
parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="recurrent cell")
parser.add_argument("--layers", type=cli.positive_int, default=2, help="stacked recurrent layers")
parser.add_argument("--units", type=cli.positive_int, default=128, help="units per recurrent layer")
parser.add_argument("--embedding-dim", type=cli.positive_int, default=128,
                    help="size of the token embedding")
parser.add_argument("--dropout", type=cli.fraction, default=0.2,
                    help="dropout on the outputs of every recurrent layer (0: none, as the course)")
parser.add_argument("--seq-length", type=cli.positive_int, default=50,
                    help="tokens per training window (back-propagation through time)")
parser.add_argument("--clipnorm", type=cli.positive_float, default=5.0,
                    help="clip each gradient to this L2 norm (the optimizer's clipnorm)")
parser.add_argument("--min-count", type=cli.positive_int, default=2,
                    help="tokens seen fewer times in the training text become <unk>, so the "
                         "model learns how likely an unseen character is")
parser.add_argument("--prime", default=DEFAULT_PRIME, help="text the samples start from")
parser.add_argument("--top-k", type=int, default=0,
                    help="sample only among the k most likely tokens (0: all of them)")
parser.add_argument("--sample-length", type=cli.positive_int, default=200,
                    help="characters per sample written after each epoch")


def check_config(config):
    if config.top_k < 0:
        raise cli.UsageError(f"--top-k must be >= 0, got {config.top_k}")
    if not config.prime:
        raise cli.UsageError("--prime must not be empty")


# ---------------------------------------------------------------------------
# 1. The data: the text, split into contiguous train/validation blocks, as
#    windows of seq_length + 1 tokens → (input, next-token target) pairs.
# ---------------------------------------------------------------------------

def load_text(config):
    """``(train_text, validation_text)``: the corpus cut into contiguous blocks (no leakage)."""
    if config.corpus:
        text = data.read_text_corpus(config.corpus)
    else:
        text = data.load_korean_corpus()
    if config.smoke:
        text = text[:SMOKE_CHARACTERS]
    try:
        return data.split_text(text)
    except ValueError as error:
        raise DataError(f"{config.corpus or 'corpus'}: {error}") from None


def build_vocabulary(train_text, level, min_count=2):
    """The vocabulary of the training text only: validation characters it lacks become <unk>."""
    return hangul.Vocabulary.from_text(train_text, level, min_count=min_count)


def make_windows(token_ids, seq_length, batch_size, shuffle=False, seed=None, replicas=1):
    """Batches of ``(inputs, targets)`` windows, each of shape (batch, seq_length).

    Windows of ``seq_length + 1`` tokens start every ``seq_length`` tokens, so
    every token is a target exactly once per epoch; the targets are the inputs
    shifted by one token.  With several ``replicas`` (``--strategy mirrored``)
    every batch, the last one included, is split evenly between them: the
    window count and the batch size are rounded down to multiples of
    ``replicas`` (Keras cannot split an uneven batch of sequences).
    """
    count = count_windows(len(token_ids), seq_length)
    if replicas > 1:
        count -= count % replicas
        batch_size = max(replicas, batch_size - batch_size % replicas)
    starts = np.arange(count) * seq_length
    windows = np.asarray(token_ids, dtype="int32")[starts[:, None] + np.arange(seq_length + 1)]
    return backend.batches(windows[:, :-1], windows[:, 1:], batch_size, shuffle=shuffle, seed=seed)


def count_windows(num_tokens, seq_length):
    return max(0, (num_tokens - 1) // seq_length)


def prepare_text(config):
    """Texts, vocabulary and token ids (NumPy only, so that a bad corpus fails before TensorFlow
    starts or a run directory is made)."""
    train_text, validation_text = load_text(config)
    vocabulary = build_vocabulary(train_text, config.level, config.min_count)
    train_ids, validation_ids = vocabulary.encode(train_text), vocabulary.encode(validation_text)
    for name, ids in (("training", train_ids), ("validation", validation_ids)):
        if count_windows(len(ids), config.seq_length) < 1:
            raise DataError(f"{config.corpus or 'corpus'}: the {name} text has {len(ids)} tokens, "
                            f"too few for one window of --seq-length {config.seq_length} "
                            f"(use a longer text or a smaller --seq-length)")
    return {"train_text": train_text, "validation_text": validation_text, "vocabulary": vocabulary,
            "train_ids": train_ids, "validation_ids": validation_ids,
            "train_windows": count_windows(len(train_ids), config.seq_length)}


def add_pipelines(prepared, config, replicas=1):
    """The training (shuffled, seeded) and validation batches of ``prepared``."""
    for name in ("train", "validation"):
        if count_windows(len(prepared[f"{name}_ids"]), config.seq_length) < replicas:
            raise DataError(f"{config.corpus or 'corpus'}: the {name} text has too few windows "
                            f"of --seq-length {config.seq_length} for {replicas} replicas")
    prepared["train"] = make_windows(prepared["train_ids"], config.seq_length, config.batch_size,
                                     shuffle=True, seed=config.seed, replicas=replicas)
    prepared["validation"] = make_windows(prepared["validation_ids"], config.seq_length,
                                          config.batch_size, replicas=replicas)
    return prepared


def load_data(config):
    """Everything the other parts need: texts, vocabulary, token ids and the two pipelines."""
    return add_pipelines(prepare_text(config), config)


# ---------------------------------------------------------------------------
# 2. The model: Embedding → stacked LSTM/GRU (a vector per position) → softmax
#    over the vocabulary at every position.
# ---------------------------------------------------------------------------

RECURRENT_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def build_model(vocabulary_size, embedding_dim=128, cell="lstm", layers=2, units=128, dropout=0.0):
    """Token ids (batch, time) → next-token probabilities (batch, time, vocabulary_size)."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    hidden = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(tokens)
    for index in range(layers):
        hidden = RECURRENT_LAYERS[cell](units, return_sequences=True, name=f"{cell}_{index + 1}")(hidden)
        if dropout:
            hidden = keras.layers.Dropout(dropout, name=f"dropout_{index + 1}")(hidden)
    # float32 output even under mixed precision: a softmax over hundreds of tokens needs it.
    probabilities = keras.layers.Dense(vocabulary_size, activation="softmax", dtype="float32",
                                       name="next_token")(hidden)
    return keras.Model(tokens, probabilities, name=f"{NAME}_{cell}")


# ---------------------------------------------------------------------------
# 3. The loss: cross-entropy of the next token, averaged over every position,
#    in nats; bits per character is the same quantity in the unit that
#    compares levels (and baselines).
# ---------------------------------------------------------------------------

LOSS = keras.losses.SparseCategoricalCrossentropy()


def bits_per_char(loss_per_token, text, level):
    """Mean cross-entropy per token (nats) on ``text`` → bits per NFC character of ``text``."""
    return hangul.bits_per_character(loss_per_token, text, level)


def model_bits_per_char(model, validation, validation_text, level):
    """The model's mean validation cross-entropy, in bits per character of the validation text."""
    loss_per_token = float(np.mean(model.evaluate(validation, verbose=0, return_dict=True)["loss"]))
    return bits_per_char(loss_per_token, validation_text, level)


def ngram_cross_entropy(train_ids, eval_ids, vocabulary_size, order, add_k):
    """Mean cross-entropy (nats per token) of an add-k smoothed unigram (order 1) or bigram
    (order 2) model fitted on ``train_ids``, on the targets ``eval_ids[1:]``.

    The model spreads its probability over every id but ``<pad>`` (id 0):
    ``p(b | a) = (count(a, b) + k) / (count(a) + k · (V - 1))``.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    support = vocabulary_size - 1
    train_ids, eval_ids = np.asarray(train_ids), np.asarray(eval_ids)
    targets = eval_ids[1:]
    if order == 1:
        counts = np.bincount(train_ids, minlength=vocabulary_size)
        probabilities = (counts[targets] + add_k) / (len(train_ids) + add_k * support)
    else:
        pairs = collections.Counter(zip(train_ids[:-1].tolist(), train_ids[1:].tolist()))
        contexts = np.bincount(train_ids[:-1], minlength=vocabulary_size)
        pair_counts = np.array([pairs.get(pair, 0) for pair in
                                zip(eval_ids[:-1].tolist(), targets.tolist())], dtype="float64")
        probabilities = (pair_counts + add_k) / (contexts[eval_ids[:-1]] + add_k * support)
    return float(-np.mean(np.log(probabilities)))


def choose_add_k(train_ids, vocabulary_size, order, held_out_fraction=0.1):
    """The k (from ``ADD_K_CANDIDATES``) that predicts the last 10 % of the training tokens best
    when fitted on the first 90 %: tuned without looking at the validation text."""
    cut = int(len(train_ids) * (1 - held_out_fraction))
    if cut < 2 or len(train_ids) - cut < 2:
        return 1.0
    return min(ADD_K_CANDIDATES, key=lambda k: ngram_cross_entropy(
        train_ids[:cut], train_ids[cut:], vocabulary_size, order, k))


def baseline_bits_per_char(train_ids, validation_ids, vocabulary_size, validation_text, level,
                           add_k=None):
    """Unigram and bigram baselines on the validation text, in bits per character.

    ``add_k=None`` chooses k on held-out training text (``choose_add_k``).
    """
    result = {}
    for name, order in (("unigram", 1), ("bigram", 2)):
        k = choose_add_k(train_ids, vocabulary_size, order) if add_k is None else add_k
        nats = ngram_cross_entropy(train_ids, validation_ids, vocabulary_size, order, k)
        result[f"{name}_bits_per_char"] = bits_per_char(nats, validation_text, level)
        result[f"{name}_add_k"] = k
    return result


# ---------------------------------------------------------------------------
# Generation: one step at a time through the trained layers, with explicit
# recurrent states (no re-reading of the whole window at each step).
# ---------------------------------------------------------------------------

class TextGenerator:
    """Samples text from a trained Char-RNN (temperature, top-k, a priming string).

    The step function feeds one token per call through the model's own
    embedding, recurrent cells and output layer, carrying the recurrent
    states from call to call; several samples (one per temperature) run side
    by side as one batch.
    """

    def __init__(self, model, vocabulary):
        self.vocabulary = vocabulary
        self.embedding = model.get_layer("embedding")
        self.recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
        self.output_layer = model.get_layer("next_token")
        self._step = backend.compiled(self._step_eagerly, model.variables)

    def _step_eagerly(self, token_ids, states):
        hidden = self.embedding(token_ids)
        new_states = []
        for layer, state in zip(self.recurrent, states):
            hidden, state = layer.cell(hidden, state, training=False)
            new_states.append(state)
        return self.output_layer(hidden), new_states

    def _initial_states(self, batch):
        states = []
        for layer in self.recurrent:
            count = 2 if isinstance(layer, keras.layers.LSTM) else 1
            states.append([np.zeros((batch, layer.cell.units), dtype=layer.cell.compute_dtype)
                           for _ in range(count)])
        return states

    def _prime_tokens(self, prime):
        prime = hangul.complete_syllables(prime)
        return prime, self.vocabulary.tokenize(prime)

    def generate(self, prime=DEFAULT_PRIME, length=300, temperatures=(1.0,), top_k=0, seed=None):
        """One text per temperature: ``prime`` followed by ``length`` generated characters.

        The texts are NFC with no conjoining jamo left (``complete_syllables``)
        and have exactly ``len(prime) + length`` characters.  At the jamo level
        a prime that ends in a syllable without a final consonant ('대하') may
        receive one from the model ('대한…'), which is the point of jamo.
        ``<pad>`` and ``<unk>`` are never sampled.
        """
        if not prime:
            raise ValueError("the prime must not be empty")
        for temperature in temperatures:
            if not temperature > 0:
                raise ValueError(f"temperature must be positive, got {temperature}")
        rng = np.random.default_rng(seed)
        prime, prime_tokens = self._prime_tokens(prime)
        prime_ids = [self.vocabulary.token_to_id.get(token, hangul.UNK_ID) for token in prime_tokens]
        batch = len(temperatures)
        states = self._initial_states(batch)
        for token_id in prime_ids:
            probabilities, states = self._step(np.full((batch,), token_id, dtype="int32"), states)
        wanted = len(prime) + length
        generated = [[] for _ in temperatures]
        texts = [prime] * batch
        done = [False] * batch
        for _ in range(4 * (length + 1) + 8):  # a character takes at most 3 jamo
            next_ids = [sample_token(row, temperature, top_k, rng)
                        for row, temperature in zip(backend.to_numpy(probabilities), temperatures)]
            for row, token_id in enumerate(next_ids):
                if not done[row]:
                    generated[row].append(self.vocabulary.tokens[token_id])
                    texts[row] = hangul.complete_syllables("".join(prime_tokens + generated[row]))
                    # One character past the wanted length: the ones before it are final.
                    done[row] = len(texts[row]) > wanted
            if all(done):
                break
            probabilities, states = self._step(np.asarray(next_ids, dtype="int32"), states)
        return [text[:wanted] for text in texts]


def sample_token(probabilities, temperature=1.0, top_k=0, rng=None):
    """Draw one token id from a softmax output, sharpened (T < 1) or flattened (T > 1).

    ``p_i ∝ exp(log p_i / T)``; with ``top_k`` only the k most likely tokens
    keep their probability.  ``<pad>`` and ``<unk>`` are never drawn.
    """
    rng = rng or np.random.default_rng()
    logits = np.log(np.maximum(np.asarray(probabilities, dtype="float64"), 1e-30)) / temperature
    logits[[hangul.PAD_ID, hangul.UNK_ID]] = -np.inf
    if 0 < top_k < np.isfinite(logits).sum():
        threshold = np.partition(logits, -top_k)[-top_k]
        logits[logits < threshold] = -np.inf
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def format_samples(samples):
    return "".join(f"## temperature {temperature}\n{text}\n\n" for temperature, text in samples)


class SampleWriter(keras.callbacks.Callback):
    """After each epoch, writes samples at temperatures 0.5 / 1.0 / 1.2 to ``samples/epoch_NNN.txt``."""

    def __init__(self, directory, vocabulary, prime, length, top_k=0, seed=0,
                 temperatures=SAMPLE_TEMPERATURES):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.vocabulary, self.prime, self.length = vocabulary, prime, length
        self.top_k, self.seed, self.temperatures = top_k, seed, temperatures
        self.generator = None

    def on_epoch_end(self, epoch, logs=None):
        if self.generator is None:
            self.generator = TextGenerator(self.model, self.vocabulary)
        texts = self.generator.generate(self.prime, self.length, self.temperatures, self.top_k,
                                        seed=self.seed + epoch)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"epoch_{epoch + 1:03d}.txt"
        path.write_text(format_samples(zip(self.temperatures, texts)), encoding="utf-8")


# ---------------------------------------------------------------------------
# 4. The algorithm: back-propagation through time with the chosen optimizer
#    (default Adam 0.002), gradients clipped to norm 5 by the optimizer.
# ---------------------------------------------------------------------------

def plot_bits_per_char(metrics, path=None):
    """A bar chart of unigram, bigram and the RNN in bits per character (lower is better)."""
    names = ["unigram", "bigram", metrics.get("model_name", "RNN")]
    values = [metrics["unigram_bits_per_char"], metrics["bigram_bits_per_char"],
              metrics["val_bits_per_char"]]
    figure = Figure(figsize=(5, 3.4))
    axes = figure.add_subplot()
    bars = axes.bar(names, values, color=["#bbbbbb", "#888888", "#1f77b4"])
    axes.bar_label(bars, fmt="%.2f")
    axes.set_ylim(0, 1.15 * max(values))
    axes.set_ylabel("bits per character")
    axes.set_title(f"validation, {metrics['level']} level (lower is better)")
    axes.grid(axis="y", alpha=0.3)
    return figures.save(figure, path)


def format_table(metrics):
    rows = [(f"unigram (add-k {metrics['unigram_add_k']:g})", metrics["unigram_bits_per_char"]),
            (f"bigram (add-k {metrics['bigram_add_k']:g})", metrics["bigram_bits_per_char"]),
            (metrics["model_name"], metrics["val_bits_per_char"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"validation bits per character ({metrics['level']} level)",
             *(f"  {name.ljust(width)}  {value:6.3f}" for name, value in rows)]
    return "\n".join(lines)


def run(config):
    check_config(config)
    prepared = prepare_text(config)
    vocabulary = prepared["vocabulary"]
    training_run = Run(config)  # before any TensorFlow work: --logical-cpus needs that
    add_pipelines(prepared, config, training_run.replicas)
    vocabulary.save(training_run.path("vocabulary.json"))
    total_steps = training_steps(config, prepared["train_windows"])
    with training_run.strategy.scope():
        model = build_model(vocabulary.size, config.embedding_dim, config.cell, config.layers,
                            config.units, config.dropout)
        training_run.compile(model, LOSS, total_steps=total_steps,
                             optimizer_options={"clipnorm": config.clipnorm})
    samples = SampleWriter(training_run.path("samples"), vocabulary, config.prime,
                           config.sample_length, config.top_k, seed=config.seed)
    training_run.fit(model, prepared["train"], prepared["validation"], monitor="val_loss",
                     mode="min", extra_callbacks=[samples])

    figures.plot_history(training_run.history_path(), training_run.figure_path("curves"))
    metrics = {"level": config.level,
               "model_name": f"{config.cell.upper()} {config.layers}×{config.units}",
               "val_bits_per_char": model_bits_per_char(model, prepared["validation"],
                                                        prepared["validation_text"], config.level),
               **baseline_bits_per_char(prepared["train_ids"], prepared["validation_ids"],
                                        vocabulary.size, prepared["validation_text"], config.level),
               "vocabulary_size": vocabulary.size,
               "train_tokens": len(prepared["train_ids"]),
               "validation_tokens": len(prepared["validation_ids"]),
               "characters_per_token": hangul.characters_per_token(prepared["validation_text"],
                                                                   config.level)}
    plot_bits_per_char(metrics, training_run.figure_path("bits_per_char"))
    (sample,) = TextGenerator(model, vocabulary).generate(
        config.prime, config.sample_length, (FINAL_TEMPERATURE,), config.top_k, seed=config.seed)
    metrics.update(sample_temperature=FINAL_TEMPERATURE, sample=sample)
    metrics = training_run.finish(**{key: round(value, 4) if isinstance(value, float) else value
                                     for key, value in metrics.items()})
    print(f"\n{format_table(metrics)}\n\nsample (temperature {FINAL_TEMPERATURE}):\n{sample}\n")
    return metrics


# ---------------------------------------------------------------------------
# python -m labs.char_rnn generate --run RUN_DIR ...
# ---------------------------------------------------------------------------

generate_parser = cli.run_dir_parser(
    NAME, "generate", "Write text with the best checkpoint of a finished (or interrupted) run.")
generate_parser.add_argument("--prime", default=DEFAULT_PRIME, help="the text to continue")
generate_parser.add_argument("--length", type=cli.positive_int, default=300,
                             help="characters to generate after the prime")
generate_parser.add_argument("--temperature", type=cli.positive_float, default=FINAL_TEMPERATURE,
                             help="< 1: safer, more repetitive; > 1: more surprising")
generate_parser.add_argument("--top-k", type=int, default=0,
                             help="sample among the k most likely tokens only (0: all)")
generate_parser.add_argument("--seed", type=int, default=None, help="random seed of the sampling")


def load_generator(run_dir):
    """A ``TextGenerator`` from a run directory's best checkpoint and vocabulary."""
    model, run_dir = load_run_checkpoint(run_dir, NAME, companions=("vocabulary.json",))
    try:
        vocabulary = hangul.Vocabulary.load(run_dir / "vocabulary.json")
    except ValueError as error:
        raise DataError(str(error)) from None
    check_same_run(run_dir, "vocabulary.json", model.output_shape[-1], vocabulary.size)
    return TextGenerator(model, vocabulary)


def generate(arguments):
    if arguments.top_k < 0:
        raise cli.UsageError(f"--top-k must be >= 0, got {arguments.top_k}")
    if not arguments.prime:
        raise cli.UsageError("--prime must not be empty")
    generator = load_generator(arguments.run)
    (text,) = generator.generate(arguments.prime, arguments.length, (arguments.temperature,),
                                 arguments.top_k, seed=arguments.seed)
    print(text)
    return text


def main(argv=None):
    return cli.main(parser, run, argv, subcommands={"generate": (generate_parser, generate)})


if __name__ == "__main__":
    sys.exit(main())

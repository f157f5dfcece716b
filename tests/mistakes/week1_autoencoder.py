"""Mistakes a student makes in week 1's autoencoder exercises (reconstruction error, layer sizes, parameters)."""
MISTAKES = {
    "reconstruction_mse": {
        "mean over the batch axis (one value per pixel)": """
def reconstruction_mse(originals, reconstructions):
    return np.mean((np.asarray(originals) - np.asarray(reconstructions)) ** 2, axis=0)
""",
        "one number for the whole batch": """
def reconstruction_mse(originals, reconstructions):
    return np.mean((np.asarray(originals) - np.asarray(reconstructions)) ** 2)
""",
        "sum over the pixels instead of the mean": """
def reconstruction_mse(originals, reconstructions):
    return np.sum((np.asarray(originals) - np.asarray(reconstructions)) ** 2, axis=-1)
""",
        "root mean squared error": """
def reconstruction_mse(originals, reconstructions):
    return np.sqrt(np.mean((np.asarray(originals) - np.asarray(reconstructions)) ** 2, axis=-1))
""",
        "mean absolute error": """
def reconstruction_mse(originals, reconstructions):
    return np.mean(np.abs(np.asarray(originals) - np.asarray(reconstructions)), axis=-1)
""",
    },
    "autoencoder_sizes": {
        "the code size appears twice": """
def autoencoder_sizes(input_size, code_sizes):
    encoder_sizes = [input_size] + list(code_sizes)
    return encoder_sizes + encoder_sizes[::-1]
""",
        "decoder stops before the input size": """
def autoencoder_sizes(input_size, code_sizes):
    return [input_size] + list(code_sizes) + list(code_sizes)[-2::-1]
""",
        "784 written in instead of input_size": """
def autoencoder_sizes(input_size, code_sizes):
    encoder_sizes = [784] + list(code_sizes)
    return encoder_sizes + encoder_sizes[-2::-1]
""",
        "decoder repeats the encoder instead of mirroring it": """
def autoencoder_sizes(input_size, code_sizes):
    return [input_size] + list(code_sizes) + list(code_sizes)[:-1] + [input_size]
""",
    },
    "parameter_count": {
        "forgot the biases": """
def parameter_count(sizes):
    return int(sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])))
""",
        "one bias per input instead of per output": """
def parameter_count(sizes):
    return int(sum(n_in * n_out + n_in for n_in, n_out in zip(sizes[:-1], sizes[1:])))
""",
        "the last layer is left out": """
def parameter_count(sizes):
    return int(sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 2)))
""",
        "one bias for the whole layer": """
def parameter_count(sizes):
    return int(sum(n_in * n_out + 1 for n_in, n_out in zip(sizes[:-1], sizes[1:])))
""",
    },
}

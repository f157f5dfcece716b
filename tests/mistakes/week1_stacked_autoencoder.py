"""Mistakes a student makes in week 1's stacked-autoencoder exercises (what each step trains)."""
MISTAKES = {
    "trainable_parameter_counts": {
        "the frozen encoder is still counted in step 2": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(encoder_sizes[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], num_classes])}
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("encoder", "classifier"), "finetune": ("encoder", "classifier")}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
        "fine-tuning counted as training every block, the decoder too": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(encoder_sizes[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], num_classes])}
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("encoder", "decoder", "classifier")}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
        "the softmax layer counted in pre-training": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(encoder_sizes[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], num_classes])}
    trained = {"pretrain": ("encoder", "decoder", "classifier"), "classifier": ("classifier",), "finetune": ("encoder", "classifier")}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
        "the encoder stays frozen in fine-tuning": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(encoder_sizes[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], num_classes])}
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("classifier",)}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
        "decoder without its output layer back to the input": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(list(code_sizes)[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], num_classes])}
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("encoder", "classifier")}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
        "10 classes written in instead of num_classes": """
def trainable_parameter_counts(code_sizes, phase, input_size=784, num_classes=10):
    def dense_parameters(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    encoder_sizes = [input_size] + list(code_sizes)
    counts = {"encoder": dense_parameters(encoder_sizes),
              "decoder": dense_parameters(encoder_sizes[::-1]),
              "classifier": dense_parameters([encoder_sizes[-1], 10])}
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("encoder", "classifier")}[phase]
    return {block: int(count) if block in trained else 0 for block, count in counts.items()}
""",
    },
    "phase_update": {
        "every block moves in every step (the phase is ignored)": """
def phase_update(weights, gradients, phase, learning_rate):
    trained = {"pretrain": ("encoder", "decoder", "classifier"), "classifier": ("encoder", "decoder", "classifier"), "finetune": ("encoder", "decoder", "classifier")}[phase]
    return {block: [w - learning_rate * g for w, g in zip(arrays, gradients[block])] if block in trained
            else [np.array(w) for w in arrays]
            for block, arrays in weights.items()}
""",
        "step 2 moves the encoder too (the freeze is forgotten)": """
def phase_update(weights, gradients, phase, learning_rate):
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("encoder", "classifier"), "finetune": ("encoder", "classifier")}[phase]
    return {block: [w - learning_rate * g for w, g in zip(arrays, gradients[block])] if block in trained
            else [np.array(w) for w in arrays]
            for block, arrays in weights.items()}
""",
        "fine-tuning moves the decoder too": """
def phase_update(weights, gradients, phase, learning_rate):
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("encoder", "decoder", "classifier")}[phase]
    return {block: [w - learning_rate * g for w, g in zip(arrays, gradients[block])] if block in trained
            else [np.array(w) for w in arrays]
            for block, arrays in weights.items()}
""",
        "gradient ascent: w + learning_rate * g": """
def phase_update(weights, gradients, phase, learning_rate):
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",), "finetune": ("encoder", "classifier")}[phase]
    return {block: [w + learning_rate * g for w, g in zip(arrays, gradients[block])] if block in trained
            else [np.array(w) for w in arrays]
            for block, arrays in weights.items()}
""",
        "only the first kernel of a trained block moves": """
def phase_update(weights, gradients, phase, learning_rate):
    trained = {"pretrain": ("encoder", "decoder"), "classifier": ("classifier",),
               "finetune": ("encoder", "classifier")}[phase]
    return {block: [arrays[0] - learning_rate * gradients[block][0]] + list(arrays[1:]) if block in trained
            else list(arrays)
            for block, arrays in weights.items()}
""",
    },
}

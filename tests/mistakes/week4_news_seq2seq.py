"""Mistakes a student makes in week 4's GRU-step and attention exercises."""
MISTAKES = {
    "gru_step": {
        "reset_after=False: r multiplies h before U_h, the two biases summed": """
def gru_step(x, h, params):
    kernel, recurrent = np.asarray(params["kernel"]), np.asarray(params["recurrent_kernel"])
    bias = np.sum(np.asarray(params["bias"]), axis=0)
    units = h.shape[-1]
    from_input = x @ kernel + bias
    z = 1 / (1 + np.exp(-(from_input[:, :units] + h @ recurrent[:, :units])))
    r = 1 / (1 + np.exp(-(from_input[:, units:2 * units] + h @ recurrent[:, units:2 * units])))
    candidate = np.tanh(from_input[:, 2 * units:] + (r * h) @ recurrent[:, 2 * units:])
    return z * h + (1 - z) * candidate
""",
        "z and 1 - z swapped": """
def gru_step(x, h, params):
    kernel, recurrent = np.asarray(params["kernel"]), np.asarray(params["recurrent_kernel"])
    input_bias, recurrent_bias = np.asarray(params["bias"])
    units = h.shape[-1]
    from_input = x @ kernel + input_bias
    from_state = h @ recurrent + recurrent_bias
    z = 1 / (1 + np.exp(-(from_input[:, :units] + from_state[:, :units])))
    r = 1 / (1 + np.exp(-(from_input[:, units:2 * units] + from_state[:, units:2 * units])))
    candidate = np.tanh(from_input[:, 2 * units:] + r * from_state[:, 2 * units:])
    return (1 - z) * h + z * candidate
""",
        "the recurrent bias of the candidate added outside the reset gate": """
def gru_step(x, h, params):
    kernel, recurrent = np.asarray(params["kernel"]), np.asarray(params["recurrent_kernel"])
    input_bias, recurrent_bias = np.asarray(params["bias"])
    units = h.shape[-1]
    from_input = x @ kernel + input_bias + recurrent_bias
    from_state = h @ recurrent
    z = 1 / (1 + np.exp(-(from_input[:, :units] + from_state[:, :units])))
    r = 1 / (1 + np.exp(-(from_input[:, units:2 * units] + from_state[:, units:2 * units])))
    candidate = np.tanh(from_input[:, 2 * units:] + r * from_state[:, 2 * units:])
    return z * h + (1 - z) * candidate
""",
        "gate order r, z, h instead of z, r, h": """
def gru_step(x, h, params):
    kernel, recurrent = np.asarray(params["kernel"]), np.asarray(params["recurrent_kernel"])
    input_bias, recurrent_bias = np.asarray(params["bias"])
    units = h.shape[-1]
    from_input = x @ kernel + input_bias
    from_state = h @ recurrent + recurrent_bias
    r = 1 / (1 + np.exp(-(from_input[:, :units] + from_state[:, :units])))
    z = 1 / (1 + np.exp(-(from_input[:, units:2 * units] + from_state[:, units:2 * units])))
    candidate = np.tanh(from_input[:, 2 * units:] + r * from_state[:, 2 * units:])
    return z * h + (1 - z) * candidate
""",
    },
    "attention": {
        "softmax over the batch axis": """
def attention(decoder_state, encoder_states, mask):
    scores = np.einsum("bth,bh->bt", encoder_states, decoder_state)
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=0, keepdims=True))
    weights = weights / weights.sum(axis=0, keepdims=True)
    return weights, np.einsum("bt,bth->bh", weights, encoder_states)
""",
        "no shift by the row maximum (overflows on large scores)": """
def attention(decoder_state, encoder_states, mask):
    scores = np.einsum("bth,bh->bt", encoder_states, decoder_state)
    weights = np.exp(np.where(mask, scores, -np.inf))
    weights = weights / weights.sum(axis=1, keepdims=True)
    return weights, np.einsum("bt,bth->bh", weights, encoder_states)
""",
        "padding zeroed after the softmax, weights not renormalised": """
def attention(decoder_state, encoder_states, mask):
    scores = np.einsum("bth,bh->bt", encoder_states, decoder_state)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = weights / weights.sum(axis=1, keepdims=True) * mask
    return weights, np.einsum("bt,bth->bh", weights, encoder_states)
""",
        "scores divided by sqrt(H) as in a Transformer": """
def attention(decoder_state, encoder_states, mask):
    scores = np.einsum("bth,bh->bt", encoder_states, decoder_state) / np.sqrt(np.shape(decoder_state)[-1])
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = weights / weights.sum(axis=1, keepdims=True)
    return weights, np.einsum("bt,bth->bh", weights, encoder_states)
""",
    },
}

"""Mistakes a student makes in week 1's Iris homework: a Keras classifier trained inside one function."""
MISTAKES = {
    "predict_species": {
        "always the most frequent training species (no model at all)": """
def predict_species(train_features, train_labels, test_features):
    most_frequent = np.bincount(np.asarray(train_labels)).argmax()
    return np.full(len(test_features), most_frequent)
""",
        "no standardisation and too little training": """
def predict_species(train_features, train_labels, test_features):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(4,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.asarray(train_features), np.asarray(train_labels), epochs=2, batch_size=16, verbose=0)
    return np.argmax(model.predict(np.asarray(test_features), verbose=0), axis=1)
""",
        "returns the probabilities instead of the labels": """
def predict_species(train_features, train_labels, test_features):
    keras.utils.set_random_seed(0)
    train_features = np.asarray(train_features, dtype="float32")
    standardise = keras.layers.Normalization()
    standardise.adapt(train_features)
    model = keras.Sequential([
        keras.Input(shape=(4,)),
        standardise,
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    model.fit(np.tile(train_features, (20, 1)), np.tile(np.asarray(train_labels), 20),
              epochs=1, batch_size=16, verbose=0)
    return keras.ops.convert_to_numpy(model(np.asarray(test_features, dtype="float32")))
""",
        "species numbered 1 to 3 (argmax + 1)": """
def predict_species(train_features, train_labels, test_features):
    keras.utils.set_random_seed(0)
    train_features = np.asarray(train_features, dtype="float32")
    standardise = keras.layers.Normalization()
    standardise.adapt(train_features)
    model = keras.Sequential([
        keras.Input(shape=(4,)),
        standardise,
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    model.fit(np.tile(train_features, (20, 1)), np.tile(np.asarray(train_labels), 20),
              epochs=1, batch_size=16, verbose=0)
    probabilities = keras.ops.convert_to_numpy(model(np.asarray(test_features, dtype="float32")))
    return np.argmax(probabilities, axis=1) + 1
""",
    },
}

MISTAKES["standardize"] = {
    "mean and std over the flowers' rows instead of per feature": """
def standardize(train_features, features):
    train_features = np.asarray(train_features, dtype=float)
    return (np.asarray(features) - train_features.mean()) / np.maximum(train_features.std(), 1e-7)
""",
    "statistics of the flowers being standardised, not of train": """
def standardize(train_features, features):
    features = np.asarray(features, dtype=float)
    return (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-7)
""",
    "sample standard deviation (ddof=1)": """
def standardize(train_features, features):
    train_features = np.asarray(train_features, dtype=float)
    std = np.maximum(train_features.std(axis=0, ddof=1), 1e-7)
    return (np.asarray(features) - train_features.mean(axis=0)) / std
""",
    "no guard for a constant feature (0 / 0)": """
def standardize(train_features, features):
    train_features = np.asarray(train_features, dtype=float)
    return (np.asarray(features) - train_features.mean(axis=0)) / train_features.std(axis=0)
""",
}

"""Mistakes a student makes in week 3's syllable-decomposition and temperature exercises."""

_CHECK = '''
    if not isinstance(char, str) or len(char) != 1 or not 0xAC00 <= ord(char) <= 0xD7A3:
        raise ValueError(f"not one Hangul syllable: {char!r}")'''

MISTAKES = {
    "decompose_syllable": {
        "final consonant one past its jamo (0x11A8 + index)": f'''
def decompose_syllable(char):{_CHECK}
    initial_and_medial, final = divmod(ord(char) - 0xAC00, 28)
    initial, medial = divmod(initial_and_medial, 21)
    return chr(0x1100 + initial), chr(0x1161 + medial), chr(0x11A8 + final) if final else ""
''',
        "vowel counted from the filler U+1160": f'''
def decompose_syllable(char):{_CHECK}
    initial_and_medial, final = divmod(ord(char) - 0xAC00, 28)
    initial, medial = divmod(initial_and_medial, 21)
    return chr(0x1100 + initial), chr(0x1160 + medial), chr(0x11A7 + final) if final else ""
''',
        "divides by 21 first, then by 28": f'''
def decompose_syllable(char):{_CHECK}
    initial_and_medial, final = divmod(ord(char) - 0xAC00, 21)
    initial, medial = divmod(initial_and_medial, 28)
    return chr(0x1100 + initial), chr(0x1161 + medial), chr(0x11A7 + final) if final else ""
''',
        "compatibility jamo (U+3131 ...) instead of conjoining jamo": f'''
INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
FINALS = ["", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"]

def decompose_syllable(char):{_CHECK}
    initial_and_medial, final = divmod(ord(char) - 0xAC00, 28)
    initial, medial = divmod(initial_and_medial, 21)
    return INITIALS[initial], MEDIALS[medial], FINALS[final]
''',
        "checks the length but not the Hangul range": '''
def decompose_syllable(char):
    if len(char) != 1:
        raise ValueError(f"not one character: {char!r}")
    initial_and_medial, final = divmod(ord(char) - 0xAC00, 28)
    initial, medial = divmod(initial_and_medial, 21)
    return chr(0x1100 + initial), chr(0x1161 + medial), chr(0x11A7 + final) if final else ""
''',
    },
    "apply_temperature": {
        "multiplies by the temperature instead of dividing": '''
def apply_temperature(probabilities, temperature):
    if temperature <= 0:
        raise ValueError(f"temperature must be positive: {temperature}")
    with np.errstate(divide="ignore"):
        scores = np.log(np.asarray(probabilities, dtype="float64")) * temperature
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)
''',
        "p ** (1 / T) directly (0 / 0 for a small temperature)": '''
def apply_temperature(probabilities, temperature):
    if temperature <= 0:
        raise ValueError(f"temperature must be positive: {temperature}")
    weights = np.asarray(probabilities, dtype="float64") ** (1 / temperature)
    return weights / weights.sum(axis=-1, keepdims=True)
''',
        "normalised over the whole batch, not each row": '''
def apply_temperature(probabilities, temperature):
    if temperature <= 0:
        raise ValueError(f"temperature must be positive: {temperature}")
    with np.errstate(divide="ignore"):
        scores = np.log(np.asarray(probabilities, dtype="float64")) / temperature
    weights = np.exp(scores - scores.max())
    return weights / weights.sum()
''',
        "no ValueError for a temperature <= 0": '''
def apply_temperature(probabilities, temperature):
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.log(np.asarray(probabilities, dtype="float64")) / temperature
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return weights / weights.sum(axis=-1, keepdims=True)
''',
    },
}

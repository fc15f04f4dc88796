"""Make the small files in sample_data/ (seeded, so every run writes the same bytes).

    python sample_data/make_sample_data.py

- weights.npy   [500, 16] float32 table; row 0 is the padding row (zeros).
- ids.npy       [64, 12] int32 index batch with padding (0) at the ends of shorter rows.
- ids.txt       ragged text index file: one sequence per line.
- glove.txt     GloVe-format text (token, then 16 values), 120 words, one of them containing spaces.
- tokens.txt    sentences of words from glove.txt (a few out of the vocabulary), one per line.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORDS = (
    "<unk> the of and to a in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can what said about up "
    "out them into time only new some could these two may first then do any like my now over such our man me even "
    "most made after also did many before must through back years where much your way well down should because "
    "each just those people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come since against "
    "go came right used take three"
).split()


def main() -> None:
    rng = np.random.default_rng(20261128)
    weights = rng.standard_normal((500, 16)).astype(np.float32)
    weights[0] = 0.0
    np.save(HERE / "weights.npy", weights)

    lengths = rng.integers(3, 13, size=64)
    ids = np.zeros((64, 12), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 500, size=n)
    np.save(HERE / "ids.npy", ids)
    (HERE / "ids.txt").write_text("".join(" ".join(map(str, ids[r, :n])) + "\n" for r, n in enumerate(lengths)))

    vocab = WORDS + [". . ."]
    vectors = rng.standard_normal((len(vocab), 16)).astype(np.float32)
    vectors[0] = 0.0
    with open(HERE / "glove.txt", "w", encoding="utf-8", newline="\n") as f:
        for token, vector in zip(vocab, vectors):
            f.write(token + " " + " ".join(str(x) for x in vector) + "\n")

    sentence_words = vocab[1:-1] + ["embedtool", "vectors"]
    with open(HERE / "tokens.txt", "w", encoding="utf-8", newline="\n") as f:
        for _ in range(40):
            f.write(" ".join(rng.choice(sentence_words, size=rng.integers(2, 15))) + "\n")


if __name__ == "__main__":
    main()

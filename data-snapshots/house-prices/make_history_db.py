#!/usr/bin/env python3
"""Builds houses.sqlite: the house-price training data as a table with a history, for the point-in-time
gathering of pipelines/house-prices-sqlite.toml (and the tests). Deterministic: run it again to get the
same rows (the SQLite file's bytes may differ between SQLite versions; its content does not).

    python3 data-snapshots/house-prices/make_history_db.py

Table `houses` holds every column of train.csv ("NA" stored as NULL; columns whose values are all
integers as INTEGER, the rest as TEXT), plus `updated_at` (ISO 8601, UTC). Its history:

- 2026-01-05T09:00:00Z  first load: every house except the last 100 Ids; 30 houses with a mistyped
                        SalePrice (the true price + 1000).
- 2026-02-10T14:30:00Z  the 30 prices corrected (new versions of those Ids) and the last 100 houses added.

So the latest version of every house as of any time from 2026-02-10T14:30:00Z on is exactly train.csv,
and as of 2026-02-01 it is the older table. Rows are inserted in a shuffled (seeded) order, so that the
physical order of the table is not the order of the file.
"""
import csv
import pathlib
import random
import sqlite3

HERE = pathlib.Path(__file__).resolve().parent
FIRST, SECOND = "2026-01-05T09:00:00Z", "2026-02-10T14:30:00Z"

with open(HERE / "train.csv", newline="") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)


def is_int(v):
    return v == "NA" or (v.lstrip("-").isdigit())


types = ["INTEGER" if all(is_int(r[i]) for r in rows) else "TEXT" for i in range(len(header))]


def typed(row):
    return [None if v == "NA" else (int(v) if t == "INTEGER" else v) for v, t in zip(row, types)]


rng = random.Random(20260105)
ids = [int(r[0]) for r in rows]
late = set(sorted(ids)[-100:])
early = [i for i in ids if i not in late]
mistyped = set(rng.sample(early, 30))
price = header.index("SalePrice")

versions = []
for r in rows:
    t = typed(r)
    if t[0] in late:
        versions.append(t + [SECOND])
        continue
    if t[0] in mistyped:
        wrong = list(t)
        wrong[price] = t[price] + 1000
        versions.append(wrong + [FIRST])
        versions.append(t + [SECOND])
    else:
        versions.append(t + [FIRST])
rng.shuffle(versions)

path = HERE / "houses.sqlite"
path.unlink(missing_ok=True)
db = sqlite3.connect(path)
cols = ", ".join(f'"{h}" {t}' for h, t in zip(header, types)) + ', "updated_at" TEXT NOT NULL'
db.execute(f"CREATE TABLE houses ({cols})")
db.executemany(f"INSERT INTO houses VALUES ({', '.join('?' * (len(header) + 1))})", versions)
db.commit()
db.execute("VACUUM")
db.close()
print(f"wrote {path}: {len(versions)} versions of {len(rows)} houses")

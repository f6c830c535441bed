"""Writes the typed-file fixtures of tests/gather_files.rs: the shipped CSV files rewritten by the
writers users have (pandas/pyarrow, polars), in Parquet, Arrow IPC and NDJSON, with different
compressions, row-group sizes and encodings. mlpipe must give every one of them the snapshot id of the
CSV file it came from (the CSV files are written in mlpipe's canonical form).

    python3 -m venv /tmp/fixtures && /tmp/fixtures/bin/pip install pyarrow pandas polars
    /tmp/fixtures/bin/python tests/data/typed/make_fixtures.py

Written with pyarrow 26.0.1, pandas 3.1.1 and polars 2.1.0 (PyPI).
"""
import pathlib

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

root = pathlib.Path(__file__).resolve().parents[3]
out = pathlib.Path(__file__).resolve().parent
houses = root / "data-snapshots/house-prices/train.csv"
penguins = root / "data-snapshots/penguins/penguins.csv"

# House prices: pandas (pyarrow, snappy, one row group) and polars (zstd, row groups of 333 rows).
df = pd.read_csv(houses, keep_default_na=False, na_values=["NA"])
df.to_parquet(out / "houses-pandas.parquet")
pl.read_csv(houses, null_values=["NA"], infer_schema_length=None).write_parquet(
    out / "houses-polars.parquet", row_group_size=333
)

# Penguins: every other format and layout.
pdf = pd.read_csv(penguins, keep_default_na=False, na_values=["NA"])
table = pa.Table.from_pandas(pdf, preserve_index=False)
pq.write_table(table, out / "penguins-groups.parquet", row_group_size=50, compression="gzip", use_dictionary=True)
# Text as dictionary-coded (categorical) columns.
pq.write_table(table.cast(pa.schema([
    pa.field(f.name, pa.dictionary(pa.int8(), pa.string())) if pa.types.is_string(f.type) else f
    for f in table.schema
])), out / "penguins-dictionary.parquet")
feather.write_feather(pdf, out / "penguins-pyarrow.feather")  # IPC file format, lz4
pol = pl.read_csv(penguins, null_values=["NA"], infer_schema_length=None)
pol.write_ipc_stream(out / "penguins-polars.arrows")  # IPC stream format
pol.write_ndjson(out / "penguins-polars.ndjson")

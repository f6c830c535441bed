#!/usr/bin/env python3
"""Turns a CSV file into NDJSON records for `mlpipe serve` and `mlpipe predict --stream`: numbers as
numbers, the missing-value marker as null, and the columns named with --text kept as strings (the
pipeline's categorical dtypes, e.g. MSSubClass).

    python3 examples/deploy/to_ndjson.py data-snapshots/house-prices/test.csv --text MSSubClass > test.ndjson
"""
import argparse
import csv
import json

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("--text", action="append", default=[], help="a column to keep as text")
ap.add_argument("--na", default="NA", help="the missing-value marker")
args = ap.parse_args()


def value(column, text):
    if text == args.na or text == "":
        return None
    if column in args.text:
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


with open(args.csv, newline="") as f:
    for row in csv.DictReader(f):
        print(json.dumps({k: value(k, v) for k, v in row.items()}))

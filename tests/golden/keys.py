"""Computes golden digests from the encoding documented in docs/hashing.md, independently of the Rust
code, so the tests prove the code follows the documentation.

    pip install blake3 && python3 tests/golden/keys.py > tests/golden/keys.json
"""
import json
import struct

from blake3 import blake3


def s(text):
    b = text.encode()
    return b"s" + struct.pack("<Q", len(b)) + b


def by(b):
    return b"b" + struct.pack("<Q", len(b)) + b


def u(v):
    return b"u" + struct.pack("<Q", v)


def i(digest):
    return b"i" + digest


def key(context, *fields):
    return blake3(b"".join(fields), derive_key_context=context).digest()


seed = key("mlpipe 2026-11 stage seed v1", u(42), s("split"))
stage_seed = key("mlpipe 2026-11 stage seed v1", u(42), s("impute.median"))
stage_key = key(
    "mlpipe 2026-11 stage key v1",
    s("impute"),
    by(b'{"operator":"median"}'),
    i(blake3(b"input").digest()),
    by(stage_seed),
    s("0.1.0"),
    s("x86_64-unknown-linux-gnu"),
)
# A frame with a numeric column a = [1.5, missing] and a text column b = ["x", missing].
nums = struct.pack("<d", 1.5) + struct.pack("<Q", 0x7FF8000000000000)
# b's categories held by some row ("x"), then each row's place among them as u32, missing 0xFFFFFFFF.
codes = struct.pack("<I", 0) + struct.pack("<I", 0xFFFFFFFF)
column_a = key("mlpipe 2026-12 column digest v1", u(0), u(2), by(nums))
column_b = key("mlpipe 2026-12 column digest v1", u(1), u(2), u(1), s("x"), by(codes))
frame = key(
    "mlpipe 2026-12 frame digest v2",
    u(2),
    s("a"), i(column_a),
    s("b"), i(column_b),
)
# Two chained ledger entries: a REST prediction with its value, then a shadow batch entry with a pair
# and no value (an absent value or pair is an empty byte string).
h = lambda text: blake3(text.encode()).digest()
first = key(
    "mlpipe 2026-11 ledger entry v1",
    i(bytes(32)), u(1),
    i(h("prediction")), i(h("run")), i(h("model")), i(h("input")), s("record"), i(h("output")), u(1),
    by(struct.pack("<d", 181234.5)), s("serve"), s("champion"), by(b""),
    s("2026-11-26T10:00:00.000000Z"), s("127.0.0.1:5000"),
)
second = key(
    "mlpipe 2026-11 ledger entry v1",
    i(first), u(2),
    i(h("prediction 2")), i(h("run 2")), i(h("model 2")), i(h("input 2")), s("csv"), i(h("output 2")), u(2),
    by(b""), s("batch"), s("shadow"), by(h("prediction")),
    s("2026-11-26T10:00:01.000000Z"), s("test.csv"),
)
print(json.dumps({"stage_seed_42_split": seed.hex(), "stage_key": stage_key.hex(), "frame": frame.hex(),
                  "ledger_entry_1": first.hex(), "ledger_entry_2": second.hex()}, indent=1))

#!/usr/bin/python3
"""Tokenize plain text into the corpus directory train.py reads (a helper for experiments and
tests; the TypeScript side produces the same format for real corpora).

Documents are separated by blank lines. Encoding follows the original's word-level tokenizer
(../shared/spec/architecture.md): lowercase, split on whitespace, punctuation stays attached,
unknown words are <UNK>=1. Each document is followed by <EOS>=3.

  /usr/bin/python3 scripts/train/make_corpus.py --tokenizer tok.json --text stories.txt --out corpus/
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from typing import List

import numpy as np

UNK_ID, EOS_ID = 1, 3


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def split_documents(text: str) -> List[str]:
    return [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]


def encode_words(doc: str, token_to_id: dict) -> List[int]:
    return [token_to_id.get(w, UNK_ID) for w in doc.lower().split()]


def write_ids(path: str, ids: List[int], dtype: str) -> None:
    np.asarray(ids, dtype={"uint16": "<u2", "int32": "<i4"}[dtype]).tofile(path)


def build(tokenizer: str, text_paths: List[str], out: str, val_fraction: float, val_text: List[str]) -> dict:
    tok = json.loads(read_text(tokenizer))
    if "token_to_id" not in tok:
        raise SystemExit(f"{tokenizer}: only the word-level format ({{'token_to_id': ...}}) is supported here")
    t2i = tok["token_to_id"]
    vocab = int(tok.get("vocab_size", len(t2i)))
    docs = [d for p in text_paths for d in split_documents(read_text(p))]
    if val_text:
        val_docs = [d for p in val_text for d in split_documents(read_text(p))]
        train_docs = docs
    else:
        cut = len(docs) - max(1, int(round(len(docs) * val_fraction)))
        train_docs, val_docs = docs[:cut], docs[cut:]

    def stream(ds: List[str]) -> List[int]:
        ids: List[int] = []
        for d in ds:
            ids.extend(encode_words(d, t2i))
            ids.append(EOS_ID)
        return ids

    dtype = "uint16" if vocab <= 65536 else "int32"
    os.makedirs(out, exist_ok=True)
    tr, va = stream(train_docs), stream(val_docs)
    write_ids(os.path.join(out, "train.bin"), tr, dtype)
    write_ids(os.path.join(out, "val.bin"), va, dtype)
    shutil.copyfile(tokenizer, os.path.join(out, "tokenizer.json"))
    meta = {"dtype": dtype, "vocab_size": vocab, "eos_id": EOS_ID, "train_tokens": len(tr), "val_tokens": len(va),
            "train_documents": len(train_docs), "val_documents": len(val_docs)}
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    return meta


def main() -> int:
    p = argparse.ArgumentParser(description="Tokenize text (documents split by blank lines) into train.bin/val.bin.")
    p.add_argument("--tokenizer", required=True, help="word-level tokenizer JSON (token_to_id, vocab_size)")
    p.add_argument("--text", required=True, nargs="+", help="training text file(s)")
    p.add_argument("--val-text", nargs="*", default=[], help="validation text file(s); default: hold out documents")
    p.add_argument("--val-fraction", type=float, default=0.05, help="fraction of documents held out (last ones)")
    p.add_argument("--out", required=True, help="output corpus directory")
    a = p.parse_args()
    print(json.dumps(build(a.tokenizer, a.text, a.out, a.val_fraction, a.val_text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The config keys (and their defaults) of diffusers' scheduler classes, read from diffusers' sources.

Reads every `schedulers/scheduling_*.py` (but Flax) of a diffusers source tree with `ast` (nothing is
imported or executed) and prints JSON: {"commit": ..., "classes": {ClassName: {key: default}}} for every
class whose `__init__` is decorated with `@register_to_config`. A default that is not a literal
(e.g. `-float("inf")`) is written as its source text in {"expr": ...}.

Usage:
  python3 tools/reference/scheduler_config_keys.py --diffusers /work/.snapshots/diffusers --commit a3608b5 \
      > packages/nodes/test/fixtures/schedulers/diffusers_config_keys.json
Needs only the Python standard library.
"""
import argparse
import ast
import glob
import json
import math
import os
import subprocess


def literal(node):
    try:
        v = ast.literal_eval(node)
    except ValueError:
        src = ast.unparse(node)
        if src in ('-float("inf")', "-float('inf')"):
            return {"expr": "-Infinity"}
        return {"expr": src}
    if isinstance(v, float) and not math.isfinite(v):
        return {"expr": str(v)}
    if isinstance(v, tuple):
        return list(v)
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True, help="diffusers source checkout")
    ap.add_argument("--commit", help="the commit, when the tree is not a git checkout")
    args = ap.parse_args()
    root = os.path.join(args.diffusers, "src", "diffusers", "schedulers")
    try:
        commit = subprocess.check_output(["git", "-C", args.diffusers, "rev-parse", "HEAD"], text=True).strip()
    except Exception:
        commit = args.commit
    classes = {}
    for f in sorted(glob.glob(os.path.join(root, "scheduling_*.py"))):
        if "flax" in os.path.basename(f):
            continue
        tree = ast.parse(open(f, encoding="utf-8").read())
        for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
            for fn in cls.body:
                if not (isinstance(fn, ast.FunctionDef) and fn.name == "__init__"):
                    continue
                if not any(getattr(d, "id", None) == "register_to_config" for d in fn.decorator_list):
                    continue
                args_ = fn.args.args[1:]
                defaults = [None] * (len(args_) - len(fn.args.defaults)) + list(fn.args.defaults)
                keys = {}
                for a, d in zip(args_, defaults):
                    keys[a.arg] = literal(d) if d is not None else {"expr": "required"}
                for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults):
                    keys[a.arg] = literal(d) if d is not None else {"expr": "required"}
                classes[cls.name] = keys
    print(json.dumps({"commit": commit, "classes": classes}, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

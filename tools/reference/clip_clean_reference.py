#!/usr/bin/env python3
"""CLIP token ids of prompts that need cleaning (HTML entities, ftfy's fixes), from the reference
tokenizer: open_clip's SimpleTokenizer (OpenAI's simple_tokenizer: ftfy.fix_text, html.unescape twice,
whitespace collapse, lowercase), with the vocabulary in shared/data/clip. Ids include <|startoftext|>
and <|endoftext|>, no padding.

Every prompt is also checked to be one where ftfy's mojibake repair (fix_encoding), which priorgraph
does not reproduce, changes nothing.

Usage (needs ftfy, regex, numpy, torch, open_clip_torch installed with --no-deps):
  python3 tools/reference/clip_clean_reference.py --bpe ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz \
      > packages/nodes/test/fixtures/clip/clean_vectors.json
"""
import argparse
import importlib.util
import json
import sys

import ftfy

PROMPTS = [
    "a cat &amp; a dog",
    "it&#39;s a dog",
    "it&apos;s raining",
    "&lt;b&gt;bold&lt;/b&gt; text",
    "&amp;amp;amp;amp; four times",
    "a &quot;quoted&quot; word",
    "&copy; 2024 &mdash; art &hellip;",
    "caf&eacute; au lait",
    "CAF&EACUTE; AU LAIT",
    "BUNDESSTRA&SZLIG;E",
    "&ntilde; &Ntilde; &NTILDE; &nTILDE;",
    "&#x1F600; smile &#128512;",
    "fish &amp chips",
    "this &notit; that",
    "<b> &amp;amp; </b> in tags",
    "<i>&amp;amp;amp;</i> three",
    "ＬＯＵＤ　ＮＯＩＳＥＳ",
    "ﬂubberiﬁc ﬃ",
    "\u201ccurly\u201d \u2018quotes\u2019",
    "line\r\nbreak\rand\u2028more",
    "tab\tand   spaces\n\nnew",
    "Pe\u0301rez cafe\u0301",
    "&#0;zero &#1;one &#x80;euro &#x9d;",
    "bell\x07 char and \x1b[31mred\x1b[0m",
    "na\u00efve r\u00e9sum\u00e9",
    "&nbsp;non-breaking&nbsp;space",
    "emoji \U0001F431 cat",
    "&Jscr;ohn &HilbertSpace;ancock",
    "&#65;&#x42;&#67 letters",
    "&unknownentity; stays",
    "  leading and trailing  ",
    "A&amp;B&amp;C &lt;3",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpe", required=True)
    ap.add_argument("--open-clip-tokenizer", help="path of open_clip/tokenizer.py (default: the installed one)")
    args = ap.parse_args()
    path = args.open_clip_tokenizer
    if path is None:
        import importlib.util as u

        path = u.find_spec("open_clip").submodule_search_locations[0] + "/tokenizer.py"
    spec = importlib.util.spec_from_file_location("oc_tokenizer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # only this module: the package __init__ would import models
    tok = mod.SimpleTokenizer(bpe_path=args.bpe)
    sot, eot = tok.sot_token_id, tok.eot_token_id
    vectors = []
    for p in PROMPTS:
        no_mojibake = ftfy.fix_text(p, fix_encoding=False)
        assert ftfy.fix_text(p) == no_mojibake, p
        vectors.append({"text": p, "cleaned": mod.basic_clean(p), "ids": [sot, *tok.encode(p), eot]})
    json.dump(
        {
            "source": f"open_clip_torch tokenizer.SimpleTokenizer (OpenAI's simple_tokenizer), ftfy {ftfy.__version__}, "
            "python " + sys.version.split()[0] + "; ids include <|startoftext|> and <|endoftext|>, no padding",
            "vectors": vectors,
        },
        sys.stdout,
        indent=1,
        ensure_ascii=True,
    )
    print()


if __name__ == "__main__":
    main()

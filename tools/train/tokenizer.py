"""A tiny CLIP-format tokenizer (byte-level BPE with '</w>' end-of-word suffix).

The vocabulary is laid out like OpenAI CLIP's: 256 byte symbols, the same 256 with '</w>', then one
token per merge, then '<|startoftext|>' and '<|endoftext|>' last. Merges are built so that every
word of the caption/instruction vocabulary becomes exactly one token under standard BPE.
"""
import json
import os
import re

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
MAX_LEN = 16


def bytes_to_unicode():
    """CLIP/GPT-2's reversible byte -> unicode-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


_B2U = bytes_to_unicode()
_PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+", re.I)


def _word_symbols(word):
    chars = [_B2U[b] for b in word.encode("utf-8")]
    return chars[:-1] + [chars[-1] + "</w>"]


def _bpe(symbols, ranks):
    word = list(symbols)
    while len(word) > 1:
        pairs = [(ranks.get((word[i], word[i + 1]), 1 << 30), i) for i in range(len(word) - 1)]
        r, _ = min(pairs)
        if r == 1 << 30:
            break
        a, b = min((p for p in pairs if p[0] == r))[1], None
        first, second = word[a], word[a + 1]
        new, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = new
    return word


def build(words):
    """Return (vocab dict token->id, merges list of (a,b)) covering `words` as single tokens."""
    base = list(_B2U.values())
    vocab_list = base + [v + "</w>" for v in base]
    merges, ranks = [], {}
    for w in sorted(set(words)):
        while True:
            sym = _bpe(_word_symbols(w), ranks)
            if len(sym) == 1:
                break
            pair = (sym[0], sym[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab_list.append(pair[0] + pair[1])
    vocab_list += [SOT, EOT]
    vocab = {t: i for i, t in enumerate(vocab_list)}
    return vocab, merges


class Tokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.merges = merges
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.sot, self.eot = vocab[SOT], vocab[EOT]

    def encode(self, text):
        text = re.sub(r"\s+", " ", text.strip()).lower()
        ids = [self.sot]
        for w in _PAT.findall(text):
            ids += [self.vocab[t] for t in _bpe(_word_symbols(w), self.ranks)]
        ids = ids[: MAX_LEN - 1] + [self.eot]
        return ids + [self.eot] * (MAX_LEN - len(ids))  # CLIP pads with the end token

    def __call__(self, texts):
        return [self.encode(t) for t in texts]

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "vocab.json"), "w") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(folder, "merges.txt"), "w") as f:
            f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges))
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump({
                "tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LEN, "do_lower_case": True,
                "bos_token": SOT, "eos_token": EOT, "unk_token": EOT, "pad_token": EOT,
                "add_prefix_space": False, "errors": "replace", "clean_up_tokenization_spaces": True,
            }, f, indent=2)
        with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
            json.dump({"bos_token": SOT, "eos_token": EOT, "unk_token": EOT, "pad_token": EOT}, f, indent=2)


def make_tokenizer(texts):
    words = set()
    for t in texts:
        words.update(_PAT.findall(t.lower()))
    vocab, merges = build(words)
    return Tokenizer(vocab, merges)

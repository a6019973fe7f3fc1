// Checks that models/shapes-t2i/tokenizer (CLIP format) gives the ids the text encoder was trained
// with, using @huggingface/tokenizers and a CLIP-style tokenizer.json assembled in memory.
//   node tools/train/check_tokenizer.mjs
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pnpm = join(root, 'node_modules', '.pnpm');
const pkg = readdirSync(pnpm).find((d) => d.startsWith('@huggingface+tokenizers@'));
const { Tokenizer } = await import(pathToFileURL(join(pnpm, pkg, 'node_modules', '@huggingface', 'tokenizers', 'dist', 'tokenizers.mjs')).href);
const dir = join(root, 'models', 'shapes-t2i', 'tokenizer');
const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'));
const merges = readFileSync(join(dir, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
const SOT = vocab['<|startoftext|>'];
const EOT = vocab['<|endoftext|>'];
const json = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [
    { id: SOT, content: '<|startoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    { id: EOT, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
  ],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  ] },
  post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', EOT], cls: ['<|startoftext|>', SOT], trim_offsets: false, add_prefix_space: false },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false, vocab, merges },
};
const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(json, cfg);
// ids from tools/train/tokenizer.py (the Python side used for training); pass other cases as JSON argv[2]
const expected = JSON.parse(process.argv[2] ?? '{"a red circle on a light background": [587, 320, 566, 529, 554, 320, 550, 521, 588, 588, 588, 588, 588, 588, 588, 588], "an orange cross on a dark background": [587, 512, 559, 533, 554, 320, 536, 521, 588, 588, 588, 588, 588, 588, 588, 588], "make it purple": [587, 553, 546, 564, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588], "turn it into a triangle": [587, 581, 546, 545, 320, 578, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588], "": [587, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588, 588], "A  Blue   Square on a gray background": [587, 320, 524, 571, 554, 320, 539, 521, 588, 588, 588, 588, 588, 588, 588, 588]}');
let bad = 0;
for (const [text, ids] of Object.entries(expected)) {
  let got = tok.encode(text).ids;
  got = [...got.slice(0, 16), ...Array(Math.max(0, 16 - got.length)).fill(EOT)];
  const ok = got.join(',') === ids.join(',');
  if (!ok) bad++;
  console.log(ok ? 'ok  ' : 'DIFF', JSON.stringify(text), got.join(','), ok ? '' : `expected ${ids.join(',')}`);
}
process.exit(bad ? 1 : 0);

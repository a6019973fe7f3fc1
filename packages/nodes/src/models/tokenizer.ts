/**
 * CLIP BPE tokenizer from diffusers' tokenizer/vocab.json + merges.txt, run by @huggingface/tokenizers
 * (not a hand-written BPE). The tokenizer.json it needs is assembled in memory: a BPE model with the
 * end-of-word suffix "</w>", CLIP's normalizer (NFC, whitespace collapse, lowercase), its split pattern
 * (contractions, letter runs, single digits, punctuation runs), byte-level encoding, and
 * <|startoftext|> … <|endoftext|> around the ids. The text is cleaned first as OpenAI's reference does
 * (clip-clean.ts: ftfy's fixes, HTML entities unescaped twice: "&amp;" → "&", "&#39;" → "'"). Ids are truncated to model_max_length (keeping the end token) and padded with
 * the pad token (<|endoftext|> for CLIP).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { clipCleanText } from './clip-clean.ts';

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

export interface ClipTokenizer {
  maxLength: number;
  bosId: number;
  eosId: number;
  padId: number;
  /** ids with start/end tokens, truncated and padded to maxLength */
  encode(text: string): number[];
  /** ids with start/end tokens, no truncation or padding */
  encodeRaw(text: string): number[];
}

export function buildClipTokenizer(
  vocab: Record<string, number>,
  merges: string[],
  maxLength: number,
  padToken = EOS,
): ClipTokenizer {
  const bosId = vocab[BOS];
  const eosId = vocab[EOS];
  if (bosId === undefined || eosId === undefined) throw new Error(`the vocabulary has no ${BOS} / ${EOS} tokens`);
  const padId = vocab[padToken] ?? eosId;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bosId, BOS), special(eosId, EOS)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS, eosId],
      cls: [BOS, bosId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const tok = new Tokenizer(json, { model_max_length: maxLength, bos_token: BOS, eos_token: EOS, pad_token: padToken });
  const encodeRaw = (text: string) => tok.encode(clipCleanText(text)).ids;
  return {
    maxLength,
    bosId,
    eosId,
    padId,
    encodeRaw,
    encode(text) {
      let ids = encodeRaw(text);
      if (ids.length > maxLength) ids = [...ids.slice(0, maxLength - 1), eosId];
      while (ids.length < maxLength) ids.push(padId);
      return ids;
    },
  };
}

/** merges.txt → "a b" lines (the "#version" header and blank lines dropped). */
export function parseMerges(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#version'));
}

/** Load tokenizer/ of a diffusers folder. Errors name the file. */
export function loadClipTokenizer(dir: string, fallbackMaxLength = 77): ClipTokenizer {
  const vocabFile = join(dir, 'vocab.json');
  const mergesFile = join(dir, 'merges.txt');
  for (const f of [vocabFile, mergesFile]) if (!existsSync(f)) throw new Error(`tokenizer file not found: ${f}`);
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(readFileSync(vocabFile, 'utf8'));
  } catch (e) {
    throw new Error(`${vocabFile}: not valid JSON (${(e as Error).message})`);
  }
  let maxLength = fallbackMaxLength;
  let pad = EOS;
  const cfgFile = join(dir, 'tokenizer_config.json');
  if (existsSync(cfgFile)) {
    try {
      const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
      if (typeof cfg.model_max_length === 'number' && cfg.model_max_length < 100_000) maxLength = cfg.model_max_length;
      if (typeof cfg.pad_token === 'string') pad = cfg.pad_token;
      else if (cfg.pad_token && typeof cfg.pad_token.content === 'string') pad = cfg.pad_token.content;
    } catch (e) {
      throw new Error(`${cfgFile}: not valid JSON (${(e as Error).message})`);
    }
  }
  try {
    return buildClipTokenizer(vocab, parseMerges(readFileSync(mergesFile, 'utf8')), maxLength, pad);
  } catch (e) {
    throw new Error(`${dir}: ${(e as Error).message}`);
  }
}

/**
 * A tokenizer from a fast tokenizer's tokenizer.json (what transformers' save_pretrained writes for T5
 * and other SentencePiece-converted tokenizers: Unigram model, Precompiled/NFKC normalizer, Metaspace),
 * run by @huggingface/tokenizers. Ids carry the tokenizer's own special tokens (T5: "</s>" at the end),
 * are truncated keeping the final special token and padded with the pad token to `maxLength`, as
 * transformers does with padding="max_length", truncation=True.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ClipTokenizer } from './tokenizer.ts';

function readJsonFile(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

const tokenName = (v: unknown): string | null =>
  typeof v === 'string'
    ? v
    : v && typeof (v as { content?: unknown }).content === 'string'
      ? (v as { content: string }).content
      : null;

/** Load tokenizer.json (+ tokenizer_config.json) of a tokenizer folder. `maxLength` overrides the
 *  config's model_max_length (T5's 512 is not the length a pipeline pads to: PixArt-α uses 120). */
export function loadJsonTokenizer(dir: string, maxLength?: number): ClipTokenizer {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) {
    const sp = existsSync(join(dir, 'spiece.model'));
    throw new Error(
      `tokenizer file not found: ${file}${sp ? ' (only spiece.model is there: save the fast tokenizer once with transformers, T5TokenizerFast.from_pretrained(dir).save_pretrained(dir))' : ''}`,
    );
  }
  const json = readJsonFile(file);
  const cfgFile = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(cfgFile) ? readJsonFile(cfgFile) : {};
  const model = json.model as { type?: string; vocab?: unknown } | undefined;
  const vocab = new Map<string, number>();
  if (model?.type === 'Unigram' && Array.isArray(model.vocab))
    for (const [i, [p]] of (model.vocab as Array<[string, number]>).entries()) vocab.set(p, i);
  else if (model?.vocab && typeof model.vocab === 'object')
    for (const [p, i] of Object.entries(model.vocab as Record<string, number>)) vocab.set(p, i);
  for (const t of (json.added_tokens as Array<{ id: number; content: string }> | undefined) ?? [])
    vocab.set(t.content, t.id);
  const padToken = tokenName(cfg.pad_token) ?? '<pad>';
  const eosToken = tokenName(cfg.eos_token) ?? '</s>';
  const bosToken = tokenName(cfg.bos_token);
  const padId = vocab.get(padToken);
  const eosId = vocab.get(eosToken);
  if (padId === undefined) throw new Error(`${file}: the pad token "${padToken}" is not in the vocabulary`);
  if (eosId === undefined) throw new Error(`${file}: the end token "${eosToken}" is not in the vocabulary`);
  const cfgMax =
    typeof cfg.model_max_length === 'number' && cfg.model_max_length < 100_000 ? cfg.model_max_length : 512;
  const L = maxLength ?? cfgMax;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, cfg);
  } catch (e) {
    throw new Error(`${file}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const encodeRaw = (text: string) => tok.encode(text).ids;
  return {
    maxLength: L,
    bosId: bosToken ? (vocab.get(bosToken) ?? -1) : -1,
    eosId,
    padId,
    encodeRaw,
    encode(text) {
      let ids = encodeRaw(text);
      if (ids.length > L) ids = [...ids.slice(0, L - 1), ids[ids.length - 1]];
      while (ids.length < L) ids.push(padId);
      return ids;
    },
  };
}

/** The CLIP tokenizer against OpenAI's reference ids, using the real CLIP BPE vocabulary (test fixture,
 *  MIT, see fixtures/clip/README.md), converted here into diffusers' vocab.json + merges.txt layout. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clipCleanText, htmlUnescape } from '../src/models/clip-clean.ts';
import { loadClipTokenizer } from '../src/models/tokenizer.ts';

const CLIP = new URL('./fixtures/clip/', import.meta.url);

/** GPT-2/CLIP byte → unicode symbol table. */
function byteSymbols(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return cs.map((c) => String.fromCodePoint(c));
}

/** bpe_simple_vocab_16e6.txt.gz → tokenizer/{vocab.json, merges.txt, tokenizer_config.json} */
function writeDiffusersTokenizer(): string {
  const lines = gunzipSync(readFileSync(new URL('bpe_simple_vocab_16e6.txt.gz', CLIP)))
    .toString('utf8')
    .split('\n');
  const merges = lines.slice(1, 49152 - 256 - 2 + 1);
  const syms = byteSymbols();
  const vocab = [
    ...syms,
    ...syms.map((s) => `${s}</w>`),
    ...merges.map((m) => m.split(' ').join('')),
    '<|startoftext|>',
    '<|endoftext|>',
  ];
  const dir = mkdtempSync(join(tmpdir(), 'pg-clip-'));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(Object.fromEntries(vocab.map((t, i) => [t, i]))));
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ model_max_length: 77, pad_token: '<|endoftext|>' }),
  );
  return dir;
}

describe('CLIP tokenizer (real vocabulary)', () => {
  const tok = loadClipTokenizer(writeDiffusersTokenizer());
  const vectors: Array<{ text: string; ids: number[] }> = JSON.parse(
    readFileSync(new URL('vectors.json', CLIP), 'utf8'),
  ).vectors;

  it('has the CLIP vocabulary size and special ids', () => {
    expect(tok.bosId).toBe(49406);
    expect(tok.eosId).toBe(49407);
  });

  it.each(vectors.map((v) => [v.text, v.ids] as const))('%j → reference ids', (text, ids) => {
    expect(tok.encodeRaw(text)).toEqual(ids);
    const padded = tok.encode(text);
    expect(padded).toHaveLength(77);
    expect(padded.slice(0, ids.length)).toEqual(ids);
    expect(padded.slice(ids.length).every((i) => i === 49407)).toBe(true);
  });

  it('normalizes case and whitespace, unescapes HTML entities, splits digits', () => {
    expect(tok.encodeRaw('  A   PHOTO of a CAT ')).toEqual(tok.encodeRaw('a photo of a cat'));
    expect(tok.encodeRaw('cats &amp; dogs')).toEqual(tok.encodeRaw('cats & dogs'));
    expect(tok.encodeRaw('2024').length).toBe(2 + 4);
  });

  it('always starts with <|startoftext|>, ends with <|endoftext|>, and truncates to 77', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const ids = tok.encode(s);
        expect(ids).toHaveLength(77);
        expect(ids[0]).toBe(49406);
        expect(ids.includes(49407)).toBe(true);
        expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 49408)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  describe('text cleaning as the reference does it (ftfy fixes, HTML entities unescaped twice)', () => {
    const clean: Array<{ text: string; cleaned: string; ids: number[] }> = JSON.parse(
      readFileSync(new URL('clean_vectors.json', CLIP), 'utf8'),
    ).vectors;

    it(`${clean.length} prompts give the reference ids (open_clip's SimpleTokenizer with ftfy)`, () => {
      for (const v of clean) expect(tok.encodeRaw(v.text), JSON.stringify(v.text)).toEqual(v.ids);
    });

    it('the cleaned text equals the reference basic_clean + whitespace_clean', () => {
      for (const v of clean) {
        expect(clipCleanText(v.text), JSON.stringify(v.text)).toBe(v.cleaned.split(/\s+/u).filter(Boolean).join(' '));
      }
    });

    it('"&amp;" and "&#39;" give the ids of "&" and "\'"', () => {
      expect(tok.encodeRaw('salt &amp; pepper')).toEqual(tok.encodeRaw('salt & pepper'));
      expect(tok.encodeRaw('it&#39;s')).toEqual(tok.encodeRaw("it's"));
      expect(tok.encodeRaw('it&amp;#39;s')).toEqual(tok.encodeRaw("it's")); // unescaped twice
    });

    it('Python html.unescape rules: legacy names without ";", invalid references', () => {
      expect(htmlUnescape('&amp &lt; &notit; &#0; &#1; &#x80; &#xD800; &#x110000; &bogus;')).toBe(
        '& < ¬it; \ufffd  € \ufffd \ufffd &bogus;',
      );
    });
  });
});

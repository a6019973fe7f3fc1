/**
 * Text cleaning before CLIP's BPE, as OpenAI's reference tokenizer does it (simple_tokenizer.py):
 *
 *   basic_clean(text) = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
 *
 * then whitespace runs → one space and lowercase (the tokenizer's normalizer does those two).
 *
 * ftfy.fix_text (ftfy 6.3, default config) is reproduced here except its mojibake repair
 * (fix_encoding and the byte-level fixes that belong to it): per line, until nothing changes —
 * HTML entities with a semicolon (ftfy's own rule: the HTML5 names, plus all-caps forms of the
 * lowercase ones such as &EACUTE;; skipped for a line that contains "<"), C1 controls read as
 * Windows-1252, Latin ligatures split, fullwidth/halfwidth forms → standard width, curly quotes →
 * straight, line breaks → "\n", lone surrogates → U+FFFD, terminal escapes and stray control
 * characters removed, NFC. Then Python's html.unescape twice: every named entity (with or without
 * its semicolon, longest legacy prefix) and numeric reference, with its replacement rules.
 * Named entities are looked up in the `entities` package's HTML5 table.
 */
import { decodeHTML, decodeHTMLStrict } from 'entities';

/** CLIP's basic_clean followed by its whitespace_clean (lowercasing is left to the normalizer). */
export function clipCleanText(text: string): string {
  return htmlUnescape(htmlUnescape(ftfyFixText(text)))
    .trim()
    .replace(/\s+/gu, ' ')
    .trim();
}

// ---------------------------------------------------------------------------------------------- ftfy

/** ftfy.fix_text without mojibake repair (module comment). */
export function ftfyFixText(text: string): string {
  const out: string[] = [];
  let decodeEntities = true; // ftfy's "auto": once a line has "<", no later line is unescaped either
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if (line.includes('<')) decodeEntities = false;
    out.push(fixSegment(line, decodeEntities));
  }
  return out.join('');
}

function fixSegment(text: string, decodeEntities: boolean): string {
  for (;;) {
    const orig = text;
    if (decodeEntities) text = ftfyUnescapeHtml(text);
    text = text.replace(/[\x80-\x9f]/g, (c) => CP1252[c.charCodeAt(0) - 0x80] ?? c); // fix_c1_controls
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]);
    text = text.replace(/[\u3000\uff01-\uffef]/g, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC'))); // width
    text = text.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"'); // uncurl_quotes
    text = text.replace(/\r\n|[\r\u2028\u2029\u0085]/g, '\n'); // fix_line_breaks
    text = text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
    text = text.replace(TERMINAL_ESCAPE_RE, ''); // remove_terminal_escapes
    text = text.replace(CONTROL_CHARS_RE, ''); // remove_control_chars
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ftfy removes ANSI terminal escapes (ESC [ … letter)
const TERMINAL_ESCAPE_RE = /\x1b\[[\d;]*[a-zA-Z]/g;
/** ftfy's remove_control_chars: C0 but \t \n \f \r, DEL, deprecated format chars, BOM, interlinear annotations */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are what ftfy removes
const CONTROL_CHARS_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/** ftfy's unescape_html: "&name;" / "&#…;" only (1–24 characters), all-caps forms of lowercase names. */
function ftfyUnescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (m) => {
    if (m.startsWith('&#')) {
      const u = pythonUnescapeOne(m.slice(1));
      return u.includes(';') ? m : u;
    }
    const named = decodeHTMLStrict(m);
    if (named !== m) return named;
    // "&NTILDE;" → "Ñ": the lowercase name is an entity and the all-caps one is not
    const lower = m.toLowerCase();
    if (m === m.toUpperCase() && lower !== m) {
      const l = decodeHTMLStrict(lower);
      if (l !== lower && decodeHTML(m) === m) return l.toUpperCase();
    }
    return m;
  });
}

/** Windows-1252 for C1 code points 0x80–0x9F (undefined ones kept, as ftfy's "sloppy" codec). */
const CP1252: readonly (string | undefined)[] = [
  '\u20ac',
  undefined,
  '\u201a',
  '\u0192',
  '\u201e',
  '\u2026',
  '\u2020',
  '\u2021',
  '\u02c6',
  '\u2030',
  '\u0160',
  '\u2039',
  '\u0152',
  undefined,
  '\u017d',
  undefined,
  undefined,
  '\u2018',
  '\u2019',
  '\u201c',
  '\u201d',
  '\u2022',
  '\u2013',
  '\u2014',
  '\u02dc',
  '\u2122',
  '\u0161',
  '\u203a',
  '\u0153',
  undefined,
  '\u017e',
  '\u0178',
];

const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

// --------------------------------------------------------------------------------- html.unescape

/** Python's html.unescape: named references (longest legacy prefix) and numeric ones. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g, (_m, s: string) =>
    pythonUnescapeOne(s),
  );
}

/** one reference without its "&" (Python's html._replace_charref) */
function pythonUnescapeOne(s: string): string {
  if (s[0] === '#') {
    const hex = s[1] === 'x' || s[1] === 'X';
    const digits = s.slice(hex ? 2 : 1).replace(/;$/, '');
    const num = hex ? Number.parseInt(digits, 16) : Number(digits);
    if (INVALID_CHARREFS.has(num)) return INVALID_CHARREFS.get(num) as string;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff || !Number.isFinite(num)) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  // the whole name (with or without ";"), else the longest name without ";" that starts it
  const whole = decodeHTML(`&${s}`);
  if (whole !== `&${s}`) return whole;
  return `&${s}`;
}

/** html._invalid_charrefs: 0x00, CR, and 0x80–0x9F read as Windows-1252 */
const INVALID_CHARREFS = new Map<number, string>([
  [0x00, '\ufffd'],
  [0x0d, '\r'],
  ...CP1252.map((c, i) => [0x80 + i, c ?? String.fromCharCode(0x80 + i)] as [number, string]),
]);

/** html._invalid_codepoints: dropped */
function isInvalidCodepoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) ||
    (n >= 0xe && n <= 0x1f) ||
    (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) ||
    n === 0xb ||
    (n & 0xfffe) === 0xfffe
  );
}

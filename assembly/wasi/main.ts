// itera-wasi: the standalone WASI command. It imports only wasi_snapshot_preview1, reads an
// Itera-Lite model file and a prompt named on its command line, generates with the same forward
// pass and sampler as every other host (assembly/model.ts, assembly/sampling.ts), prints the text
// to stdout and a timing line to stderr. Exit codes: 0 ok, 1 a bad file or a failed run,
// 2 a bad command line, 70 an internal error.
//
//   wasmtime run --dir . build/itera-wasi.wasm -- model.gguf "Once upon a time" --max-tokens 32

import { die, write, writeBytes, args, readFile, writeFile, nowNs, STDOUT, STDERR } from './io';
import { proc_exit } from './wasi';
import { readGguf } from './gguf';
import { readConfig, buildDescriptor } from './model-file';
import { tokenizerFor, Tokenizer } from './tokenizer';
import { modelNew, sessionNew, prefill, stepToken, Session, getError, getDetail } from '../model';
import { OK } from '../abi';
import { sampleToken, seedRng } from '../sampling';

const USAGE = `Usage: itera-wasi [options] MODEL PROMPT

Generates text from PROMPT with the Itera-Lite model file MODEL (GGUF), inside this module.
The runtime must give the module the folder of MODEL (wasmtime/wasmer: --dir).

Options:
  -n, --max-tokens N   most tokens to generate (default 64)
  -t, --temperature T  0 = greedy (default 0.8)
  -k, --top-k K        sample from the K most likely tokens only (0 = off, default 40)
      --top-p P        nucleus sampling, 0 < P <= 1 (1 = off, default 0.95)
  -s, --seed S         random seed, a whole number (default 0): the same seed gives the same text on every host
      --no-eos         keep going past the end-of-sequence token
      --prompt-ids IDS the prompt as comma-separated token ids instead of text
      --ids            also print the prompt and generated token ids (stdout, before the text)
      --logits FILE    write the logits of every prompt position (little-endian f32 [n][V]) to FILE
  -h, --help           this help

Examples:
  wasmtime run --dir . build/itera-wasi.wasm -- models/student-q8_0.gguf "Once upon a time" -n 32
  wasmer run --enable-simd --dir . build/itera-wasi.wasm -- models/student-q8_0.gguf "the dog" -t 0`;

const MAX_FILE: u64 = 1 << 31; // what a 32-bit memory can hold beside the runtime

function usageError(msg: string): void {
  write(STDERR, 'itera-wasi: ' + msg + "\nTry 'itera-wasi --help'.\n");
  proc_exit(2);
  unreachable();
}

function isDigits(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c < 48 || c > 57) return false; }
  return true;
}

/** A decimal number as Number() reads it (no trailing junk, no hex); NaN when it is not one. */
function strictNumber(s: string): f64 {
  if (s.length == 0) return NaN;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) { digits++; continue; }
    if (c == 46 || c == 43 || c == 45 || c == 101 || c == 69) continue; // . + - e E
    return NaN;
  }
  return digits > 0 ? parseFloat(s) : NaN;
}

function wholeNumber(name: string, v: string, max: u64): u64 {
  if (!isDigits(v) || v.length > 16) usageError('--' + name + " must be a whole number >= 0, got '" + v + "'");
  const n = U64.parseInt(v, 10);
  if (n > max) usageError('--' + name + ' must be at most ' + max.toString() + ', got ' + v);
  return n;
}

class Options {
  model: string = '';
  prompt: string = '';
  promptIds: i32[] | null = null;
  maxTokens: i32 = 64;
  temperature: f64 = 0.8;
  topK: i32 = 40;
  topP: f64 = 0.95;
  seed: u64 = 0;
  stopAtEos: bool = true;
  printIds: bool = false;
  logitsFile: string = '';
}

function parseArgs(argv: string[]): Options {
  const o = new Options();
  const pos = new Array<string>();
  let i = 1;
  while (i < argv.length) {
    const a = argv[i++];
    if (a == '--') { while (i < argv.length) pos.push(argv[i++]); break; }
    if (a == '-h' || a == '--help') { write(STDOUT, USAGE + '\n'); proc_exit(0); }
    if (a == '--no-eos') { o.stopAtEos = false; continue; }
    if (a == '--ids') { o.printIds = true; continue; }
    if (!a.startsWith('-') || a == '-') { pos.push(a); continue; }
    let name = a;
    let value: string | null = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { name = a.substring(0, eq); value = a.substring(eq + 1); }
    const known = name == '-n' || name == '--max-tokens' || name == '-t' || name == '--temperature' || name == '-k' ||
      name == '--top-k' || name == '--top-p' || name == '-s' || name == '--seed' || name == '--prompt-ids' || name == '--logits';
    if (!known) usageError("unknown option '" + a + "'");
    if (value === null) {
      if (i >= argv.length) usageError("option '" + name + "' needs a value");
      value = argv[i++];
    }
    const v: string = value;
    if (name == '-n' || name == '--max-tokens') o.maxTokens = <i32>wholeNumber('max-tokens', v, 1 << 30);
    else if (name == '-k' || name == '--top-k') o.topK = <i32>wholeNumber('top-k', v, 1 << 30);
    else if (name == '-s' || name == '--seed') o.seed = wholeNumber('seed', v, 9007199254740991);
    else if (name == '-t' || name == '--temperature') {
      const x = strictNumber(v);
      if (!(x >= 0 && x < Infinity)) usageError("--temperature must be a finite number >= 0 (0 = greedy), got '" + v + "'");
      o.temperature = x;
    } else if (name == '--top-p') {
      const x = strictNumber(v);
      if (!(x > 0 && x <= 1)) usageError("--top-p must be greater than 0 and at most 1, got '" + v + "'");
      o.topP = x;
    } else if (name == '--prompt-ids') {
      const parts = v.split(',');
      const ids = new Array<i32>();
      for (let j = 0; j < parts.length; j++) {
        const p = parts[j].trim();
        if (p.length == 0) continue;
        if (!isDigits(p) || p.length > 9) usageError("--prompt-ids: '" + p + "' is not a token id");
        ids.push(I32.parseInt(p, 10));
      }
      if (ids.length == 0) usageError('--prompt-ids needs at least one token id, like --prompt-ids 2,45,7');
      o.promptIds = ids;
    } else if (name == '--logits') o.logitsFile = v;
  }
  if (pos.length == 0) usageError('missing the model file and the prompt');
  o.model = pos[0];
  if (o.promptIds === null) {
    if (pos.length < 2) usageError('missing the prompt (after the model file)');
    if (pos.length > 2) usageError("unexpected argument '" + pos[2] + "' (quote a prompt of several words)");
    o.prompt = pos[1];
  } else if (pos.length > 1) {
    usageError("unexpected argument '" + pos[1] + "' (the prompt is given by --prompt-ids)");
  }
  return o;
}

function fmt(x: f64, digits: i32): string {
  if (!(x < Infinity)) return '-';
  let scale: f64 = 1;
  for (let i = 0; i < digits; i++) scale *= 10;
  const n = <u64>Math.round(x * scale);
  const ip = n / <u64>scale;
  let fp = (n % <u64>scale).toString();
  while (fp.length < digits) fp = '0' + fp;
  return digits > 0 ? ip.toString() + '.' + fp : ip.toString();
}

function joinIds(ids: i32[]): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += (i > 0 ? ' ' : '') + ids[i].toString();
  return s;
}

export function _start(): void {
  const o = parseArgs(args());
  const t0 = nowNs();
  const file = readFile(o.model, 'model file', MAX_FILE);
  const gguf = readGguf(file.ptr, <u64>file.len);
  const c = readConfig(gguf);
  const tok: Tokenizer = tokenizerFor(gguf, c.V);
  const desc = buildDescriptor(gguf, c);
  const m = modelNew(desc);
  if (m == 0) die('the runtime rejected the model (error ' + getError().toString() + ', descriptor word ' + getDetail().toString() + ')');
  heap.free(desc);
  const t1 = nowNs();

  let ids: i32[];
  if (o.promptIds !== null) {
    ids = o.promptIds!;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= c.V) die('token id ' + ids[i].toString() + ' at index ' + i.toString() + " is out of range: this model's ids run from 0 to " + (c.V - 1).toString());
    }
  } else {
    ids = tok.encode(o.prompt);
    if (ids.length == 0) die('empty prompt: it has no tokens; give some text (for example "Once upon a time")');
  }
  if (c.positions && ids.length > c.T) {
    die('prompt is ' + ids.length.toString() + " tokens, past this model's context of " + c.T.toString() + ' positions: shorten it');
  }

  const s = changetype<Session>(sessionNew(m));
  s.temperature = <f32>o.temperature;
  s.topk = min(o.topK, c.V);
  s.topp = <f32>o.topP;
  seedRng(s, <u32>(o.seed & 0xffffffff), <u32>(o.seed >> 32));

  const n = ids.length;
  const idp = heap.alloc(<usize>n << 2);
  for (let i = 0; i < n; i++) store<i32>(idp + (<usize>i << 2), ids[i]);
  const all = o.logitsFile.length > 0 ? heap.alloc(<usize>n * <usize>c.V << 2) : 0;
  const t2 = nowNs();
  const rc = prefill(s, idp, n, all);
  if (rc != OK) die('prefill failed (error ' + rc.toString() + ', detail ' + getDetail().toString() + ')');
  const t3 = nowNs();
  if (all != 0) writeFile(o.logitsFile, 'logits file', all, <usize>n * <usize>c.V << 2);

  const out = new Array<i32>();
  // the output is bytes: a BPE token may end inside a UTF-8 character, so pieces go out as they are
  let text = new Uint8Array(256);
  let textLen = 0;
  const eos = o.stopAtEos ? tok.eos : -1;
  for (let i = 0; i < o.maxTokens; i++) {
    const t = sampleToken(s);
    stepToken(s, t, s.logits);
    out.push(t);
    const piece = tok.pieceBytes(t, textLen == 0);
    if (textLen + piece.length > text.length) {
      const grown = new Uint8Array(max(text.length * 2, textLen + piece.length));
      grown.set(text.subarray(0, textLen));
      text = grown;
    }
    text.set(piece, textLen);
    textLen += piece.length;
    if (!o.printIds) {
      if (i == 0 && o.promptIds === null && tok.kind == 'itera-word' && piece.length > 0 && o.prompt.length > 0) write(STDOUT, ' ');
      writeBytes(STDOUT, piece.dataStart, <usize>piece.length);
    }
    if (t == eos) break;
  }
  const t4 = nowNs();
  if (o.printIds) {
    write(STDOUT, 'prompt_ids: ' + joinIds(ids) + '\ngenerated_ids: ' + joinIds(out) + '\ntext: ');
    writeBytes(STDOUT, text.dataStart, <usize>textLen);
    write(STDOUT, '\n');
  } else {
    write(STDOUT, '\n');
  }
  const loadMs = <f64>(t1 - t0) / 1e6, preMs = <f64>(t3 - t2) / 1e6, decMs = <f64>(t4 - t3) / 1e6;
  const tps = out.length > 0 && decMs > 0 ? <f64>out.length / (decMs / 1000) : Infinity;
  write(STDERR, '[' + out.length.toString() + ' tokens, ' + fmt(tps, 0) + ' tokens/s, prompt ' + n.toString() + ' tokens in ' +
    fmt(preMs, 2) + ' ms, model loaded in ' + fmt(loadMs, 1) + ' ms, ' + (ASC_FEATURE_SIMD ? 'simd' : 'scalar') + ']\n');
  proc_exit(0);
}

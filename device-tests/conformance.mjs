// The device conformance suite, engine-neutral: plain JavaScript with no imports, so the same file
// runs in Node (run.mjs), a browser page driving a Web Worker (browser/conformance.html) and the
// JavaScriptCore shell (the WebKit tier). An engine is an object with
//   load(name, bytes) -> handle,  logits(handle, ids) -> Float32Array [n*V],
//   generate(handle, prompt, options) -> { ids, promptIds },  label (a string)
// (each may return a promise). Results carry token ids exactly and logits as base64 float32, so
// another engine's results (Node on x86) can be compared: ids equal, logits within 1e-5.

export const LOGIT_BOUND = 1e-5;
export const GOLDEN_BOUND = 1e-4;

/** The cases for the models at hand: the tiny synthetic model always; the micro reference
 *  model's golden cases when its golden data are given. */
export function buildCases(golden) {
  const cases = [
    { model: 'tiny', name: 'tiny: logits of 12 ids', kind: 'logits', ids: [2, 5, 9, 17, 33, 4, 40, 11, 1, 8, 49, 3] },
    {
      model: 'tiny',
      name: 'tiny: greedy',
      kind: 'generate',
      prompt: 'w5 w9 w17 nothing w33',
      options: { temperature: 0, maxTokens: 24, stopAtEos: false },
    },
    {
      model: 'tiny',
      name: 'tiny: sampled, seed 42',
      kind: 'generate',
      prompt: 'w5 w9 w17 nothing w33',
      options: { temperature: 0.9, topK: 10, topP: 0.9, seed: 42, maxTokens: 24, stopAtEos: false },
    },
  ];
  if (golden) {
    for (const c of golden.logits_cases) {
      cases.push({
        model: 'micro',
        name: `micro: logits ${c.name} (${c.input_ids.length} ids)`,
        kind: 'logits',
        ids: c.input_ids,
        golden: c.logits_file,
      });
    }
    for (const g of golden.greedy_generation.cases) {
      cases.push({
        model: 'micro',
        name: `micro: greedy "${g.prompt}"`,
        kind: 'generate',
        prompt: g.prompt,
        options: { temperature: 0, maxTokens: g.greedy_ids.length, stopAtEos: false },
        expect: { promptIds: g.prompt_ids, ids: g.greedy_ids },
      });
    }
    cases.push({
      model: 'micro',
      name: 'micro: sampled "Once upon a time," seed 1234',
      kind: 'generate',
      prompt: 'Once upon a time,',
      options: { temperature: 0.8, topK: 40, topP: 0.95, seed: 1234, maxTokens: 48, stopAtEos: false },
    });
  }
  return cases;
}

// ---- base64 of float32 (no btoa/Buffer: the jsc shell has neither)

const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function f32ToBase64(f) {
  const b = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  let s = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += ALPHA[n >> 18] + ALPHA[(n >> 12) & 63] + ALPHA[(n >> 6) & 63] + ALPHA[n & 63];
  }
  if (i < b.length) {
    const n = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8);
    s += ALPHA[n >> 18] + ALPHA[(n >> 12) & 63] + (i + 1 < b.length ? ALPHA[(n >> 6) & 63] : '=') + '=';
  }
  return s;
}

export function base64ToF32(s) {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < clean.length; i += 4) {
    const n =
      (ALPHA.indexOf(clean[i]) << 18) |
      (ALPHA.indexOf(clean[i + 1]) << 12) |
      ((i + 2 < clean.length ? ALPHA.indexOf(clean[i + 2]) : 0) << 6) |
      (i + 3 < clean.length ? ALPHA.indexOf(clean[i + 3]) : 0);
    if (o < out.length) out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return new Float32Array(out.buffer, 0, out.length >> 2);
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d !== d) return Infinity;
    if (d > m) m = d;
  }
  return m;
}

/** Runs every case whose model is in `models` ({name: bytes}); returns serialisable results. */
export async function runCases(engine, cases, models, now = () => Date.now()) {
  const handles = {};
  const results = {};
  const ms = {};
  for (const c of cases) {
    if (!(c.model in models)) continue;
    const t0 = now();
    try {
      if (!handles[c.model]) handles[c.model] = await engine.load(c.model, models[c.model]);
      const h = handles[c.model];
      if (c.kind === 'logits') {
        results[c.name] = { logits: f32ToBase64(await engine.logits(h, c.ids)) };
      } else {
        const r = await engine.generate(h, c.prompt, c.options);
        results[c.name] = { ids: Array.from(r.ids), promptIds: Array.from(r.promptIds) };
      }
    } catch (e) {
      results[c.name] = { error: String((e && e.message) || e) };
    }
    ms[c.name] = now() - t0;
  }
  return { engine: engine.label, results, ms };
}

function sameIds(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Checks: each case ran; the golden expectation (ids) where there is one; and, given another
 *  engine's results, the same ids and logits within LOGIT_BOUND. Returns [{ok, name}]. */
export function checkResults(cases, got, reference) {
  const out = [];
  for (const c of cases) {
    const r = got.results[c.name];
    if (!r) continue;
    if (r.error) {
      out.push({ ok: false, name: `${c.name}: ran (${r.error})` });
      continue;
    }
    if (c.expect) {
      out.push({ ok: sameIds(r.promptIds, c.expect.promptIds), name: `${c.name}: the golden prompt ids` });
      out.push({ ok: sameIds(r.ids, c.expect.ids), name: `${c.name}: the golden ids (PyTorch)` });
    }
    const ref = reference && reference.results[c.name];
    if (!reference) continue;
    if (!ref || ref.error) {
      out.push({ ok: false, name: `${c.name}: ${reference.engine} has no result to compare` });
      continue;
    }
    if (c.kind === 'logits') {
      const d = maxAbsDiff(base64ToF32(r.logits), base64ToF32(ref.logits));
      out.push({
        ok: d <= LOGIT_BOUND,
        name: `${c.name}: logits within ${LOGIT_BOUND} of ${reference.engine} (max ${d.toExponential(2)})`,
      });
    } else {
      out.push({
        ok: sameIds(r.ids, ref.ids) && sameIds(r.promptIds, ref.promptIds),
        name: `${c.name}: the same ${r.ids.length} ids as ${reference.engine}`,
      });
    }
  }
  return out;
}

/** TAP version 13 text of checks (and comment lines). */
export function toTap(checks, comments = []) {
  const lines = ['TAP version 13'];
  for (const c of comments) lines.push('# ' + c);
  checks.forEach((c, i) =>
    lines.push(
      `${c.ok ? 'ok' : 'not ok'} ${i + 1} - ${c.name.replace(/#/g, '\\#')}${c.skip ? ' # SKIP ' + c.skip : ''}`,
    ),
  );
  lines.push(`1..${checks.length}`);
  const failed = checks.filter((c) => !c.ok).length;
  lines.push(`# ${checks.length - failed} passed, ${failed} failed`);
  return lines.join('\n') + '\n';
}

// The demo page: load a model (URL, file), type a prompt, watch the tokens stream from the worker,
// with tokens/s, per-token latency, memory and the device's diagnostics. Query parameters:
// ?model=URL  ?prompt=TEXT  ?max=N  ?temperature=T  ?seed=S  ?build=simd|scalar  ?autorun=1
import { IteraWeb } from '../../dist/web/itera.js';

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
const itera = IteraWeb.start({ build: q.get('build') ?? 'auto' });
window.itera = itera;
$('model-url').value = q.get('model') ?? '../../models/default.gguf';
if (q.get('prompt') !== null) $('prompt').value = q.get('prompt');
if (q.get('max')) $('max-tokens').value = q.get('max');
if (q.get('temperature')) $('temperature').value = q.get('temperature');
if (q.get('seed')) $('seed').value = q.get('seed');

const kib = (n) => (n >= 1048576 ? (n / 1048576).toFixed(2) + ' MiB' : (n / 1024).toFixed(1) + ' KiB');
const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(1)) + ' ms';

function table(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const a = document.createElement('td');
      a.textContent = k;
      const b = document.createElement('td');
      b.textContent = v;
      tr.append(a, b);
      return tr;
    }),
  );
}

function showError(e) {
  const box = $('error');
  box.hidden = false;
  box.textContent = 'Error: ' + (e?.message ?? String(e));
  $('status').textContent = 'Failed.';
  document.body.dataset.state = 'error';
}

/** "f32 27.8, int16 48.6 G multiply-adds/s", or why not measured. */
function peakText(p) {
  if (!p) return 'not measured';
  const one = (r) => (r.value === null ? `unknown (${r.reason})` : r.value.toFixed(1));
  return `f32 ${one(p.f32MulAdd)}, int16 ${one(p.i16DotAdd)} G multiply-adds/s`;
}

async function refreshDiagnostics() {
  const d = await itera.diagnostics();
  const rows = [
    ['WebAssembly SIMD', d.simd ? 'yes' : 'no (scalar fallback)'],
    ['module build', d.build],
    ['runs in', d.worker ? 'a Web Worker' : 'the page'],
    ['CPU threads', String(d.hardwareConcurrency ?? 'unknown')],
    ['device memory', d.deviceMemoryGiB ? d.deviceMemoryGiB + ' GiB' : 'not reported'],
    ['timer resolution', d.timerResolutionMs === null ? 'unknown' : d.timerResolutionMs + ' ms'],
    ['module memory', kib(d.memoryBytes)],
    ['SIMD peak, 1 thread', peakText(d.simdPeak)],
    ['user agent', d.userAgent ?? ''],
  ];
  table('diag', rows);
  return d;
}

async function load(source, label) {
  $('error').hidden = true;
  $('generate').disabled = true;
  document.body.dataset.state = 'loading';
  $('status').textContent = `Loading ${label}…`;
  $('progress-bar').style.width = '0';
  try {
    const info = await itera.load(source, {
      onProgress: (loaded, total, source) => {
        $('progress-bar').style.width = total ? `${Math.round((100 * loaded) / total)}%` : '50%';
        $('status').textContent = `Loading ${label} (${source}): ${kib(loaded)}${total ? ' of ' + kib(total) : ''}`;
      },
    });
    $('progress-bar').style.width = '100%';
    $('status').textContent =
      `Loaded ${info.name || label}: ${info.parameters.toLocaleString('en-US')} parameters, ${kib(info.fileBytes)}, ` +
      `${info.tokenizer} tokenizer, context ${info.contextLength}, ${info.build} build, in ${ms(info.loadMs)}.`;
    $('generate').disabled = false;
    document.body.dataset.state = 'loaded';
    await refreshDiagnostics();
    return info;
  } catch (e) {
    showError(e);
    throw e;
  }
}

let frames = 0;
function countFrames(running) {
  if (!running()) return;
  frames++;
  $('frames').textContent =
    `UI frames while generating: ${frames} (the page stays responsive: inference runs in the worker)`;
  requestAnimationFrame(() => countFrames(running));
}

async function generate() {
  $('error').hidden = true;
  $('generate').disabled = true;
  document.body.dataset.state = 'generating';
  const out = $('output');
  const prompt = $('prompt').value;
  const p = document.createElement('span');
  p.className = 'prompt';
  p.textContent = prompt;
  const gen = document.createElement('span');
  gen.className = 'generated';
  out.replaceChildren(p, gen);
  const opts = {
    maxTokens: Number($('max-tokens').value),
    temperature: Number($('temperature').value),
    topK: Number($('top-k').value),
    topP: 0.95,
    seed: Number($('seed').value),
  };
  let running = true;
  frames = 0;
  requestAnimationFrame(() => countFrames(() => running));
  let n = 0;
  const t0 = performance.now();
  try {
    const it = itera.stream(prompt, opts);
    for (;;) {
      const step = await it.next();
      if (step.done) break;
      const piece = step.value.text;
      gen.textContent +=
        n === 0 && piece && !/^\s/.test(piece) && itera.info?.tokenizer === 'itera-word' ? ' ' + piece : piece;
      n++;
      $('status').textContent = `Generating… ${n} tokens`;
    }
    const s = itera.lastStats;
    const sorted = [...s.tokenMs].sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
    const heap = performance.memory?.usedJSHeapSize;
    table('stats', [
      ['tokens', `${s.ids.length} generated, prompt ${s.promptIds.length}`],
      ['tokens/s', s.tokensPerSecond === null ? '-' : s.tokensPerSecond.toFixed(0)],
      [
        'per token',
        `median ${ms(median)}, last ${ms(s.tokenMs[s.tokenMs.length - 1] ?? 0)}, max ${ms(sorted[sorted.length - 1] ?? 0)}`,
      ],
      ['prompt prefill', ms(s.prefillMs)],
      ['wall time (page)', ms(performance.now() - t0)],
      ['module memory', kib(s.memoryBytes)],
      ['page JS heap', heap ? kib(heap) : 'not reported by this engine'],
    ]);
    $('status').textContent = `Done: ${s.ids.length} tokens at ${s.tokensPerSecond?.toFixed(0) ?? '-'} tokens/s.`;
    document.body.dataset.state = 'done';
  } catch (e) {
    showError(e);
  } finally {
    running = false;
    $('generate').disabled = false;
  }
}

$('load-url').addEventListener('click', () => load($('model-url').value, $('model-url').value).catch(() => {}));
$('model-file').addEventListener('change', (ev) => {
  const f = ev.target.files?.[0];
  if (f) load(f, f.name).catch(() => {});
});
$('generate').addEventListener('click', () => generate());
refreshDiagnostics().catch(showError);
if (q.get('autorun')) {
  load($('model-url').value, $('model-url').value)
    .then(() => generate())
    .catch(() => {});
}

// Elementwise functions and LayerNorm, as ../shared/spec/architecture.md defines them.
// All of them are computed by the module's own code (AssemblyScript's Math is compiled into
// the module, not imported), so every engine gives the same bits.

/** erf(x), Abramowitz & Stegun 7.1.26 evaluated in f64: |error| < 1.5e-7 over the real line. */
export function erf(x: f64): f64 {
  const ax = Math.abs(x);
  const t = 1.0 / (1.0 + 0.3275911 * ax);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const r = 1.0 - poly * Math.exp(-ax * ax);
  return x < 0 ? -r : r;
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
// @ts-ignore: decorator
@inline export function gelu(x: f32): f32 {
  const xd = <f64>x;
  return <f32>(0.5 * xd * (1.0 + erf(xd * 0.7071067811865476)));
}

/** SiLU(x) = x * sigmoid(x). */
// @ts-ignore: decorator
@inline export function silu(x: f32): f32 {
  return x / (<f32>1.0 + Mathf.exp(-x));
}

/** softplus(x) = log(1 + exp(x)); x itself where x > 20, as PyTorch does. */
// @ts-ignore: decorator
@inline export function softplus(x: f32): f32 {
  return x > <f32>20.0 ? x : Mathf.log1p(Mathf.exp(x));
}

/** out = (x - mean) / sqrt(var + eps) * w + b over n values, population variance. out may equal x. */
export function layernorm(x: usize, w: usize, b: usize, out: usize, n: i32, eps: f32): void {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) sum += <f64>load<f32>(x + (<usize>i << 2));
  const mean = sum / <f64>n;
  let sq: f64 = 0;
  for (let i = 0; i < n; i++) {
    const dv = <f64>load<f32>(x + (<usize>i << 2)) - mean;
    sq += dv * dv;
  }
  const inv = 1.0 / Math.sqrt(sq / <f64>n + <f64>eps);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = <f32>((<f64>load<f32>(x + o) - mean) * inv);
    store<f32>(out + o, v * load<f32>(w + o) + load<f32>(b + o));
  }
}

// The module's interface with its hosts, written once: the ABI version, the model descriptor's
// layout, its tensor slots with their model-file names, the error codes and the window modes.
// assembly/model.ts and the WASI module (assembly/wasi/) use it; the hosts' copy,
// host/runtime/abi.ts, is generated from this file by `npm run gen:abi` (scripts/gen-abi.mjs),
// and host/test/abi.test.ts fails when that copy is out of date.
//
// The generator reads this file as text: each `export const NAME: i32 = EXPR;` (EXPR an integer
// or an arithmetic of earlier names), each `export const NAME: StaticArray<string> = [...]`, and
// for the error codes the comment after the semicolon, up to its first ';', as the hosts' message.

/** Bumped whenever anything below changes meaning. */
export const ABI_VERSION: i32 = 1;

// ---- The model descriptor: u32 words the host writes and model_new reads -------------------
export const D_ABI: i32 = 0;
export const D_V: i32 = 1;
export const D_D: i32 = 2;
export const D_L: i32 = 3;
export const D_N: i32 = 4;
export const D_K: i32 = 5;
export const D_DI: i32 = 6;
export const D_E: i32 = 7;
export const D_F: i32 = 8;
export const D_TOPK: i32 = 9;
export const D_T: i32 = 10;
export const D_EPS: i32 = 11; // f32 bits
export const D_BLOCK: i32 = 12; // the weights block the model owns (freed with it), or 0
export const D_GLOBALS: i32 = 13; // G_COUNT slots follow

// A slot is SLOT_WORDS words: the tensor's address, its GGUF type (F32 0, F16 1, Q4_0 2, Q8_0 8,
// I8 24), and for I8 the address of its scales (f32, one per row group: 1, or E for stacked
// experts) and its zero point (i32). For S_SSM_C the fourth word is 1 when the file stores C
// transposed ([N, di], `ssm_c_t`, whose rows are whole blocks and may be quantized), else 0.
// The tensor's bytes are exactly as in the model file; quantized ones are repacked in place by
// modelNew. An absent tensor (a tied output head, a dense layer's router) has address 0.
export const SLOT_WORDS: i32 = 4;
export const SLOT_ADDRESS: i32 = 0;
export const SLOT_TYPE: i32 = 1;
export const SLOT_SCALES: i32 = 2;
export const SLOT_EXTRA: i32 = 3; // I8: zero point; S_SSM_C: 1 when stored transposed

// The global tensor slots, in order.
export const G_TOK_EMBD: i32 = 0; // [V, d]
export const G_POS_EMBD: i32 = 1; // [T, d]
export const G_OUT_NORM_W: i32 = 2; // [d]
export const G_OUT_NORM_B: i32 = 3; // [d]
export const G_OUTPUT: i32 = 4; // [V, d]; address 0 when tied to G_TOK_EMBD
export const G_COUNT: i32 = 5;
/** Model-file names of the global slots. */
@lazy export const GLOBAL_TENSORS: StaticArray<string> = [
  'token_embd.weight', 'position_embd.weight', 'output_norm.weight', 'output_norm.bias', 'output.weight',
];

export const D_LAYERS: i32 = D_GLOBALS + SLOT_WORDS * G_COUNT; // then L layers of S_COUNT slots

// Each layer's tensor slots, in order.
export const S_SSM_NORM_W: i32 = 0; // [d]
export const S_SSM_NORM_B: i32 = 1; // [d]
export const S_SSM_IN: i32 = 2; // [2*di, d]
export const S_CONV_W: i32 = 3; // [di, K]
export const S_CONV_B: i32 = 4; // [di]
export const S_A_LOG: i32 = 5; // [N]
export const S_SSM_B: i32 = 6; // [N, di]
export const S_SSM_C: i32 = 7; // [di, N], or [N, di] when transposed (SLOT_EXTRA)
export const S_SSM_D: i32 = 8; // [di]
export const S_DT_W: i32 = 9; // [di, di]
export const S_DT_B: i32 = 10; // [di]
export const S_SSM_OUT: i32 = 11; // [d, di]
export const S_FFN_NORM_W: i32 = 12; // [d]
export const S_FFN_NORM_B: i32 = 13; // [d]
export const S_ROUTER: i32 = 14; // [E, d]; address 0 for a dense layer
export const S_UP: i32 = 15; // MoE [E, f, d]; dense [f, d]
export const S_DOWN: i32 = 16; // MoE [E, d, f]; dense [d, f]
export const S_COUNT: i32 = 17;
/** Model-file names of a layer's slots after 'blk.<l>.'; ffn_up and ffn_down take '_exps.weight'
 *  in a MoE layer and '.weight' in a dense one. */
@lazy export const LAYER_TENSORS: StaticArray<string> = [
  'ssm_norm.weight', 'ssm_norm.bias', 'ssm_in.weight', 'ssm_conv1d.weight', 'ssm_conv1d.bias', 'ssm_a_log',
  'ssm_b', 'ssm_c', 'ssm_d', 'ssm_dt.weight', 'ssm_dt.bias', 'ssm_out.weight',
  'ffn_norm.weight', 'ffn_norm.bias', 'ffn_gate_inp.weight', 'ffn_up', 'ffn_down',
];

// ---- Return codes: 0, or one of these; error_detail() says more -----------------------------
export const OK: i32 = 0;
export const ERR_BAD_TOKEN: i32 = -1; // token id out of range; detail = its index
export const ERR_EMPTY: i32 = -2; // no tokens given where at least one is needed
export const ERR_BAD_PARAM: i32 = -3; // parameter out of range; detail = which
export const ERR_BAD_MODEL: i32 = -4; // inconsistent model descriptor; detail = the word index
export const ERR_BAD_TYPE: i32 = -5; // tensor type not supported by this build; detail = the word index
export const ERR_BAD_STATE: i32 = -6; // saved state does not fit this session; detail = the offending byte offset, or -1 for its length

// ---- Window behaviour past T positions (session_set_window) -----------------------------------
export const WINDOW_EXACT: i32 = 0; // the original's: recompute the last T tokens for each new token
export const WINDOW_SLIDE: i32 = 1; // approximation: keep the recurrent state, position clamped to T-1

// ---- Token samplers (sampler_set_version; docs/runtime.md "Sampling") -------------------------
// Version 1: the first sampler (f32 probabilities, heap-sorted candidates); kept so that a seed
// recorded with it still gives its tokens. Version 2: integer weights (SIMD exp, no sorting).
// Greedy (temperature 0) is the same argmax in every version. SAMPLER_VERSION is bumped whenever
// the same settings and state may draw differently (saved states record it).
export const SAMPLER_V1: i32 = 1;
export const SAMPLER_V2: i32 = 2;
export const SAMPLER_V3: i32 = 3;
export const SAMPLER_VERSION: i32 = SAMPLER_V3; // the newest: every session starts with it

// ---- A session's saved state (session_state_save / session_state_load) ----------------------
// Bytes, little-endian: the fields below at these offsets, then the conv windows [L, K-1, di] f32
// (a ring whose oldest slot is ST_RING), the scan states [L, N] f32, the window's tokens [T] i32
// (the first ST_POS of them; the rest 0) and the last logits [V] f32. session_state_load checks
// every field that could break the module (ERR_BAD_STATE, detail the offending field's byte offset)
// before it writes anything. The hosts wrap these bytes in a header and a checksum.
export const STATE_VERSION: i32 = 1; // bumped whenever this layout changes
export const ST_POS: i32 = 0; // u32 the position (0 .. T; past T for a position-free model)
export const ST_MODE: i32 = 4; // u32 WINDOW_EXACT or WINDOW_SLIDE
export const ST_RING: i32 = 8; // u32 the conv windows' oldest slot (0 .. K-2)
export const ST_TEMPERATURE: i32 = 12; // f32
export const ST_TOPK: i32 = 16; // i32
export const ST_TOPP: i32 = 20; // f32
export const ST_RNG: i32 = 24; // u64 the PRNG's state (never 0)
export const ST_SAMPLER: i32 = 32; // i32 the session's sampler version (SAMPLER_V1 .. SAMPLER_VERSION)
export const ST_ARRAYS: i32 = 36; // the arrays start here

// The layers of host/ (docs/architecture.md), enforced by `npm run check:layers` (in npm test):
//   assembly <- runtime <- {node, web} <- cli; convert and the tools sit beside the CLI.
// host/test/layers.test.ts runs this configuration on a deliberately wrong tree, which it must reject.
/** @type {import('dependency-cruiser').IConfiguration} */
const TOOLS = '^host/(cli|bench|diag|report|export|data|tokenize|quant|server|train)/';
module.exports = {
  forbidden: [
    {
      name: 'runtime-is-the-bottom',
      comment: 'host/runtime ships on every device: it may import only itself (no converters, shims, tools or tests).',
      severity: 'error',
      from: { path: '^host/runtime/' },
      to: { path: '^host/', pathNot: '^host/runtime/' },
    },
    {
      name: 'runtime-and-web-know-no-node',
      comment: 'host/runtime and host/web run in browsers and WebViews: no Node modules (node:*, fs, path, ...).',
      severity: 'error',
      from: { path: '^host/(runtime|web)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'shims-are-thin',
      comment:
        'a platform shim (host/node, host/web) builds on the runtime only, not on another shim, the converters or the tools.',
      severity: 'error',
      from: { path: '^host/(node|web)/' },
      to: { path: ['^host/convert/', TOOLS, '^host/test/'], pathNot: '^host/(node|web)/' },
    },
    {
      name: 'no-shim-crosses-to-another',
      severity: 'error',
      from: { path: '^host/node/' },
      to: { path: '^host/web/' },
    },
    {
      name: 'no-shim-crosses-to-another-web',
      severity: 'error',
      from: { path: '^host/web/' },
      to: { path: '^host/node/' },
    },
    {
      name: 'convert-knows-no-tools',
      comment: 'the converters build on the runtime (its readers and types), never on the CLI or the tools.',
      severity: 'error',
      from: { path: '^host/convert/' },
      to: { path: [TOOLS, '^host/(node|web|test)/'] },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      from: { path: '^host/', pathNot: '^host/(cli|test)/' },
      to: { path: '^host/cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|build|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};

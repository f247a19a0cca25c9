// Placeholder: the exports of the runtime module land here.
export function abi_version(): i32 { return 1; }

// Runs the graphql-http server audit (GraphQL-over-HTTP conformance) against a live server.
// Usage: node tests/audit/audit.mjs http://127.0.0.1:8080/graphql
// Exits 1 when any MUST or SHOULD audit fails; MAY audits are reported but never fail the run.
import { auditServer } from 'graphql-http';

/** A hung server must fail the run, not stall CI. */
const REQUEST_TIMEOUT_MS = 10_000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}

const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });

const results = await auditServer({ url, fetchFn });

let passed = 0;
let failed = 0;
let optional = 0;
for (const result of results) {
  // The requirement level is the name's first word: MUST, SHOULD or MAY.
  const required = result.name.startsWith('MUST') || result.name.startsWith('SHOULD');
  const ok = result.status === 'ok';
  if (ok) passed += 1;
  else if (required) failed += 1;
  else optional += 1;
  const reason = ok ? '' : ` -- ${result.reason}`;
  console.log(`${result.id} ${result.status.padEnd(6)} ${result.name}${reason}`);
}

console.log(
  `audit: ${passed} passed, ${failed} failed (MUST/SHOULD), ${optional} optional (MAY) not met, ${results.length} in all`,
);
process.exit(failed === 0 ? 0 : 1);

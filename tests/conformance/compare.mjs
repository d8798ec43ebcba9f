// Compares two conformance runs check by check, from the checks.json files the suite writes with
// `-o DIR`: prints every check whose status differs (or that only one run has) and exits 1 if any
// does. Used to show that a proxy (mcp-gateway) passes and fails exactly what the server behind it
// passes and fails when reached directly.
//
//   node compare.mjs DIRECT_DIR THROUGH_DIR
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [direct, through] = process.argv.slice(2);
if (!direct || !through) {
  console.error('usage: node compare.mjs DIRECT_DIR THROUGH_DIR');
  process.exit(2);
}

const scenarioOf = (name) => name.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');

/** scenario/check id -> status, for one run. */
function statuses(dir) {
  const out = new Map();
  for (const entry of readdirSync(dir).sort()) {
    const file = join(dir, entry, 'checks.json');
    try {
      statSync(file);
    } catch {
      continue;
    }
    for (const check of JSON.parse(readFileSync(file, 'utf8'))) {
      out.set(`${scenarioOf(entry)} ${check.id}`, check.status);
    }
  }
  return out;
}

const a = statuses(direct);
const b = statuses(through);
const differences = [];
for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
  if (a.get(key) !== b.get(key)) differences.push(`${key}: direct ${a.get(key) ?? 'absent'}, through ${b.get(key) ?? 'absent'}`);
}
console.log(`${a.size} checks directly, ${b.size} through; ${differences.length} differ`);
for (const line of differences) console.log(`  ${line}`);
process.exit(differences.length === 0 ? 0 : 1);

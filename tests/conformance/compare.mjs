// Compares two conformance runs check by check, from the checks.json files the suite writes with
// `-o DIR`: prints every check whose status differs (or that only one run has), and exits 1 if a
// check that passed directly does not pass through. Used to show that a proxy (mcp-gateway) loses
// nothing the server behind it passes when reached directly; where the proxy does better (it
// answers as a server of this framework: DNS-rebinding protection, completion), that is listed too.
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
const lost = [];
const other = [];
for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
  if (a.get(key) === b.get(key)) continue;
  const line = `${key}: direct ${a.get(key) ?? 'absent'}, through ${b.get(key) ?? 'absent'}`;
  (a.get(key) === 'SUCCESS' ? lost : other).push(line);
}
console.log(`${a.size} checks directly, ${b.size} through; ${lost.length} passes lost, ${other.length} other differences`);
for (const line of lost) console.log(`  LOST   ${line}`);
for (const line of other) console.log(`  differ ${line}`);
process.exit(lost.length === 0 ? 0 : 1);

// Lists the checks of one conformance run that did not pass, from the checks.json files the
// suite writes with `-o DIR` (one `server-<scenario>-<timestamp>/checks.json` per scenario).
//
//   node summarize.mjs DIR [--requirements REVISION]
//
// Prints one line per FAILURE and WARNING: `<STATUS> <scenario> <check id>: <message>`.
// With `--requirements REVISION`, scenarios that the alpha suite's requirements/REVISION.yaml
// does not score are listed apart, one line each. Informational only:
// the exit code is 0 whenever the results could be read; whether the run passed is the
// conformance CLI's own exit code.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const [dir, flag, revision] = process.argv.slice(2);
if (!dir || (flag !== undefined && (flag !== '--requirements' || !revision))) {
  console.error('usage: node summarize.mjs RESULTS_DIR [--requirements REVISION]');
  process.exit(2);
}
const scored =
  flag === '--requirements'
    ? new Set(
        parse(
          readFileSync(new URL(`node_modules/conformance-alpha/requirements/${revision}.yaml`, import.meta.url), 'utf8'),
        ).server,
      )
    : undefined;

const scenarioOf = (name) => name.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
const oneLine = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();

const rows = [];
for (const entry of readdirSync(dir).sort()) {
  const file = join(dir, entry, 'checks.json');
  try {
    statSync(file);
  } catch {
    continue;
  }
  const scenario = scenarioOf(entry);
  let checks;
  try {
    checks = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    rows.push({ status: 'FAILURE', scenario, id: '(checks.json unreadable)', message: err.message });
    continue;
  }
  for (const check of checks) {
    if (check.status !== 'FAILURE' && check.status !== 'WARNING') continue;
    const details = check.details === undefined ? '' : ` [details: ${oneLine(JSON.stringify(check.details)).slice(0, 600)}]`;
    rows.push({
      status: check.status,
      scenario,
      id: check.id,
      message: oneLine(check.errorMessage ?? check.description) + details,
    });
  }
}

const order = { FAILURE: 0, WARNING: 1 };
const isScored = (r) => !scored || scored.has(r.scenario);
const main = rows.filter(isScored).sort((a, b) => order[a.status] - order[b.status]);
const count = (list, status) => list.filter((r) => r.status === status).length;
console.log(
  `Checks not passed: ${count(main, 'FAILURE')} failure(s), ${count(main, 'WARNING')} warning(s)` +
    (scored ? ' in scored scenarios' : ''),
);
for (const r of main) console.log(`  ${r.status} ${r.scenario} ${r.id}: ${r.message}`);

// Unscored scenarios (extensions, pending): one line each, with the first failing check.
const unscored = new Map();
for (const r of rows.filter((r) => !isScored(r))) {
  if (!unscored.has(r.scenario)) unscored.set(r.scenario, []);
  unscored.get(r.scenario).push(r);
}
if (unscored.size > 0) {
  console.log(`Not scored, not passed: ${unscored.size} scenario(s)`);
  for (const [scenario, list] of unscored) {
    const first = list.find((r) => r.status === 'FAILURE') ?? list[0];
    console.log(
      `  ${scenario}: ${count(list, 'FAILURE')} failure(s), ${count(list, 'WARNING')} warning(s); ` +
        `first: ${first.id}: ${first.message.slice(0, 200)}`,
    );
  }
}

// Runs the MDN HTTP Observatory's own scanner and grader (the npm package
// @mdn/mdn-http-observatory, pinned in package.json and package-lock.json)
// against a live Rampart server, prints the result of every test, and exits
// non-zero when the grade or any test's score is below the best a JSON API
// can get (or when the scan cannot run). scripts/observatory.sh starts the
// server and calls this; by hand:
//
//   NODE_EXTRA_CA_CERTS=data/tls/dev-ca.pem node scripts/observatory/scan.js 127.0.0.1:8443
//
// How the scan reaches the server. The package's scan(hostname) builds its
// URLs as `https://${hostname}/` and `http://${hostname}/`, so "host:port"
// is scanned exactly as the public Observatory scans a host on 443 and 80,
// except that the plain-HTTP probe goes to the same port as HTTPS. Rampart
// opens no plain-HTTP port at all, so that port is the only place a
// plain-HTTP request can reach it: it must stay silent there (no answer, not
// even Go's "400 client sent an HTTP request to an HTTPS server"), which is
// the "no HTTP, no redirect needed" verdict the Observatory gives a host
// whose port 80 is closed. The certificate is verified against the CA in
// NODE_EXTRA_CA_CERTS; verification is never turned off (the scanner would
// fall back to an unverified retry and take 20 points off HSTS).

import { readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = "@mdn/mdn-http-observatory";

// What this runner expects of the pinned package (1.4.8): its scoring is
// ALGORITHM_VERSION 4 with 10 tests. It has no cross-origin-opener-policy
// or cross-origin-embedder-policy test: those came with the v6 scoring on
// the project's main branch (12 tests, best 150), not yet on npm. A package
// bump must update EXPECTED below, or the run fails here.
const ALGORITHM_VERSION = 4;
const TESTS_QUANTITY = 10;

// The best result of each test for a JSON API over HTTPS that sets no
// cookies and is not on the HSTS preload list, with its score modifier
// (src/grader/charts.js, SCORE_TABLE). Score: 100 + 10 + 5 + 5 + 10 = 130,
// graded A+ (every score of 100 and more is A+). The only higher results
// need a cookie (cookies-secure-with-httponly-sessions-and-samesite, +5) or
// a preloaded host name (hsts-preloaded, +5): 140 at most.
const EXPECTED = {
  "content-security-policy": ["csp-implemented-with-no-unsafe-default-src-none", 10],
  cookies: ["cookies-not-found", 0],
  "cross-origin-resource-sharing": ["cross-origin-resource-sharing-not-implemented", 0],
  redirection: ["redirection-not-needed-no-http", 0],
  "referrer-policy": ["referrer-policy-private", 5],
  "strict-transport-security": ["hsts-implemented-max-age-at-least-six-months", 0],
  "subresource-integrity": ["sri-not-implemented-response-not-html", 0],
  "x-content-type-options": ["x-content-type-options-nosniff", 0],
  "x-frame-options": ["x-frame-options-implemented-via-csp", 5],
  "cross-origin-resource-policy": ["corp-implemented-with-same-origin", 10],
};
const EXPECTED_SCORE = 100 + Object.values(EXPECTED).reduce((s, [, m]) => s + m, 0);
const EXPECTED_GRADE = "A+";

function fail(msg) {
  console.error(`observatory: FAIL: ${msg}`);
  process.exit(1);
}

const target = process.argv[2];
if (!target || process.argv.length > 3 || !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(target)) {
  fail("usage: node scan.js HOST:PORT (e.g. 127.0.0.1:8443)");
}
if (!process.env.NODE_EXTRA_CA_CERTS) {
  fail("NODE_EXTRA_CA_CERTS is not set: point it at the CA that issued the server's certificate");
}

// The scanner reads these at import time; the public Observatory runs with
// their defaults (its CORS probe origin, timeouts and user agent).
for (const name of ["CONFIG_FILE", "CORS_ORIGIN", "RETRIEVER_USER_AGENT", "ABORT_TIMEOUT", "CLIENT_TIMEOUT"]) {
  delete process.env[name];
}

// The package reads the HSTS preload list from conf/hsts-preload.json, which
// its install script downloads from the Chromium source tree. That script
// does not run here (npm ci --ignore-scripts: the registry is the only
// network, and it would also try to build libpq). The list holds domain
// names only, so no entry can match "127.0.0.1:PORT" or its suffixes:
// an empty list gives the same verdict for this host. A real list, if one
// is there, is left alone.
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.resolve(PACKAGE))), "..");
const pkgJSON = JSON.parse(await readFile(path.join(pkgDir, "package.json"), "utf8"));
const preload = path.join(pkgDir, "conf", "hsts-preload.json");
if (!existsSync(preload)) {
  await writeFile(preload, "{}\n");
}

const { scan } = await import(PACKAGE);

let result;
try {
  result = await scan(target);
} catch (e) {
  fail(`the scan of https://${target}/ could not run: ${e instanceof Error ? e.message : e}`);
}
const { scan: summary, tests } = result;

console.log(`${PACKAGE} ${pkgJSON.version}, scoring algorithm ${summary.algorithmVersion}, ${summary.testsQuantity} tests`);
console.log(`scanned https://${target}/ (HTTP ${summary.statusCode}); plain HTTP probed on the same port`);
console.log("");
const rows = [["test", "result", "pass", "score", "expected"]];
const problems = [];
for (const [name, test] of Object.entries(tests)) {
  const [wantResult, wantModifier] = EXPECTED[name] ?? [undefined, undefined];
  let verdict = "ok";
  if (wantResult === undefined) {
    verdict = "UNKNOWN TEST";
    problems.push(`${name}: a test this runner has no expectation for`);
  } else if (!test.pass || test.scoreModifier < wantModifier) {
    verdict = `WORSE (want ${wantResult}, ${signed(wantModifier)})`;
    problems.push(`${name}: ${test.result} (${signed(test.scoreModifier)}), want ${wantResult} (${signed(wantModifier)})`);
  } else if (test.result !== wantResult) {
    verdict = `better than ${wantResult}`;
  }
  rows.push([name, test.result, test.pass ? "yes" : "NO", signed(test.scoreModifier), verdict]);
}
for (const name of Object.keys(EXPECTED)) {
  if (!(name in tests)) {
    problems.push(`${name}: the scan ran no such test`);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) {
  console.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  "));
}
console.log("");
console.log(
  `grade ${summary.grade}, score ${summary.score}, ${summary.testsPassed}/${summary.testsQuantity} tests passed` +
    ` (expected ${EXPECTED_GRADE}, ${EXPECTED_SCORE})`
);

// Headers this version does not score (the v6 tests), shown for the record.
const h = summary.responseHeaders ?? {};
console.log(
  `not scored by algorithm ${summary.algorithmVersion}: cross-origin-opener-policy=${h["cross-origin-opener-policy"] ?? "(none)"},` +
    ` cross-origin-embedder-policy=${h["cross-origin-embedder-policy"] ?? "(none)"}`
);

if (summary.algorithmVersion !== ALGORITHM_VERSION || summary.testsQuantity !== TESTS_QUANTITY) {
  problems.push(
    `the package scores with algorithm ${summary.algorithmVersion} and ${summary.testsQuantity} tests;` +
      ` this runner's expectations are for algorithm ${ALGORITHM_VERSION} with ${TESTS_QUANTITY}: update EXPECTED`
  );
}
if (summary.grade !== EXPECTED_GRADE) {
  problems.push(`grade ${summary.grade}, want ${EXPECTED_GRADE}`);
}
if (summary.score < EXPECTED_SCORE) {
  problems.push(`score ${summary.score}, want ${EXPECTED_SCORE}`);
}
if (summary.testsPassed !== summary.testsQuantity) {
  problems.push(`${summary.testsFailed} test(s) failed`);
}
if (problems.length > 0) {
  fail(`\n  ${problems.join("\n  ")}`);
}
console.log("observatory: ok");

function signed(n) {
  return n > 0 ? `+${n}` : `${n}`;
}

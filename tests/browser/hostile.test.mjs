/*
 * A hostile web page in a real browser (DESIGN §9): Debian's headless
 * Chromium, driven by playwright-core, against the real parleyd with no token
 * configured (the default) and the fake model server.
 *
 * - A page on another origin (a second port on 127.0.0.1, served by this
 *   test) makes the cross-site requests that need no CORS preflight: a
 *   text/plain POST of a job, a form POST. parleyd must answer 403 and store
 *   nothing.
 * - A DNS-rebinding page: once the attacker's name points at 127.0.0.1
 *   (Chromium's host resolver maps rebind.test there), a page on
 *   rebind.test:PORT is same-origin with parleyd to the browser: its requests
 *   to "its own" /v1/jobs reach parleyd with Host: rebind.test:PORT, and the
 *   browser lets it read the answers. parleyd must answer 403 to the page
 *   itself, and to reads and writes alike.
 * - parleyd's own dashboard, on its own origin, still submits a job.
 *
 * Environment: PARLEYD, FAKE_BACKEND (default build/...), CHROMIUM
 * (default /usr/bin/chromium).
 */
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, rmSync} from 'node:fs';
import http from 'node:http';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';
import {daemons} from '../lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LIMIT = {timeout: 60000};

const JOB = {
	scenario: 'response_speed_optimization',
	interviewer: {model: 'gemma3:1b'},
	candidate: {model: 'gemma3n:latest'},
	max_turns: 3,
};

const tmp = mkdtempSync(path.join(tmpdir(), 'parley-hostile-'));
const procs = daemons(tmp);

/* The attacker's site: one page, on its own origin. */
function startEvilSite(html) {
	return new Promise((resolve) => {
		const server = http.createServer((req, res) => {
			res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'});
			res.end(html);
		});
		server.listen(0, '127.0.0.1', () => resolve(server));
	});
}

async function jobCount(base) {
	const j = await (await fetch(base + '/v1/jobs?limit=500')).json();
	return j.items.length;
}

let parleyd, evil, browser;

before(async () => {
	const fake = await procs.startFake();
	parleyd = await procs.startParleyd(fake.port, 'hostile');
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run',
			/* the rebinding: the attacker's name now points at this machine */
			'--host-resolver-rules=MAP rebind.test 127.0.0.1'],
	});
}, {timeout: 60000});

after(async () => {
	if (browser) await browser.close();
	if (evil) evil.close();
	for (const c of procs.children) if (c.exitCode === null) c.kill('SIGTERM');
	rmSync(tmp, {recursive: true, force: true});
});

test('a page on another origin cannot submit jobs', LIMIT, async () => {
	const target = parleyd.base + '/v1/jobs';
	evil = await startEvilSite(`<!doctype html><title>cute cats</title>
<form id="f" method="POST" action="${target}" enctype="text/plain" target="sink">
<input name='{"x":"' value='"}'></form><iframe name="sink"></iframe>
<script>
window.results = [];
/* text/plain needs no preflight: the browser sends it whatever the answer */
fetch(${JSON.stringify(target)}, {method: 'POST', mode: 'no-cors',
	headers: {'Content-Type': 'text/plain'}, body: ${JSON.stringify(JSON.stringify(JOB))}})
	.then(() => window.results.push('sent'), (e) => window.results.push('error ' + e));
document.getElementById('f').submit();
</script>`);
	const evilOrigin = 'http://127.0.0.1:' + evil.address().port;
	const context = await browser.newContext();
	const page = await context.newPage();
	const statuses = [];
	const origins = [];
	page.on('response', async (r) => {
		if (!r.url().startsWith(target)) return;
		origins.push((await r.request().allHeaders())['origin']);
		statuses.push(r.status());
	});
	await page.goto(evilOrigin + '/');
	await page.waitForFunction(() => window.results.length === 1, null, {timeout: 15000});
	const deadline = Date.now() + 15000;
	while (statuses.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
	assert.deepEqual(statuses, [403, 403], 'parleyd answered the cross-site POSTs with ' + statuses);
	assert.ok(origins.includes(evilOrigin), 'the fetch carried Origin ' + origins);
	assert.equal(await jobCount(parleyd.base), 0, 'a cross-site POST stored a job');
	await context.close();
});

test('a DNS-rebinding page can neither read nor write', LIMIT, async () => {
	const rebound = `http://rebind.test:${parleyd.port}`;
	const context = await browser.newContext();
	const page = await context.newPage();
	/* once the name points at 127.0.0.1, the attacker's origin is parleyd's port under
	 * its own name: its document and its requests all reach parleyd with that Host */
	const nav = await page.goto(rebound + '/');
	assert.equal(nav.status(), 403, 'the dashboard was served under a rebound name');
	/* to the browser these are same-origin: it would hand the page every answer */
	const got = await page.evaluate(async (job) => {
		const read = await fetch('/v1/jobs');
		const write = await fetch('/v1/jobs', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify(job)});
		return {read: read.status, readBody: await read.text(), write: write.status};
	}, JOB);
	assert.equal(got.read, 403, 'the rebound page read /v1/jobs: ' + got.readBody);
	assert.equal(got.write, 403);
	assert.match(got.readBody, /allowed_hosts/);
	assert.equal(await jobCount(parleyd.base), 0, 'a rebound page stored a job');
	await context.close();
});

test('the dashboard on its own origin still submits', LIMIT, async () => {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(parleyd.base + '/');
	const got = await page.evaluate(async (job) => {
		const r = await fetch('/v1/jobs', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify(job)});
		return r.status;
	}, JOB);
	assert.equal(got, 202);
	assert.equal(await jobCount(parleyd.base), 1);
	await context.close();
});

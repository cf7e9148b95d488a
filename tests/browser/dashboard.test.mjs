/*
 * The dashboard in a real browser: Debian's headless Chromium, driven by
 * playwright-core, against the real parleyd and the fake model server.
 *
 * What a person sees: submitting a job from the form, its turns being written
 * token by token with the timing chart growing, the job list going from
 * running to its end state, a finished job's turns, chart and optimizations,
 * a transcript full of markup and script links shown as inert text, and the
 * sign-in when parleyd wants a token, and a batch posted to the API seen
 * running and finished in the batch list, its rankings and report on its page,
 * its jobs in the filtered job list, and a batch cancelled from its page;
 * a batch's chart of quality against turn time (with the spread over repeats),
 * the link from a job to its batch, and two batches compared.
 * Every wait is for content to appear; none is a bare sleep. Screenshots of
 * the job page, the batch page, the batch chart and the comparison are saved
 * to build/artifacts/ (job-page.png, batch-page.png, batch-chart.png,
 * batch-page-chart.png, compare-page.png).
 *
 * Environment: PARLEYD, FAKE_BACKEND (default build/...), CHROMIUM
 * (default /usr/bin/chromium), ARTIFACTS (default build/artifacts).
 */
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';
import {ROOT, PARLEYD, FAKE, daemons, stop} from '../lib/daemon.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(ROOT, process.env.ARTIFACTS || 'build/artifacts');
const TOKEN = 'browser-test-token-9f1c';
const WAIT = 30000; /* the longest any one thing may take to appear */
const LIMIT = {timeout: 120000}; /* a whole test */

/* ---------- replies the fake model server gives ---------- */

const OPENING = `Hello, I'm the interviewer for this session. We want to **cut response latency** without losing answer quality.

Before suggesting anything, I'd like to understand your setup:

1. How do you measure latency today — median, p95, or something else?
2. Which part of a request takes the longest: prompt processing or generation?
3. What have you already tried, and what happened?`;

const ANSWER = `Thanks. Here is where things stand.

- We log **p50 and p95** per request; p95 is about *2.4 s* on a 4-core box.
- Prompt processing dominates long chats: the full history is re-sent each turn.
- Generation runs at roughly 38 tokens/s with \`num_ctx = 8192\`.

What we tried:

\`\`\`sh
OLLAMA_NUM_PARALLEL=2 ollama serve   # throughput up, p95 worse
\`\`\`

We have no cache, and every request is handled on its own.`;

const ANALYSIS = `### 1. Analysis of the candidate's approach
You measure the right things (p50 and p95), but every request is computed from scratch and the prompt grows with the conversation.

### 2. Specific optimization opportunities
- Identical requests are recomputed.
- The whole history is re-sent, so prompt processing grows each turn.
- Requests are handled one at a time.

### 3. Concrete suggestions
- **Cache repeated results** #test_this: keep the last 1,000 answers in an in-memory LRU keyed by a hash of the normalized input.
  Test: replay 10,000 logged requests and compare p95 latency and the hit rate with and without the cache.
- **Reuse the prompt prefix** #test_this: keep the system prompt and earlier turns byte-identical so the server's KV cache is reused.
  Test: compare cached prompt tokens and time to first token over a 10-turn conversation.
- **Trim the context** #test_this: send only the last 4 exchanges plus a 200-word summary.
  Test: measure prompt tokens, time to first token and accuracy on 200 questions before and after.

### 4. Reasoning
Caching removes repeated work, prefix reuse cuts prompt processing, and trimming bounds it; each can be measured on its own.`;

const POOR_ANALYSIS = `### 1. Analysis of the candidate's approach
It works.

### 3. Concrete suggestions
- Try to make it faster.`;

const XSS = {
	script: '<script>window.__pwned=1</script>',
	img: '<img src=x onerror="window.__pwned=1">',
	link: '[x](javascript:window.__pwned=1)',
};

const XSS_OPENING = `Let's see how this renders.

${XSS.script}

${XSS.img}

Inline too: ${XSS.script} and ${XSS.img} and a link ${XSS.link} here.

<div onclick="window.__pwned=1"><iframe src="javascript:window.__pwned=1"></iframe></div>`;

const XSS_ANSWER = `I answer with ${XSS.link} and <a href="javascript:window.__pwned=1">a raw link</a>.

<style>body{display:none}</style>

${XSS.img}`;

const XSS_ANALYSIS = `### 1. Analysis of the candidate's approach
It writes markup: ${XSS.script}

### 2. Specific optimization opportunities
- Escape everything.

### 3. Concrete suggestions
- **Escape <img src=x onerror="window.__pwned=1"> titles** #test_this: render ${XSS.link} as text.
  Test: check that ${XSS.script} does nothing.

### 4. Reasoning
${XSS.img}`;

const SCRIPT = {
	models: {
		/* realistic names, so the screenshot looks like a real run; slow enough to watch */
		'gemma3:1b': {replies: [OPENING, ANALYSIS], token_delay_ms: 8},
		'gemma3n:latest': {replies: [ANSWER], token_delay_ms: 8},
		'xss-interviewer': {replies: [XSS_OPENING, XSS_ANALYSIS]},
		'xss-candidate': {replies: [XSS_ANSWER]},
		/* generated replies, slow: a job that stays running for a few seconds */
		'slow-interviewer': {token_delay_ms: 12},
		'slow-candidate': {token_delay_ms: 12},
		/* a batch's models: generated replies, slow enough that the batch is seen running */
		'batch-interviewer': {token_delay_ms: 6},
		'batch-cand-a': {token_delay_ms: 6},
		'batch-cand-b': {token_delay_ms: 6},
		/* the batch charts: one scenario gets a rich analysis, the other a poor one, so a
		 * candidate's quality spreads over its conversations; one candidate is slower */
		'chart-iv': {token_delay_ms: 2, replies: [OPENING, ANALYSIS],
			cases: [{contains: 'CHART-POOR', replies: [OPENING, POOR_ANALYSIS]}]},
		'chart-fast': {token_delay_ms: 2},
		'chart-slow': {token_delay_ms: 14},
		/* the closed loop: an interviewer that proposes a hostile prompt, then a good one */
		'trials-iv': {replies: [
			'First this.\n#prompt_defined\n```\n' + XSS.script + ' ' + XSS.img + ' ' + XSS.link + '\n```',
			'#prompt_defined\n```\nFORMAT-OK\n```',
			'#stop_progress: that held up',
			'### 1. Analysis\nDone.']},
		/* the task model: right only under the system prompt FORMAT-OK */
		'trials-task': {replies: ['no idea'], cases: [0, 1, 2, 3, 4, 5].map((k) =>
			({contains: ['FORMAT-OK', 'task Q' + k + '?'], replies: ['A' + k]}))},
	},
};

/* ---------- processes ---------- */

const tmp = mkdtempSync(path.join(tmpdir(), 'parley-browser-'));
const procs = daemons(tmp);

async function startFake() {
	const script = path.join(tmp, 'script.json');
	writeFileSync(script, JSON.stringify(SCRIPT));
	return procs.startFake(['--script', script]);
}

/* parleyd for these tests: two workers, two calls at a time on the fake; env adds PARLEY_* */
function startParleyd(fakePort, name, env) {
	return procs.startParleyd(fakePort, name, {args: ['--workers', '2'], env, concurrency: 2});
}

async function postJob(base, body, headers) {
	const res = await fetch(base + '/v1/jobs', {
		method: 'POST', headers: {'Content-Type': 'application/json', ...headers}, body: JSON.stringify(body),
	});
	const j = await res.json();
	assert.equal(res.status, 202, 'POST /v1/jobs: ' + JSON.stringify(j));
	return j;
}

async function postBatch(base, body) {
	const res = await fetch(base + '/v1/batches', {
		method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
	});
	const j = await res.json();
	assert.equal(res.status, 202, 'POST /v1/batches: ' + JSON.stringify(j));
	return j;
}

async function waitJob(base, id, headers) {
	const deadline = Date.now() + 60000;
	for (;;) {
		const j = await (await fetch(base + '/v1/jobs/' + id, {headers})).json();
		if (!['queued', 'running'].includes(j.status)) return j;
		if (Date.now() > deadline) throw new Error('job ' + id + ' did not end: ' + JSON.stringify(j));
		await new Promise((r) => setTimeout(r, 100));
	}
}

/* ---------- the browser ---------- */

let fake, parleyd, browser;

async function newPage() {
	const context = await browser.newContext({viewport: {width: 1440, height: 900}, colorScheme: 'light'});
	const page = await context.newPage();
	page.setDefaultTimeout(WAIT);
	page.problems = [];
	page.on('pageerror', (e) => page.problems.push('page error: ' + e.message));
	page.on('console', (m) => {
		const text = m.text();
		/* a CSP refusal means the page needs something the policy forbids */
		if (/Content Security Policy|Refused to/i.test(text)) page.problems.push('console: ' + text);
		else if (m.type() === 'error' && !/status of 401/.test(text)) page.problems.push('console: ' + text);
	});
	return page;
}

async function closePage(page) {
	const problems = page.problems;
	await page.context().close();
	assert.deepEqual(problems, [], 'the page reported problems');
}

before(async () => {
	for (const [what, p] of [['parleyd', PARLEYD], ['fake backend', FAKE], ['chromium', CHROMIUM]])
		assert.ok(existsSync(p), `${what} not found at ${p}`);
	mkdirSync(ARTIFACTS, {recursive: true});
	fake = await startFake();
	parleyd = await startParleyd(fake.port, 'parleyd');
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run'],
	});
}, {timeout: 60000});

after(async () => {
	if (browser) await browser.close();
	await stop(parleyd && parleyd.child);
	await stop(fake && fake.child);
	if (!process.env.KEEP_TMP) rmSync(tmp, {recursive: true, force: true});
});

/* ---------- the tests ---------- */

let demoJob; /* the job started from the form; later tests look at it finished */

test('every dashboard response carries the security headers', LIMIT, async () => {
	for (const p of ['/', '/assets/index.html', '/assets/app.js', '/assets/style.css']) {
		const res = await fetch(parleyd.base + p);
		assert.equal(res.status, 200, p);
		const csp = res.headers.get('content-security-policy') || '';
		assert.match(csp, /default-src 'none'/, p);
		assert.match(csp, /script-src 'self'(;|$)/, p);
		assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
		assert.equal(res.headers.get('x-content-type-options'), 'nosniff', p);
		assert.equal(res.headers.get('referrer-policy'), 'no-referrer', p);
		assert.ok(res.headers.get('etag'), p + ' has an ETag');
		const again = await fetch(parleyd.base + p, {headers: {'If-None-Match': res.headers.get('etag')}});
		assert.equal(again.status, 304, p + ' revalidates');
	}
	const html = await (await fetch(parleyd.base + '/')).text();
	assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]|\son[a-z]+=/i, 'no inline script or handler');
	assert.equal((await fetch(parleyd.base + '/assets/nope.js')).status, 404);
});

test('the form starts a job, and its page shows the turn being written', LIMIT, async () => {
	const page = await newPage();
	await page.goto(parleyd.base + '/#/submit');
	await page.waitForSelector('#f-scenario option[value="response_speed_optimization"]', {state: 'attached'});
	/* the models come from /v1/backends: what the backend actually serves */
	await page.waitForSelector('#f-interviewer-model option[value="gemma3:1b"]', {state: 'attached'});
	await page.selectOption('#f-scenario', 'response_speed_optimization');
	await page.selectOption('#f-interviewer-model', 'gemma3:1b');
	await page.selectOption('#f-candidate-model', 'gemma3n:latest');
	await page.fill('#f-max_turns', '3');
	await page.click('button[type=submit]');
	await page.waitForURL(/#\/jobs\/j[0-9a-f]+$/);
	demoJob = decodeURIComponent(page.url().split('#/jobs/')[1]);

	/* while it runs: tokens appear in a live bubble as they are written, and the chart has a live row */
	await page.waitForFunction(() => {
		const s = document.querySelector('article.turn.live .stream');
		return s && s.textContent.length > 20 && document.querySelector('.job-head .pill.s-running')
			&& document.querySelector('svg.timing g.trow.live rect.seg');
	});
	const first = await page.textContent('article.turn.live .stream');
	await page.waitForFunction((n) => {
		const s = document.querySelector('article.turn.live .stream');
		return !s || s.textContent.length > n; /* more text, or the turn finished */
	}, first.length);

	/* and it ends on its own page: three rendered turns, succeeded */
	await page.waitForSelector('.job-head .pill.s-succeeded', {timeout: 60000});
	await page.waitForFunction(() => document.querySelectorAll('article.turn:not(.live)').length === 3);
	assert.equal(await page.locator('article.turn.live').count(), 0);
	await closePage(page);
});

test('the job list shows a running job, then its end state', LIMIT, async () => {
	const page = await newPage();
	await page.goto(parleyd.base + '/#/jobs');
	await page.waitForSelector('table.jobs tbody tr, .empty:not([hidden])');
	const job = await postJob(parleyd.base, {
		scenario: 'job_extraction_improvement',
		interviewer: {model: 'slow-interviewer'}, candidate: {model: 'slow-candidate'}, max_turns: 3,
	});
	const row = `tr[data-id="${job.id}"]`;
	await page.waitForSelector(row + '[data-status="running"] .pill.s-running');
	assert.match(await page.textContent(row + ' .models'), /slow-interviewer\s*→\s*slow-candidate/);
	assert.match(await page.textContent(row + ' .scn-name'), /job extraction improvement/i);
	await page.waitForSelector(row + '[data-status="succeeded"]', {timeout: 60000});
	assert.equal((await page.textContent(row + ' .turns-text')).trim(), '3 / 3');
	assert.equal((await page.textContent(row + ' td.opt-count')).trim(), '3');
	assert.match(await page.textContent(row + ' td.scores'), /\d\.\d/);

	/* the filters narrow the list through the API */
	await page.selectOption('select[name=status]', 'failed');
	await page.waitForSelector(row, {state: 'detached'});
	await page.waitForSelector('.empty:not([hidden])');
	await page.selectOption('select[name=status]', 'succeeded');
	await page.waitForSelector(row);
	await page.fill('input[name=model]', 'gemma3n:latest');
	await page.waitForSelector(row, {state: 'detached'});
	await page.waitForSelector(`tr[data-id="${demoJob}"]`);
	assert.match(page.url(), /#\/jobs\?status=succeeded&model=gemma3n%3Alatest$/);
	await closePage(page);
});

test('a finished job shows its turns, the timing chart and the optimizations', LIMIT, async () => {
	assert.ok(demoJob, 'the form test started a job');
	await waitJob(parleyd.base, demoJob);
	const page = await newPage();
	await page.goto(parleyd.base + '/#/jobs/' + demoJob);
	await page.waitForSelector('.job-head .pill.s-succeeded');
	await page.waitForFunction(() => document.querySelectorAll('article.turn').length === 3);

	/* turns: interviewer left, candidate right, Markdown rendered by the server */
	const speakers = await page.$$eval('article.turn', (els) => els.map((e) => [e.dataset.turn, e.className]));
	assert.deepEqual(speakers.map(([t]) => t), ['1', '2', '3']);
	assert.match(speakers[0][1], /interviewer/);
	assert.match(speakers[1][1], /candidate/);
	assert.equal(await page.textContent('article.turn[data-turn="1"] .md strong'), 'cut response latency');
	assert.equal(await page.locator('article.turn[data-turn="1"] .md ol > li').count(), 3);
	assert.match(await page.textContent('article.turn[data-turn="2"] .md pre code'), /OLLAMA_NUM_PARALLEL=2/);
	assert.match(await page.textContent('article.turn[data-turn="1"] .bubble header'), /gemma3:1b/);
	assert.match(await page.textContent('article.turn[data-turn="2"] .turn-metrics'), /TTFT.*tok\/s/s);

	/* the chart: one row per turn, stacked segments, tok/s labels */
	assert.equal(await page.locator('svg.timing g.trow').count(), 3);
	assert.ok(await page.locator('svg.timing rect.seg-gen').count() >= 3, 'a generation bar per turn');
	assert.ok(await page.locator('svg.timing rect.seg').count() >= 6, 'stacked segments');
	assert.match(await page.textContent('svg.timing g.trow[data-turn="3"] text.val'), /tok\/s/);

	/* the optimizations, each with its test */
	await page.waitForFunction(() => document.querySelectorAll('.optims .opt').length === 3);
	const titles = await page.$$eval('.optims .opt h3', (els) => els.map((e) => e.textContent));
	assert.deepEqual(titles, ['Cache repeated results', 'Reuse the prompt prefix', 'Trim the context']);
	assert.match(await page.textContent('.optims .opt:first-child .test'), /^Test.*10,000 logged requests/);

	/* links to the JSON and Markdown views; no Cancel on a finished job */
	assert.equal(await page.getAttribute('a:text-is("JSON")', 'href'), `/v1/jobs/${demoJob}/transcript`);
	assert.equal(await page.getAttribute('a:text-is("Markdown")', 'href'), `/v1/jobs/${demoJob}/transcript.md`);
	assert.equal(await page.locator('button:text-is("Cancel")').count(), 0);
	await page.waitForSelector('.scores-card .score-group');

	await page.screenshot({path: path.join(ARTIFACTS, 'job-page.png'), fullPage: true});
	await closePage(page);
});

test('a transcript full of markup and script links renders as inert text', LIMIT, async () => {
	const job = await postJob(parleyd.base, {
		scenario: 'prompt_engineering_breakthrough',
		interviewer: {model: 'xss-interviewer'}, candidate: {model: 'xss-candidate'}, max_turns: 3,
	});
	const page = await newPage();
	/* watch it live too: tokens are text as they stream */
	await page.goto(parleyd.base + '/#/jobs/' + job.id);
	await page.waitForSelector('.job-head .pill.s-succeeded', {timeout: 60000});
	await page.waitForFunction(() => document.querySelectorAll('article.turn:not(.live)').length === 3);
	await page.waitForFunction(() => document.querySelectorAll('.optims .opt').length >= 1);

	const report = await page.evaluate(() => {
		const root = document.querySelector('.page.job');
		const handlers = [];
		for (const el of document.querySelectorAll('*'))
			for (const a of el.attributes)
				if (/^on/i.test(a.name)) handlers.push(el.localName + '[' + a.name + ']');
		return {
			pwned: window.__pwned,
			scripts: [...document.scripts].map((s) => s.src),
			imgs: [...root.querySelectorAll('img')].map((i) => i.outerHTML),
			iframes: root.querySelectorAll('iframe, object, embed, style, div[onclick]').length,
			jsLinks: [...document.querySelectorAll('[href],[src]')]
				.map((e) => e.getAttribute('href') || e.getAttribute('src'))
				.filter((u) => /^\s*(javascript|vbscript|data:text)/i.test(u)),
			handlers,
			text: root.innerText,
			bodyShown: getComputedStyle(document.body).display !== 'none',
		};
	});
	assert.equal(report.pwned, undefined, 'no payload ran');
	assert.deepEqual(report.scripts.map((s) => new URL(s).pathname), ['/assets/app.js']);
	assert.deepEqual(report.imgs, []);
	assert.equal(report.iframes, 0);
	assert.deepEqual(report.jsLinks, []);
	assert.deepEqual(report.handlers, []);
	assert.ok(report.bodyShown, 'an injected <style> did not apply');
	/* what the model wrote is there, as the characters it wrote */
	assert.ok(report.text.includes(XSS.script), 'the <script> shows as text');
	assert.ok(report.text.includes(XSS.img), 'the <img onerror> shows as text');
	assert.ok(report.text.includes('<img src=x onerror="window.__pwned=1"> titles'), 'the optimization title is text');
	/* and nothing runs later either (an image error fires after load) */
	await page.waitForLoadState('load');
	assert.equal(await page.evaluate(() => window.__pwned), undefined);
	await closePage(page);
});

test('a finished optimize job shows its trials, and a hostile proposal stays inert', LIMIT, async () => {
	const tasks = [0, 1, 2, 3, 4, 5].map((k) => ({id: 't' + k, input: 'task Q' + k + '?',
		checks: [{equals: 'A' + k}, {max_words: 3}]}));
	const job = await postJob(parleyd.base, {
		scenario: {name: 'trials', problem: 'P', context: 'C', goal: 'G', baseline: {system: 'plain'}, tasks},
		interviewer: {model: 'trials-iv'}, candidate: {model: 'trials-task'},
		optimize: {holdout: 0.34, repeat: 2, seed: 3},
	});
	const done = await waitJob(parleyd.base, job.id);
	assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
	assert.equal(done.best.trial, 2);
	const page = await newPage();
	await page.goto(parleyd.base + '/#/jobs/' + job.id);
	await page.waitForSelector('.trials-card details.trial');
	assert.equal(await page.locator('.trials-card details.trial').count(), 3);
	assert.equal(await page.locator('svg.trials-chart g.tcol').count(), 3);
	assert.equal(await page.locator('svg.trials-chart line.baseline').count(), 1);
	assert.equal(await page.locator('svg.trials-chart g.tcol.best[data-trial="2"]').count(), 1);
	assert.match(await page.textContent('.trials-verdict'), /Best: trial 2, verified/);
	/* the results sit between the turns, where both models saw them */
	await page.waitForFunction(() => document.querySelectorAll('article.turn.parley').length === 2);
	/* each trial's proposal and result one click away */
	await page.click('.trials-card details.trial[data-trial="1"] summary');
	const report = await page.evaluate(() => {
		const root = document.querySelector('.page.job');
		const handlers = [];
		for (const el of document.querySelectorAll('*'))
			for (const a of el.attributes)
				if (/^on/i.test(a.name)) handlers.push(el.localName + '[' + a.name + ']');
		return {
			pwned: window.__pwned,
			imgs: root.querySelectorAll('img').length,
			jsLinks: [...document.querySelectorAll('[href],[src]')]
				.map((e) => e.getAttribute('href') || e.getAttribute('src'))
				.filter((u) => /^\s*(javascript|vbscript|data:text)/i.test(u)),
			handlers,
			proposal: document.querySelector('.trials-card details.trial[data-trial="1"] pre.proposal').textContent,
		};
	});
	assert.equal(report.pwned, undefined, 'no payload ran');
	assert.equal(report.imgs, 0);
	assert.deepEqual(report.jsLinks, []);
	assert.deepEqual(report.handlers, []);
	assert.ok(report.proposal.includes(XSS.script.replace(/"/g, '\\"')) || report.proposal.includes(XSS.script),
		'the proposed <script> shows as text');
	assert.ok(report.proposal.includes('javascript:window.__pwned=1'), 'the javascript: link shows as text');
	await page.waitForLoadState('load');
	assert.equal(await page.evaluate(() => window.__pwned), undefined);
	await page.screenshot({path: path.join(ARTIFACTS, 'trials-page.png'), fullPage: true});
	await closePage(page);
});

test('a batch posted to the API is watched from the batch list and its page', LIMIT, async () => {
	const batch = await postBatch(parleyd.base, {
		interviewer: {model: 'batch-interviewer'},
		candidates: [{model: 'batch-cand-a'}, {model: 'batch-cand-b'}],
		scenarios: ['job_extraction_improvement', 'response_speed_optimization'],
	});
	assert.equal(batch.job_ids.length, 4);
	const page = await newPage();
	await page.goto(parleyd.base + '/#/batches');
	await page.waitForSelector('.mainnav a.active[data-nav="batches"]');

	/* the list: running, with its size and progress, then finished */
	const row = `table.batches tr[data-id="${batch.id}"]`;
	await page.waitForSelector(row + '[data-status="running"] .pill.s-running');
	assert.match(await page.textContent(row + ' .models'), /batch-interviewer/);
	assert.match(await page.textContent(row + ' td.size'), /2 candidates × 2 scenarios/);
	assert.match(await page.textContent(row + ' .progress-text'), /^[0-3] of 4 done$/);
	await page.waitForSelector(row + '[data-status="finished"] .pill.s-finished', {timeout: 60000});
	assert.equal(await page.textContent(row + ' .progress-text'), '4 of 4 done');

	/* its page: counts, the rankings of both candidates, the rule, the report */
	await page.click(row + ' a.job-link');
	await page.waitForURL(new RegExp('#/batches/' + batch.id + '$'));
	await page.waitForSelector('.batch-head .pill.s-finished');
	await page.waitForFunction(() => document.querySelectorAll('table.rankings tbody tr').length === 2);
	const ranked = await page.$$eval('table.rankings tbody tr', (trs) => trs.map((tr) =>
		[...tr.cells].map((td) => td.textContent.trim())));
	assert.deepEqual(ranked.map((r) => r[0]), ['1', '2']);
	assert.deepEqual(ranked.map((r) => r[1].split(' @')[0]).sort(), ['batch-cand-a', 'batch-cand-b']);
	for (const r of ranked) {
		assert.equal(r[2], '2', 'two conversations per candidate');
		assert.match(r[3], /^\d+$/, 'optimizations found');
		assert.match(r[4], /^\d+\.\d$/, 'interview quality');
		assert.match(r[10], /^[\d,.]+$/, 'tokens per second');
	}
	assert.equal(await page.textContent('.state-counts li[data-state="succeeded"] .n'), '4');
	assert.equal(await page.textContent('.batch-head .progress-text'), '4 of 4 done');
	assert.match(await page.textContent('.rankings-card .rule'), /ranked by optimizations found/);
	assert.equal(await page.locator('.batch-head button:text-is("Cancel")').count(), 0, 'no Cancel once finished');
	assert.equal(await page.locator('table.convs tbody tr').count(), 4);
	const report = await page.getAttribute('.batch-head a:text-is("report.md")', 'href');
	assert.equal(report, `/v1/batches/${batch.id}/report.md`);
	const md = await page.request.get(parleyd.base + report);
	assert.equal(md.status(), 200);
	const text = await md.text();
	assert.ok(text.includes('batch-cand-a') && text.includes('batch-cand-b'), 'the report names both candidates');
	assert.equal(await page.getAttribute('.batch-head a:text-is("JSON")', 'href'), `/v1/batches/${batch.id}`);
	await page.screenshot({path: path.join(ARTIFACTS, 'batch-page.png'), fullPage: true});

	/* the job list filtered by the batch: its four jobs, the filter in the address */
	await page.click('.batch-head a:text-is("Jobs")');
	await page.waitForURL(new RegExp('#/jobs\\?batch=' + batch.id + '$'));
	await page.waitForFunction((ids) => {
		const rows = [...document.querySelectorAll('table.jobs tbody tr')];
		return rows.length === 4 && rows.every((r) => ids.includes(r.dataset.id));
	}, batch.job_ids);
	await page.waitForFunction((id) => document.querySelector('select[name=batch]').value === id, batch.id);
	/* clearing the filter brings back the other jobs */
	await page.click('form.filters button:text-is("Clear")');
	await page.waitForFunction(() => document.querySelectorAll('table.jobs tbody tr').length > 4);
	assert.match(page.url(), /#\/jobs$/);
	await closePage(page);
});

test('a running batch is cancelled from its page', LIMIT, async () => {
	const batch = await postBatch(parleyd.base, {
		interviewer: {model: 'slow-interviewer'}, candidates: [{model: 'slow-candidate'}],
		scenarios: ['response_speed_optimization'], max_turns: 9, repeat: 2,
	});
	const page = await newPage();
	await page.goto(parleyd.base + '/#/batches/' + batch.id);
	await page.waitForSelector('.batch-head .pill.s-running, .batch-head .pill.s-queued');
	await page.click('.batch-head button:text-is("Cancel")');
	await page.click('.batch-head button:text-is("Cancel this batch?")');
	await page.waitForSelector('.batch-head .pill.s-cancelled');
	assert.equal(await page.locator('.batch-head button.danger').count(), 0, 'no Cancel on a cancelled batch');
	assert.equal(await page.textContent('.state-counts li[data-state="cancelled"] .n'), '2');
	await closePage(page);
});

async function waitBatch(base, id) {
	const deadline = Date.now() + 90000;
	for (;;) {
		const b = await (await fetch(base + '/v1/batches/' + id)).json();
		if (['finished', 'cancelled'].includes(b.status)) return b;
		if (Date.now() > deadline) throw new Error('batch ' + id + ' did not end: ' + b.status);
		await new Promise((r) => setTimeout(r, 150));
	}
}

test('a batch charts quality against turn time, a job links to its batch, two batches compare', LIMIT, async () => {
	const scenarios = [
		{name: 'chart-rich', problem: 'CHART-RICH: answers take 4 s', context: 'A help desk bot', goal: 'Answer in 1 s'},
		{name: 'chart-poor', problem: 'CHART-POOR: reports are vague', context: 'A weekly report', goal: 'Name the numbers'},
	];
	const candidates = [{model: 'chart-fast'}, {model: 'chart-slow'}];
	const a = await postBatch(parleyd.base, {interviewer: {model: 'chart-iv'}, candidates, scenarios, repeat: 2});
	const b = await postBatch(parleyd.base, {interviewer: {model: 'chart-iv'}, candidates, scenarios: [scenarios[0]]});
	const doneA = await waitBatch(parleyd.base, a.id);
	await waitBatch(parleyd.base, b.id);
	assert.equal(doneA.summary_metrics.succeeded, 8);

	/* the chart: a point per candidate, the faster to the left, bars for the spread of quality */
	const page = await newPage();
	await page.goto(parleyd.base + '/#/batches/' + a.id);
	await page.waitForFunction(() => document.querySelectorAll('svg.tradeoff g.pt').length === 2);
	const pts = await page.$$eval('svg.tradeoff g.pt', (gs) => gs.map((g) => ({
		name: g.dataset.candidate,
		x: Number(g.querySelector('circle').getAttribute('cx')),
		y: Number(g.querySelector('circle').getAttribute('cy')),
		spread: g.querySelectorAll('line.spread:not(.cap)').length,
		tip: g.querySelector('title').textContent,
	})));
	const fast = pts.find((p) => p.name === 'chart-fast'), slow = pts.find((p) => p.name === 'chart-slow');
	assert.ok(fast && slow, JSON.stringify(pts));
	assert.ok(fast.x < slow.x, 'the faster candidate is further left');
	assert.deepEqual(pts.map((p) => p.spread), [1, 1], 'repeat 2: a bar for each candidate\'s spread');
	assert.match(fast.tip, /interview quality \d+\.\d \(runs: \d+\.\d to \d+\.\d\)/);
	assert.equal(await page.locator('svg.tradeoff g.pt.best').count(), 1, 'the first-ranked is marked');
	await page.screenshot({path: path.join(ARTIFACTS, 'batch-page-chart.png'), fullPage: true});
	await page.locator('.tradeoff-card').screenshot({path: path.join(ARTIFACTS, 'batch-chart.png')});

	/* a batch without repeats has the points and no bars */
	await page.goto(parleyd.base + '/#/batches/' + b.id);
	await page.waitForFunction(() => document.querySelectorAll('svg.tradeoff g.pt').length === 2);
	assert.equal(await page.locator('svg.tradeoff line.spread').count(), 0);

	/* from a job of the batch to the batch */
	await page.goto(parleyd.base + '/#/jobs/' + a.job_ids[0]);
	await page.click('.job-head a.batch-link');
	await page.waitForURL(new RegExp('#/batches/' + a.id + '$'));
	await page.waitForSelector('.batch-head .pill.s-finished');

	/* compare with the other batch, picked from the batch page */
	await page.waitForSelector(`select.compare-pick option[value="${b.id}"]`, {state: 'attached'});
	await page.selectOption('select.compare-pick', b.id);
	await page.waitForURL(new RegExp(`#/batches/${a.id}/compare/${b.id}$`));
	await page.waitForFunction(() => document.querySelectorAll('table.cmp.models tbody tr').length === 2);
	const total = await page.$eval('table.cmp.overall tr[data-name="total_conversations"] td', (td) =>
		[td.querySelector('.ab').textContent, td.querySelector('.delta').textContent]);
	assert.deepEqual(total, ['8 → 2', '−6']);
	const names = await page.$$eval('table.cmp.models tbody tr', (trs) => trs.map((tr) => tr.dataset.name).sort());
	assert.deepEqual(names, ['chart-fast', 'chart-slow']);
	/* the chart of moves: each candidate from where it was in A to where it is in B */
	await page.waitForFunction(() => document.querySelectorAll('.cmp-chart svg.tradeoff g.pt').length === 2);
	assert.equal(await page.locator('.cmp-chart svg.tradeoff circle.from').count(), 2);
	const moved = await page.$$eval('.cmp-chart svg.tradeoff g.pt', (gs) => gs.map((g) =>
		Number(g.querySelector('circle.from').getAttribute('cy')) - Number(g.querySelector('circle.dot').getAttribute('cy'))));
	assert.ok(moved.every((d) => d > 0), 'B\'s higher quality is drawn higher: ' + moved);
	/* B ran only the rich scenario: its quality is higher, shown as better */
	const q = await page.$eval('table.cmp.overall tr[data-name="average_interview_quality"] .delta', (e) =>
		[e.className, e.textContent]);
	assert.match(q[0], /better/);
	assert.match(q[1], /^\+\d/);
	assert.match(await page.textContent('.cmp-head .only'), /scenario Chart Poor/);
	assert.equal(await page.getAttribute('.cmp-head a:text-is("Markdown")', 'href'),
		`/v1/batches/${a.id}/compare/${b.id}.md`);
	await page.screenshot({path: path.join(ARTIFACTS, 'compare-page.png'), fullPage: true});
	await page.click('.cmp-head a:text-is("Swap")');
	await page.waitForURL(new RegExp(`#/batches/${b.id}/compare/${a.id}$`));
	await page.waitForFunction(() => {
		const td = document.querySelector('table.cmp.overall tr[data-name="total_conversations"] .ab');
		return td && td.textContent === '2 → 8';
	});
	await closePage(page);
});

test('with a token configured, the page asks for it once, then works', LIMIT, async (t) => {
	const authd = await startParleyd(fake.port, 'parleyd-auth', {PARLEY_TOKEN: TOKEN});
	try {
		const probe = await fetch(authd.base + '/v1/session', {method: 'POST', headers: {Authorization: 'Bearer ' + TOKEN}});
		if (probe.status === 404 || probe.status === 405) {
			t.skip('POST /v1/session answers ' + probe.status + ': parleyd has no session endpoint yet (auth)');
			return;
		}
		assert.equal((await fetch(authd.base + '/v1/jobs')).status, 401, 'the API wants the token');
		const auth = {Authorization: 'Bearer ' + TOKEN};
		const job = await postJob(authd.base, {
			scenario: 'response_speed_optimization',
			interviewer: {model: 'slow-interviewer'}, candidate: {model: 'slow-candidate'}, max_turns: 3,
		}, auth);

		const page = await newPage();
		await page.goto(authd.base + '/#/jobs/' + job.id);
		await page.waitForSelector('dialog.modal[open] #signin input[name=token]');
		assert.equal(await page.locator('dialog.modal[open]').count(), 1, 'one sign-in form, however many calls failed');
		await page.fill('#signin input[name=token]', 'wrong-token');
		await page.click('#signin button[type=submit]');
		await page.waitForSelector('#signin .form-error:text("not accepted")');
		await page.fill('#signin input[name=token]', TOKEN);
		await page.click('#signin button[type=submit]');
		await page.waitForSelector('dialog.modal', {state: 'detached'});
		/* the session cookie authorises the reads and the event stream: tokens appear live */
		await page.waitForFunction(() => {
			const s = document.querySelector('article.turn.live .stream');
			return (s && s.textContent.length > 10) || document.querySelector('.pill.s-succeeded');
		});
		await page.waitForSelector('.job-head .pill.s-succeeded', {timeout: 60000});
		await page.waitForFunction(() => document.querySelectorAll('article.turn').length === 3);
		await page.waitForFunction(() => document.querySelectorAll('.optims .opt').length === 3);
		const stored = await page.evaluate(() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage}) + document.cookie);
		assert.ok(!stored.includes(TOKEN), 'the token is not stored where scripts can read it');
		/* the list works too, without asking again */
		await page.goto(authd.base + '/#/jobs');
		await page.waitForSelector(`tr[data-id="${job.id}"][data-status="succeeded"]`);
		assert.equal(await page.locator('dialog.modal').count(), 0);
		/* Cancel, with the cookie alone: two clicks, and the job ends cancelled */
		const long = await postJob(authd.base, {
			scenario: 'response_speed_optimization',
			interviewer: {model: 'slow-interviewer'}, candidate: {model: 'slow-candidate'}, max_turns: 9,
		}, auth);
		await page.goto(authd.base + '/#/jobs/' + long.id);
		await page.click('.job-head button:text-is("Cancel")');
		await page.click('.job-head button:text-is("Cancel this job?")');
		await page.waitForSelector('.job-head .pill.s-cancelled');
		assert.equal(await page.locator('.job-head button.danger').count(), 0, 'no Cancel on a cancelled job');
		/* signing out ends the session: the next call asks again */
		await page.click('#signout');
		await page.waitForSelector('dialog.modal[open] #signin');
		await closePage(page);
	} finally {
		await stop(authd.child);
	}
});

/*
 * Real responses against the OpenAPI description: every endpoint of the real
 * parleyd (on the fake model server) is called the way a client calls it, to
 * success and to each error it documents, and every answer is checked against
 * api/openapi.json with ajv's JSON Schema 2020-12 validator: its status must
 * be documented for the operation, its content type too, and a JSON body (or
 * each event of an event stream) must match the documented schema.
 *
 * The check is stricter than the document: an object schema that does not say
 * what other properties it allows is checked here as if it allowed none, so a
 * field the server sends that the document does not describe fails the suite,
 * while the published description still lets clients ignore fields they do
 * not know.
 *
 * The closed loop is exercised for real: a job with `optimize` on a built-in
 * scenario, its interviewer scripted on the fake backend to propose a prompt and
 * a setting, so that its trials, task calls and transcript are validated too.
 *
 * Environment: PARLEYD, FAKE_BACKEND (default build/...), PARLEY_SHARED (default ../shared).
 */
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import http from 'node:http';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {ROOT, PARLEYD, FAKE, daemons, stop} from '../lib/daemon.mjs';

const DOC_PATH = path.join(ROOT, 'api/openapi.json');
const ORIGIN = path.join(process.env.PARLEY_SHARED ? path.resolve(ROOT, process.env.PARLEY_SHARED)
	: path.join(ROOT, '../shared'), 'fixtures/origin-phase2');
const TOKEN = 'openapi-test-token-51d2';
const LIMIT = {timeout: 90000};

const DOC = JSON.parse(readFileSync(DOC_PATH, 'utf8'));

/* ---------- the validator ---------- */

/* Every object schema that lists properties and says nothing of others allows no others. */
function closed(s) {
	if (Array.isArray(s)) return s.map(closed);
	if (!s || typeof s !== 'object') return s;
	const out = {};
	for (const [k, v] of Object.entries(s)) out[k] = k === 'properties' ? Object.fromEntries(
		Object.entries(v).map(([p, ps]) => [p, closed(ps)])) : closed(v);
	if (out.properties && !('additionalProperties' in out) && !('unevaluatedProperties' in out))
		out.additionalProperties = false;
	return out;
}

const ajv = new Ajv2020({allErrors: true, strict: true, strictTypes: false});
addFormats(ajv);
ajv.addSchema(JSON.parse(JSON.stringify({$id: 'parley', $defs: closed(DOC.components.schemas)})
	.replaceAll('"#/components/schemas/', '"parley#/$defs/')));

const validators = new Map();
function validatorFor(schema) {
	const key = JSON.stringify(schema);
	if (!validators.has(key)) {
		const s = JSON.parse(key.replaceAll('"#/components/schemas/', '"parley#/$defs/'));
		validators.set(key, ajv.compile(closed(s)));
	}
	return validators.get(key);
}

function deref(o) {
	while (o && o.$ref) {
		const parts = o.$ref.replace(/^#\//, '').split('/');
		o = parts.reduce((x, p) => x[p], DOC);
	}
	return o;
}

/* The documented operation for a concrete path, and its path parameters. */
const templates = Object.keys(DOC.paths).map((t) => ({
	t, re: new RegExp('^' + t.replace(/\{[^}]+\}/g, '([^/]+)') + '$'),
	literal: t.replace(/\{[^}]+\}/g, '').length,
}));
function operationFor(method, p) {
	const matches = templates.filter((x) => x.re.test(p)).sort((a, b) => b.literal - a.literal);
	for (const m of matches) {
		const op = DOC.paths[m.t][method.toLowerCase()];
		if (op) return {template: m.t, op};
	}
	return null;
}

const covered = new Map(); /* "GET /v1/jobs/{id}" -> Set of statuses validated */
let validatedBodies = 0, validatedEvents = 0;

function record(template, method, status) {
	const k = method + ' ' + template;
	if (!covered.has(k)) covered.set(k, new Set());
	covered.get(k).add(status);
}

function explain(errors) {
	return errors.slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message}` +
		(e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : '')).join('; ');
}

/* Checks one answer against the document; returns the parsed body (JSON) or text. */
function check(method, p, status, ctype, text, headers) {
	let found = operationFor(method, p);
	if (!found && status === 405) {
		/* a method the path does not have: its 405 is documented on the path's operations */
		const t = templates.find((x) => x.re.test(p));
		if (t) found = {template: t.t, op: Object.values(DOC.paths[t.t])[0], other: true};
	}
	assert.ok(found, `${method} ${p} is not in the description`);
	const {template, op} = found;
	const r = deref(op.responses[String(status)]);
	assert.ok(r, `${method} ${template}: status ${status} is not documented (body: ${text.slice(0, 300)})`);
	if (!found.other) record(template, method, status);
	for (const [h, spec] of Object.entries(r.headers || {}))
		if ((h === 'Location' || h === 'Allow' || h === 'Retry-After' || h === 'WWW-Authenticate') &&
			spec.required !== false) /* a header some answers of the status leave out */
			assert.ok(headers.get(h), `${method} ${template} ${status}: no ${h} header`);
	if (!r.content) {
		assert.equal(text, '', `${method} ${template} ${status}: a body where none is documented`);
		return null;
	}
	const mt = (ctype || '').split(';')[0].trim();
	const media = r.content[mt];
	assert.ok(media, `${method} ${template} ${status}: content type '${ctype}' is not documented ` +
		`(documented: ${Object.keys(r.content).join(', ')})`);
	if (mt === 'text/event-stream') return text;
	if (!/json/.test(mt)) {
		assert.equal(typeof text, 'string');
		return text;
	}
	const body = JSON.parse(text);
	const v = validatorFor(media.schema);
	if (!v(body))
		assert.fail(`${method} ${p} ${status} does not match the description: ${explain(v.errors)}\n` +
			JSON.stringify(body).slice(0, 600));
	validatedBodies++;
	return body;
}

/* A body the server accepted must be one the description allows. */
let validatedRequests = 0;
function checkRequest(method, p, body) {
	const {op} = operationFor(method, p);
	const schema = (((op.requestBody || {}).content || {})['application/json'] || {}).schema;
	assert.ok(schema, `${method} ${p} took a body the description does not document`);
	const v = validatorFor(schema);
	if (!v(body))
		assert.fail(`${method} ${p}: the server accepted a body the description refuses: ` +
			`${explain(v.errors)}\n${JSON.stringify(body).slice(0, 400)}`);
	validatedRequests++;
}

/* ---------- HTTP ---------- */

let base, authBase;

async function call(method, p, {body, headers = {}, raw, server} = {}) {
	const init = {method, headers: {...headers}};
	if (body !== undefined) {
		init.body = raw ? body : JSON.stringify(body);
		if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
	}
	const res = await fetch((server || base) + p, init);
	const text = await res.text();
	const ctype = res.headers.get('content-type');
	const parsed = check(method, p.split('?')[0], res.status, ctype, text, res.headers);
	if (body !== undefined && !raw && res.status < 300) checkRequest(method, p.split('?')[0], body);
	return {status: res.status, body: parsed, headers: res.headers, text};
}

/* Numbers of a JSON text printed with 17 significant digits (0.69999999999999996). */
function longFloats(text) {
	return (text.match(/[:,[]-?\d+\.\d+(e[-+]?\d+)?(?=[,}\]])/g) || [])
		.filter((n) => n.replace(/^[:,[]-?/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').length >= 17);
}

/* Sends a declared Content-Length over the limit and reads the answer without sending the body. */
function declareTooLarge(p) {
	return new Promise((resolve, reject) => {
		const req = http.request(base + p, {method: 'POST', headers: {'Content-Type': 'application/json',
			'Content-Length': String(2 << 20)}}, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (c) => (text += c));
			res.on('end', () => {
				req.destroy();
				resolve({status: res.statusCode, text, headers: new Headers(res.headers)});
			});
		});
		req.on('error', reject);
		req.flushHeaders();
	});
}

/* Expects a status, then returns the checked answer. */
async function expect(status, method, p, opts) {
	const r = await call(method, p, opts);
	assert.equal(r.status, status, `${method} ${p}: ${r.text.slice(0, 400)}`);
	return r;
}

async function waitJob(id, server) {
	const deadline = Date.now() + 60000;
	for (;;) {
		const {body} = await expect(200, 'GET', '/v1/jobs/' + id, {server});
		if (!['queued', 'running'].includes(body.status)) return body;
		if (Date.now() > deadline) throw new Error('job ' + id + ' did not end: ' + JSON.stringify(body));
		await new Promise((r) => setTimeout(r, 100));
	}
}

async function waitBatch(id) {
	const deadline = Date.now() + 60000;
	for (;;) {
		const {body} = await expect(200, 'GET', '/v1/batches/' + id);
		if (['finished', 'cancelled'].includes(body.status)) return body;
		if (Date.now() > deadline) throw new Error('batch ' + id + ' did not end: ' + body.status);
		await new Promise((r) => setTimeout(r, 150));
	}
}

/* Reads an event stream to its end (or until stop(event) is true); checks every event. */
async function events(p, {headers = {}, stop} = {}) {
	const ac = new AbortController();
	const res = await fetch(base + p, {headers, signal: ac.signal});
	check('GET', p.split('?')[0], res.status, res.headers.get('content-type'), '', res.headers);
	assert.equal(res.status, 200);
	const eventSchema = validatorFor({$ref: '#/components/schemas/Event'});
	const out = [];
	let buf = '';
	const dec = new TextDecoder();
	try {
		for await (const chunk of res.body) {
			buf += dec.decode(chunk, {stream: true});
			let i;
			while ((i = buf.indexOf('\n\n')) >= 0) {
				const block = buf.slice(0, i);
				buf = buf.slice(i + 2);
				const ev = {};
				for (const line of block.split('\n')) {
					const c = line.indexOf(':');
					if (c <= 0) continue;
					ev[line.slice(0, c)] = line.slice(c + 1).replace(/^ /, '');
				}
				if (!ev.event) continue; /* the retry: line */
				const e = {id: ev.id, event: ev.event, data: JSON.parse(ev.data)};
				if (!eventSchema(e))
					assert.fail(`event ${e.event} does not match the description: ` +
						`${explain(eventSchema.errors)}\n${JSON.stringify(e).slice(0, 400)}`);
				validatedEvents++;
				out.push(e);
				if (stop && stop(e)) {
					ac.abort();
					return out;
				}
			}
		}
	} catch (err) {
		if (err.name !== 'AbortError') throw err;
	}
	return out;
}

/* ---------- processes ---------- */

const tmp = mkdtempSync(path.join(tmpdir(), 'parley-openapi-'));
const procs = daemons(tmp);

const SCRIPT = {
	models: {
		'iv': {token_delay_ms: 1},
		'cand-a': {token_delay_ms: 1},
		'cand-b': {token_delay_ms: 1},
		'slow-iv': {token_delay_ms: 25},
		'slow-cd': {token_delay_ms: 25},
		/* the closed loop's interviewer: a prompt, a setting, then it stops (DESIGN §7) */
		'opt-iv': {token_delay_ms: 1, replies: [
			'Let us try a strict format. #prompt_defined\n```\nList the requirements as JSON.\n```',
			'Now a cooler setting. #test_setting {"temperature": 0.1}',
			'That is enough. #stop_progress: no more ideas',
			'### 1. Analysis\nDone.']},
		/* a task model that answers task k right only under the prompt FORMAT-OK, and an
		 * interviewer that proposes it: a best that holds up on the held-out tasks */
		'task': {token_delay_ms: 1, replies: ['no idea'], cases: [0, 1, 2, 3, 4, 5, 6, 7].map((k) =>
			({contains: ['FORMAT-OK', `task Q${k}?`], replies: [`A${k}`]}))},
		'loop-iv': {token_delay_ms: 1, replies: ['Try a format. #prompt_defined\n```\nFORMAT-OK\n```',
			'It held up. #stop_progress: good enough', '### 1. Analysis\nDone.']},
	},
};

async function startFake() {
	const script = path.join(tmp, 'script.json');
	writeFileSync(script, JSON.stringify(SCRIPT));
	return procs.startFake(['--script', script]);
}

/* parleyd with the store <tmp>/<name>.db, four calls at a time on the fake, plus args */
function startParleyd(fakePort, name, args = []) {
	return procs.startParleyd(fakePort, name, {args, concurrency: 4});
}

let fake, main, authd;

before(async () => {
	for (const [what, p] of [['parleyd', PARLEYD], ['fake backend', FAKE]])
		assert.ok(existsSync(p), `${what} not found at ${p}`);
	fake = await startFake();
	main = await startParleyd(fake.port, 'main', ['--workers', '4']);
	base = main.base;
	/* tokens, and a queue of one, for 401, 403, the session and 503 */
	const cfg = path.join(tmp, 'auth.json');
	writeFileSync(cfg, JSON.stringify({tokens: [TOKEN], max_queued_jobs: 1}));
	authd = await startParleyd(fake.port, 'authd', ['--config', cfg, '--workers', '1']);
	authBase = authd.base;
}, {timeout: 60000});

after(async () => {
	await stop(main && main.child);
	await stop(authd && authd.child);
	await stop(fake && fake.child);
	if (!process.env.KEEP_TMP) rmSync(tmp, {recursive: true, force: true});
});

/* ---------- the tests ---------- */

const JOB = {
	scenario: 'response_speed_optimization',
	interviewer: {model: 'iv'}, candidate: {model: 'cand-a'}, max_turns: 3,
	options: {temperature: 0.7, seed: 42}, labels: {suite: 'openapi'},
};

let doneJob; /* a succeeded job, for the reads */

test('the served description is the repository\'s, and its version is the server\'s', LIMIT, async () => {
	const r = await expect(200, 'GET', '/v1/openapi.json');
	assert.deepEqual(r.body, DOC);
	assert.equal(r.body.openapi, '3.1.0');
	const h = await expect(200, 'GET', '/healthz');
	assert.equal(DOC.info.version, h.body.version, 'info.version follows the Makefile VERSION');
});

test('the check is strict: an undocumented field, a missing one or a wrong type fails', LIMIT, async () => {
	const job = validatorFor({$ref: '#/components/schemas/Job'});
	const ok = (await expect(200, 'GET', '/v1/jobs?limit=1')).body.items[0] ||
		(await expect(202, 'POST', '/v1/jobs', {body: JOB})).body;
	assert.ok(job(ok), explain(job.errors || []));
	assert.equal(job({...ok, surprise: 1}), false, 'a field the description does not have');
	const {links, ...noLinks} = ok;
	assert.equal(job(noLinks), false, 'a required field left out');
	assert.equal(job({...ok, status: 'completed'}), false, 'a status outside the enum');
	assert.equal(job({...ok, links: {...links, extra: '/x'}}), false, 'nested objects are closed too');
});

test('the description\'s request examples match their schemas, and the server takes them', LIMIT, async () => {
	const sent = [];
	for (const [p, item] of Object.entries(DOC.paths)) {
		for (const [m, op] of Object.entries(item)) {
			const media = ((op.requestBody || {}).content || {})['application/json'];
			for (const [name, ex] of Object.entries((media && media.examples) || {})) {
				const v = validatorFor(media.schema);
				if (!v(ex.value)) assert.fail(`${op.operationId} example '${name}': ${explain(v.errors)}`);
				if (op.operationId === 'createJob' || op.operationId === 'createBatch')
					sent.push(expect(202, 'POST', p, {body: ex.value}));
				else if (op.operationId === 'putScenario')
					sent.push(expect(201, 'PUT', '/v1/scenarios/openapi-example-' + name, {body: ex.value}));
			}
		}
	}
	assert.ok(sent.length >= 4, 'examples of jobs, batches and scenarios');
	for (const r of await Promise.all(sent))
		if (r.body.links && r.body.links.cancel) await call('POST', r.body.links.cancel);
});

test('system endpoints: health, readiness, metrics, backends, dashboard', LIMIT, async () => {
	await expect(200, 'GET', '/readyz');
	const m = await expect(200, 'GET', '/metrics');
	assert.match(m.text, /^# (HELP|TYPE) /m);
	const b = await expect(200, 'GET', '/v1/backends');
	assert.equal(b.body.items[0].name, 'ollama');
	await expect(200, 'GET', '/');
	await expect(200, 'GET', '/assets/app.js');
	await expect(404, 'GET', '/assets/no-such-file.js');
	await expect(405, 'POST', '/healthz', {body: {}});
	await expect(405, 'DELETE', '/v1/jobs');
	await expect(405, 'PATCH', '/v1/scenarios/x', {body: {}});
	const s = await expect(200, 'POST', '/v1/session');
	assert.equal(s.body.auth, false);
	await expect(204, 'DELETE', '/v1/session');
});

test('scenarios: list, read, create, replace, refuse, delete', LIMIT, async () => {
	const list = await expect(200, 'GET', '/v1/scenarios');
	assert.ok(list.body.items.length >= 3);
	await expect(200, 'GET', '/v1/scenarios/response_speed_optimization');
	await expect(404, 'GET', '/v1/scenarios/no-such-scenario');
	const sc = {problem: 'Answers are slow', context: 'A chat service', goal: 'Halve p95 latency',
		prompts: {opening: 'Open the interview about {problem}.'}};
	await expect(201, 'PUT', '/v1/scenarios/openapi-made', {body: sc});
	await expect(200, 'PUT', '/v1/scenarios/openapi-made', {body: {...sc, name: 'openapi-made'}});
	const bad = await expect(400, 'PUT', '/v1/scenarios/openapi-made', {body: {problem: '', goal: 3, extra: 1}});
	assert.ok(bad.body.errors.length >= 2);
	await expect(400, 'PUT', '/v1/scenarios/openapi-made', {body: {...sc, name: 'other'}});
	await expect(400, 'PUT', '/v1/scenarios/Not%20A%20Slug', {body: sc});
	await expect(400, 'PUT', '/v1/scenarios/openapi-made', {body: '{not json', raw: true});
	await expect(204, 'DELETE', '/v1/scenarios/openapi-made');
	await expect(404, 'DELETE', '/v1/scenarios/openapi-made');
});

test('jobs: submit, replay, refuse, read to success with its transcript and events', LIMIT, async () => {
	const key = 'openapi-' + Date.now();
	const made = await expect(202, 'POST', '/v1/jobs', {body: JOB, headers: {'Idempotency-Key': key}});
	await expect(200, 'POST', '/v1/jobs', {body: JOB, headers: {'Idempotency-Key': key}});
	await expect(409, 'POST', '/v1/jobs', {body: {...JOB, max_turns: 4}, headers: {'Idempotency-Key': key}});
	const bad = await expect(400, 'POST', '/v1/jobs', {body: {scenario: 'nope', interviewer: {}, candidate: {model: 'x', backend: 'none'},
		max_turns: 99, options: {top_k: -1, bogus: 1}, scoring: 'x', labels: {'bad key': 1}, surprise: true}});
	assert.ok(bad.body.errors.length >= 6, JSON.stringify(bad.body));
	await expect(400, 'POST', '/v1/jobs', {body: '[1,2]', raw: true});
	await expect(400, 'POST', '/v1/jobs', {body: '', raw: true});
	const big = await declareTooLarge('/v1/jobs');
	assert.equal(big.status, 413);
	check('POST', '/v1/jobs', big.status, big.headers.get('content-type'), big.text, big.headers);

	/* the live stream of a job from its start to job_finished */
	const live = await events('/v1/jobs/' + made.body.id + '/events');
	const kinds = new Set(live.map((e) => e.event));
	for (const k of ['status', 'turn_finished', 'job_finished']) assert.ok(kinds.has(k), 'a ' + k + ' event');

	doneJob = await waitJob(made.body.id);
	assert.equal(doneJob.status, 'succeeded');
	const t = await expect(200, 'GET', '/v1/jobs/' + doneJob.id + '/transcript');
	assert.equal(t.body.conversation.length, 3);
	/* the origin's marker on the analysis turn, and only there */
	assert.deepEqual(t.body.conversation.map((c) => c.type), [undefined, undefined, 'optimization_suggestions']);
	/* floats as people write them: 0.7, not 0.69999999999999996 */
	const job = await fetch(base + '/v1/jobs/' + doneJob.id);
	assert.match(await job.text(), /"temperature":0\.7[,}]/);
	assert.deepEqual(longFloats(t.text), []);
	const md = await expect(200, 'GET', '/v1/jobs/' + doneJob.id + '/transcript', {headers: {Accept: 'text/markdown'}});
	assert.match(md.headers.get('content-type'), /text\/markdown/);
	await expect(200, 'GET', '/v1/jobs/' + doneJob.id + '/transcript.md');
	/* a finished job's stream replays everything, then ends */
	const replay = await events('/v1/jobs/' + doneJob.id + '/events');
	assert.equal(replay.filter((e) => e.event === 'turn_finished').length, 3);
	assert.equal(replay.at(-1).event, 'job_finished');
	const after2 = await events('/v1/jobs/' + doneJob.id + '/events', {headers: {'Last-Event-ID': '2-0'}});
	assert.equal(after2.filter((e) => e.event === 'turn_finished').length, 1);

	for (const p of ['', '/transcript', '/transcript.md', '/events'])
		await expect(404, 'GET', '/v1/jobs/jnosuchjob00000000' + p);
	await expect(404, 'POST', '/v1/jobs/jnosuchjob00000000/cancel');
	await expect(409, 'POST', '/v1/jobs/' + doneJob.id + '/cancel');
});

test('jobs: an inline scenario, origin methods, a judge, a failure and a cancel', LIMIT, async () => {
	const inline = await expect(202, 'POST', '/v1/jobs', {body: {
		scenario: {name: 'inline-one', problem: 'Slow answers', context: 'A CLI tool', goal: 'Answer in 1 s'},
		interviewer: {model: 'iv', backend: 'ollama'}, candidate: {model: 'cand-b'}, max_turns: 4,
		scoring: 'origin', extraction: 'origin'}});
	const judged = await expect(202, 'POST', '/v1/jobs', {body: {...JOB, scoring: 'judge', judge: {model: 'judge-a'}}});
	const garbage = await expect(202, 'POST', '/v1/jobs', {body: {...JOB, scoring: 'judge', judge: {model: 'judge-garbage'}}});
	const failing = await expect(202, 'POST', '/v1/jobs', {body: {...JOB, candidate: {model: 'missing-model'}}});
	const slow = await expect(202, 'POST', '/v1/jobs', {body: {...JOB, interviewer: {model: 'slow-iv'},
		candidate: {model: 'slow-cd'}, max_turns: 9}});
	/* watch it stream tokens, then cancel it mid-turn */
	const seen = await events('/v1/jobs/' + slow.body.id + '/events', {stop: (e) => e.event === 'token'});
	assert.ok(seen.some((e) => e.event === 'turn_started'));
	const c = await expect(202, 'POST', '/v1/jobs/' + slow.body.id + '/cancel');
	assert.ok(c.body.cancel_requested || c.body.status === 'cancelled');
	assert.equal((await waitJob(slow.body.id)).status, 'cancelled');
	await expect(200, 'GET', '/v1/jobs/' + slow.body.id + '/transcript');
	assert.equal((await waitJob(inline.body.id)).status, 'succeeded');
	await expect(200, 'GET', '/v1/jobs/' + inline.body.id + '/transcript');
	const j = await waitJob(judged.body.id);
	assert.equal(typeof j.metrics.judge.interview_quality, 'number');
	const g = await waitJob(garbage.body.id);
	assert.ok(g.metrics.judge.error);
	const f = await waitJob(failing.body.id);
	assert.equal(f.status, 'failed');
	assert.ok(f.error.message);
	await expect(200, 'GET', '/v1/jobs/' + failing.body.id + '/transcript');
	await expect(200, 'GET', '/v1/jobs/' + failing.body.id + '/transcript.md');
});

test('jobs: lists, filters and pages', LIMIT, async () => {
	const all = await expect(200, 'GET', '/v1/jobs');
	assert.ok(all.body.items.length >= 6);
	const page = await expect(200, 'GET', '/v1/jobs?limit=2');
	assert.ok(page.body.next_cursor);
	await expect(200, 'GET', '/v1/jobs?limit=2&cursor=' + page.body.next_cursor);
	await expect(200, 'GET', '/v1/jobs?status=failed&scenario=response_speed_optimization&model=iv&label=suite:openapi');
	await expect(400, 'GET', '/v1/jobs?status=done');
	await expect(400, 'GET', '/v1/jobs?limit=0');
	await expect(400, 'GET', '/v1/jobs?cursor=!!');
	await expect(400, 'GET', '/v1/jobs?label=nocolon');
});

let batchA, batchB;

test('batches: run to the end with repeats and a failure, read, report, compare, cancel', LIMIT, async () => {
	const a = await expect(202, 'POST', '/v1/batches', {body: {
		interviewer: {model: 'iv'}, candidates: [{model: 'cand-a'}, {model: 'cand-b'}],
		scenarios: ['response_speed_optimization'], repeat: 2, max_turns: 3, labels: {suite: 'openapi'}}});
	const b = await expect(202, 'POST', '/v1/batches', {body: {
		interviewer: {model: 'iv'}, candidates: [{model: 'cand-a'}, {model: 'missing-cand'}],
		scenarios: ['response_speed_optimization', {name: 'inline-two', problem: 'p', context: 'c', goal: 'g'}],
		scoring: 'judge', judge: {model: 'judge-b'}}});
	const bad = await expect(400, 'POST', '/v1/batches', {body: {interviewer: {model: 'iv'}, candidates: [],
		scenarios: ['nope'], repeat: 0}});
	assert.ok(bad.body.errors.length >= 3);
	await expect(400, 'POST', '/v1/batches', {body: {interviewer: {model: 'iv'}, candidates: [{model: 'a'}],
		scenarios: ['response_speed_optimization']}, headers: {'Idempotency-Key': 'k'}});
	batchA = await waitBatch(a.body.id);
	batchB = await waitBatch(b.body.id);
	assert.equal(batchA.status, 'finished');
	assert.equal(batchA.phase, 2, 'the origin\'s phase_2_results.json key');
	const raw = await (await fetch(base + '/v1/batches/' + batchA.id)).text();
	assert.deepEqual(longFloats(raw), [], 'no float printed with 17 significant digits');
	assert.ok(batchA.summary_metrics.spread, 'repeat 2 gives the spread');
	assert.ok(batchB.summary_metrics.failed >= 1);
	await expect(200, 'GET', '/v1/batches/' + batchA.id, {headers: {Accept: 'text/markdown'}});
	await expect(200, 'GET', '/v1/batches/' + batchA.id + '/report.md');
	const cmp = await expect(200, 'GET', `/v1/batches/${batchA.id}/compare/${batchB.id}`);
	assert.equal(cmp.body.delta, 'b - a');
	await expect(200, 'GET', `/v1/batches/${batchA.id}/compare/${batchB.id}.md`);
	await expect(200, 'GET', `/v1/batches/${batchA.id}/compare/${batchB.id}`, {headers: {Accept: 'text/markdown'}});
	await expect(404, 'GET', `/v1/batches/${batchA.id}/compare/bnosuchbatch000000`);
	for (const p of ['', '/report.md']) await expect(404, 'GET', '/v1/batches/bnosuchbatch000000' + p);
	await expect(404, 'POST', '/v1/batches/bnosuchbatch000000/cancel');
	await expect(409, 'POST', '/v1/batches/' + batchA.id + '/cancel');

	const slow = await expect(202, 'POST', '/v1/batches', {body: {
		interviewer: {model: 'slow-iv'}, candidates: [{model: 'slow-cd'}],
		scenarios: ['response_speed_optimization', 'job_extraction_improvement'], max_turns: 5}});
	const c = await expect(202, 'POST', '/v1/batches/' + slow.body.id + '/cancel');
	assert.ok(['cancelled', 'running'].includes(c.body.status));
	assert.equal((await waitBatch(slow.body.id)).status, 'cancelled');

	const list = await expect(200, 'GET', '/v1/batches?limit=2');
	assert.ok(list.body.next_cursor);
	await expect(200, 'GET', '/v1/batches?limit=2&cursor=' + list.body.next_cursor);
	await expect(400, 'GET', '/v1/batches?limit=501');
	await expect(400, 'GET', '/v1/batches?cursor=-');
});

test('optimizations: search, filters, pages', LIMIT, async () => {
	const all = await expect(200, 'GET', '/v1/optimizations?limit=2');
	assert.ok(all.body.items.length === 2 && all.body.next_cursor);
	await expect(200, 'GET', '/v1/optimizations?limit=2&cursor=' + all.body.next_cursor);
	await expect(200, 'GET', `/v1/optimizations?q=cache&scenario=response_speed_optimization&model=cand-a&batch=${batchA.id}`);
	await expect(200, 'GET', '/v1/optimizations?job=' + doneJob.id);
	await expect(400, 'GET', '/v1/optimizations?q=%20%20');
	await expect(400, 'GET', '/v1/optimizations?limit=x');
	await expect(400, 'GET', '/v1/optimizations?cursor=0');
});

test('with tokens: 401 without one, the session, 403 across origins, 503 when the queue is full', LIMIT, async () => {
	const auth = {Authorization: 'Bearer ' + TOKEN};
	await expect(401, 'GET', '/v1/jobs', {server: authBase});
	await expect(401, 'GET', '/metrics', {server: authBase, headers: {Authorization: 'Bearer wrong'}});
	await expect(200, 'GET', '/healthz', {server: authBase});
	await expect(200, 'GET', '/v1/openapi.json', {server: authBase});
	await expect(401, 'POST', '/v1/session', {server: authBase});
	const s = await expect(200, 'POST', '/v1/session', {server: authBase, headers: auth});
	assert.equal(s.body.auth, true);
	const cookie = s.headers.get('set-cookie').split(';')[0];
	await expect(200, 'GET', '/v1/backends', {server: authBase, headers: {Cookie: cookie}});
	await expect(403, 'POST', '/v1/jobs', {server: authBase, body: JOB,
		headers: {Cookie: cookie, Origin: 'http://evil.example'}});
	/* one worker, slow models and a queue of one: posting soon finds the queue full */
	const slow = {...JOB, interviewer: {model: 'slow-iv'}, candidate: {model: 'slow-cd'}, max_turns: 5};
	let full = null;
	const made = [];
	for (let i = 0; i < 6 && !full; i++) {
		const r = await call('POST', '/v1/jobs', {server: authBase, body: slow, headers: auth});
		if (r.status === 503) full = r;
		else {
			assert.equal(r.status, 202, r.text);
			made.push(r.body.id);
		}
	}
	assert.ok(full, 'a full queue answers 503');
	assert.ok(Number(full.headers.get('retry-after')) > 0);
	for (const id of made) await call('POST', `/v1/jobs/${id}/cancel`, {server: authBase, headers: auth});
});

test('with tokens, every operation but the public ones answers 401 without one', LIMIT, async () => {
	const params = {id: doneJob.id, other: 'bnosuchbatch000000', name: 'response_speed_optimization'};
	let n = 0;
	for (const [t, item] of Object.entries(DOC.paths)) {
		const p = t.replace(/\{(\w+)\}/g, (_, k) => params[k]);
		for (const [m, op] of Object.entries(item)) {
			const method = m.toUpperCase();
			const open = Array.isArray(op.security) && op.security.length === 0;
			const body = op.requestBody ? {} : undefined;
			const r = await call(method, p, {server: authBase, body});
			if (open) assert.notEqual(r.status, 401, `${method} ${t} is public`);
			else assert.equal(r.status, 401, `${method} ${t} without a token: ${r.text.slice(0, 200)}`);
			n++;
		}
	}
	assert.ok(n >= 27);
});

test('each path allows the methods the description gives it, no more and no fewer (Allow on 405)', LIMIT, async () => {
	const params = {id: doneJob.id, other: batchB.id, name: 'response_speed_optimization'};
	for (const [t, item] of Object.entries(DOC.paths)) {
		const p = t.replace(/\{(\w+)\}/g, (_, k) => params[k]);
		const documented = Object.keys(item).map((m) => m.toUpperCase()).sort();
		const r = await call('PATCH', p, {body: {}});
		assert.equal(r.status, 405, 'PATCH ' + t);
		/* HEAD goes with GET and is not an operation of its own here */
		const allowed = r.headers.get('allow').split(',').map((m) => m.trim()).filter((m) => m !== 'HEAD').sort();
		assert.deepEqual(allowed, documented, t + ': the server allows ' + allowed.join(', '));
	}
});

test('import: one origin conversation, a list, and refusals', LIMIT, async () => {
	const conv = JSON.parse(readFileSync(path.join(ORIGIN, 'job_extraction_improvement_dolphin3_8b.json'), 'utf8'));
	const one = await expect(201, 'POST', '/v1/jobs/import', {body: conv});
	assert.equal(one.body.status, 'succeeded');
	assert.equal(one.headers.get('location'), '/v1/jobs/' + one.body.id);
	const other = JSON.parse(readFileSync(path.join(ORIGIN, 'response_speed_optimization_gemma2_latest.json'), 'utf8'));
	const list = await expect(201, 'POST', '/v1/jobs/import', {body: {conversations: [conv, {...other, scoring: 'origin'}],
		extraction: 'origin', labels: {suite: 'openapi'}}});
	assert.equal(list.body.count, 2);
	assert.equal(list.body.jobs[1].scoring, 'origin');
	/* a parley transcript is an origin conversation too */
	const t = await expect(200, 'GET', '/v1/jobs/' + one.body.id + '/transcript');
	await expect(201, 'POST', '/v1/jobs/import', {body: t.body});
	await expect(400, 'POST', '/v1/jobs/import', {body: {conversations: 'no'}});
	await expect(400, 'POST', '/v1/jobs/import', {body: {...conv, extraction: 'model'}});
	const bad = await expect(400, 'POST', '/v1/jobs/import', {body: {conversations: [conv, {...conv, conversation: []}]}});
	assert.equal(bad.body.errors[0].field, 'conversations[1].conversation');
});

let failedJob; /* a failed job, which cannot be extracted again */

test('extract: a succeeded job read again, and refusals', LIMIT, async () => {
	const again = await expect(200, 'POST', `/v1/jobs/${doneJob.id}/extract`, {body: {extraction: 'origin'}});
	assert.equal(again.body.extraction, 'origin');
	const t = await expect(200, 'GET', `/v1/jobs/${doneJob.id}/transcript`);
	assert.ok(t.body.optimizations_discovered.every((o) => o.method === 'origin'));
	await expect(200, 'POST', `/v1/jobs/${doneJob.id}/extract`, {body: {extraction: 'rubric'}});
	await expect(404, 'POST', '/v1/jobs/jnosuchjob00000000/extract', {body: {extraction: 'rubric'}});
	await expect(400, 'POST', `/v1/jobs/${doneJob.id}/extract`, {body: {extraction: 'nope'}});
	await expect(400, 'POST', `/v1/jobs/${doneJob.id}/extract`, {body: {}});
	const failed = (await expect(200, 'GET', '/v1/jobs?status=failed&limit=1')).body.items[0];
	assert.ok(failed, 'a failed job to refuse');
	failedJob = failed.id;
	await expect(409, 'POST', `/v1/jobs/${failedJob}/extract`, {body: {extraction: 'rubric'}});
});

test('the closed loop: a job with optimize on a built-in scenario, its trials and transcript', LIMIT, async () => {
	const made = await expect(202, 'POST', '/v1/jobs', {body: {scenario: 'job_extraction_improvement',
		interviewer: {model: 'opt-iv'}, candidate: {model: 'cand-a'}, max_turns: 7,
		optimize: {max_trials: 3, holdout: 0.3, seed: 3}}});
	assert.deepEqual(made.body.optimize, {max_trials: 3, repeat: 1, holdout: 0.3, seed: 3});
	await expect(400, 'POST', '/v1/jobs', {body: {...JOB, scenario: {name: 'no-tasks', problem: 'p',
		context: 'c', goal: 'g'}, optimize: {}}});
	await expect(400, 'POST', '/v1/jobs', {body: {...JOB, optimize: {max_trials: 99}}});
	const live = await events('/v1/jobs/' + made.body.id + '/events');
	assert.equal(live.at(-1).event, 'job_finished');
	const job = await waitJob(made.body.id);
	assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
	assert.deepEqual(job.trials.map((x) => x.kind), ['baseline', 'prompt', 'setting']);
	assert.equal(job.optimize.max_trials, 3);
	assert.ok(job.best && typeof job.best.verified === 'boolean');
	const tr = await expect(200, 'GET', `/v1/jobs/${job.id}/trials`);
	assert.equal(tr.body.trials.length, 3);
	assert.ok(tr.body.trials[0].task_calls.length >= 4, 'the baseline\'s task calls');
	const t = await expect(200, 'GET', `/v1/jobs/${job.id}/transcript`);
	assert.deepEqual(t.body.conversation.filter((c) => c.speaker === 'parley').map((c) => c.trial), [1, 2]);
	await expect(200, 'GET', `/v1/jobs/${job.id}/transcript.md`);
	await expect(404, 'GET', `/v1/jobs/${doneJob.id}/trials`);
	await expect(404, 'GET', '/v1/jobs/jnosuchjob00000000/trials');
});

/* One request as http.request sends it: fetch may not set Host, nor send a NUL escape as is. */
function raw(method, p, headers = {}, server = base) {
	return new Promise((resolve, reject) => {
		const req = http.request(server + p, {method, headers}, (res) => {
			let text = '';
			res.setEncoding('utf8');
			res.on('data', (c) => (text += c));
			res.on('end', () => resolve({status: res.statusCode, text, headers: new Headers(res.headers)}));
		});
		req.on('error', reject);
		req.end();
	});
}

async function expectRaw(status, method, p, headers, server) {
	const r = await raw(method, p, headers, server);
	assert.equal(r.status, status, `${method} ${p}: ${r.text.slice(0, 300)}`);
	return check(method, p.split('?')[0], r.status, r.headers.get('content-type'), r.text, r.headers);
}

test('the guards answer every operation: a foreign Host, a NUL byte, a long URI, large headers', LIMIT, async () => {
	const params = {id: doneJob.id, other: batchB.id, name: 'response_speed_optimization'};
	const big = {'X-Filler-1': 'x'.repeat(17000), 'X-Filler-2': 'y'.repeat(17000)};
	for (const [t, item] of Object.entries(DOC.paths)) {
		const p = t.replace(/\{(\w+)\}/g, (_, k) => params[k]);
		for (const m of Object.keys(item)) {
			const method = m.toUpperCase();
			await expectRaw(403, method, p, {Host: 'evil.example'});
			await expectRaw(400, method, p + '?x=%00');
			await expectRaw(431, method, p, big);
		}
	}
	await expectRaw(414, 'GET', '/v1/jobs/' + 'j'.repeat(9000));
	await expectRaw(414, 'POST', '/v1/jobs?x=' + 'q'.repeat(9000));
});

test('an answer that no longer changes is not sent again (If-None-Match: 304)', LIMIT, async () => {
	for (const p of ['/v1/jobs/' + doneJob.id, `/v1/jobs/${doneJob.id}/transcript`,
		`/v1/jobs/${doneJob.id}/transcript.md`, '/v1/batches/' + batchA.id, `/v1/batches/${batchA.id}/report.md`]) {
		const first = await expect(200, 'GET', p);
		const tag = first.headers.get('etag');
		assert.ok(tag, p + ' has an ETag');
		await expect(304, 'GET', p, {headers: {'If-None-Match': tag}});
	}
	/* a client that has seen a finished job's stream to its end gets no stream */
	const all = await events('/v1/jobs/' + doneJob.id + '/events');
	await expect(204, 'GET', '/v1/jobs/' + doneJob.id + '/events', {headers: {'Last-Event-ID': all.at(-1).id}});
});

test('a model extracts: the job names its extractor', LIMIT, async () => {
	const made = await expect(202, 'POST', '/v1/jobs', {body: {...JOB, extraction: 'model',
		extractor: {model: 'judge-extract'}}});
	assert.deepEqual(made.body.extractor, {model: 'judge-extract', backend: 'ollama'});
	const done = await waitJob(made.body.id);
	assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
	await expect(200, 'GET', `/v1/jobs/${made.body.id}/transcript`);
	await expect(400, 'POST', '/v1/jobs', {body: {...JOB, extractor: {model: 'judge-extract'}}});
});

test('a store that has gone answers 503 with Retry-After, and the document says so', LIMIT, async () => {
	const doomed = await startParleyd(fake.port, 'doomed');
	try {
		for (const f of ['', '-wal', '-shm']) rmSync(path.join(tmp, 'doomed.db' + f), {force: true});
		const sc = {problem: 'p', context: 'c', goal: 'g'};
		const writes = [['POST', '/v1/jobs', JOB], ['PUT', '/v1/scenarios/gone', sc],
			['POST', '/v1/batches', {interviewer: {model: 'iv'}, candidates: [{model: 'cand-a'}],
				scenarios: ['response_speed_optimization']}]];
		for (const [m, p, body] of writes) {
			const r = await call(m, p, {body, server: doomed.base});
			assert.equal(r.status, 503, `${m} ${p}: ${r.text.slice(0, 300)}`);
			assert.ok(Number(r.headers.get('retry-after')) > 0);
		}
		await expect(503, 'GET', '/readyz', {server: doomed.base});
		/* reads: what they answer (200 from what is open still, or 503) is documented */
		for (const p of ['/v1/jobs', '/v1/scenarios', '/v1/batches', '/v1/optimizations', '/metrics'])
			assert.ok([200, 503].includes((await call('GET', p, {server: doomed.base})).status), p);
	} finally {
		await stop(doomed.child);
	}
});

/* A scenario of eight tasks the task model answers right under FORMAT-OK only. */
const LOOP_SCENARIO = {name: 'loop', problem: 'Wrong answers', context: 'A quiz', goal: 'Right answers',
	baseline: {system: 'plain', template: 'Answer: {input}'},
	tasks: [0, 1, 2, 3, 4, 5, 6, 7].map((k) => ({id: k, input: `task Q${k}?`, checks: [{equals: `A${k}`}]})),
	objective: {kind: 'quality', max_quality_drop: 0.05}};

test('the closed loop verified on held-out tasks, and a batch ranked by it', LIMIT, async () => {
	const optimize = {repeat: 2, holdout: 0.25, seed: 7};
	const made = await expect(202, 'POST', '/v1/jobs', {body: {scenario: LOOP_SCENARIO,
		interviewer: {model: 'loop-iv'}, candidate: {model: 'task'}, optimize}});
	assert.equal(made.body.max_turns, 11, 'the default with optimize');
	const job = await waitJob(made.body.id);
	assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
	assert.equal(job.best.trial, 1);
	assert.equal(job.best.verified, true, JSON.stringify(job.best));
	assert.ok(job.best.holdout && job.best.baseline_holdout && job.best.interval);
	const tr = await expect(200, 'GET', `/v1/jobs/${job.id}/trials`);
	assert.ok(tr.body.trials[1].task_calls.some((c) => c.split === 'holdout'));
	await expect(200, 'GET', `/v1/jobs/${job.id}/transcript`);

	await expect(201, 'PUT', '/v1/scenarios/loop', {body: LOOP_SCENARIO});
	const b = await expect(202, 'POST', '/v1/batches', {body: {interviewer: {model: 'loop-iv'},
		candidates: [{model: 'task'}, {model: 'cand-b'}], scenarios: ['loop'], optimize}});
	const batch = await waitBatch(b.body.id);
	assert.equal(batch.optimize_rankings.length, 2);
	assert.equal(batch.optimize_rankings[0].model, 'task');
	await expect(200, 'GET', `/v1/batches/${batch.id}/report.md`);
});

test('every documented operation was called and its answers matched', LIMIT, async (t) => {
	const ops = [];
	for (const [p, item] of Object.entries(DOC.paths))
		for (const m of Object.keys(item)) ops.push(m.toUpperCase() + ' ' + p);
	const missing = ops.filter((o) => !covered.has(o));
	assert.deepEqual(missing, [], 'operations never called');
	for (const o of ops) {
		assert.ok([...covered.get(o)].some((s) => s < 300), o + ' was never answered with success');
	}
	let pairs = 0, documented = 0;
	for (const s of covered.values()) pairs += s.size;
	for (const item of Object.values(DOC.paths))
		for (const op of Object.values(item)) documented += Object.keys(op.responses).length;
	t.diagnostic(`${covered.size} of ${ops.length} operations, ${pairs} of ${documented} documented ` +
		`(operation, status) answers seen; ${validatedBodies} JSON bodies, ${validatedEvents} events ` +
		`and ${validatedRequests} accepted request bodies validated`);
	for (const [o, s] of [...covered].sort()) t.diagnostic(`${o}: ${[...s].sort().join(' ')}`);
});

/*
 * A job's event stream read by a spec-compliant EventSource client (the npm
 * eventsource package), through a TCP proxy that cuts the connection once in
 * the middle of the job.
 *
 * What a client sees: it reconnects by itself with Last-Event-ID, misses no
 * turn and gets none twice, every event id is new and larger than the one
 * before, a turn_started says its attempt, job_finished comes once, and then
 * the stream rests: the reconnect after job_finished gets 204 and the client
 * stops, instead of reconnecting every two seconds for ever.
 *
 * Environment: PARLEYD, FAKE_BACKEND (default build/...).
 */
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import net from 'node:net';
import path from 'node:path';
import {EventSource} from 'eventsource';
import {daemons} from '../lib/daemon.mjs';

const RETRY_MS = 2000; /* what parleyd tells clients */

let tmp, procs;

/* A TCP proxy to port; cut() closes every connection through it at once. */
async function startProxy(port) {
	const open = new Set();
	const server = net.createServer((down) => {
		const up = net.connect(port, '127.0.0.1');
		const pair = {down, up};
		open.add(pair);
		down.pipe(up);
		up.pipe(down);
		const drop = () => {
			open.delete(pair);
			down.destroy();
			up.destroy();
		};
		down.on('error', drop).on('close', drop);
		up.on('error', drop).on('close', drop);
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		port: server.address().port,
		cut() {
			for (const {down, up} of open) {
				down.destroy();
				up.destroy();
			}
			open.clear();
		},
		close() {
			this.cut();
			server.close();
		},
	};
}

before(() => {
	tmp = mkdtempSync(path.join(tmpdir(), 'parley-sse-'));
	procs = daemons(tmp);
});

after(() => {
	for (const c of procs.children) c.kill('SIGTERM');
	rmSync(tmp, {recursive: true, force: true});
});

/* "<turns>-<n>" as a pair that compares in the order the server hands ids out. */
function parseId(id) {
	const m = /^(\d+)-(\d+)$/.exec(id);
	assert.ok(m, `event id '${id}' is not <turns>-<n>`);
	return [BigInt(m[1]), BigInt(m[2])];
}

function after_(a, b) {
	return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

test('the stream survives a cut and rests after job_finished', {timeout: 120000}, async () => {
	const fake = await procs.startFake(['--token-delay-ms', '15']);
	const {port} = await procs.startParleyd(fake.port, 'sse');
	const proxy = await startProxy(port);
	const res = await fetch(`http://127.0.0.1:${port}/v1/jobs`, {
		method: 'POST',
		headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({
			scenario: 'response_speed_optimization',
			interviewer: {model: 'gemma3:1b'},
			candidate: {model: 'gemma3n:latest'},
			max_turns: 3,
		}),
	});
	assert.equal(res.status, 202);
	const job = await res.json();

	/* every request the client makes: what it said it had seen, what it got */
	const connections = [];
	const countingFetch = async (url, init) => {
		const c = {lastEventId: new Headers(init && init.headers).get('last-event-id'), status: 0};
		connections.push(c);
		const r = await fetch(url, init);
		c.status = r.status;
		return r;
	};
	const events = [];
	let cut = false;
	let closedAt = 0;
	const es = new EventSource(`http://127.0.0.1:${proxy.port}/v1/jobs/${job.id}/events`, {fetch: countingFetch});
	const done = new Promise((resolve) => {
		es.onerror = () => {
			if (es.readyState === EventSource.CLOSED) {
				closedAt = Date.now();
				resolve();
			}
		};
	});
	for (const type of ['status', 'turn_started', 'token', 'turn_finished', 'job_finished']) {
		es.addEventListener(type, (e) => {
			const data = JSON.parse(e.data);
			events.push({type, id: e.lastEventId, data, conn: connections.length});
			/* cut once, in the middle of turn 2 */
			if (!cut && type === 'token' && data.turn === 2) {
				cut = true;
				proxy.cut();
			}
		});
	}
	await done;
	/* two more retry intervals: a client that had not stopped would be back by now */
	await new Promise((r) => setTimeout(r, 2 * RETRY_MS + 500));
	es.close();
	proxy.close();

	const reconnects = connections.length - 1;
	console.log(`connections: ${connections.length} (reconnects: ${reconnects}); statuses: ${connections.map((c) => c.status).join(', ')}; ` +
		`Last-Event-IDs: ${connections.map((c) => c.lastEventId).join(', ')}; events: ${events.length}`);
	assert.ok(cut, 'the connection was cut mid-job');
	assert.ok(closedAt > 0, 'the client stopped');
	/* one cut, one end: the first connection, the reconnect after the cut, the one that got 204 */
	assert.deepEqual(connections.map((c) => c.status), [200, 200, 204]);
	assert.equal(connections[0].lastEventId, null);
	const beforeCut = events.filter((e) => e.conn === 1).at(-1);
	assert.equal(connections[1].lastEventId, beforeCut.id);
	const finished = events.filter((e) => e.type === 'job_finished');
	assert.equal(finished.length, 1, 'job_finished comes once');
	assert.equal(finished[0].data.status, 'succeeded');
	assert.equal(connections[2].lastEventId, finished[0].id);
	assert.equal(events.at(-1).type, 'job_finished');

	/* every turn finished once, none missed, none twice */
	assert.deepEqual(events.filter((e) => e.type === 'turn_finished').map((e) => e.data.turn), [1, 2, 3]);
	/* ids: unique and increasing, across the reconnect too */
	const ids = events.map((e) => e.id);
	assert.equal(new Set(ids).size, ids.length, 'event ids are unique');
	for (let i = 1; i < ids.length; i++)
		assert.ok(after_(parseId(ids[i]), parseId(ids[i - 1])), `id ${ids[i]} after ${ids[i - 1]}`);
	/* turn_started, live or replayed, says its attempt */
	const started = events.filter((e) => e.type === 'turn_started');
	assert.ok(started.length >= 3);
	for (const e of started) assert.equal(e.data.attempt, 1, JSON.stringify(e.data));
	/* the tokens of turn 2, across the cut, add up to the turn */
	const t2 = events.find((e) => e.type === 'turn_finished' && e.data.turn === 2);
	const after2 = events.filter((e) => e.conn === 2 && e.type === 'turn_started' && e.data.turn === 2);
	if (after2.length) {
		const text = events.filter((e) => e.conn === 2 && e.type === 'token' && e.data.turn === 2).map((e) => e.data.text).join('');
		assert.equal(text, t2.data.message);
	}
	/* nothing more after the 204 */
	assert.equal(connections.length, 3);
});

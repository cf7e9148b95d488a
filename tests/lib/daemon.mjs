/*
 * The processes the node suites test against: the fake backend and parleyd,
 * each logging to a file in the suite's temporary directory, with the last
 * lines of that log in every error that says one did not start.
 *
 * Built on node's own modules only, so any suite can import it whatever its
 * package.json holds.
 *
 * Environment: PARLEYD, FAKE_BACKEND (default build/...).
 */
import {spawn} from 'node:child_process';
import {openSync, readFileSync} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PARLEYD = path.resolve(ROOT, process.env.PARLEYD || 'build/parleyd');
export const FAKE = path.resolve(ROOT, process.env.FAKE_BACKEND || 'build/fake-backend');

export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const {port} = s.address();
			s.close(() => resolve(port));
		});
	});
}

/* The last lines a child wrote to its log, for an error message. */
export function tail(child) {
	try {
		return readFileSync(child.logPath, 'utf8').split('\n').slice(-20).join('\n');
	} catch {
		return '';
	}
}

/* SIGTERM, then SIGKILL if child is still there after 5 s; resolves when it has exited. */
export async function stop(child) {
	if (!child || child.exitCode !== null || child.signalCode) return;
	const gone = new Promise((r) => child.once('exit', r));
	child.kill('SIGTERM');
	const t = setTimeout(() => child.kill('SIGKILL'), 5000);
	await gone;
	clearTimeout(t);
}

/*
 * The processes of one suite, logging into tmp. Whatever is still running
 * when node exits is killed, so a failed suite leaves nothing behind.
 */
export function daemons(tmp) {
	const children = [];

	process.on('exit', () => {
		for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
	});

	function spawnLogged(bin, args, name, env) {
		const log = path.join(tmp, name + '.log');
		const child = spawn(bin, args, {env: env || process.env, stdio: ['ignore', 'pipe', openSync(log, 'a')]});
		child.logPath = log;
		children.push(child);
		return child;
	}

	/* The fake backend on a port of its choosing, with args (--script ..., --token-delay-ms ...). */
	async function startFake(args = []) {
		const child = spawnLogged(FAKE, ['--port', '0', ...args, '--die-with-parent'], 'fake');
		const port = await new Promise((resolve, reject) => {
			let out = '';
			const timer = setTimeout(() => reject(new Error('the fake backend did not report its port\n' + tail(child))), 10000);
			child.stdout.on('data', (d) => {
				out += d;
				const m = /port=(\d+)/.exec(out);
				if (m) {
					clearTimeout(timer);
					resolve(Number(m[1]));
				}
			});
			child.once('exit', (code) => reject(new Error('the fake backend exited with ' + code + '\n' + tail(child))));
		});
		child.stdout.resume();
		return {child, port};
	}

	/*
	 * parleyd on a free port with the store <tmp>/<name>.db and one backend,
	 * "ollama" on the fake at fakePort (at most concurrency calls at a time
	 * when given), plus args; resolves once /healthz answers. Its environment
	 * holds no PARLEY_* variable but those of env, so the suite's own
	 * environment cannot change what it tests.
	 */
	async function startParleyd(fakePort, name, {args = [], env = {}, concurrency} = {}) {
		const port = await freePort();
		const penv = {...process.env, ...env};
		for (const k of Object.keys(penv)) if (k.startsWith('PARLEY_') && !(k in env)) delete penv[k];
		const backend = `name=ollama,kind=ollama,url=http://127.0.0.1:${fakePort}` +
			(concurrency ? `,max_concurrency=${concurrency}` : '');
		const child = spawnLogged(PARLEYD, [
			'--listen', '127.0.0.1:' + port,
			'--db', path.join(tmp, name + '.db'),
			'--backend', backend,
			...args,
		], name, penv);
		child.stdout.resume();
		const base = 'http://127.0.0.1:' + port;
		const deadline = Date.now() + 15000;
		for (;;) {
			if (child.exitCode !== null) throw new Error('parleyd exited with ' + child.exitCode + '\n' + tail(child));
			try {
				if ((await fetch(base + '/healthz')).ok) break;
			} catch {
				/* not listening yet */
			}
			if (Date.now() > deadline) throw new Error('parleyd did not answer /healthz\n' + tail(child));
			await new Promise((r) => setTimeout(r, 50));
		}
		return {child, port, base};
	}

	return {children, spawnLogged, startFake, startParleyd};
}

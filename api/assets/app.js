/*
 * parley dashboard: one page, plain JavaScript, the public API only.
 *
 * Routes (hash): #/jobs[?status=&scenario=&model=&batch=], #/jobs/{id}, #/submit,
 * #/batches, #/batches/{id}, #/batches/{a}/compare/{b}.
 * The job list polls GET /v1/jobs every 2 s; the batch list and a batch page poll
 * GET /v1/batches[/{id}] every 2 s while a batch has not finished, and a comparison
 * GET /v1/batches/{a}/compare/{b} until both have. A job page reads the job and its
 * transcript, then follows GET /v1/jobs/{id}/events (Server-Sent Events) while
 * the job runs: tokens appear as they are written, a finished turn is replaced
 * by the HTML the server rendered from its Markdown (libcmark, raw HTML made
 * text), and the timing chart grows. When the event stream cannot be had, the
 * page polls instead.
 *
 * Safety: the DOM is built with createElement and textContent. The one HTML
 * string inserted is a finished turn's server-rendered "html", parsed in an
 * inert <template> and filtered against an allow-list of tags and attributes
 * before it is attached.
 *
 * Auth: a 401 from any call shows a small sign-in form (once, however many
 * calls failed). The token is sent once, to POST /v1/session, which sets an
 * HttpOnly cookie; the cookie then authorises every call, the EventSource
 * included (an EventSource cannot send headers). The token is never stored.
 * A server without /v1/session gets the token as a bearer header from memory
 * for this page's life, and the job page polls instead of streaming.
 */
'use strict';

(function () {
	const SVGNS = 'http://www.w3.org/2000/svg';
	const ACTIVE = new Set(['queued', 'running']);
	const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
	const POLL_MS = 2000;

	/* ---------- DOM helpers ---------- */

	function build(ns, tag, attrs, children) {
		const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === null || v === undefined || v === false) continue;
			if (k === 'text') el.textContent = String(v);
			else if (k === 'class') el.setAttribute('class', v);
			else if (k.startsWith('on') && typeof v === 'function')
				el.addEventListener(k.slice(2), v);
			else if (k === 'dataset') Object.assign(el.dataset, v);
			/* through the CSSOM: the CSP (style-src 'self') refuses style attributes */
			else if (k === 'style') Object.assign(el.style, v);
			else el.setAttribute(k, v === true ? '' : String(v));
		}
		append(el, children);
		return el;
	}

	function append(el, children) {
		for (const c of [].concat(children === undefined ? [] : children)) {
			if (c === null || c === undefined || c === false) continue;
			if (Array.isArray(c)) append(el, c);
			else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return el;
	}

	const h = (tag, attrs, ...children) => build(null, tag, attrs, children);
	const svg = (tag, attrs, ...children) => build(SVGNS, tag, attrs, children);

	/*
	 * Shows one row an item in tbody, in the items' order, keeping the rows
	 * (rows: a Map of id → {tr, sig}) of items that did not change: a row is
	 * rebuilt by row(item) when its item changed or the minute turned (for
	 * "3 min ago"); unchanged(item, tr), when given, touches up one kept.
	 */
	function syncRows(tbody, rows, items, row, unchanged) {
		const seen = new Set();
		let prev = null;
		for (const item of items) {
			seen.add(item.id);
			const sig = JSON.stringify(item) + Math.floor(Date.now() / 60000);
			let r = rows.get(item.id);
			if (!r || r.sig !== sig) {
				const tr = row(item);
				if (r) r.tr.replaceWith(tr);
				r = {tr, sig};
				rows.set(item.id, r);
			} else if (unchanged) {
				unchanged(item, r.tr);
			}
			const want = prev ? prev.nextSibling : tbody.firstChild;
			if (want !== r.tr) tbody.insertBefore(r.tr, want);
			prev = r.tr;
		}
		for (const [id, r] of rows) {
			if (!seen.has(id)) {
				r.tr.remove();
				rows.delete(id);
			}
		}
	}

	/*
	 * A Cancel button that asks before it acts: the first click arms it for
	 * 3 s (its text becomes the question), a second click runs act(). act()
	 * resolves to true when the button should be usable again.
	 */
	function cancelButton(question, act) {
		const btn = h('button', {class: 'btn danger small', type: 'button', text: 'Cancel'});
		let armed = null;
		const reset = () => {
			armed = null;
			btn.disabled = false;
			btn.textContent = 'Cancel';
			btn.classList.remove('armed');
		};
		btn.addEventListener('click', async () => {
			if (!armed) {
				btn.textContent = question;
				btn.classList.add('armed');
				armed = setTimeout(reset, 3000);
				return;
			}
			clearTimeout(armed);
			armed = null;
			btn.disabled = true;
			btn.textContent = 'Cancelling…';
			if (await act()) reset();
		});
		return btn;
	}

	/* ---------- formatting ---------- */

	function fmtMs(ms) {
		if (ms === null || ms === undefined || !isFinite(ms)) return '—';
		if (ms < 1) return '<1 ms';
		if (ms < 1000) return Math.round(ms) + ' ms';
		return fmtSec(ms / 1000);
	}

	function fmtSec(s) {
		if (s === null || s === undefined || !isFinite(s)) return '—';
		if (s < 10) return s.toFixed(2) + ' s';
		if (s < 60) return s.toFixed(1) + ' s';
		const m = Math.floor(s / 60);
		if (m < 60) return m + ' min ' + String(Math.round(s % 60)).padStart(2, '0') + ' s';
		return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
	}

	function fmtNum(n, digits) {
		if (n === null || n === undefined || !isFinite(n)) return '—';
		return Number(n).toLocaleString('en-US', {maximumFractionDigits: digits || 0});
	}

	function fmtScore(n) {
		return n === null || n === undefined ? '—' : Number(n).toFixed(1);
	}

	function parseTime(iso) {
		const t = iso ? Date.parse(iso) : NaN;
		return isNaN(t) ? null : t;
	}

	function fmtAgo(iso) {
		const t = parseTime(iso);
		if (t === null) return '—';
		const s = Math.max(0, (Date.now() - t) / 1000);
		if (s < 45) return 'just now';
		if (s < 3600) return Math.round(s / 60) + ' min ago';
		if (s < 86400) return Math.round(s / 3600) + ' h ago';
		return new Date(t).toLocaleDateString(undefined, {month: 'short', day: 'numeric'});
	}

	function fmtShortWhen(iso) {
		const t = parseTime(iso);
		if (t === null) return '—';
		const d = new Date(t);
		const sameDay = d.toDateString() === new Date().toDateString();
		const time = d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit'});
		return sameDay ? 'today ' + time
			: d.toLocaleDateString(undefined, {month: 'short', day: 'numeric'}) + ' ' + time;
	}

	/* An axis tick: 0, 250 ms, 1.5 s, 2 min. */
	function fmtTick(ms) {
		if (ms === 0) return '0';
		if (ms < 1000) return Math.round(ms) + ' ms';
		if (ms < 60000) return Number((ms / 1000).toFixed(2)) + ' s';
		return Number((ms / 60000).toFixed(1)) + ' min';
	}

	function fmtWhen(iso) {
		const t = parseTime(iso);
		return t === null ? '' : new Date(t).toLocaleString();
	}

	/* Seconds a job has run (to now while it runs), or null. */
	function jobSeconds(job) {
		const a = parseTime(job.started_at);
		if (a === null) return null;
		const b = parseTime(job.finished_at);
		return ((b === null ? Date.now() : b) - a) / 1000;
	}

	function titleCase(s) {
		return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
	}

	function scenarioTitle(name) {
		return String(name || '').replace(/[_-]+/g, ' ').replace(/\b[a-z]/g, (c) => c.toUpperCase());
	}

	function statusPill(status) {
		return h('span', {class: 'pill s-' + status, dataset: {status}},
			h('span', {class: 'dot', 'aria-hidden': 'true'}), status);
	}

	/* ---------- the API, with sign-in on 401 ---------- */

	class ApiError extends Error {
		constructor(status, title, detail, errors) {
			super(detail || title || 'HTTP ' + status);
			this.status = status;
			this.title = title;
			this.detail = detail;
			this.errors = errors || [];
		}
	}

	const auth = {
		bearer: null,     /* only when the server has no /v1/session; memory only */
		session: false,   /* a session cookie was set by this page */
		pending: null,    /* the sign-in in progress */
	};

	async function api(method, path, body, extraHeaders) {
		for (let attempt = 0; ; attempt++) {
			const headers = Object.assign({Accept: 'application/json'}, extraHeaders || {});
			if (body !== undefined) headers['Content-Type'] = 'application/json';
			if (auth.bearer) headers.Authorization = 'Bearer ' + auth.bearer;
			let res;
			try {
				res = await fetch(path, {
					method, headers, credentials: 'same-origin', cache: 'no-store',
					body: body === undefined ? undefined : JSON.stringify(body),
				});
			} catch (e) {
				throw new ApiError(0, 'parleyd is not answering', 'the request failed: ' + e.message);
			}
			if (res.status === 401 && attempt < 3) {
				await signIn();
				continue;
			}
			const type = res.headers.get('Content-Type') || '';
			let data = null;
			if (type.includes('json')) data = await res.json().catch(() => null);
			else data = await res.text().catch(() => '');
			if (!res.ok) {
				const p = data && typeof data === 'object' ? data : {};
				throw new ApiError(res.status, p.title || res.statusText, p.detail || '', p.errors);
			}
			return data;
		}
	}

	/* Shows the sign-in form once; every caller that got a 401 waits on the same promise. */
	function signIn() {
		if (!auth.pending) {
			auth.pending = new Promise((resolve) => showSignIn(resolve)).finally(() => {
				auth.pending = null;
			});
		}
		return auth.pending;
	}

	function showSignIn(done) {
		const input = h('input', {
			type: 'password', name: 'token', id: 'token', autocomplete: 'current-password',
			required: true, spellcheck: 'false', placeholder: 'paste the bearer token',
		});
		const err = h('p', {class: 'form-error', role: 'alert'});
		const submit = h('button', {class: 'btn primary', type: 'submit', text: 'Sign in'});
		const form = h('form', {class: 'signin', id: 'signin'},
			h('h2', {text: 'Sign in to parleyd'}),
			h('p', {class: 'muted', text: 'This server asks for a token. It is sent once to start a '
				+ 'session (an HttpOnly cookie) and is not stored by the page.'}),
			h('label', {for: 'token', text: 'Token'}), input, err,
			h('div', {class: 'row end'}, submit));
		const dialog = h('dialog', {class: 'modal', 'aria-labelledby': 'signin-title'}, form);
		form.querySelector('h2').id = 'signin-title';
		dialog.addEventListener('cancel', (e) => e.preventDefault());
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			const token = input.value.trim();
			if (!token) return;
			submit.disabled = true;
			err.textContent = '';
			try {
				const ok = await startSession(token);
				if (ok) {
					input.value = '';
					dialog.close();
					dialog.remove();
					updateSignOut();
					done();
					return;
				}
				err.textContent = 'That token was not accepted.';
			} catch (x) {
				err.textContent = x.message;
			}
			submit.disabled = false;
			input.select();
		});
		document.body.append(dialog);
		dialog.showModal();
		input.focus();
	}

	/* POST /v1/session; falls back to a bearer header kept in memory when there is none. */
	async function startSession(token) {
		const res = await fetch('/v1/session', {
			method: 'POST', credentials: 'same-origin', cache: 'no-store',
			headers: {Authorization: 'Bearer ' + token, Accept: 'application/json'},
		});
		if (res.ok) {
			auth.session = true;
			auth.bearer = null;
			return true;
		}
		if (res.status === 401 || res.status === 403) return false;
		if (res.status === 404 || res.status === 405) {
			const probe = await fetch('/v1/jobs?limit=1', {
				headers: {Authorization: 'Bearer ' + token, Accept: 'application/json'},
				cache: 'no-store',
			});
			if (probe.status === 401 || probe.status === 403) return false;
			auth.bearer = token;
			return true;
		}
		throw new Error('the server answered ' + res.status + ' to POST /v1/session');
	}

	function updateSignOut() {
		document.getElementById('signout').hidden = !(auth.session || auth.bearer);
	}

	async function signOut() {
		if (auth.session) {
			await fetch('/v1/session', {method: 'DELETE', credentials: 'same-origin'}).catch(() => {});
		}
		auth.session = false;
		auth.bearer = null;
		updateSignOut();
		route();
	}

	/* ---------- backends in the top bar ---------- */

	let backendsCache = null;

	async function loadBackends() {
		try {
			const b = await api('GET', '/v1/backends');
			backendsCache = b.items || [];
		} catch (e) {
			backendsCache = backendsCache || [];
		}
		const box = document.getElementById('backends');
		/* one line per member of a pool: its status, slots held of slots, calls in flight */
		const memberLine = (m) => m.url + ': ' + (m.status || 'unknown')
			+ ', ' + (m.slots_held || 0) + ' of ' + (m.slots || 0) + ' slots held'
			+ (m.in_flight ? ', ' + m.in_flight + ' call(s) in flight' : '')
			+ (m.error ? ' — ' + (m.error.message || m.error) : '');
		box.replaceChildren(...backendsCache.map((b) => {
			const members = b.members || [];
			const up = members.filter((m) => m.status === 'up').length;
			return h('span', {
				class: 'backend b-' + (b.status || 'unknown'),
				title: b.name + ' (' + b.kind + ')\n' + (members.length
					? members.map(memberLine).join('\n')
					: b.url + ': ' + (b.status || 'unknown')
						+ (b.error ? ' — ' + (b.error.message || b.error) : '')),
			}, h('span', {class: 'dot', 'aria-hidden': 'true'}),
			b.name + (members.length > 1 ? ' ' + up + '/' + members.length : ''));
		}));
		return backendsCache;
	}

	/* ---------- routing ---------- */

	const main = () => document.getElementById('main');
	let view = null; /* {destroy()} of the page shown */

	function parseHash() {
		const raw = location.hash.replace(/^#/, '') || '/jobs';
		const q = raw.indexOf('?');
		const path = q < 0 ? raw : raw.slice(0, q);
		return {
			parts: path.split('/').filter(Boolean).map(decodeURIComponent),
			params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
		};
	}

	function route() {
		if (view && view.destroy) view.destroy();
		view = null;
		const {parts, params} = parseHash();
		const m = main();
		m.replaceChildren();
		let nav = 'jobs';
		if (parts[0] === 'jobs' && parts[1]) view = jobPage(m, parts[1]);
		else if (parts[0] === 'batches') {
			nav = 'batches';
			if (parts[1] && parts[2] === 'compare' && parts[3]) view = comparePage(m, parts[1], parts[3]);
			else view = parts[1] ? batchPage(m, parts[1]) : batchesPage(m);
		} else if (parts[0] === 'submit') {
			nav = 'submit';
			view = submitPage(m);
		} else view = jobsPage(m, params);
		for (const a of document.querySelectorAll('[data-nav]'))
			a.classList.toggle('active', a.dataset.nav === nav);
	}

	function errorBox(err) {
		return h('div', {class: 'notice error', role: 'alert'},
			h('strong', {text: err.title || 'Something went wrong'}), ' ',
			err.detail || (err.title ? '' : err.message));
	}

	/* A timer that skips its beat while the tab is hidden. */
	function every(ms, fn) {
		let busy = false;
		const tick = async () => {
			if (busy || document.hidden) return;
			busy = true;
			try {
				await fn();
			} finally {
				busy = false;
			}
		};
		const id = setInterval(tick, ms);
		const onVis = () => {
			if (!document.hidden) tick();
		};
		document.addEventListener('visibilitychange', onVis);
		return () => {
			clearInterval(id);
			document.removeEventListener('visibilitychange', onVis);
		};
	}

	/* ---------- the job list ---------- */

	function jobsPage(root, params) {
		const filters = {
			status: params.get('status') || '',
			scenario: params.get('scenario') || '',
			model: params.get('model') || '',
			batch: params.get('batch') || '',
		};
		let limit = 50;
		const rows = new Map(); /* id -> {tr, sig} */

		const statusSel = h('select', {name: 'status', 'aria-label': 'Status'},
			h('option', {value: '', text: 'All statuses'}),
			STATUSES.map((s) => h('option', {value: s, text: titleCase(s)})));
		const scenarioSel = h('select', {name: 'scenario', 'aria-label': 'Scenario'},
			h('option', {value: '', text: 'All scenarios'}));
		const modelList = h('datalist', {id: 'model-list'});
		const modelIn = h('input', {
			name: 'model', type: 'search', list: 'model-list', placeholder: 'Any model',
			'aria-label': 'Model', autocomplete: 'off',
		});
		const batchSel = h('select', {name: 'batch', 'aria-label': 'Batch'},
			h('option', {value: '', text: 'All batches'}));
		const clear = h('button', {class: 'btn ghost small', type: 'button', text: 'Clear'});
		const count = h('span', {class: 'count muted'});
		const tbody = h('tbody');
		const table = h('table', {class: 'jobs'},
			h('thead', {}, h('tr', {},
				h('th', {text: 'Status'}), h('th', {text: 'Scenario'}),
				h('th', {text: 'Interviewer → candidate'}), h('th', {class: 'num', text: 'Turns'}),
				h('th', {class: 'num', text: 'Duration'}), h('th', {class: 'num', text: 'Optimizations'}),
				h('th', {class: 'num', text: 'Scores'}), h('th', {class: 'num', text: 'Created'}))),
			tbody);
		const empty = h('div', {class: 'empty', hidden: true});
		const more = h('button', {class: 'btn ghost', type: 'button', text: 'Show more', hidden: true});
		const errSlot = h('div');

		statusSel.value = filters.status;
		modelIn.value = filters.model;
		root.append(h('section', {class: 'page'},
			h('div', {class: 'page-head'},
				h('h1', {text: 'Jobs'}), count, h('div', {class: 'spacer'}),
				h('a', {class: 'btn primary', href: '#/submit', text: 'New job'})),
			h('form', {class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault()},
				statusSel, scenarioSel, modelIn, modelList, batchSel, clear),
			errSlot,
			h('div', {class: 'card table-wrap'}, table, empty),
			h('div', {class: 'row center'}, more)));

		function syncHash() {
			const p = new URLSearchParams();
			for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
			const qs = p.toString();
			history.replaceState(null, '', '#/jobs' + (qs ? '?' + qs : ''));
		}

		function onFilter() {
			filters.status = statusSel.value;
			filters.scenario = scenarioSel.value;
			filters.model = modelIn.value.trim();
			filters.batch = batchSel.value;
			syncHash();
			refresh();
		}
		statusSel.addEventListener('change', onFilter);
		scenarioSel.addEventListener('change', onFilter);
		batchSel.addEventListener('change', onFilter);
		let typing = null;
		modelIn.addEventListener('input', () => {
			clearTimeout(typing);
			typing = setTimeout(onFilter, 300);
		});
		clear.addEventListener('click', () => {
			statusSel.value = '';
			scenarioSel.value = '';
			modelIn.value = '';
			batchSel.value = '';
			onFilter();
		});
		more.addEventListener('click', () => {
			limit = Math.min(500, limit + 50);
			refresh();
		});

		const knownModels = new Set();
		function noteModels(items) {
			let added = false;
			for (const j of items) {
				for (const m of [j.interviewer && j.interviewer.model, j.candidate && j.candidate.model]) {
					if (m && !knownModels.has(m)) {
						knownModels.add(m);
						added = true;
					}
				}
			}
			if (added)
				modelList.replaceChildren(...[...knownModels].sort().map((m) => h('option', {value: m})));
		}

		api('GET', '/v1/scenarios').then((s) => {
			const names = (s.items || []).map((x) => x.name);
			if (filters.scenario && !names.includes(filters.scenario)) names.push(filters.scenario);
			append(scenarioSel, names.map((n) => h('option', {value: n, text: scenarioTitle(n)})));
			scenarioSel.value = filters.scenario;
		}).catch(() => {});
		api('GET', '/v1/batches?limit=100').then((b) => {
			const items = b.items || [];
			if (filters.batch && !items.some((x) => x.id === filters.batch)) items.push({id: filters.batch});
			append(batchSel, items.map((x) => h('option', {value: x.id,
				text: x.created_at ? 'Batch ' + x.id + ' · ' + fmtShortWhen(x.created_at) : 'Batch ' + x.id})));
			batchSel.value = filters.batch;
		}).catch(() => {
			if (filters.batch) {
				append(batchSel, h('option', {value: filters.batch, text: 'Batch ' + filters.batch}));
				batchSel.value = filters.batch;
			}
		});
		(backendsCache ? Promise.resolve(backendsCache) : loadBackends()).then((bs) => {
			noteModels(bs.flatMap((b) => (b.models || []).map((m) => ({interviewer: {model: m}}))));
		});

		function row(job) {
			const secs = jobSeconds(job);
			const m = job.metrics || {};
			const pct = job.max_turns ? Math.min(100, 100 * job.turns_completed / job.max_turns) : 0;
			const link = '#/jobs/' + encodeURIComponent(job.id);
			const tr = h('tr', {dataset: {id: job.id, status: job.status}, class: 'job-row'},
				h('td', {}, statusPill(job.status)),
				h('td', {class: 'scn'},
					h('a', {href: link, class: 'job-link'},
						h('span', {class: 'scn-name', text: scenarioTitle(job.scenario)}),
						h('span', {class: 'mono id', text: job.id})),
					job.error ? h('div', {class: 'row-error', title: job.error.message,
						text: job.error.message}) : null),
				h('td', {class: 'models'},
					h('span', {class: 'model iv', title: 'interviewer on ' + job.interviewer.backend,
						text: job.interviewer.model}),
					h('span', {class: 'arrow', 'aria-hidden': 'true', text: '→'}),
					h('span', {class: 'model cd', title: 'candidate on ' + job.candidate.backend,
						text: job.candidate.model})),
				h('td', {class: 'num turns'},
					h('span', {class: 'turns-text', text: job.turns_completed + ' / ' + job.max_turns}),
					h('span', {class: 'meter', 'aria-hidden': 'true'},
						h('span', {class: 'meter-fill', style: {width: pct.toFixed(0) + '%'}}))),
				h('td', {class: 'num dur', text: secs === null ? '—' : fmtSec(secs)}),
				h('td', {class: 'num opt-count', text: m.optimizations_found === undefined ? '—'
					: fmtNum(m.optimizations_found)}),
				h('td', {class: 'num scores'},
					m.interview_quality === undefined ? '—' : [
						h('span', {class: 'score', title: 'interview quality (of 10)',
							text: fmtScore(m.interview_quality)}),
						h('span', {class: 'score', title: 'candidate engagement (of 10)',
							text: fmtScore(m.candidate_engagement)})]),
				h('td', {class: 'num muted', title: fmtWhen(job.created_at), text: fmtAgo(job.created_at)}));
			tr.addEventListener('click', (e) => {
				if (!e.target.closest('a')) location.hash = link;
			});
			return tr;
		}

		async function refresh() {
			const p = new URLSearchParams({limit: String(limit)});
			for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
			let data;
			try {
				data = await api('GET', '/v1/jobs?' + p.toString());
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
				return;
			}
			errSlot.replaceChildren();
			const items = data.items || [];
			noteModels(items);
			/* a running job that did not change only has its clock moved on */
			syncRows(tbody, rows, items, row, (job, tr) => {
				if (!ACTIVE.has(job.status)) return;
				const secs = jobSeconds(job);
				tr.querySelector('td.dur').textContent = secs === null ? '—' : fmtSec(secs);
			});
			const filtered = Object.values(filters).some(Boolean);
			count.textContent = items.length ? items.length + (data.next_cursor ? '+' : '') + ' shown' : '';
			more.hidden = !data.next_cursor || limit >= 500;
			table.hidden = !items.length;
			empty.hidden = !!items.length;
			empty.replaceChildren(...(filtered
				? [h('p', {text: 'No job matches these filters.'})]
				: [h('p', {text: 'No jobs yet.'}),
					h('a', {class: 'btn primary', href: '#/submit', text: 'Start a conversation'})]));
		}

		refresh();
		const stop = every(POLL_MS, refresh);
		return {destroy: () => {
			stop();
			clearTimeout(typing);
		}};
	}

	/* ---------- batches ---------- */

	const BATCH_DONE = new Set(['finished', 'cancelled']);
	const COUNT_STATES = ['succeeded', 'failed', 'cancelled', 'running', 'queued'];

	function batchDone(b) {
		const c = b.counts || {};
		return (c.succeeded || 0) + (c.failed || 0) + (c.cancelled || 0);
	}

	function batchSize(b) {
		const n = (b.candidates || []).length, m = (b.scenario_names || []).length, r = b.repeat || 1;
		return n + ' candidate' + (n === 1 ? '' : 's') + ' × ' + m + ' scenario' + (m === 1 ? '' : 's')
			+ (r > 1 ? ' × ' + r + ' runs' : '');
	}

	function batchProgressText(b) {
		return batchDone(b) + ' of ' + (b.jobs || 0) + ' done';
	}

	/* One bar, a segment per state (finished states first), widths through the CSSOM. */
	function batchBar(b, cls) {
		const c = b.counts || {}, total = b.jobs || 0;
		return h('span', {class: 'batch-bar ' + (cls || ''), role: 'img',
			'aria-label': batchProgressText(b)},
		COUNT_STATES.filter((k) => k !== 'queued' && c[k]).map((k) => h('span', {
			class: 'seg c-' + k, title: c[k] + ' ' + k,
			style: {width: (total ? 100 * c[k] / total : 0).toFixed(2) + '%'}})));
	}

	function batchesPage(root) {
		const rows = new Map(); /* id -> {tr, sig} */
		const tbody = h('tbody');
		const count = h('span', {class: 'count muted'});
		const table = h('table', {class: 'jobs batches'},
			h('thead', {}, h('tr', {},
				h('th', {text: 'Status'}), h('th', {text: 'Batch'}), h('th', {text: 'Interviewer'}),
				h('th', {text: 'Size'}), h('th', {text: 'Progress'}), h('th', {class: 'num', text: 'Created'}))),
			tbody);
		const empty = h('div', {class: 'empty', hidden: true},
			h('p', {text: 'No batches yet.'}),
			h('p', {class: 'muted small'}, 'Start one with ', h('code', {class: 'mono', text: 'POST /v1/batches'}),
				' (see the README).'));
		const errSlot = h('div');
		root.append(h('section', {class: 'page'},
			h('div', {class: 'page-head'}, h('h1', {text: 'Batches'}), count),
			errSlot, h('div', {class: 'card table-wrap'}, table, empty)));

		function row(b) {
			const link = '#/batches/' + encodeURIComponent(b.id);
			const scn = (b.scenario_names || []).map(scenarioTitle).join(', ');
			const tr = h('tr', {dataset: {id: b.id, status: b.status}, class: 'batch-row'},
				h('td', {}, statusPill(b.status)),
				h('td', {}, h('a', {href: link, class: 'job-link'},
					h('span', {class: 'scn-name', text: scn || 'Batch'}),
					h('span', {class: 'mono id', text: b.id}))),
				h('td', {class: 'models'}, h('span', {class: 'model iv',
					title: 'interviewer on ' + ((b.interviewer || {}).backend || ''),
					text: (b.interviewer || {}).model || '—'})),
				h('td', {class: 'size'}, h('span', {text: batchSize(b)}),
					h('span', {class: 'muted small cands', text: (b.candidates || []).map((c) => c.model).join(', ')})),
				h('td', {class: 'progress'},
					h('span', {class: 'progress-text', text: batchProgressText(b)}), batchBar(b)),
				h('td', {class: 'num muted', title: fmtWhen(b.created_at), text: fmtAgo(b.created_at)}));
			tr.addEventListener('click', (e) => {
				if (!e.target.closest('a')) location.hash = link;
			});
			return tr;
		}

		let active = true, last = 0;
		async function refresh() {
			/* every 2 s while a batch runs; otherwise now and then, to see new ones */
			if (!active && Date.now() - last < 10000) return;
			last = Date.now();
			let data;
			try {
				data = await api('GET', '/v1/batches?limit=100');
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
				return;
			}
			errSlot.replaceChildren();
			const items = data.items || [];
			active = items.some((b) => !BATCH_DONE.has(b.status));
			syncRows(tbody, rows, items, row);
			count.textContent = items.length ? items.length + (data.next_cursor ? '+' : '') + ' shown' : '';
			table.hidden = !items.length;
			empty.hidden = !!items.length;
		}

		refresh();
		const stop = every(POLL_MS, refresh);
		return {destroy: stop};
	}

	function batchPage(root, id) {
		const enc = encodeURIComponent(id);
		const st = {batch: null, cancel: null, stop: null, destroyed: false, gone: false};
		const head = h('header', {class: 'job-head card batch-head'});
		const rankBox = h('section', {class: 'card rankings-card', hidden: true});
		const chartBox = h('section', {class: 'card tradeoff-card', hidden: true});
		const convBox = h('section', {class: 'card conversations-card', hidden: true});
		const errSlot = h('div');
		root.append(h('section', {class: 'page batch', dataset: {batch: id}},
			h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
				h('a', {href: '#/batches', text: 'Batches'}), h('span', {text: '/'}),
				h('span', {class: 'mono', text: id})),
			errSlot, head, rankBox, chartBox, convBox));

		const fact = (label, value, cls) => h('div', {class: 'fact ' + (cls || '')},
			h('dt', {text: label}), h('dd', {text: value}));
		const pct = (v) => v === null || v === undefined ? '—' : Math.round(100 * v) + '%';

		function renderHead() {
			const b = st.batch;
			const sm = b.summary_metrics || {};
			const c = b.counts || {};
			const running = !BATCH_DONE.has(b.status);
			const links = b.links || {};
			const actions = h('div', {class: 'actions'},
				h('a', {class: 'btn ghost small', href: '#/jobs?batch=' + enc, text: 'Jobs'}),
				h('a', {class: 'btn ghost small', href: links.report || '/v1/batches/' + enc + '/report.md',
					target: '_blank', rel: 'noopener', text: 'report.md'}),
				h('a', {class: 'btn ghost small', href: links.self || '/v1/batches/' + enc,
					target: '_blank', rel: 'noopener', text: 'JSON'}),
				st.pick = st.pick || comparePicker(),
				running ? (st.cancel = st.cancel || cancelButton('Cancel this batch?', cancelBatch)) : null);
			const iv = b.interviewer || {};
			head.replaceChildren(
				h('div', {class: 'title-row'},
					h('h1', {text: 'Batch'}), h('span', {class: 'mono muted', text: b.id}), statusPill(b.status),
					h('div', {class: 'spacer'}), actions),
				h('div', {class: 'matchup'},
					h('span', {class: 'who iv'}, h('span', {class: 'role', text: 'Interviewer'}),
						h('span', {class: 'mono', text: iv.model || '—'}),
						h('span', {class: 'muted', text: '@ ' + (iv.backend || '')})),
					h('span', {class: 'vs', 'aria-hidden': 'true', text: '⇄'}),
					(b.candidates || []).map((x) => h('span', {class: 'who cd'},
						h('span', {class: 'role', text: 'Candidate'}),
						h('span', {class: 'mono', text: x.model}),
						h('span', {class: 'muted', text: '@ ' + x.backend})))),
				h('div', {class: 'batch-progress'},
					h('div', {class: 'progress-line'},
						h('strong', {class: 'progress-text', text: batchProgressText(b)}),
						h('span', {class: 'muted', text: batchSize(b) + ' · '
							+ (b.scenario_names || []).map(scenarioTitle).join(', ')})),
					batchBar(b, 'wide'),
					h('ul', {class: 'state-counts'}, ['queued', 'running', 'succeeded', 'failed', 'cancelled']
						.map((k) => h('li', {class: 'c-' + k, dataset: {state: k}},
							h('i', {class: 'sw', 'aria-hidden': 'true'}),
							h('span', {class: 'n', text: String(c[k] || 0)}), ' ' + k)))),
				h('dl', {class: 'facts'},
					fact('Optimizations', fmtNum(sm.total_optimizations_discovered)),
					fact('Interview quality', fmtScore(sm.average_interview_quality)),
					fact('Engagement', fmtScore(sm.average_candidate_engagement)),
					fact('Success rate', pct(sm.success_rate)),
					fact('Turns', String(b.max_turns || '—')),
					fact('Scoring', b.scoring || '—'),
					fact('Created', fmtShortWhen(b.created_at)),
					fact(b.finished_at || b.cancelled_at ? 'Finished' : 'Duration',
						b.finished_at || b.cancelled_at ? fmtShortWhen(b.finished_at || b.cancelled_at)
							: fmtSec((Date.now() - (parseTime(b.created_at) || Date.now())) / 1000))));
		}

		function renderRankings() {
			const b = st.batch;
			const ranks = b.rankings || [];
			const perf = Object.values((b.summary_metrics || {}).model_performance || {});
			rankBox.hidden = false;
			const num = (v, cls) => h('td', {class: 'num ' + (cls || ''), text: v});
			const body = ranks.length ? h('div', {class: 'table-wrap'}, h('table', {class: 'jobs rankings'},
				h('thead', {}, h('tr', {},
					h('th', {class: 'num', text: 'Rank'}), h('th', {text: 'Model'}),
					h('th', {class: 'num', text: 'Conversations'}), h('th', {class: 'num', text: 'Optimizations'}),
					h('th', {class: 'num', text: 'Interview quality'}), h('th', {class: 'num', text: 'Engagement'}),
					h('th', {class: 'num', text: 'Success'}), h('th', {class: 'num', text: 'Median turn'}),
					h('th', {class: 'num', text: 'p90 turn'}), h('th', {class: 'num', text: 'Median TTFT'}),
					h('th', {class: 'num', text: 'Tokens/s'}))),
				h('tbody', {}, ranks.map((r) => {
					const p = perf.find((x) => x.model === r.model && x.backend === r.backend) || {};
					const lat = p.latency || {};
					const ended = (r.succeeded || 0) + (r.failed || 0) + (r.cancelled || 0);
					return h('tr', {dataset: {model: r.model, rank: r.rank}},
						num(String(r.rank), 'rank'),
						h('td', {class: 'models'}, h('span', {class: 'model cd', text: r.model}),
							h('span', {class: 'muted small', text: ' @ ' + (r.backend || '')})),
						h('td', {class: 'num', title: ended + ' ended: ' + (r.succeeded || 0) + ' succeeded, '
							+ (r.failed || 0) + ' failed, ' + (r.cancelled || 0) + ' cancelled',
						text: fmtNum(r.conversations) + (r.failed ? ' (' + r.failed + ' failed)' : '')}),
						num(fmtNum(r.total_optimizations), 'opt-count'),
						num(fmtScore(r.avg_quality)), num(fmtScore(r.avg_engagement)),
						num(pct(r.success_rate)),
						num(fmtSec(lat.median_turn_s)), num(fmtSec(lat.p90_turn_s)),
						num(fmtMs(lat.median_ttft_ms)), num(fmtNum(lat.tokens_per_s, 1)));
				})))) : h('p', {class: 'muted pad', text: 'Rankings appear as conversations end.'});
			rankBox.replaceChildren(
				h('div', {class: 'card-head'}, h('h2', {text: 'Rankings'}),
					h('span', {class: 'badge', text: ranks.length ? String(ranks.length) : ''})),
				body,
				b.ranking_rule ? h('p', {class: 'rule muted small'}, h('strong', {text: 'Ranking rule: '}),
					b.ranking_rule) : null);
		}

		function renderConversations() {
			const convs = st.batch.conversations || [];
			convBox.hidden = !convs.length;
			convBox.replaceChildren(
				h('div', {class: 'card-head'}, h('h2', {text: 'Conversations'}),
					h('span', {class: 'badge', text: String(convs.length)})),
				h('div', {class: 'table-wrap'}, h('table', {class: 'jobs convs'},
					h('thead', {}, h('tr', {},
						h('th', {text: 'Status'}), h('th', {text: 'Candidate'}), h('th', {text: 'Scenario'}),
						h('th', {class: 'num', text: 'Run'}), h('th', {class: 'num', text: 'Turns'}),
						h('th', {class: 'num', text: 'Optimizations'}), h('th', {class: 'num', text: 'Scores'}))),
					h('tbody', {}, convs.map((cv) => {
						const m = cv.success_metrics || {};
						const link = '#/jobs/' + encodeURIComponent(cv.job_id);
						const tr = h('tr', {dataset: {id: cv.job_id, status: cv.status}},
							h('td', {}, statusPill(cv.status)),
							h('td', {class: 'models'}, h('span', {class: 'model cd', text: cv.candidate_model})),
							h('td', {}, h('a', {href: link, text: scenarioTitle(cv.scenario_name)})),
							h('td', {class: 'num', text: String(cv.run || 1)}),
							h('td', {class: 'num', text: m.turns_completed + ' / ' + (st.batch.max_turns || '—')}),
							h('td', {class: 'num opt-count', text: cv.optimizations_found === null
								|| cv.optimizations_found === undefined ? '—' : fmtNum(cv.optimizations_found)}),
							h('td', {class: 'num scores'}, m.interview_quality === null || m.interview_quality === undefined
								? '—' : [h('span', {class: 'score', title: 'interview quality (of 10)',
									text: fmtScore(m.interview_quality)}),
								h('span', {class: 'score', title: 'candidate engagement (of 10)',
									text: fmtScore(m.candidate_engagement)})]));
						tr.addEventListener('click', (e) => {
							if (!e.target.closest('a')) location.hash = link;
						});
						return tr;
					})))));
		}

		/* Quality against median turn time, one point per candidate. */
		function renderChart() {
			const b = st.batch;
			const pts = tradeoffPoints(b);
			chartBox.hidden = !pts.length;
			if (!pts.length) return;
			const spread = (b.repeat || 1) > 1;
			chartBox.replaceChildren(
				h('div', {class: 'card-head'}, h('h2', {text: 'Quality and speed'}),
					h('span', {class: 'muted small', text: 'interview quality against the candidate\'s median turn time'
						+ (spread ? '; bars span its conversations\' lowest to highest' : '')})),
				h('div', {class: 'chart'}, tradeoffChart(pts, Math.min(1100, (chartBox.clientWidth || 760) - 32))),
				h('div', {class: 'legend'},
					h('span', {}, h('i', {class: 'sw pt'}), 'candidate (mean of its conversations)'),
					spread ? h('span', {}, h('i', {class: 'sw whisk'}), 'lowest to highest of its conversations') : null,
					h('span', {}, h('i', {class: 'sw best'}), 'ranked first'),
					h('span', {class: 'hint', text: 'up and to the left is better'})));
		}

		/* Another batch to compare with: the list is read when the picker is first used. */
		function comparePicker() {
			const sel = h('select', {class: 'compare-pick small', 'aria-label': 'Compare with another batch'},
				h('option', {value: '', text: 'Compare with…'}));
			let loaded = false;
			const fill = async () => {
				if (loaded) return;
				loaded = true;
				try {
					const data = await api('GET', '/v1/batches?limit=100');
					for (const o of data.items || []) {
						if (o.id === id) continue;
						const cands = (o.candidates || []).map((c) => c.model).join(', ');
						sel.append(h('option', {value: o.id, text: o.id + ' · ' + cands + ' · ' + fmtAgo(o.created_at)}));
					}
				} catch (e) {
					loaded = false;
				}
			};
			sel.addEventListener('focus', fill);
			sel.addEventListener('pointerdown', fill);
			sel.addEventListener('change', () => {
				if (sel.value) location.hash = '#/batches/' + enc + '/compare/' + encodeURIComponent(sel.value);
			});
			fill();
			return sel;
		}

		async function cancelBatch() {
			try {
				await api('POST', '/v1/batches/' + enc + '/cancel');
			} catch (e) {
				if (e.status !== 409) errSlot.replaceChildren(errorBox(e));
			}
			await load();
			return true;
		}

		async function load() {
			try {
				st.batch = await api('GET', '/v1/batches/' + enc);
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
				if (!st.batch) head.hidden = true;
				if (e.status === 404) {
					st.gone = true;
					if (st.stop) st.stop();
					st.stop = null;
				}
				return;
			}
			if (st.destroyed) return;
			errSlot.replaceChildren();
			head.hidden = false;
			renderHead();
			renderRankings();
			renderChart();
			renderConversations();
			if (BATCH_DONE.has(st.batch.status) && st.stop) {
				st.stop();
				st.stop = null;
			}
		}

		head.hidden = true;
		load().then(() => {
			if (!st.destroyed && !st.gone && !(st.batch && BATCH_DONE.has(st.batch.status)))
				st.stop = every(POLL_MS, load);
		});
		return {destroy: () => {
			st.destroyed = true;
			if (st.stop) st.stop();
		}};
	}

	/* ---------- batch charts ---------- */

	/*
	 * One point per candidate that has a median turn time: its mean interview
	 * quality over the conversations that succeeded, and with repeats, the
	 * lowest and highest of them.
	 */
	function tradeoffPoints(b) {
		const perf = (b.summary_metrics || {}).model_performance || {};
		const convs = b.conversations || [];
		const pts = [];
		for (const [label, p] of Object.entries(perf)) {
			const lat = p.latency || {};
			if (typeof lat.median_turn_s !== 'number' || typeof p.avg_quality !== 'number') continue;
			const qs = convs.filter((c) => c.candidate === label && c.status === 'succeeded')
				.map((c) => (c.success_metrics || {}).interview_quality).filter((v) => typeof v === 'number');
			pts.push({
				label, rank: p.rank, x: lat.median_turn_s, p90: lat.p90_turn_s, y: p.avg_quality,
				lo: qs.length ? Math.min(...qs) : p.avg_quality, hi: qs.length ? Math.max(...qs) : p.avg_quality,
				runs: qs.length, engagement: p.avg_engagement, optims: p.total_optimizations,
			});
		}
		return pts;
	}

	/*
	 * A scatter of quality (0 to 10, up) against median turn time (right), in
	 * SVG. A point with `from` ({x, y}: where it was in another batch) is drawn
	 * as a move, from a hollow dot to a full one.
	 */
	function tradeoffChart(pts, width) {
		const W = Math.max(320, Math.round(width || 640)), H = 300;
		const left = 48, right = 24, top = 16, bottom = 42;
		const maxX = Math.max(0.001, ...pts.map((p) => Math.max(p.x, p.from ? p.from.x : 0)));
		const step = niceStep(maxX * 1.1, 5);
		const spanX = Math.ceil(maxX * 1.1 / step) * step;
		const x = (s) => left + (W - left - right) * (s / spanX);
		const y = (q) => top + (H - top - bottom) * (1 - Math.max(0, Math.min(10, q)) / 10);
		const g = svg('svg', {
			class: 'tradeoff', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
			'aria-label': 'Interview quality against median turn time, one point per candidate',
		});
		for (let q = 0; q <= 10; q += 2)
			g.append(svg('line', {class: 'grid', x1: left, x2: W - right, y1: y(q), y2: y(q)}),
				svg('text', {class: 'tick', x: left - 8, y: y(q) + 3, 'text-anchor': 'end', text: String(q)}));
		for (let v = 0; v <= spanX + 1e-9; v += step)
			g.append(svg('line', {class: 'grid', x1: x(v), x2: x(v), y1: top, y2: H - bottom}),
				svg('text', {class: 'tick', x: x(v), y: H - bottom + 14, 'text-anchor': 'middle', text: fmtTick(v * 1000)}));
		g.append(svg('text', {class: 'axis', x: (left + W - right) / 2, y: H - 6, 'text-anchor': 'middle',
			text: 'median turn time of the candidate'}),
		svg('text', {class: 'axis', x: 12, y: (top + H - bottom) / 2, 'text-anchor': 'middle',
			transform: 'rotate(-90 12 ' + (top + H - bottom) / 2 + ')', text: 'interview quality'}));
		const sorted = [...pts].sort((a, b) => a.x - b.x);
		sorted.forEach((p, i) => {
			const px = x(p.x), py = y(p.y);
			const pt = svg('g', {class: 'pt' + (p.rank === 1 ? ' best' : ''), dataset: {candidate: p.label}});
			const tip = p.label + (p.from ? ' in B' : '') + (p.rank ? ' · rank ' + p.rank : '')
				+ '\ninterview quality ' + fmtScore(p.y)
				+ (p.runs > 1 ? ' (runs: ' + fmtScore(p.lo) + ' to ' + fmtScore(p.hi) + ')' : '')
				+ (p.engagement !== undefined ? '\nengagement ' + fmtScore(p.engagement) : '')
				+ (p.optims !== undefined ? ' · ' + fmtNum(p.optims) + ' optimizations' : '')
				+ '\nmedian turn ' + fmtSec(p.x) + (typeof p.p90 === 'number' ? ' · p90 ' + fmtSec(p.p90) : '');
			if (p.from)
				pt.append(svg('line', {class: 'move', x1: x(p.from.x), y1: y(p.from.y), x2: px, y2: py}),
					svg('circle', {class: 'from', cx: x(p.from.x), cy: y(p.from.y), r: 5},
						svg('title', {text: p.label + ' in A\ninterview quality ' + fmtScore(p.from.y)
							+ '\nmedian turn ' + fmtSec(p.from.x)})));
			if (p.runs > 1 && p.hi > p.lo)
				pt.append(svg('line', {class: 'spread', x1: px, x2: px, y1: y(p.hi), y2: y(p.lo)}),
					svg('line', {class: 'spread cap', x1: px - 5, x2: px + 5, y1: y(p.hi), y2: y(p.hi)}),
					svg('line', {class: 'spread cap', x1: px - 5, x2: px + 5, y1: y(p.lo), y2: y(p.lo)}));
			/* labels alternate above and below, so neighbours do not cover each other */
			const above = i % 2 === 0;
			pt.append(svg('circle', {class: 'dot', cx: px, cy: py, r: 6}, svg('title', {text: tip})),
				svg('text', {class: 'lbl', x: Math.min(px + 9, W - right - 4), y: above ? py - 9 : py + 17,
					'text-anchor': px + 9 > W - right - 120 ? 'end' : 'start', text: p.label}));
			g.append(pt);
		});
		return g;
	}

	/* ---------- two batches compared ---------- */

	/* What each figure of a comparison is, and which way is better (1 up, -1 down, 0 neither). */
	const CMP_FIGURES = {
		total_conversations: ['Conversations', 'int', 0],
		conversations: ['Conversations', 'int', 0],
		/* totals grow with the batch's size, so neither way is better */
		total_optimizations_discovered: ['Optimizations', 'int', 0],
		total_optimizations: ['Optimizations', 'int', 0],
		optimizations_found: ['Optimizations', 'score', 1],
		average_interview_quality: ['Interview quality', 'score', 1],
		avg_quality: ['Interview quality', 'score', 1],
		interview_quality: ['Interview quality', 'score', 1],
		average_candidate_engagement: ['Engagement', 'score', 1],
		avg_engagement: ['Engagement', 'score', 1],
		candidate_engagement: ['Engagement', 'score', 1],
		success_rate: ['Success rate', 'pct', 1],
		rank: ['Rank', 'int', -1],
		median_turn_s: ['Median turn', 'sec', -1],
		p90_turn_s: ['p90 turn', 'sec', -1],
		median_ttft_ms: ['Median TTFT', 'ms', -1],
		tokens_per_s: ['Tokens/s', 'rate', 1],
		total_duration: ['Duration', 'sec', -1],
		interviewer_median_turn_s: ['Interviewer median turn', 'sec', -1],
		interviewer_p90_turn_s: ['Interviewer p90 turn', 'sec', -1],
		interviewer_median_ttft_ms: ['Interviewer median TTFT', 'ms', -1],
		interviewer_tokens_per_s: ['Interviewer tokens/s', 'rate', 1],
	};

	function fmtFigure(kind, v) {
		if (v === null || v === undefined) return '—';
		if (kind === 'int') return fmtNum(v);
		if (kind === 'score') return fmtScore(v);
		if (kind === 'pct') return Math.round(100 * v) + '%';
		if (kind === 'sec') return fmtSec(v);
		if (kind === 'ms') return fmtMs(v);
		return fmtNum(v, 1);
	}

	function fmtDelta(kind, d) {
		if (d === null || d === undefined) return '';
		const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
		const m = Math.abs(d);
		if (kind === 'pct') return sign + Math.round(100 * m) + ' pts';
		if (kind === 'sec') return sign + fmtSec(m);
		if (kind === 'ms') return sign + fmtMs(m);
		return sign + (kind === 'int' ? fmtNum(m) : kind === 'score' ? fmtScore(m) : fmtNum(m, 1));
	}

	/* One compared figure {a, b, delta} as "a → b" and the change, coloured by which way is better. */
	function cmpCell(key, v) {
		const [, kind, better] = CMP_FIGURES[key] || [key, 'score', 0];
		v = v || {};
		const d = v.delta;
		const shown = [fmtFigure(kind, v.a), fmtFigure(kind, v.b)];
		/* a change too small to show is no change */
		const tone = d === null || d === undefined || !better || shown[0] === shown[1] ? 'same'
			: d * better > 0 ? 'better' : 'worse';
		return h('td', {class: 'num cmp', dataset: {figure: key}},
			h('span', {class: 'ab', text: shown[0] + ' → ' + shown[1]}),
			h('span', {class: 'delta ' + tone,
				text: d !== null && d !== undefined && shown[0] === shown[1] ? '±0' : fmtDelta(kind, d)}));
	}

	function cmpTable(cls, nameHead, rows, nameOf, keys) {
		return h('div', {class: 'table-wrap'}, h('table', {class: 'jobs cmp ' + cls},
			h('thead', {}, h('tr', {}, h('th', {text: nameHead}),
				keys.map((k) => h('th', {class: 'num', text: (CMP_FIGURES[k] || [k])[0]})))),
			h('tbody', {}, rows.map((r) => h('tr', {dataset: {name: nameOf(r)}},
				h('td', {class: 'models'}, nameOf(r)), keys.map((k) => cmpCell(k, r[k])))))));
	}

	function comparePage(root, a, b) {
		const ea = encodeURIComponent(a), eb = encodeURIComponent(b);
		const errSlot = h('div');
		const body = h('div');
		root.append(h('section', {class: 'page compare', dataset: {a, b}},
			h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
				h('a', {href: '#/batches', text: 'Batches'}), h('span', {text: '/'}),
				h('a', {class: 'mono', href: '#/batches/' + ea, text: a}), h('span', {text: '/'}),
				h('span', {text: 'compared with'}), h('span', {text: '/'}),
				h('a', {class: 'mono', href: '#/batches/' + eb, text: b})),
			errSlot, body));

		const side = (tag, ref) => h('div', {class: 'side-ref'},
			h('span', {class: 'tag', text: tag}),
			h('a', {class: 'mono', href: '#/batches/' + encodeURIComponent(ref.id), text: ref.id}),
			statusPill(ref.status),
			h('span', {class: 'muted small', text: 'interviewer ' + ((ref.interviewer || {}).model || '—')
				+ ' · ' + (ref.scoring || '') + ' · ' + fmtShortWhen(ref.created_at)}));

		function render(c) {
			const overallKeys = Object.keys(c.overall || {});
			const models = c.models || [];
			const scenarios = c.scenarios || [];
			const pairs = c.pairs || [];
			const modelKeys = ['total_optimizations', 'avg_quality', 'avg_engagement', 'success_rate', 'rank',
				'median_turn_s', 'median_ttft_ms', 'tokens_per_s'];
			const num = (v) => (typeof v === 'number' ? v : null);
			const moves = models.filter((r) => num((r.avg_quality || {}).b) !== null && num((r.median_turn_s || {}).b) !== null)
				.map((r) => {
					const qa = num((r.avg_quality || {}).a), ta = num((r.median_turn_s || {}).a);
					return {label: r.model, x: r.median_turn_s.b, y: r.avg_quality.b, runs: 0,
						from: qa !== null && ta !== null ? {x: ta, y: qa} : null};
				});
			const only = (o, tag) => {
				const m = (o || {}).models || [], s = (o || {}).scenarios || [];
				if (!m.length && !s.length) return null;
				return h('p', {class: 'muted small only'}, h('strong', {text: 'Only in ' + tag + ': '}),
					[...m.map((x) => 'candidate ' + x), ...s.map((x) => 'scenario ' + scenarioTitle(x))].join(', '));
			};
			body.replaceChildren(
				h('header', {class: 'job-head card cmp-head'},
					h('div', {class: 'title-row'}, h('h1', {text: 'Two batches compared'}),
						h('div', {class: 'spacer'}),
						h('div', {class: 'actions'},
							h('a', {class: 'btn ghost small', href: '#/batches/' + eb + '/compare/' + ea, text: 'Swap'}),
							h('a', {class: 'btn ghost small', href: '/v1/batches/' + ea + '/compare/' + eb + '.md',
								target: '_blank', rel: 'noopener', text: 'Markdown'}),
							h('a', {class: 'btn ghost small', href: '/v1/batches/' + ea + '/compare/' + eb,
								target: '_blank', rel: 'noopener', text: 'JSON'}))),
					h('div', {class: 'sides'}, side('A', c.a || {id: a}), side('B', c.b || {id: b})),
					h('p', {class: 'muted small', text: 'Each figure reads A → B; the change is B − A, green where B is better.'}),
					only(c.only_in_a, 'A'), only(c.only_in_b, 'B')),
				h('section', {class: 'card cmp-overall'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Overall'})),
					h('div', {class: 'table-wrap'}, h('table', {class: 'jobs cmp overall'},
						h('tbody', {}, overallKeys.map((k) => h('tr', {dataset: {name: k}},
							h('th', {text: (CMP_FIGURES[k] || [k])[0]}), cmpCell(k, c.overall[k]))))))),
				moves.length ? h('section', {class: 'card tradeoff-card cmp-chart'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Quality and speed, A → B'}),
						h('span', {class: 'muted small', text: 'each candidate\'s interview quality against its median turn time'})),
					h('div', {class: 'chart'}, tradeoffChart(moves, Math.min(1100, (body.clientWidth || 760) - 32))),
					h('div', {class: 'legend'},
						h('span', {}, h('i', {class: 'sw from'}), 'in A'),
						h('span', {}, h('i', {class: 'sw pt'}), 'in B'),
						h('span', {class: 'hint', text: 'up and to the left is better'}))) : null,
				h('section', {class: 'card cmp-models'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Candidates in both'}),
						h('span', {class: 'badge', text: String(models.length)})),
					models.length ? cmpTable('models', 'Candidate', models, (r) => r.model, modelKeys)
						: h('p', {class: 'muted pad', text: 'The two batches have no candidate in common.'})),
				scenarios.length ? h('section', {class: 'card cmp-scenarios'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Scenarios in both'})),
					cmpTable('scenarios', 'Scenario', scenarios, (r) => scenarioTitle(r.scenario),
						['conversations', 'total_optimizations', 'avg_quality', 'avg_engagement', 'success_rate'])) : null,
				pairs.length ? h('section', {class: 'card cmp-pairs'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Candidate × scenario'})),
					cmpTable('pairs', 'Candidate · scenario', pairs, (r) => r.model + ' · ' + scenarioTitle(r.scenario),
						['optimizations_found', 'interview_quality', 'candidate_engagement', 'total_duration'])) : null);
		}

		let stop = null, destroyed = false;
		async function load() {
			let c;
			try {
				c = await api('GET', '/v1/batches/' + ea + '/compare/' + eb);
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
				if (stop) stop();
				stop = null;
				return;
			}
			if (destroyed) return;
			errSlot.replaceChildren();
			render(c);
			/* a batch that still runs changes the figures: follow it until both have ended */
			const done = BATCH_DONE.has((c.a || {}).status) && BATCH_DONE.has((c.b || {}).status);
			if (done && stop) {
				stop();
				stop = null;
			} else if (!done && !stop) stop = every(POLL_MS, load);
		}
		load();
		return {destroy: () => {
			destroyed = true;
			if (stop) stop();
		}};
	}

	/* ---------- a job ---------- */

	/* Allowed tags and attributes of a rendered turn; everything else goes. */
	const ALLOWED = {
		p: [], h1: [], h2: [], h3: [], h4: [], h5: [], h6: [], ul: [], ol: ['start'], li: [],
		blockquote: [], pre: [], code: ['class'], em: [], strong: [], del: [], hr: [], br: [],
		a: ['href', 'title'], img: ['src', 'alt', 'title'], table: [], thead: [], tbody: [],
		tr: [], th: [], td: [],
	};
	const SAFE_URL = /^(https?:|mailto:|#|\/(?!\/))/i;

	/* The server's HTML for a turn as a fragment, filtered once more in an inert template. */
	function safeFragment(html) {
		const t = document.createElement('template');
		t.innerHTML = html;
		const all = [...t.content.querySelectorAll('*')];
		for (const el of all) {
			const tag = el.localName;
			if (!Object.prototype.hasOwnProperty.call(ALLOWED, tag)) {
				/* unknown markup keeps its text, never its behaviour */
				if (['script', 'style', 'iframe', 'object', 'embed', 'template', 'noscript'].includes(tag))
					el.remove();
				else el.replaceWith(document.createTextNode(el.textContent));
				continue;
			}
			for (const a of [...el.attributes]) {
				const name = a.name.toLowerCase();
				const ok = ALLOWED[tag].includes(name);
				const url = name === 'href' || name === 'src';
				if (!ok || (url && !SAFE_URL.test(a.value.trim()))) el.removeAttribute(a.name);
			}
			if (tag === 'a') {
				el.setAttribute('rel', 'noopener noreferrer nofollow');
				el.setAttribute('target', '_blank');
			}
		}
		return t.content;
	}

	/*
	 * A turn's timing in segments (ms): waiting before the prompt is processed
	 * (queue, model load, network), prompt processing, generation. The first two
	 * make the time to first token; the three make the wall time.
	 */
	function segments(m) {
		const wall = Math.max(0, m.wall_ms || 0);
		const ttft = m.ttft_ms === null || m.ttft_ms === undefined ? null : Math.min(m.ttft_ms, wall || m.ttft_ms);
		let prompt = m.prompt_ms || 0;
		if (ttft !== null) {
			prompt = Math.min(prompt, ttft);
			return {wait: ttft - prompt, prompt, gen: Math.max(0, wall - ttft), ttft, wall};
		}
		prompt = Math.min(prompt, wall);
		return {wait: 0, prompt, gen: Math.max(0, wall - prompt), ttft: null, wall};
	}

	function niceStep(max, ticks) {
		const raw = max / Math.max(1, ticks);
		const mag = Math.pow(10, Math.floor(Math.log10(raw)));
		for (const f of [1, 2, 2.5, 5, 10]) if (raw <= f * mag) return f * mag;
		return 10 * mag;
	}

	/* rows: [{turn, speaker, seg, tps, tokens, live, label}] */
	function timingChart(rows, width) {
		const W = Math.max(300, Math.round(width || 480)), left = 62, right = 126, rowH = 28, barH = 16, top = 8, axis = 22;
		const H = top + rows.length * rowH + axis;
		const max = Math.max(1, ...rows.map((r) => r.seg.wait + r.seg.prompt + r.seg.gen));
		const step = niceStep(max, 4);
		const span = Math.ceil(max / step) * step;
		const x = (ms) => left + (W - left - right) * (ms / span);
		const g = svg('svg', {
			class: 'timing', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
			'aria-label': 'Time per turn: waiting, prompt processing and generation',
		});
		for (let v = 0; v <= span + 1e-9; v += step) {
			const xx = x(v);
			g.append(svg('line', {class: 'grid', x1: xx, x2: xx, y1: top - 4, y2: H - axis + 2}),
				svg('text', {class: 'tick', x: xx, y: H - 6, 'text-anchor': 'middle', text: fmtTick(v)}));
		}
		rows.forEach((r, i) => {
			const y = top + i * rowH + (rowH - barH) / 2;
			const cy = y + barH / 2;
			const row = svg('g', {class: 'trow ' + r.speaker + (r.live ? ' live' : ''), dataset: {turn: r.turn}});
			row.append(
				svg('circle', {class: 'who', cx: 10, cy, r: 4}),
				svg('text', {class: 'lbl', x: 20, y: cy + 4, text: 'Turn ' + r.turn}));
			let at = 0;
			for (const [k, cls] of [['wait', 'seg-wait'], ['prompt', 'seg-prompt'], ['gen', 'seg-gen']]) {
				const w = x(at + r.seg[k]) - x(at);
				if (r.seg[k] > 0 && w > 0.2) {
					row.append(svg('rect', {class: 'seg ' + cls, x: x(at), y, width: w, height: barH, rx: 2},
						svg('title', {text: segTitle(r, k)})));
				}
				at += r.seg[k];
			}
			if (r.seg.ttft !== null && r.seg.ttft > 0)
				row.append(svg('line', {class: 'ttft-mark', x1: x(r.seg.ttft), x2: x(r.seg.ttft), y1: y - 2, y2: y + barH + 2}));
			row.append(svg('text', {class: 'val', x: W - right + 8, y: cy + 4, text: r.label}));
			g.append(row);
		});
		return g;
	}

	function segTitle(r, k) {
		const s = r.seg;
		const head = 'Turn ' + r.turn + ' · ' + r.speaker + '\n';
		if (k === 'wait') return head + 'waiting (queue, model load, network): ' + fmtMs(s.wait)
			+ (s.ttft !== null ? '\ntime to first token: ' + fmtMs(s.ttft) : '');
		if (k === 'prompt') return head + 'prompt processing: ' + fmtMs(s.prompt)
			+ (s.ttft !== null ? '\ntime to first token: ' + fmtMs(s.ttft) : '');
		return head + 'generation: ' + fmtMs(s.gen)
			+ (r.tokens ? '\n' + fmtNum(r.tokens) + ' tokens' : '')
			+ (r.tps ? ' at ' + fmtNum(r.tps, 1) + ' tok/s' : '');
	}

	function jobPage(root, id) {
		const st = {
			job: null, transcript: null,
			turns: new Map(),   /* turn -> finished conversation item */
			live: null,         /* {turn, speaker, model, el, text, startedAt, firstAt} */
			es: null, esFailures: 0, stopPoll: null, clock: null, destroyed: false,
		};
		const enc = encodeURIComponent(id);
		const head = h('header', {class: 'job-head card'});
		const chat = h('div', {class: 'chat', 'aria-live': 'polite'});
		const chartBox = h('div', {class: 'chart'});
		const optBox = h('div', {class: 'optims'});
		const optCount = h('span', {class: 'badge'});
		const scoreBox = h('section', {class: 'card scores-card', hidden: true});
		const scnBox = h('section', {class: 'card scenario-card', hidden: true});
		const trialsBox = h('section', {class: 'card trials-card', hidden: true});
		const errSlot = h('div');
		const legend = h('div', {class: 'legend'},
			h('span', {}, h('i', {class: 'sw seg-wait'}), 'waiting · load'),
			h('span', {}, h('i', {class: 'sw seg-prompt'}), 'prompt processing'),
			h('span', {}, h('i', {class: 'sw seg-gen'}), 'generation'),
			h('span', {}, h('i', {class: 'sw ttft'}), 'first token'));

		root.append(h('section', {class: 'page job', dataset: {job: id}},
			h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'},
				h('a', {href: '#/jobs', text: 'Jobs'}), h('span', {text: '/'}),
				h('span', {class: 'mono', text: id})),
			errSlot, head,
			h('div', {class: 'job-grid'},
				h('section', {class: 'card conversation'},
					h('div', {class: 'card-head'}, h('h2', {text: 'Conversation'})), chat),
				h('aside', {class: 'side'},
					h('section', {class: 'card timing-card'},
						h('div', {class: 'card-head'}, h('h2', {text: 'Timing per turn'})), chartBox, legend),
					h('section', {class: 'card optims-card'},
						h('div', {class: 'card-head'}, h('h2', {text: 'Optimizations'}), optCount), optBox),
					trialsBox, scoreBox, scnBox))));

		/* ----- header ----- */

		/* The job's metrics, or while it runs, what its finished turns add up to. */
		function headMetrics(j) {
			if (j.metrics) return j.metrics;
			const ms = [...st.turns.values()].map((t) => t.metrics || {});
			if (!ms.length) return {};
			const sum = (k) => ms.some((x) => typeof x[k] === 'number')
				? ms.reduce((a, x) => a + (x[k] || 0), 0) : undefined;
			const ttfts = ms.map((x) => x.ttft_ms).filter((v) => typeof v === 'number');
			return {
				mean_ttft_ms: ttfts.length ? ttfts.reduce((a, b) => a + b, 0) / ttfts.length : undefined,
				prompt_tokens: sum('prompt_tokens'), completion_tokens: sum('completion_tokens'),
			};
		}

		function renderHead() {
			const j = st.job;
			if (!j) return;
			const m = headMetrics(j);
			const secs = jobSeconds(j);
			const active = ACTIVE.has(j.status);
			const links = j.links || {}; /* a status event may carry the job without its links */
			const actions = h('div', {class: 'actions'},
				j.batch ? h('a', {class: 'btn ghost small batch-link', href: '#/batches/' + encodeURIComponent(j.batch),
					title: 'the batch this conversation belongs to', text: 'Batch ' + j.batch}) : null,
				h('a', {class: 'btn ghost small', href: links.transcript || '/v1/jobs/' + enc + '/transcript', target: '_blank', rel: 'noopener', text: 'JSON'}),
				h('a', {class: 'btn ghost small', href: links.markdown || '/v1/jobs/' + enc + '/transcript.md', target: '_blank', rel: 'noopener', text: 'Markdown'}),
				active ? (st.cancel = st.cancel || cancelButton('Cancel this job?', cancelJob)) : null);
			const fact = (label, value, cls) => h('div', {class: 'fact ' + (cls || '')},
				h('dt', {text: label}), h('dd', {text: value}));
			head.replaceChildren();
			append(head, [
				h('div', {class: 'title-row'},
					h('h1', {text: scenarioTitle(j.scenario)}), statusPill(j.status),
					h('div', {class: 'spacer'}), actions),
				h('div', {class: 'matchup'},
					h('span', {class: 'who iv'}, h('span', {class: 'role', text: 'Interviewer'}),
						h('span', {class: 'mono', text: j.interviewer.model}),
						h('span', {class: 'muted', text: '@ ' + j.interviewer.backend})),
					h('span', {class: 'vs', 'aria-hidden': 'true', text: '⇄'}),
					h('span', {class: 'who cd'}, h('span', {class: 'role', text: 'Candidate'}),
						h('span', {class: 'mono', text: j.candidate.model}),
						h('span', {class: 'muted', text: '@ ' + j.candidate.backend}))),
				h('dl', {class: 'facts'},
					fact('Progress', j.progress || (j.turns_completed + ' of ' + j.max_turns + ' turns')),
					fact('Duration', secs === null ? '—' : fmtSec(secs)),
					fact('Mean TTFT', fmtMs(m.mean_ttft_ms)),
					fact('Tokens', m.prompt_tokens === undefined ? '—'
						: fmtNum(m.prompt_tokens) + ' in · ' + fmtNum(m.completion_tokens) + ' out', 'nowrap'),
					fact('Optimizations', m.optimizations_found === undefined ? '—' : fmtNum(m.optimizations_found)),
					fact('Interview quality', fmtScore(m.interview_quality)),
					fact('Engagement', fmtScore(m.candidate_engagement)),
					fact('Created', fmtShortWhen(j.created_at))),
				j.error ? h('div', {class: 'notice error job-error', role: 'alert'},
					h('strong', {text: j.error.code}), ' ', j.error.message) : null]);
		}

		async function cancelJob() {
			try {
				st.job = await api('POST', '/v1/jobs/' + enc + '/cancel');
				renderHead();
				return false;
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
				return true;
			}
		}

		/* ----- conversation ----- */

		function speakerOf(turn) {
			return turn % 2 === 1 ? 'interviewer' : 'candidate';
		}

		function metricChips(m) {
			const chips = [];
			const chip = (label, value, title) => chips.push(h('span', {class: 'chip', title},
				h('b', {text: label}), ' ', value));
			if (!m) return chips;
			if (m.ttft_ms !== null && m.ttft_ms !== undefined) chip('TTFT', fmtMs(m.ttft_ms), 'time to first token');
			if (m.prompt_tokens !== null && m.prompt_tokens !== undefined)
				chip('in', fmtNum(m.prompt_tokens) + (m.cached_tokens ? ' (' + fmtNum(m.cached_tokens) + ' cached)' : ''),
					'prompt tokens' + (m.prompt_ms ? ', processed in ' + fmtMs(m.prompt_ms) : ''));
			if (m.completion_tokens !== null && m.completion_tokens !== undefined)
				chip('out', fmtNum(m.completion_tokens), 'completion tokens'
					+ (m.gen_ms ? ', generated in ' + fmtMs(m.gen_ms) : ''));
			if (m.tokens_per_s) chip('', fmtNum(m.tokens_per_s, 1) + ' tok/s', 'generation speed');
			if (m.wall_ms !== null && m.wall_ms !== undefined) chip('', fmtMs(m.wall_ms), 'wall time of the turn');
			if (m.load_ms) chip('load', fmtMs(m.load_ms), 'model load time reported by the backend');
			if (m.attempts > 1) chip('attempts', String(m.attempts), 'the call was retried');
			if (m.finish_reason && m.finish_reason !== 'stop')
				chip('finish', m.finish_reason, 'why generation stopped');
			return chips;
		}

		function bubble(turn, speaker, model, body, footer, live) {
			return h('article', {
				class: 'turn ' + speaker + (live ? ' live' : ''), dataset: {turn: String(turn)},
			},
			h('div', {class: 'avatar', 'aria-hidden': 'true', text: speaker === 'interviewer' ? 'I' : 'C'}),
			h('div', {class: 'bubble'},
				h('header', {},
					h('span', {class: 'who', text: titleCase(speaker)}),
					h('span', {class: 'mono model-name', text: model || ''}),
					h('span', {class: 'turn-no', text: 'Turn ' + turn})),
				body,
				h('footer', {class: 'turn-metrics'}, footer)));
		}

		function finishedBubble(t) {
			const body = h('div', {class: 'md'});
			if (typeof t.html === 'string') body.append(safeFragment(t.html));
			else body.append(h('p', {class: 'plain', text: t.message || ''}));
			const foot = metricChips(t.metrics);
			if (t.note) foot.push(h('span', {class: 'chip note', text: t.note}));
			return bubble(t.turn, t.speaker || speakerOf(t.turn), t.model, body, foot, false);
		}

		function renderTurn(t) {
			const el = finishedBubble(t);
			const old = chat.querySelector('article.turn[data-turn="' + t.turn + '"]');
			if (old) old.replaceWith(el);
			else {
				/* keep turn order whatever order they arrive in */
				const after = [...chat.querySelectorAll('article.turn')].find((a) => Number(a.dataset.turn) > t.turn);
				chat.insertBefore(el, after || null);
			}
			if (st.live && st.live.turn === t.turn) st.live = null;
		}

		/*
		 * The bubble of the turn being written. joined: the page came in after the
		 * turn started, so what was written before is not here (the turn_finished
		 * event brings the whole text) and the time to first token is unknown.
		 */
		function ensureLive(turn, speaker, model, joined) {
			if (st.turns.has(turn)) return null;
			if (st.live && st.live.turn === turn) return st.live;
			if (st.live) st.live.el.remove();
			speaker = speaker || speakerOf(turn);
			if (!model && st.job) model = (speaker === 'interviewer' ? st.job.interviewer : st.job.candidate).model;
			const text = document.createTextNode('');
			const body = h('div', {class: 'stream'},
				joined ? h('span', {class: 'joined', title: 'the beginning of this turn was written before the page opened', text: '… '}) : null,
				text, h('span', {class: 'caret', 'aria-hidden': 'true'}));
			const status = h('span', {class: 'chip writing', text: joined ? 'writing · joined mid-turn' : 'writing…'});
			const el = bubble(turn, speaker, model, body, [status], true);
			st.live = {turn, speaker, model, el, text, status, joined: !!joined,
				startedAt: performance.now(), firstAt: joined ? performance.now() : null, chars: 0};
			chat.append(el);
			placeholder();
			return st.live;
		}

		function placeholder() {
			const has = chat.querySelector('article.turn');
			let p = chat.querySelector('.chat-empty');
			if (has && p) p.remove();
			if (!has && !p) {
				const j = st.job;
				const msg = !j ? 'Loading…' : j.status === 'queued' ? 'Waiting for a worker to pick this job up…'
					: ACTIVE.has(j.status) ? 'The interviewer is about to speak…' : 'No turns were recorded.';
				chat.append(h('p', {class: 'chat-empty muted', text: msg}));
			} else if (p && !has) {
				p.remove();
				placeholder();
			}
		}

		function nearBottom() {
			return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
		}

		/* ----- timing chart ----- */

		function renderChart() {
			const rows = [...st.turns.values()].sort((a, b) => a.turn - b.turn).map((t) => ({
				turn: t.turn, speaker: t.speaker || speakerOf(t.turn), seg: segments(t.metrics || {}),
				tps: t.metrics && t.metrics.tokens_per_s, tokens: t.metrics && t.metrics.completion_tokens,
				label: fmtMs(t.metrics ? t.metrics.wall_ms : null)
					+ (t.metrics && t.metrics.tokens_per_s ? ' · ' + fmtNum(t.metrics.tokens_per_s, 0) + ' tok/s' : ''),
			}));
			const L = st.live;
			if (L) {
				const now = performance.now();
				const first = L.firstAt === null ? null : L.firstAt - L.startedAt;
				const tps = first !== null && now - L.firstAt > 250 ? (L.chars / 4) / ((now - L.firstAt) / 1000) : null;
				rows.push({
					turn: L.turn, speaker: L.speaker, live: true, tps,
					seg: first === null ? {wait: now - L.startedAt, prompt: 0, gen: 0, ttft: null}
						: {wait: first, prompt: 0, gen: now - L.firstAt, ttft: L.joined ? null : first},
					label: (L.joined ? '≥ ' : '') + fmtMs(now - L.startedAt)
						+ (tps ? ' · ~' + fmtNum(tps, 0) + ' tok/s' : ' · writing'),
				});
			}
			if (!rows.length) {
				chartBox.replaceChildren(h('p', {class: 'muted small', text: 'The chart fills in as turns are written.'}));
				return;
			}
			const cs = getComputedStyle(chartBox);
			const width = chartBox.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
			chartBox.replaceChildren(timingChart(rows, width));
		}

		/* ----- optimizations, scores, scenario ----- */

		function renderOptims() {
			const t = st.transcript;
			const list = (t && t.optimizations_discovered) || [];
			optCount.textContent = list.length ? String(list.length) : '';
			if (!list.length) {
				const j = st.job;
				optBox.replaceChildren(h('p', {class: 'muted small', text: j && ACTIVE.has(j.status)
					? 'Optimizations are extracted from the interviewer\'s analysis when the conversation ends.'
					: 'No optimizations were found.'}));
				return;
			}
			optBox.replaceChildren(...list.map((o, i) => h('article', {class: 'opt'},
				h('div', {class: 'opt-num', text: String(i + 1)}),
				h('div', {class: 'opt-body'},
					h('h3', {text: o.title || o.suggestion || 'Suggestion'}),
					o.detail ? h('p', {class: 'detail', text: o.detail}) : null,
					o.test ? h('p', {class: 'test'}, h('span', {class: 'tag', text: 'Test'}), o.test) : null,
					h('div', {class: 'opt-meta muted', text: 'from turn ' + o.turn})))));
		}

		function renderScores() {
			const t = st.transcript;
			const sc = t && t.scores;
			if (!sc || typeof sc !== 'object') {
				scoreBox.hidden = true;
				return;
			}
			const parts = [];
			for (const [key, label] of [['interview_quality', 'Interview quality'], ['candidate_engagement', 'Candidate engagement']]) {
				const s = sc[key];
				if (!s) continue;
				parts.push(h('div', {class: 'score-group'},
					h('div', {class: 'score-head'}, h('span', {text: label}),
						h('span', {class: 'score-total', text: fmtScore(s.total) + ' / 10'})),
					h('ul', {class: 'components'}, (s.components || []).map((c) => h('li', {title: c.why || ''},
						h('span', {class: 'c-name', text: String(c.name || '').replace(/_/g, ' ')}),
						h('span', {class: 'meter'}, h('span', {class: 'meter-fill',
							style: {width: (c.max ? Math.round(100 * c.points / c.max) : 0) + '%'}})),
						h('span', {class: 'c-pts mono', text: fmtScore(c.points) + '/' + fmtScore(c.max)}))))));
			}
			scoreBox.hidden = !parts.length;
			scoreBox.replaceChildren(h('div', {class: 'card-head'}, h('h2', {text: 'Scores'}),
				h('span', {class: 'badge', text: (t.scoring || '')})), ...parts);
		}

		/* ----- trials (optimize) ----- */

		/* Score (bars) and median latency (dots) per trial, the baseline's marked. */
		function trialsChart(trials) {
			const W = 300, H = 150, left = 30, right = 40, top = 10, bottom = 24;
			const done = trials.filter((t) => typeof t.score === 'number');
			const maxMs = Math.max(1, ...done.map((t) => t.median_ms || 0));
			const colW = (W - left - right) / Math.max(1, trials.length);
			const y = (v) => top + (H - top - bottom) * (1 - v);
			const g = svg('svg', {
				class: 'trials-chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
				'aria-label': 'Score and median latency per trial; the baseline is trial 0',
			});
			g.append(svg('text', {class: 'tick', x: left - 4, y: y(1) + 4, 'text-anchor': 'end', text: '1'}),
				svg('text', {class: 'tick', x: left - 4, y: y(0) + 4, 'text-anchor': 'end', text: '0'}),
				svg('text', {class: 'tick', x: W - right + 4, y: y(1) + 4, text: fmtMs(maxMs)}));
			const base = trials.find((t) => t.n === 0);
			if (base && typeof base.score === 'number')
				g.append(svg('line', {class: 'baseline', x1: left, x2: W - right, y1: y(base.score), y2: y(base.score)},
					svg('title', {text: 'baseline score ' + fmtNum(base.score, 3)})));
			trials.forEach((t, i) => {
				const x = left + i * colW, cx = x + colW / 2;
				const col = svg('g', {class: 'tcol' + (t.n === 0 ? ' base' : '') + (st.bestTrial === t.n ? ' best' : ''),
					dataset: {trial: String(t.n)}});
				if (typeof t.score === 'number') {
					col.append(svg('rect', {class: 'score-bar', x: x + colW * 0.2, y: y(t.score), width: colW * 0.6,
						height: Math.max(0.5, y(0) - y(t.score)), rx: 2},
					svg('title', {text: 'trial ' + t.n + ': score ' + fmtNum(t.score, 3)})));
					col.append(svg('circle', {class: 'median', cx, cy: y((t.median_ms || 0) / maxMs), r: 3.5},
						svg('title', {text: 'trial ' + t.n + ': median ' + fmtMs(t.median_ms)})));
				}
				col.append(svg('text', {class: 'tick', x: cx, y: H - 8, 'text-anchor': 'middle',
					text: t.n === 0 ? 'base' : String(t.n)}));
				g.append(col);
			});
			return g;
		}

		function renderTrials() {
			const t = st.transcript || {};
			const trials = t.trials || (st.job && st.job.trials);
			const best = t.best || (st.job && st.job.best);
			if (!Array.isArray(trials) || !trials.length) {
				trialsBox.hidden = true;
				return;
			}
			st.bestTrial = best ? best.trial : null;
			const verdict = !best ? ''
				: best.trial === 0 ? 'Nothing tested beat the baseline.'
					: 'Best: trial ' + best.trial + (best.verified === true ? ', verified on held-out tasks'
						: best.holdout ? ', not verified: within the noise on held-out tasks'
							: ', not yet checked on held-out tasks') + '.';
			const rows = trials.map((x) => h('details', {class: 'trial', dataset: {trial: String(x.n)}},
				h('summary', {},
					h('span', {class: 'mono', text: '#' + x.n}), ' ',
					h('span', {text: x.kind + (x.turn ? ' (turn ' + x.turn + ')' : '')}), ' ',
					h('span', {class: 'pill s-' + (x.status === 'done' ? 'succeeded' : x.status === 'rejected' ? 'failed' : 'cancelled'),
						text: x.status}), ' ',
					typeof x.score === 'number'
						? h('span', {class: 'mono', text: 'score ' + fmtNum(x.score, 3) + ' · ' + x.passed + '/' + x.tasks
							+ ' · ' + fmtMs(x.median_ms)}) : null),
				x.reason ? h('p', {class: 'muted small', text: x.reason}) : null,
				x.proposal ? h('pre', {class: 'plain proposal', text: JSON.stringify(x.proposal, null, 2)}) : null,
				x.message ? h('pre', {class: 'plain parley-result', text: x.message}) : null));
			trialsBox.hidden = false;
			trialsBox.replaceChildren(h('div', {class: 'card-head'}, h('h2', {text: 'Trials'}),
				h('span', {class: 'badge', text: String(trials.length)})),
			trialsChart(trials),
			h('p', {class: 'trials-verdict', text: verdict}),
			...rows);
		}

		function renderScenario() {
			const s = st.transcript && st.transcript.scenario;
			if (!s) return;
			const row = (k, v) => v ? [h('dt', {text: k}), h('dd', {text: v})] : [];
			scnBox.hidden = false;
			scnBox.replaceChildren(h('div', {class: 'card-head'}, h('h2', {text: 'Scenario'}),
				h('span', {class: 'badge mono', text: s.name || ''})),
			h('dl', {class: 'scenario'}, row('Problem', s.problem), row('Context', s.context),
				row('Goal', s.goal || s.description)));
		}

		/* ----- data ----- */

		/* a trial's result (optimize), shown after the interviewer turn that proposed it; its
		 * text is model output and parley's figures, set as text, never as markup */
		function renderParley(t) {
			const at = String(Number(t.after_turn) + 0.5);
			const el = h('article', {class: 'turn parley', dataset: {turn: at}},
				h('div', {class: 'avatar', 'aria-hidden': 'true', text: 'P'}),
				h('div', {class: 'bubble'},
					h('header', {}, h('span', {class: 'who', text: 'Parley: trial ' + t.trial})),
					h('pre', {class: 'plain parley-result', text: t.message || ''})));
			const old = chat.querySelector('article.turn.parley[data-turn="' + at + '"]');
			if (old) old.replaceWith(el);
			else {
				const after = [...chat.querySelectorAll('article.turn')].find((a) => Number(a.dataset.turn) > Number(at));
				chat.insertBefore(el, after || null);
			}
		}

		function setTurns(conv) {
			for (const t of conv || []) {
				if (t.speaker === 'parley') {
					renderParley(t);
					continue;
				}
				const old = st.turns.get(t.turn);
				if (old && old.html !== undefined && t.html === undefined) continue;
				st.turns.set(t.turn, t);
				renderTurn(t);
			}
			placeholder();
			renderChart();
		}

		async function loadTranscript() {
			const t = await api('GET', '/v1/jobs/' + enc + '/transcript');
			st.transcript = t;
			if (t.job) st.job = t.job;
			setTurns(t.conversation);
			renderHead();
			renderOptims();
			renderScores();
			renderScenario();
			renderTrials();
		}

		function ended() {
			return st.job && !ACTIVE.has(st.job.status);
		}

		function onEnded() {
			closeEvents();
			if (st.stopPoll) st.stopPoll();
			st.stopPoll = null;
			if (st.live) {
				st.live.el.remove();
				st.live = null;
			}
			loadTranscript().catch((e) => errSlot.replaceChildren(errorBox(e))).finally(() => {
				renderChart();
				placeholder();
			});
		}

		function closeEvents() {
			if (st.es) {
				st.es.close();
				st.es = null;
			}
		}

		function openEvents() {
			if (st.destroyed || st.es || ended() || typeof EventSource === 'undefined') return false;
			const es = new EventSource('/v1/jobs/' + enc + '/events');
			st.es = es;
			const data = (e) => {
				try {
					return JSON.parse(e.data);
				} catch (x) {
					return null;
				}
			};
			es.addEventListener('open', () => {
				st.esFailures = 0;
			});
			es.addEventListener('status', (e) => {
				const j = data(e);
				if (!j) return;
				st.job = j;
				renderHead();
				placeholder();
			});
			es.addEventListener('turn_started', (e) => {
				const d = data(e);
				if (!d) return;
				const follow = nearBottom();
				const L = ensureLive(d.turn, d.speaker, d.model, false);
				/* a replayed turn_started may say when the turn began: the chart starts there */
				const began = parseTime(d.started_at);
				if (L && began !== null) L.startedAt = performance.now() - Math.max(0, Date.now() - began);
				renderChart();
				if (follow) window.scrollTo(0, document.body.scrollHeight);
			});
			es.addEventListener('token', (e) => {
				const d = data(e);
				if (!d || typeof d.text !== 'string') return;
				const follow = nearBottom();
				const L = ensureLive(d.turn, null, null, true);
				if (!L) return;
				if (L.firstAt === null) {
					L.firstAt = performance.now();
					L.status.textContent = 'TTFT ' + fmtMs(L.firstAt - L.startedAt);
				}
				L.text.appendData(d.text);
				L.chars += d.text.length;
				if (follow) window.scrollTo(0, document.body.scrollHeight);
			});
			es.addEventListener('turn_finished', (e) => {
				const t = data(e);
				if (!t || typeof t.turn !== 'number') return;
				if (st.live && st.live.turn === t.turn) {
					st.live.el.remove();
					st.live = null;
				}
				st.turns.set(t.turn, t);
				renderTurn(t);
				renderChart();
				renderHead();
				placeholder();
				/* an event without the rendered HTML: fetch the transcript, which has it */
				if (t.html === undefined) loadTranscript().catch(() => {});
			});
			es.addEventListener('job_finished', (e) => {
				const j = data(e);
				if (j) st.job = j;
				renderHead();
				onEnded();
			});
			es.addEventListener('error', () => {
				if (es.readyState !== EventSource.CLOSED) return; /* it reconnects by itself */
				/* refused (404, 401, not an event stream): poll, and try the stream again later */
				st.es = null;
				st.esFailures++;
				startPolling();
			});
			return true;
		}

		async function poll() {
			try {
				st.job = await api('GET', '/v1/jobs/' + enc);
				renderHead();
				if (ended()) return onEnded();
				await loadTranscript();
				if (st.esFailures < 3 && !auth.bearer && openEvents()) {
					if (st.stopPoll) st.stopPoll();
					st.stopPoll = null;
				}
			} catch (e) {
				errSlot.replaceChildren(errorBox(e));
			}
		}

		function startPolling() {
			if (st.stopPoll || st.destroyed) return;
			st.stopPoll = every(POLL_MS, poll);
		}

		async function start() {
			placeholder();
			renderChart();
			try {
				st.job = await api('GET', '/v1/jobs/' + enc);
				renderHead();
				await loadTranscript();
			} catch (e) {
				head.replaceChildren();
				head.hidden = true;
				errSlot.replaceChildren(errorBox(e));
				return;
			}
			if (st.destroyed || ended()) return;
			if (auth.bearer || !openEvents()) startPolling();
			/* the clock in the header and the live bar of the chart */
			st.clock = setInterval(() => {
				if (document.hidden) return;
				if (st.live) renderChart();
				if (st.job && st.job.status === 'running') {
					const dd = head.querySelector('.fact:nth-child(2) dd');
					const secs = jobSeconds(st.job);
					if (dd && secs !== null) dd.textContent = fmtSec(secs);
				}
			}, 250);
		}

		/* the chart is drawn at the size it is shown, so its text stays legible */
		let resizing = null;
		const onResize = () => {
			clearTimeout(resizing);
			resizing = setTimeout(renderChart, 100);
		};
		window.addEventListener('resize', onResize);

		start();
		return {destroy: () => {
			st.destroyed = true;
			window.removeEventListener('resize', onResize);
			clearTimeout(resizing);
			closeEvents();
			if (st.stopPoll) st.stopPoll();
			clearInterval(st.clock);
		}};
	}

	/* ---------- submit ---------- */

	function submitPage(root) {
		const form = h('form', {class: 'card form', novalidate: true});
		const errSlot = h('div', {class: 'form-error', role: 'alert'});
		root.append(h('section', {class: 'page narrow'},
			h('div', {class: 'page-head'}, h('h1', {text: 'New conversation'})),
			h('p', {class: 'lead muted', text: 'An interviewer model questions a candidate model about a '
				+ 'scenario, then closes with concrete, testable suggestions.'}),
			form));
		form.append(h('p', {class: 'muted', text: 'Loading scenarios and backends…'}));

		Promise.all([api('GET', '/v1/scenarios'), loadBackends()]).then(([sc, backends]) => {
			buildForm(sc.items || [], backends || []);
		}).catch((e) => form.replaceChildren(errorBox(e)));

		const field = (name, label, control, hint) => h('div', {class: 'field', dataset: {field: name}},
			h('label', {for: 'f-' + name.replace(/\./g, '-'), text: label}), control,
			hint ? h('div', {class: 'hint muted', text: hint}) : null,
			h('div', {class: 'field-error'}));

		function buildForm(scenarios, backends) {
			const scnSel = h('select', {id: 'f-scenario', name: 'scenario', required: true},
				scenarios.map((s) => h('option', {value: s.name, text: scenarioTitle(s.name)})));
			const preview = h('dl', {class: 'scenario preview'});
			const showScenario = () => {
				const s = scenarios.find((x) => x.name === scnSel.value);
				preview.replaceChildren(...(s ? [h('dt', {text: 'Problem'}), h('dd', {text: s.problem}),
					h('dt', {text: 'Context'}), h('dd', {text: s.context}),
					h('dt', {text: 'Goal'}), h('dd', {text: s.goal})] : []));
			};
			scnSel.addEventListener('change', showScenario);
			showScenario();

			const sides = {};
			const side = (role, pick) => {
				const bSel = h('select', {id: 'f-' + role + '-backend', name: role + '.backend'},
					backends.map((b) => h('option', {value: b.name,
						text: (b.name === b.kind ? b.name : b.name + ' · ' + b.kind) + ' · ' + (b.status || 'unknown')
							+ ((b.members || []).length > 1 ? ' · ' + b.members.length + ' members' : '')
							+ (b.slots ? ' · ' + (b.slots - (b.slots_held || 0)) + ' of ' + b.slots + ' slots free' : '')})));
				const slot = h('div', {class: 'model-slot'});
				const hint = h('div', {class: 'hint muted'});
				const s = {bSel, slot, hint, control: null};
				const fill = () => {
					const b = backends.find((x) => x.name === bSel.value);
					const models = (b && b.models) || [];
					const keep = s.control ? s.control.value : '';
					if (models.length) {
						s.control = h('select', {id: 'f-' + role + '-model', name: role + '.model'},
							models.map((m) => h('option', {value: m, text: m})));
						s.control.value = models.includes(keep) ? keep : models[Math.min(pick, models.length - 1)];
						hint.textContent = models.length + ' model' + (models.length > 1 ? 's' : '') + ' served by ' + b.name;
					} else {
						s.control = h('input', {id: 'f-' + role + '-model', name: role + '.model', type: 'text',
							placeholder: 'model name, e.g. gemma3:1b', required: true, value: keep});
						hint.textContent = b ? b.name + ' is ' + (b.status || 'unknown')
							+ (b.error ? ': ' + (b.error.message || b.error) : '') + '; type a model name' : '';
					}
					slot.replaceChildren(s.control);
				};
				bSel.addEventListener('change', fill);
				fill();
				sides[role] = s;
				return h('fieldset', {class: 'side-box ' + ({interviewer: 'iv', candidate: 'cd'}[role] || 'jd')},
					h('legend', {text: titleCase(role)}),
					field(role + '.backend', 'Backend', bSel),
					h('div', {class: 'field', dataset: {field: role + '.model'}},
						h('label', {for: 'f-' + role + '-model', text: 'Model'}), slot, hint,
						h('div', {class: 'field-error'})));
			};

			const turns = h('input', {id: 'f-max_turns', name: 'max_turns', type: 'number', min: 3, max: 50, value: 3});
			const scoring = h('select', {id: 'f-scoring', name: 'scoring'},
				h('option', {value: 'rubric', text: 'rubric (reads the content)'}),
				h('option', {value: 'origin', text: 'origin (reproduces old reports)'}),
				h('option', {value: 'judge', text: 'judge (a third model grades it)'}));
			const extraction = h('select', {id: 'f-extraction', name: 'extraction'},
				h('option', {value: 'rubric', text: 'rubric (every suggestion)'}),
				h('option', {value: 'origin', text: 'origin (lines with #test_this)'}));
			const temp = h('input', {id: 'f-options-temperature', name: 'options.temperature', type: 'number', step: '0.1', min: 0, max: 2, placeholder: 'default'});
			const seed = h('input', {id: 'f-options-seed', name: 'options.seed', type: 'number', step: 1, placeholder: 'random'});
			const npred = h('input', {id: 'f-options-num_predict', name: 'options.num_predict', type: 'number', min: 1, placeholder: 'default'});
			const nctx = h('input', {id: 'f-options-num_ctx', name: 'options.num_ctx', type: 'number', min: 256, placeholder: 'default'});
			const submit = h('button', {class: 'btn primary', type: 'submit', text: 'Start conversation'});
			const judgeBox = side('judge', 0);
			const showJudge = () => {
				judgeBox.hidden = scoring.value !== 'judge';
			};
			scoring.addEventListener('change', showJudge);
			showJudge();

			form.replaceChildren(
				field('scenario', 'Scenario', scnSel), preview,
				h('div', {class: 'two'}, side('interviewer', 0), side('candidate', 1)),
				h('div', {class: 'two'},
					field('max_turns', 'Turns', turns, '3 to 50; the interviewer speaks on odd turns'),
					field('scoring', 'Scoring', scoring)),
				judgeBox,
				h('details', {class: 'advanced'}, h('summary', {text: 'Generation options'}),
					h('div', {class: 'four'},
						field('options.temperature', 'Temperature', temp),
						field('options.seed', 'Seed', seed),
						field('options.num_predict', 'Max tokens per turn', npred),
						field('options.num_ctx', 'Context size', nctx)),
					h('div', {class: 'two'}, field('extraction', 'Extraction', extraction))),
				errSlot,
				h('div', {class: 'row end'}, h('a', {class: 'btn ghost', href: '#/jobs', text: 'Back to jobs'}), submit));

			/* one key per attempt, kept when the request did not arrive, so a retry cannot start two jobs */
			const newKey = () => (window.crypto && crypto.randomUUID ? crypto.randomUUID()
				: String(Math.random()).slice(2) + '-' + Date.now());
			let key = newKey();
			form.addEventListener('submit', async (e) => {
				e.preventDefault();
				for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
				for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
				errSlot.textContent = '';
				const body = {
					scenario: scnSel.value,
					interviewer: {model: sides.interviewer.control.value.trim(), backend: sides.interviewer.bSel.value},
					candidate: {model: sides.candidate.control.value.trim(), backend: sides.candidate.bSel.value},
					max_turns: Number(turns.value),
					scoring: scoring.value,
					extraction: extraction.value,
				};
				if (scoring.value === 'judge')
					body.judge = {model: sides.judge.control.value.trim(), backend: sides.judge.bSel.value};
				const options = {};
				for (const [k, el, num] of [['temperature', temp, parseFloat], ['seed', seed, parseInt],
					['num_predict', npred, parseInt], ['num_ctx', nctx, parseInt]]) {
					if (el.value !== '') options[k] = num(el.value, 10);
				}
				if (Object.keys(options).length) body.options = options;
				submit.disabled = true;
				submit.textContent = 'Starting…';
				try {
					const job = await api('POST', '/v1/jobs', body, {'Idempotency-Key': key});
					location.hash = '#/jobs/' + encodeURIComponent(job.id);
				} catch (x) {
					submit.disabled = false;
					submit.textContent = 'Start conversation';
					if (x.status) key = newKey();
					let placed = 0;
					for (const fe of x.errors || []) {
						const f = form.querySelector('.field[data-field="' + CSS.escape(fe.field) + '"]');
						if (f) {
							f.classList.add('invalid');
							f.querySelector('.field-error').textContent = fe.message;
							placed++;
						}
					}
					if (!placed || placed < (x.errors || []).length)
						errSlot.replaceChildren(errorBox(x));
				}
			});
		}
		return {destroy: () => {}};
	}

	/* ---------- start ---------- */

	function init() {
		document.getElementById('signout').addEventListener('click', signOut);
		window.addEventListener('hashchange', route);
		route();
		loadBackends();
		every(15000, loadBackends);
	}

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
	else init();
})();

/*
 * engine/metrics/web/app.js - the web dashboard (the JobManager's, and weir local's): views drawn
 * from the REST API (engine/cluster/rest.h), refreshed every second.
 *
 * Routes (the URL's fragment): #/ the cluster and its jobs, #/jobs/ID a
 * job (its graph with live figures, checkpoints, exceptions, and buttons
 * to cancel it or take a savepoint), #/taskmanagers[/ID], #/jobmanager.
 * Actions need the cluster's token: `weir cluster dashboard` prints the
 * address with it as #token=...; the page keeps it for the tab
 * (sessionStorage) and sends it as a bearer token. Nothing is fetched
 * from anywhere but the JobManager.
 */
'use strict';

const REFRESH_MS = 1000;
let token = sessionStorage.getItem('weir-token') || '';
let timer = null;

if (location.hash.startsWith('#token=')) {
	token = location.hash.slice(7);
	sessionStorage.setItem('weir-token', token);
	history.replaceState(null, '', location.pathname + '#/');
}

async function api(path, opts = {}) {
	const headers = Object.assign({}, opts.headers || {});
	if (token)
		headers.Authorization = 'Bearer ' + token;
	const r = await fetch(path, Object.assign({}, opts, { headers }));
	const text = await r.text();
	let body = null;
	try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
	if (!r.ok) {
		const why = body && body.errors ? body.errors.join('; ') : r.status + ' ' + r.statusText;
		throw new Error(why);
	}
	return body;
}

/* --- formatting --- */

const esc = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
function num(x) {
	if (x === undefined || x === null) return '–';
	if (Math.abs(x) >= 1e9) return (x / 1e9).toFixed(2) + ' G';
	if (Math.abs(x) >= 1e6) return (x / 1e6).toFixed(2) + ' M';
	if (Math.abs(x) >= 1e4) return (x / 1e3).toFixed(1) + ' k';
	return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
function bytes(x) {
	if (x === undefined || x === null) return '–';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
	return (i ? x.toFixed(1) : x) + ' ' + u[i];
}
function dur(ms) {
	if (ms < 0 || ms === undefined) return '–';
	if (ms < 1000) return ms + ' ms';
	const s = Math.floor(ms / 1000);
	if (s < 60) return (ms / 1000).toFixed(1) + ' s';
	const m = Math.floor(s / 60), h = Math.floor(m / 60);
	return h ? `${h}h ${m % 60}m` : `${m}m ${s % 60}s`;
}
const ms = x => x < 1 ? (x * 1000).toFixed(0) + ' µs' : x.toFixed(1) + ' ms';
const pct = r => r === undefined || r === null ? '–' : Math.round(r * 100) + '%';
const when = ms => ms > 0 ? new Date(ms).toLocaleTimeString() : '–';
const wm = w => w === null || w === undefined ? 'none' : w >= 9.2e18 ? 'end' : String(w);
const stateTag = s => `<span class="state ${esc(s)}">${esc(s)}</span>`;
const live = s => ['RUNNING', 'CREATED', 'RESTARTING', 'CANCELLING'].includes(s);

/* --- views --- */

async function overview(el) {
	const [ov, jobs, tms] = await Promise.all([api('/overview'), api('/jobs/overview'), api('/taskmanagers')]);
	document.getElementById('cluster').textContent = 'cluster ' + ov['cluster-id'];
	const card = (v, l, id) => `<div class="card"><b id="${id}">${v}</b><span>${l}</span></div>`;
	const rows = jobs.jobs.slice().reverse().map(j => `<tr class="link" data-jid="${esc(j.jid)}">
		<td>${esc(j.jid)}</td><td>${esc(j.name)}</td><td>${stateTag(j.state)}</td>
		<td>${when(j['start-time'])}</td><td class="num">${dur(j.duration)}</td>
		<td class="num">${j.restarts}</td><td class="num">${j.tasks.vertices}</td></tr>`).join('');
	el.innerHTML = `<div class="cards">
		${card(ov.taskmanagers, 'TaskManagers', 'ov-tms')}${card(ov['slots-available'] + ' / ' + ov['slots-total'], 'slots free', 'ov-slots')}
		${card(ov['jobs-running'], 'jobs running', 'ov-running')}${card(ov['jobs-finished'], 'finished', 'ov-finished')}
		${card(ov['jobs-cancelled'], 'cancelled', 'ov-cancelled')}${card(ov['jobs-failed'], 'failed', 'ov-failed')}</div>
		<h2>Jobs</h2><table id="jobs-table"><tr><th>id</th><th>name</th><th>state</th><th>started</th>
		<th class="num">duration</th><th class="num">restarts</th><th class="num">vertices</th></tr>
		${rows || '<tr><td colspan="7" class="note">no job yet</td></tr>'}</table>
		<h2>TaskManagers</h2>${tmTable(tms.taskmanagers)}`;
	el.querySelectorAll('#jobs-table tr[data-jid]').forEach(tr =>
		tr.addEventListener('click', () => { location.hash = '#/jobs/' + tr.dataset.jid; }));
	bindTmRows(el);
}

function tmTable(tms) {
	const rows = tms.map(t => `<tr class="link" data-tm="${esc(t.id)}"><td>${esc(t.id)}</td><td>${esc(t.host)}</td>
		<td class="num">${t.pid}</td><td class="num">${t.freeSlots} / ${t.slotsNumber}</td>
		<td class="num">${t.pool.freeSegments} / ${t.pool.segments} × ${bytes(t.pool.segmentSize)}</td>
		<td class="num">${t.numaNode}</td><td class="num">${t.cpuLoad === undefined ? '–' : pct(t.cpuLoad)}</td></tr>`).join('');
	return `<table id="tm-table"><tr><th>id</th><th>host</th><th class="num">pid</th><th class="num">slots free</th>
		<th class="num">pool segments free</th><th class="num">NUMA node</th><th class="num">CPU</th></tr>
		${rows || '<tr><td colspan="7" class="note">none registered</td></tr>'}</table>`;
}

function bindTmRows(el) {
	el.querySelectorAll('#tm-table tr[data-tm]').forEach(tr =>
		tr.addEventListener('click', () => { location.hash = '#/taskmanagers/' + tr.dataset.tm; }));
}

/* The job graph: vertices in columns by their depth from the sources,
 * boxes coloured by what their subtasks did in the last second. */
function graph(job) {
	const vs = job.vertices, edges = (job.plan && job.plan.edges) || [];
	const depth = {};
	vs.forEach(v => { depth[v.id] = 0; });
	for (let pass = 0; pass < vs.length; pass++)
		edges.forEach(e => { depth[e.target] = Math.max(depth[e.target], depth[e.source] + 1); });
	const cols = {}, pos = {};
	vs.forEach(v => { (cols[depth[v.id]] = cols[depth[v.id]] || []).push(v); });
	const W = 230, H = 92, GX = 80, GY = 24;
	let maxRow = 0;
	Object.keys(cols).forEach(d => cols[d].forEach((v, i) => {
		pos[v.id] = { x: 20 + d * (W + GX), y: 20 + i * (H + GY) };
		maxRow = Math.max(maxRow, i);
	}));
	const width = 40 + (Math.max(...Object.keys(cols).map(Number)) + 1) * (W + GX) - GX;
	const height = 40 + (maxRow + 1) * (H + GY) - GY;
	let svg = `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
		<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
		<path d="M0,0 L10,5 L0,10 z" fill="#6b7385"/></marker></defs>`;
	edges.forEach(e => {
		const a = pos[e.source], b = pos[e.target];
		if (!a || !b) return;
		const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
		svg += `<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" fill="none" stroke="#6b7385" stroke-width="1.5" marker-end="url(#arrow)"/>
			<text class="ship" x="${mx}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle">${esc(e.ship_strategy)}</text>`;
	});
	vs.forEach(v => {
		const p = pos[v.id], m = v.metrics || {};
		const busy = m['busy-ratio'], bp = m['backpressured-ratio'];
		const fill = bp > 0.5 ? 'var(--bp)' : busy > 0.5 ? 'var(--busy)' : bp > 0.1 ? '#f8c4c4' : busy > 0.1 ? '#fbe3c2' : 'var(--idle)';
		const inr = m['read-records-per-second'], outr = m['write-records-per-second'];
		svg += `<g class="vertex" data-vid="${esc(v.id)}" data-in-rate="${inr === undefined ? '' : inr}" data-out-rate="${outr === undefined ? '' : outr}">
			<rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="6" fill="${fill}" stroke="#8a93a6"/>
			<text class="vname" x="${p.x + 10}" y="${p.y + 18}">${esc(v.name)}  ×${v.parallelism}</text>
			<text x="${p.x + 10}" y="${p.y + 37}">in ${num(inr)}/s · out ${num(outr)}/s</text>
			<text x="${p.x + 10}" y="${p.y + 55}">busy ${pct(busy)} · backpressured ${pct(bp)}</text>
			<text x="${p.x + 10}" y="${p.y + 73}">watermark ${esc(wm(m['current-input-watermark'] ?? m['current-output-watermark']))}</text></g>`;
	});
	return svg + '</svg>';
}

async function jobView(el, id) {
	const [job, ck, exc] = await Promise.all([api('/jobs/' + id), api('/jobs/' + id + '/checkpoints'),
		api('/jobs/' + id + '/exceptions')]);
	const isLive = live(job.state);
	/* the buttons and the folder field are drawn once per job, so that a
	 * refresh does not take away what the user is typing */
	if (el.dataset.job !== id) {
		el.dataset.job = id;
		shownCk = null;
		el.innerHTML = `<div class="bar"><h1 id="job-name"></h1><span id="job-state"></span>
			<button class="danger" id="cancel-btn">Cancel job</button>
			<input type="text" id="sp-dir" value="/tmp/weir-savepoints" aria-label="savepoint folder">
			<button id="savepoint-btn">Take a savepoint</button><span id="status"></span></div>
			<div id="job-body"></div>`;
		el.querySelector('#cancel-btn').addEventListener('click', () => cancelJob(id));
		el.querySelector('#savepoint-btn').addEventListener('click', () => savepoint(id));
	}
	el.querySelector('#job-name').textContent = `${job.name} (job ${job.jid})`;
	el.querySelector('#job-state').innerHTML = stateTag(job.state);
	el.querySelector('#job-state').dataset.state = job.state;
	el.querySelector('#cancel-btn').disabled = !isLive;
	el.querySelector('#savepoint-btn').disabled = !isLive;
	/* weir local's API reads only: no buttons there */
	for (const b of ['#cancel-btn', '#savepoint-btn', '#sp-dir'])
		el.querySelector(b).hidden = job.jid === 'local';
	const vrows = job.vertices.map(v => {
		const m = v.metrics || {};
		return `<tr><td>${esc(v.id)}</td><td>${esc(v.name)}</td><td class="num">${v.parallelism}</td>
			<td class="num">${num(m['read-records'])}</td><td class="num">${num(m['write-records'])}</td>
			<td class="num">${num(m['read-records-per-second'])}</td><td class="num">${num(m['write-records-per-second'])}</td>
			<td class="num">${bytes(m['read-bytes'])}</td><td class="num">${bytes(m['write-bytes'])}</td>
			<td class="num">${pct(m['busy-ratio'])}</td><td class="num">${pct(m['backpressured-ratio'])}</td><td class="num">${pct(m['idle-ratio'])}</td>
			<td class="num">${esc(wm(m['current-input-watermark']))}</td><td class="num">${num(m['state-entries'])}</td><td class="num">${num(m.timers)}</td>
			<td class="num">${m.latency ? ms(m.latency.p50) + ' / ' + ms(m.latency.p99) : '–'}</td></tr>`;
	}).join('');
	const hrows = ck.history.map(c => `<tr class="link" data-ck="${c.id}" data-status="${esc(c.status)}"><td class="num">${c.id}</td><td>${stateTag(c.status)}${c.is_savepoint ? ' savepoint' : ''}</td>
		<td>${when(c.trigger_timestamp)}</td><td class="num">${c.end_to_end_duration === undefined ? '–' : dur(c.end_to_end_duration)}</td>
		<td class="num">${bytes(c.state_size)}</td><td class="num">${bytes(c.persisted_data)}</td>
		<td class="num">${c.sync_duration_max_ms === undefined ? '–' : c.sync_duration_max_ms.toFixed(2) + ' ms'}</td>
		<td class="msg">${esc(c.failure_message || '')}</td></tr>`).join('');
	const erows = exc.exceptionHistory.entries.map(e => `<tr><td>${when(e.timestamp)}</td><td class="num">${e.attempt}</td>
		<td class="msg">${esc(e.stacktrace)}</td></tr>`).join('');
	el.querySelector('#job-body').innerHTML = `
		<p class="note">started ${when(job['start-time'])} · ${dur(job.duration)} · restarts ${job.restarts}
		${job['failure-cause'] ? ' · <span class="msg">' + esc(job['failure-cause']) + '</span>' : ''}</p>
		<div class="legend"><span><i style="background:var(--idle)"></i>idle</span><span><i style="background:var(--busy)"></i>busy</span>
		<span><i style="background:var(--bp)"></i>backpressured</span><span>(the last second)</span></div>
		<div id="graph">${graph(job)}</div>
		<h2>Vertices</h2><table id="vertex-table"><tr><th>id</th><th>name</th><th class="num">par.</th><th class="num">records in</th>
		<th class="num">records out</th><th class="num">in/s</th><th class="num">out/s</th><th class="num">bytes in</th><th class="num">bytes out</th>
		<th class="num">busy</th><th class="num">backpr.</th><th class="num">idle</th><th class="num">input watermark</th>
		<th class="num">state entries</th><th class="num">timers</th><th class="num">latency p50 / p99</th></tr>${vrows}</table>
		<h2>Checkpoints</h2>
		<div class="cards"><div class="card"><b id="ck-completed">${ck.counts.completed}</b><span>completed</span></div>
		<div class="card"><b id="ck-failed">${ck.counts.failed}</b><span>failed</span></div>
		<div class="card"><b>${ck.counts.in_progress}</b><span>in progress</span></div>
		<div class="card"><b>${ck.latest.completed ? dur(ck.latest.completed.end_to_end_duration) : '–'}</b><span>last duration</span></div>
		<div class="card"><b>${ck.latest.completed ? bytes(ck.latest.completed.state_size) : '–'}</b><span>last size</span></div>
		<div class="card"><b>${ck.latest.restored ? ck.latest.restored.id : '–'}</b><span>restored from</span></div></div>
		<table id="ck-table" style="margin-top:8px"><tr><th class="num">id</th><th>status</th><th>triggered</th><th class="num">duration</th>
		<th class="num">size</th><th class="num">in-flight data</th><th class="num">longest sync. part</th><th>why it failed</th></tr>
		${hrows || '<tr><td colspan="8" class="note">none yet</td></tr>'}</table>
		<div id="ck-detail"></div>
		<h2>Exceptions</h2><table id="exc-table"><tr><th>when</th><th class="num">attempt</th><th>what</th></tr>
		${erows || '<tr><td colspan="3" class="note">none</td></tr>'}</table>`;
	el.querySelectorAll('#ck-table tr[data-ck]').forEach(tr =>
		tr.addEventListener('click', () => { shownCk = tr.dataset.ck; checkpointDetail(el, id); }));
	if (shownCk)
		await checkpointDetail(el, id);
}

/* The checkpoint clicked in the history: each subtask's snapshot (fetched
 * again at each refresh while it stays in the history, then left as it
 * was). */
let shownCk = null;
async function checkpointDetail(el, jid) {
	const box = el.querySelector('#ck-detail');
	if (!box)
		return;
	try {
		const d = await api('/jobs/' + jid + '/checkpoints/details/' + shownCk);
		const rows = (d.subtasks || []).map(t => `<tr><td>${esc(t.name)}</td><td class="num">${t.subtask}</td>
			<td class="num">${bytes(t.state_size)}</td></tr>`).join('');
		box.innerHTML = `<h2>Checkpoint ${d.id}: ${stateTag(d.status)} ${dur(d.end_to_end_duration)}, ${bytes(d.state_size)}</h2>
			<table id="ck-subtasks"><tr><th>vertex</th><th class="num">subtask</th><th class="num">snapshot</th></tr>
			${rows || '<tr><td colspan="3" class="note">no snapshots (failed or in progress)</td></tr>'}</table>`;
	} catch (e) {
		shownCk = null; /* gone from the history: what was shown stays, not refreshed */
	}
}

function say(text) {
	const s = document.getElementById('status');
	if (s)
		s.textContent = text;
}

async function cancelJob(id) {
	if (!confirm('Cancel job ' + id + '?'))
		return;
	try {
		await api('/jobs/' + id, { method: 'PATCH' });
		say('cancel asked');
	} catch (e) {
		say('cancel: ' + e.message);
	}
}

async function savepoint(id) {
	const dir = document.getElementById('sp-dir').value;
	try {
		const r = await api('/jobs/' + id + '/savepoints', { method: 'POST', body: JSON.stringify({ 'target-directory': dir }) });
		say('savepoint asked…');
		for (;;) {
			await new Promise(ok => setTimeout(ok, 300));
			const s = await api('/jobs/' + id + '/savepoints/' + r['request-id']);
			if (s.status.id === 'COMPLETED') {
				say(s.operation.location ? 'savepoint in ' + s.operation.location : 'savepoint failed: ' + s.operation['failure-cause']);
				return;
			}
		}
	} catch (e) {
		say('savepoint: ' + e.message);
	}
}

async function tmView(el, id) {
	if (!id) {
		const tms = await api('/taskmanagers');
		el.innerHTML = `<h2>TaskManagers</h2>${tmTable(tms.taskmanagers)}`;
		bindTmRows(el);
		return;
	}
	const t = await api('/taskmanagers/' + id);
	let log = '';
	try { log = await api('/taskmanagers/' + id + '/logs'); } catch (e) { log = e.message; }
	el.innerHTML = `<h2>TaskManager ${esc(t.id)} on ${esc(t.host)}</h2>${tmTable([t])}
		<h2>Log (its end)</h2><pre class="log" id="tm-log">${esc(log)}</pre>`;
}

async function jmView(el) {
	let log = '';
	try { log = await api('/jobmanager/logs'); } catch (e) { log = e.message; }
	el.innerHTML = `<h2>JobManager log (its end)</h2><pre class="log" id="jm-log">${esc(log)}</pre>`;
	const pre = el.querySelector('pre');
	pre.scrollTop = pre.scrollHeight;
}

/* --- routing --- */

async function show() {
	const el = document.getElementById('view');
	const h = location.hash || '#/';
	let m;
	document.querySelectorAll('header a').forEach(a => a.classList.toggle('on', a.getAttribute('href') === h));
	try {
		if ((m = h.match(/^#\/jobs\/([\w-]+)$/)))
			await jobView(el, m[1]);
		else {
			delete el.dataset.job;
			if ((m = h.match(/^#\/taskmanagers(?:\/(\d+))?$/)))
				await tmView(el, m[1]);
			else if (h === '#/jobmanager')
				await jmView(el);
			else
				await overview(el);
		}
	} catch (e) {
		el.innerHTML = `<p class="msg">${esc(e.message)}</p>`;
	}
}

function schedule() {
	clearTimeout(timer);
	/* logs are not redrawn by themselves: a reader may be scrolling */
	const h = location.hash;
	if (h === '#/jobmanager' || /^#\/taskmanagers\/\d+$/.test(h))
		return;
	timer = setTimeout(async () => { await show(); schedule(); }, REFRESH_MS);
}

window.addEventListener('hashchange', async () => { await show(); schedule(); });
show().then(schedule);

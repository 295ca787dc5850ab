// The operator's dashboard: REST reads for the state, the event stream (GET /mesh/events) to know
// when to read again, and the admin operations behind buttons. No framework and no build step;
// every value from the service is written with textContent, never parsed as HTML.
const $ = (id) => document.getElementById(id);
const svgNs = 'http://www.w3.org/2000/svg';
const eventTypes = ['server_failure_detected', 'server_status_changed', 'failover_initiated', 'failover_completed',
  'failover_aborted', 'backup_created', 'region_phase_changed', 'degraded_mode_activated', 'degraded_mode_deactivated',
  'administrator_alert', 'actions_expired'];
const statuses = ['alive', 'suspect', 'failed', 'draining'];
const testApi = document.querySelector('meta[name="mesh-test-api"]')?.content === 'on';

let pendingRetry = null;
let refreshTimer = null;
let refreshing = false;
let again = false;
let zones = [];

/** Calls the service; on 401/403 asks for the admin token and retries once it is given. */
async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem('meshAdminToken');
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = (res.headers.get('content-type') || '').includes('json') ? await res.json() : await res.text();
  if ((res.status === 401 || res.status === 403) && method !== 'GET') {
    return new Promise((resolve, reject) => {
      pendingRetry = () => api(method, path, body).then(resolve, reject);
      $('token-form').hidden = false;
      $('token').focus();
    });
  }
  if (!res.ok) throw new Error(data && data.detail ? data.detail : `${res.status} from ${path}`);
  return data;
}

function say(text) {
  $('message').hidden = false;
  $('message').textContent = text;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const [status, regions, servers, alerts, metrics] = await Promise.all([
      api('GET', '/mesh/status'), api('GET', '/mesh/regions'), api('GET', '/mesh/servers'),
      api('GET', '/mesh/alerts'), api('GET', '/mesh/failover_metrics?recent_limit=40'),
    ]);
    renderStatus(status);
    renderRegions(regions.regions);
    renderServers(servers.servers);
    renderAlerts(alerts.alerts);
    renderChart(metrics.recent);
  } catch (error) {
    say(`Could not read the mesh: ${error.message}`);
  } finally {
    refreshing = false;
    if (again) { again = false; scheduleRefresh(); }
  }
}

function scheduleRefresh() {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 200);
}

function renderStatus(status) {
  $('health').textContent = status.status;
  $('health').className = `badge ${status.status}`;
  $('level').textContent = `${status.degraded_level} · fidelity ${status.fidelity}${status.tilt ? ' · TILT' : ''}`;
  $('level').className = `badge ${status.degraded_level === 'NORMAL' ? 'healthy' : status.degraded_level === 'SEVERE' ? 'critical' : 'degraded'}`;
  const r = status.regions;
  $('region-counts').textContent = `${r.total} · ${r.active} active · ${r.failing_over} failing over · ${r.under_replicated} under-replicated · ${r.unavailable} unavailable`;
}

function renderRegions(regions) {
  const cells = regions.map((region) => {
    const primary = region.primary ? region.primary.server_id : '—';
    const backups = region.backups.map((b) => b.server_id).join(', ') || '—';
    const cell = el('div', {
      class: `region ${region.state}${region.critical ? ' critical' : ''}`, 'data-region': region.region_id,
      'data-state': region.state, 'data-primary': primary, 'data-epoch': String(region.epoch),
      title: `${region.region_id} (${region.state})\nprimary ${primary}, epoch ${region.epoch}\nbackups ${backups}\n${region.players} players`,
    }, el('b', { text: `${region.critical ? '★ ' : ''}${region.region_id}` }), el('span', { text: `${primary} · e${region.epoch}` }),
    el('br'), el('span', { text: backups }));
    return cell;
  });
  $('regions').replaceChildren(...cells);
  const select = $('target-region');
  const chosen = select.value;
  select.replaceChildren(...regions.map((r) => el('option', { value: r.region_id, text: r.region_id })));
  if (regions.some((r) => r.region_id === chosen)) select.value = chosen;
}

function renderServers(servers) {
  const byZone = new Map();
  for (const server of servers) {
    if (server.status === 'left') continue;
    const counts = byZone.get(server.zone) ?? Object.fromEntries(statuses.map((s) => [s, 0]));
    counts[server.status] += 1;
    byZone.set(server.zone, counts);
  }
  zones = [...byZone.keys()].sort();
  const head = el('tr', {}, el('th', { text: 'zone' }), ...statuses.map((s) => el('th', { text: s })));
  const rows = zones.map((zone) => el('tr', { 'data-zone': zone }, el('td', { text: zone }),
    ...statuses.map((s) => el('td', { text: String(byZone.get(zone)[s]) }))));
  $('servers').replaceChildren(head, ...(rows.length ? rows : [el('tr', {}, el('td', { text: 'no servers', colspan: '5' }))]));
}

function renderAlerts(alerts) {
  const items = alerts.map((alert) => {
    const ack = alert.acknowledged_at === null
      ? el('button', { type: 'button', 'data-ack': alert.id, text: 'Acknowledge' })
      : el('span', { class: 'acked', text: `acknowledged by ${alert.acknowledged_by ?? 'someone'}` });
    return el('li', { class: `alert ${alert.severity}`, 'data-alert': alert.id },
      el('b', { text: `${alert.severity}: ${alert.title}` }), el('p', { text: `${alert.message} (×${alert.count})` }), ack);
  });
  $('alerts').replaceChildren(...(items.length ? items : [el('li', { text: 'No open alert.' })]));
}

/** Detection and recovery of each recent failover, oldest on the left; critical ones starred. */
function renderChart(recent) {
  const list = [...recent].reverse();
  const svg = document.createElementNS(svgNs, 'svg');
  const width = 1000, height = 190, base = 165;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1000, ...list.map((f) => Math.max(f.detection_ms, f.recovery_ms ?? 0)));
  const slot = width / Math.max(list.length, 20);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(svgNs, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add('line', { x1: 0, y1: base, x2: width, y2: base, stroke: '#aab3c2' });
  add('text', { x: 4, y: 14, 'font-size': 12, fill: '#667085' }, `max ${(max / 1000).toFixed(1)} s`);
  list.forEach((f, i) => {
    const x = i * slot + slot * 0.15;
    const w = slot * 0.33;
    const h = (ms) => (ms / max) * (base - 24);
    const group = add('g', { 'data-failover': f.id });
    const bar = (dx, ms, fill, label) => {
      const rect = document.createElementNS(svgNs, 'rect');
      for (const [k, v] of Object.entries({ x: x + dx, y: base - h(ms), width: w, height: h(ms), fill })) rect.setAttribute(k, String(v));
      const title = document.createElementNS(svgNs, 'title');
      title.textContent = `${f.region_id} ${label} ${ms} ms (${f.outcome})`;
      rect.append(title);
      group.append(rect);
    };
    bar(0, f.detection_ms, '#8aa4d6', 'detection');
    if (f.recovery_ms !== null) bar(w, f.recovery_ms, f.outcome === 'failed' ? '#d2373c' : '#2e9d57', 'recovery');
    if (f.critical) add('text', { x: x + w * 0.4, y: base + 16, 'font-size': 13, fill: '#d2373c' }, '★');
  });
  if (list.length === 0) add('text', { x: width / 2 - 60, y: 90, 'font-size': 14, fill: '#667085' }, 'No failover yet.');
  $('chart').replaceChildren(svg);
}

function connect() {
  const source = new EventSource('/mesh/events');
  source.onopen = () => { $('stream').textContent = 'live'; $('stream').className = 'badge open'; refresh(); };
  source.onerror = () => { $('stream').textContent = 'reconnecting'; $('stream').className = 'badge closed'; };
  for (const type of eventTypes) source.addEventListener(type, scheduleRefresh);
  // A failover can take less than a refresh: the grid shows each phase as the event arrives.
  source.addEventListener('region_phase_changed', (event) => {
    const data = JSON.parse(event.data);
    const cell = document.querySelector(`[data-region="${CSS.escape(data.region_id)}"]`);
    if (!cell) return;
    cell.classList.remove(data.from);
    cell.classList.add(data.to);
    cell.dataset.state = data.to;
  });
}

async function act(what, run) {
  try {
    say(await run());
  } catch (error) {
    say(`${what} failed: ${error.message}`);
  }
  scheduleRefresh();
}

function inject(button) {
  const mode = button.dataset.mode;
  const body = { mode };
  if (button.dataset.target === 'zone') body.zone = zones[zones.length - 1];
  else if (button.dataset.target === 'fraction') body.fraction = 0.3;
  else Object.assign(body, { region_id: $('target-region').value, role: $('target-role').value });
  if (mode !== 'crash') body.duration_ms = Number($('duration').value);
  act(`Injecting ${mode}`, async () => {
    const fault = await api('POST', '/mesh/simulate_failure', body);
    return `Injected ${fault.mode} (${fault.failure_id}) on ${fault.server_ids.join(', ')}.`;
  });
}

function wire() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem('meshAdminToken', $('token').value);
    $('token-form').hidden = true;
    const retry = pendingRetry;
    pendingRetry = null;
    retry?.();
  });
  $('alerts').addEventListener('click', (event) => {
    const id = event.target instanceof HTMLElement ? event.target.dataset.ack : undefined;
    if (id) act('Acknowledging', async () => `Acknowledged ${(await api('POST', `/mesh/alerts/${encodeURIComponent(id)}/ack`)).id}.`);
  });
  if (!testApi) return;
  $('test-controls').hidden = false;
  $('inject').addEventListener('click', (event) => { if (event.target instanceof HTMLButtonElement) inject(event.target); });
  $('setup-test').addEventListener('click', () => act('Setting up', async () => {
    const mesh = await api('POST', '/mesh/setup_test', { regions: 24, zones: 3, critical_regions: 4, players_per_region: 20 });
    return `Test mesh: ${mesh.regions.length} regions on ${mesh.servers.length} servers.`;
  }));
  $('reset-test').addEventListener('click', () => act('Reset', async () => { await api('POST', '/mesh/reset'); return 'Test mesh removed.'; }));
}

wire();
refresh();
connect();
setInterval(refresh, 5000);

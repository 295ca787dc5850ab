# MeshClient: keeps a Godot 3.x dedicated server in a mesh-coordinator mesh.
#
# Add it to the scene tree, set the configuration fields, then call start(). It
#   1. registers the server (POST /mesh/servers) and keeps the per-server token it is given;
#   2. heartbeats (POST /mesh/servers/{id}/heartbeat) every `heartbeat_interval_ms` named by the
#      last reply (1000 ms normally, 200 ms while the coordinator waits on this server), and again
#      AT ONCE after any role or epoch change, so that a promotion is acknowledged in milliseconds;
#   3. applies every reply as the truth: the roles and epochs it lists, dropping every region it
#      does not list, and stopping at once as primary of any region listed in `demoted`;
#   4. "replicates" over UDP: every `replication_interval_ms` it sends its replication peers (the
#      primary and backups of its regions, at the `host:port` addresses they registered) a small
#      packet with the `applied_seq` of the regions it leads. A backup copies `applied_seq` from its
#      primary's packets; every packet proves the sender is alive, and the heartbeat reports for
#      each peer how long it has been silent (`peers[].silent_for_ms`), which lets the coordinator
#      confirm a dead primary within about half a second instead of waiting for a timeout;
#   5. leaves gracefully: leave() asks the coordinator to hand its regions off (POST .../leave),
#      keeps heartbeating until the reply lists no region, then emits `left`. Godot 3 does not turn
#      SIGTERM into a quit request, so call leave() (or leave_and_quit()) from your own shutdown path.
#
# Replication here is a stand-in: a real game streams its world state on the same schedule and
# bumps `applied_seq` per applied update. A primary advances `applied_seq` by `seq_per_second`.
#
# Signals mirror the protocol. The coordinator decides; this node reports and obeys.
# Works with Godot 3.2.3 or later 3.x (GDScript 1). No engine modules, no threads.
extends Node

signal registered(server_id)
# A region was assigned to this server, or its role or epoch changed. role: "primary" | "backup".
signal role_changed(region_id, role, epoch)
# The coordinator no longer lists the region: stop simulating and mirroring it.
signal region_dropped(region_id)
# This server claimed to lead a region under an older epoch: stop serving it as primary NOW.
signal demoted(region_id, epoch)
# Degraded mode: run the simulation at this fidelity (1.0, 0.75, 0.5 or 0.25).
signal fidelity_changed(fidelity)
# leave() finished: the coordinator moved every region away (or the leave timed out).
signal left()
# A request failed (network error, timeout or an unexpected status); informational, it retries.
signal request_failed(operation, detail)

# ---- configuration: set before start() ------------------------------------------------------
var coordinator_url = "http://127.0.0.1:8080"
# Where peers and players reach this server: "host:port". The port is the UDP replication port.
var address = ""
var zone = "default"
var server_name = ""
var capacity = 16
# Only when the coordinator runs with MESH_ADMIN_TOKEN (loopback callers need none otherwise).
var admin_token = ""
# The UDP replication socket; port 0 takes the port of `address`.
var replication_port = 0
var replication_bind_address = "*"
var replication_interval_ms = 100
var request_timeout_ms = 2000
var leave_timeout_ms = 30000
var seq_per_second = 100
# Players connected to this server, reported on every heartbeat. Set it from your game.
var players = 0

# ---- state (read-only for the game) ---------------------------------------------------------
var server_id = ""
var token = ""
var incarnation = ""
var status = ""
var fidelity = 1.0
# region_id -> {role, epoch, applied_seq (float), primary_id, fidelity, actions_pending}.
# `fidelity` is per region (critical regions keep 1.0 longer); `actions_pending` counts player
# actions the coordinator buffered during a failover, for the primary to collect.
var regions = {}

const DEFAULT_INTERVAL_MS = 1000
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 5000

var _http_main        # registration and heartbeats, one at a time
var _http_leave       # the leave call, which may overlap a heartbeat
var _main_busy = false
var _main_sent_at = 0
var _leave_busy = false
var _leave_sent_at = 0
var _leave_accepted = false
var _next_leave_at = 0
var _started = false
var _leaving = false
var _leave_deadline = 0
var _done = false
# The regular cadence (from registration) and the one the last reply asked for (maybe shorter).
var _regular_interval_ms = DEFAULT_INTERVAL_MS
var _interval_ms = DEFAULT_INTERVAL_MS
var _next_heartbeat_at = 0
var _next_register_at = 0
var _retry_ms = RETRY_MIN_MS
var _hb_seq = 0
var _udp = PacketPeerUDP.new()
var _next_replication_at = 0
var _last_advance_at = 0
# server_id -> {host, port, known_since}: replication peers named by the last reply.
var _peers = {}
# server_id -> last time (ticks ms) a packet from it arrived.
var _heard = {}


func start():
	assert(address != "")
	incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_http_main = _make_http("_on_main_completed")
	_http_leave = _make_http("_on_leave_completed")
	var port = replication_port if replication_port > 0 else _split_address(address)[1]
	var err = _udp.listen(port, replication_bind_address)
	if err != OK:
		push_error("mesh_client: cannot listen on UDP port %d (error %d)" % [port, err])
	_last_advance_at = OS.get_ticks_msec()
	_started = true


# Graceful departure: the coordinator hands every region off without counting a failure.
func leave():
	if _leaving or _done:
		return
	_leaving = true
	_leave_deadline = OS.get_ticks_msec() + leave_timeout_ms
	if server_id == "":
		if _main_busy:
			_http_main.cancel_request()  # a registration in flight: never complete it
			_main_busy = false
		_finish_leave()


# leave(), then quit the SceneTree once the coordinator has moved everything away.
func leave_and_quit():
	connect("left", get_tree(), "quit", [], CONNECT_ONESHOT)
	leave()


func _make_http(callback):
	var http = HTTPRequest.new()
	http.use_threads = false
	add_child(http)
	http.connect("request_completed", self, callback)
	return http


func _process(_delta):
	if not _started:
		return
	var now = OS.get_ticks_msec()
	_receive_replication(now)
	_advance_primaries(now)
	if now >= _next_replication_at:
		_next_replication_at = now + replication_interval_ms
		_send_replication()
	_expire_requests(now)
	if _done:
		return
	if _leaving and now >= _leave_deadline:
		_finish_leave()
		return
	if _leaving and not _leave_accepted and not _leave_busy and now >= _next_leave_at:
		_send_leave()
	if _main_busy:
		return
	if server_id == "" and not _leaving and now >= _next_register_at:
		_register(now)
	elif server_id != "" and now >= _next_heartbeat_at:
		_heartbeat(now)


# ---- HTTP: registration, heartbeats, leave -------------------------------------------------

func _register(now):
	var body = {"address": address, "zone": zone, "capacity": capacity}
	if server_name != "":
		body["name"] = server_name
	var headers = ["Content-Type: application/json"]
	if admin_token != "":
		headers.append("Authorization: Bearer " + admin_token)
	_main_request(now, "/mesh/servers", headers, JSON.print(body))


func _heartbeat(now):
	_hb_seq += 1
	var claims = []
	for region_id in regions:
		var r = regions[region_id]
		claims.append({"region_id": region_id, "role": r.role, "epoch": r.epoch, "applied_seq": int(r.applied_seq)})
	var silence = []
	for peer_id in _peers:
		var heard = max(_heard.get(peer_id, -1), _peers[peer_id].known_since)
		silence.append({"server_id": peer_id, "silent_for_ms": int(max(0, now - heard))})
	var body = {"incarnation": incarnation, "seq": _hb_seq, "players": int(players), "regions": claims, "peers": silence}
	# The next regular heartbeat is due one interval after this one was sent, whatever the latency.
	_next_heartbeat_at = now + _regular_interval_ms
	_main_request(now, "/mesh/servers/%s/heartbeat" % server_id, _server_headers(), JSON.print(body))


func _send_leave():
	_leave_busy = true
	_leave_sent_at = OS.get_ticks_msec()
	var url = coordinator_url + "/mesh/servers/%s/leave" % server_id
	var err = _http_leave.request(url, _server_headers(), true, HTTPClient.METHOD_POST, "")
	if err != OK:
		_leave_failed("request() error %d" % err)


func _server_headers():
	return ["Content-Type: application/json", "Authorization: Bearer " + token]


func _main_request(now, path, headers, body):
	_main_busy = true
	_main_sent_at = now
	var err = _http_main.request(coordinator_url + path, headers, true, HTTPClient.METHOD_POST, body)
	if err != OK:
		_main_busy = false
		_main_failed(now, "request() error %d" % err)


# HTTPRequest.timeout is whole seconds in Godot 3.2; heartbeats need a finer bound.
func _expire_requests(now):
	if _main_busy and now - _main_sent_at > request_timeout_ms:
		_http_main.cancel_request()
		_main_busy = false
		_main_failed(now, "timeout after %d ms" % request_timeout_ms)
	if _leave_busy and now - _leave_sent_at > request_timeout_ms:
		_http_leave.cancel_request()
		_leave_failed("timeout after %d ms" % request_timeout_ms)


func _on_main_completed(result, code, _headers, body):
	_main_busy = false
	var now = OS.get_ticks_msec()
	if result != HTTPRequest.RESULT_SUCCESS:
		_main_failed(now, "network result %d" % result)
		return
	var parsed = JSON.parse(body.get_string_from_utf8())
	var doc = parsed.result if parsed.error == OK else null
	if server_id == "":
		_on_registered(now, code, doc)
	else:
		_on_heartbeat_reply(now, code, doc)


func _on_registered(now, code, doc):
	if code != 201 or typeof(doc) != TYPE_DICTIONARY:
		_main_failed(now, "register answered %d" % code)
		return
	server_id = doc.server_id
	token = doc.token
	_regular_interval_ms = int(doc.heartbeat_interval_ms)
	_interval_ms = _regular_interval_ms
	_retry_ms = RETRY_MIN_MS
	_next_heartbeat_at = now
	emit_signal("registered", server_id)


func _on_heartbeat_reply(now, code, doc):
	if code == 200 and typeof(doc) == TYPE_DICTIONARY:
		_retry_ms = RETRY_MIN_MS
		var changed = _apply_reply(doc, now)
		_interval_ms = int(doc.heartbeat_interval_ms)
		_next_heartbeat_at = now if changed else _main_sent_at + _interval_ms
		if _leaving and regions.empty():
			_finish_leave()
	elif _leaving and code in [401, 403, 404, 409]:
		_finish_leave()  # already gone, or forgotten: nothing left to hand off
	elif code == 404 or code == 401 or code == 403 or code == 409:
		# The coordinator does not know this server (lost state, or it left): start over.
		emit_signal("request_failed", "heartbeat", "answered %d; registering again" % code)
		_forget_server()
	else:
		_main_failed(now, "heartbeat answered %d" % code)


func _main_failed(now, detail):
	var operation = "heartbeat" if server_id != "" else "register"
	emit_signal("request_failed", operation, detail)
	if server_id == "":
		_next_register_at = now + _retry_ms
		_retry_ms = min(_retry_ms * 2, RETRY_MAX_MS)
	else:
		# Keep the regular cadence: the coordinator judges us by heartbeats that arrive.
		_next_heartbeat_at = _main_sent_at + _regular_interval_ms


func _on_leave_completed(result, code, _headers, _body):
	_leave_busy = false
	if result != HTTPRequest.RESULT_SUCCESS or not (code in [202, 404, 409]):
		_leave_failed("result %d, status %d" % [result, code])
	elif code == 404:
		_finish_leave()  # the coordinator does not know this server: nothing to hand off
	else:
		# 202 draining, 409 already left: heartbeat at once to learn what is left to hand off.
		_leave_accepted = true
		_next_heartbeat_at = OS.get_ticks_msec()


func _leave_failed(detail):
	_leave_busy = false
	_next_leave_at = OS.get_ticks_msec() + RETRY_MIN_MS
	emit_signal("request_failed", "leave", detail)


func _finish_leave():
	_done = true
	for region_id in regions.keys():
		_drop_region(region_id)
	_peers.clear()
	emit_signal("left")


func _forget_server():
	for region_id in regions.keys():
		_drop_region(region_id)
	_peers.clear()
	server_id = ""
	token = ""
	incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_next_register_at = OS.get_ticks_msec()


# ---- applying a reply -----------------------------------------------------------------------

# Returns true when a role or epoch changed (or a region was added): heartbeat again at once.
func _apply_reply(doc, now):
	status = doc.status
	for d in doc.demoted:
		var held = regions.get(d.region_id)
		if held != null and held.role == "primary":
			held.role = "backup"
		emit_signal("demoted", d.region_id, int(d.epoch))
	var changed = false
	var given = {}
	var peers = {}
	for a in doc.regions:
		given[a.region_id] = true
		if _apply_assignment(a):
			changed = true
		for e in [a.primary] + a.backups:
			if e != null and e.server_id != server_id:
				peers[e.server_id] = e.address
	for region_id in regions.keys():
		if not given.has(region_id):
			_drop_region(region_id)
	_set_peers(peers, now)
	var f = float(doc.fidelity)
	if abs(f - fidelity) > 0.001:
		fidelity = f
		emit_signal("fidelity_changed", fidelity)
	return changed


func _apply_assignment(a):
	var epoch = int(a.epoch)
	var held = regions.get(a.region_id)
	var changed = held == null or held.role != a.role or held.epoch != epoch
	if held == null:
		# A new region: a backup starts empty and catches up from its primary's packets.
		held = {"role": "", "epoch": 0, "applied_seq": 0.0, "primary_id": "", "fidelity": 1.0, "actions_pending": 0}
		regions[a.region_id] = held
	held.role = a.role
	held.epoch = epoch
	held.primary_id = a.primary.server_id if a.primary != null else ""
	held.fidelity = float(a.fidelity)
	held.actions_pending = int(a.actions_pending)
	if changed:
		emit_signal("role_changed", a.region_id, a.role, epoch)
	return changed


func _drop_region(region_id):
	regions.erase(region_id)
	emit_signal("region_dropped", region_id)


func _set_peers(addresses, now):
	var next = {}
	for peer_id in addresses:
		var hp = _split_address(addresses[peer_id])
		if hp[1] <= 0:
			continue  # not a host:port we can reach over UDP; we cannot judge its silence either
		var since = _peers[peer_id].known_since if _peers.has(peer_id) else now
		next[peer_id] = {"host": hp[0], "port": hp[1], "known_since": since}
	_peers = next


# "host:port" or "[v6]:port" or "scheme://host:port/..." -> [host, port]; port 0 if none.
static func _split_address(text):
	var s = text
	var scheme = s.find("://")
	if scheme >= 0:
		s = s.substr(scheme + 3, s.length())
		var slash = s.find("/")
		if slash >= 0:
			s = s.substr(0, slash)
	var colon = s.find_last(":")
	if colon < 0:
		return [s, 0]
	var host = s.substr(0, colon).replace("[", "").replace("]", "")
	var port_text = s.substr(colon + 1, s.length())
	return [host, int(port_text) if port_text.is_valid_integer() else 0]


# ---- replication stand-in over UDP ----------------------------------------------------------

func _advance_primaries(now):
	var elapsed = now - _last_advance_at
	_last_advance_at = now
	for region_id in regions:
		var r = regions[region_id]
		if r.role == "primary":
			r.applied_seq += elapsed * seq_per_second / 1000.0


func _send_replication():
	if server_id == "" or _peers.empty():
		return
	var led = {}
	for region_id in regions:
		var r = regions[region_id]
		if r.role == "primary":
			led[region_id] = [r.epoch, int(r.applied_seq)]
	var packet = JSON.print({"s": server_id, "r": led}).to_utf8()
	for peer_id in _peers:
		var p = _peers[peer_id]
		_udp.set_dest_address(p.host, p.port)
		_udp.put_packet(packet)


func _receive_replication(now):
	while _udp.get_available_packet_count() > 0:
		var parsed = JSON.parse(_udp.get_packet().get_string_from_utf8())
		if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
			continue
		var msg = parsed.result
		if typeof(msg.get("s")) != TYPE_STRING or typeof(msg.get("r")) != TYPE_DICTIONARY:
			continue
		_heard[msg.s] = now
		for region_id in msg.r:
			var r = regions.get(region_id)
			var state = msg.r[region_id]
			# Only the primary the coordinator named is followed: a fenced old primary is ignored.
			if r != null and r.role == "backup" and r.primary_id == msg.s and typeof(state) == TYPE_ARRAY and state.size() == 2:
				r.applied_seq = max(r.applied_seq, float(state[1]))


func _exit_tree():
	_udp.close()

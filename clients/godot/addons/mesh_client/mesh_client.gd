# MeshCoordinatorClient: keeps a Godot 3.x dedicated server in a mesh-coordinator mesh.
# The plugin registers it as the `MeshClient` autoload; it can also be added to a scene, or
# preloaded and instanced by a `-s` script. Set the settings, then call start(). It registers,
# heartbeats (HTTP; a WebSocket session is coming), obeys every reply (roles, epochs, demotions,
# drops), replicates a stand-in state over UDP, replays buffered player actions exactly once,
# posts and restores player snapshots, and leaves gracefully. See README.md beside this file.
# Works with Godot 3.2.3 or later 3.x (GDScript 1); no engine modules, no threads.
extends Node
class_name MeshCoordinatorClient

const Errors = preload("errors.gd")
const Backoff = preload("backoff.gd")
const ActionLedger = preload("action_ledger.gd")
const Replication = preload("replication.gd")
const ActionReplay = preload("action_replay.gd")
const Snapshots = preload("snapshots.gd")

# ---- signals (argument types in comments: GDScript 1 has no typed signals) -------------------
signal registered(server_id)                       # String
signal role_changed(region_id, role, epoch)        # String, "primary" | "backup", int
signal leading(region_id, epoch)                   # String, int: promotion confirmed; take players
signal demoted(region_id, epoch)                   # String, int: stop serving it as primary NOW
signal region_dropped(region_id)                   # String
signal fidelity_changed(fidelity)                  # float: 1.0, 0.75, 0.5 or 0.25
signal actions_ready(region_id, actions)           # String, Array of {player_id, seq, payload, accepted_at}
signal snapshot_restored(region_id, player_id, state)  # String, String, Variant
signal datagram_received(message, host, port)      # Variant (parsed JSON or null), String, int
signal request_failed(operation, code, detail)     # String, String (errors.gd), String
signal left()
signal lease_lost()                                # the primary lease ran out: stop taking player actions
signal lease_renewed()                             # a reply renewed it after lease_lost: take them again

# ---- settings: set before start() -------------------------------------------------------------
export(String) var coordinator_url = "http://127.0.0.1:8080"
# Where peers and players reach this server: "host:port"; the port is the UDP replication port.
export(String) var address = ""
export(String) var zone = "default"
export(String) var server_name = ""
export(int) var capacity = 16
# Only when the coordinator runs with MESH_ADMIN_TOKEN (loopback callers need none otherwise).
export(String) var admin_token = ""
# A file that keeps server_id and token across restarts ("" = register anew on every start).
export(String) var identity_path = ""
# A file whose appearance starts a graceful drain and then quits ("" = none); see the deployment guide.
export(String) var stop_file = ""
# A quit request (window close, get_tree().quit() through notification) drains first.
export(bool) var drain_on_quit = true
# Before handing a collected action of an unknown player to the game, restore its snapshot.
export(bool) var restore_snapshots = true
export(int) var replication_port = 0           # 0: the port of `address`
export(String) var replication_bind_address = "*"
export(int) var request_timeout_ms = 2000
export(int) var leave_timeout_ms = 30000
export(int) var seq_per_second = 100
# Players connected to this server, reported on every heartbeat. Set it from your game.
var players = 0

# ---- state (read-only for the game) ----------------------------------------------------------
var server_id = ""
var token = ""
var incarnation = ""
var status = ""
var fidelity = 1.0
# region_id -> {role, epoch, applied_seq, primary_id, fidelity, actions_pending, leading}
var regions = {}
var ledger = ActionLedger.new()
var replayed_count = 0
var replay
var snapshots

var _replication = Replication.new()
var _http_main
var _http_leave
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
var _regular_interval_ms = 1000
var _next_heartbeat_at = 0
var _next_register_at = 0
var _next_stop_check = 0
var _hb_seq = 0
var _last_advance_at = 0
# region_id -> epoch claimed as primary in the heartbeat in flight
var _claimed = {}
var _retry = Backoff.new(200, 5000)
# The primary lease: OS.get_ticks_msec() until which this server may take player actions as primary,
# counted from when it SENT the heartbeat whose reply granted it (see README.md, "Primary lease").
var _lease_until = 0
var _lease_lost = false


func _ready():
	if drain_on_quit:
		get_tree().set_auto_accept_quit(false)


func _notification(what):
	if what == MainLoop.NOTIFICATION_WM_QUIT_REQUEST and drain_on_quit:
		leave_and_quit()


func start():
	assert(address != "")
	incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_http_main = _make_http("_on_main_completed")
	_http_leave = _make_http("_on_leave_completed")
	replay = ActionReplay.new()
	add_child(replay)
	replay.setup(self)
	snapshots = Snapshots.new()
	add_child(snapshots)
	snapshots.setup(self)
	var port = replication_port if replication_port > 0 else Replication.split_address(address)[1]
	if _replication.listen(port, replication_bind_address) != OK:
		push_error("mesh_client: cannot listen on UDP port %d" % port)
	_load_identity()
	_last_advance_at = OS.get_ticks_msec()
	_started = true


# True while this server is the acknowledged primary of the region under its current epoch and its
# primary lease runs: it may take player actions and collect buffered ones. Once the lease runs out
# without a reply (the coordinator may be promoting a backup), false until the next reply.
func leads(region_id):
	var r = regions.get(region_id)
	return r != null and r.role == "primary" and r.leading and OS.get_ticks_msec() < _lease_until


# Milliseconds left on the primary lease (0: none, or it ran out).
func lease_remaining_ms():
	return max(0, _lease_until - OS.get_ticks_msec())


func is_applied(region_id, player_id, seq):
	return ledger.is_applied(region_id, player_id, seq)


# The game applied (player_id, seq) through its own path (a player that reached it directly).
func mark_applied(region_id, player_id, seq):
	ledger.mark_applied(region_id, player_id, seq)


# Posts a player's state snapshot (primary only); "" when sent, else an error code.
func post_snapshot(region_id, player_id, state):
	return snapshots.post(region_id, player_id, state)


func fetch_snapshot(region_id, player_id):
	snapshots.fetch(region_id, player_id)


# Sends a datagram from the replication socket (a game's answer to a player on the same port).
func send_datagram(host, port, bytes):
	return _replication.send_to(host, port, bytes)


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


func leave_and_quit():
	if not is_connected("left", get_tree(), "quit"):
		connect("left", get_tree(), "quit", [], CONNECT_ONESHOT)
	if _done:
		get_tree().quit()
	leave()


func server_headers():
	return ["Content-Type: application/json", "Authorization: Bearer " + token, "X-Server-Id: " + server_id]


func report_error(operation, code, detail):
	emit_signal("request_failed", operation, code, detail)


# A collect or ack was refused: wait for the next heartbeat reply to confirm the lead again.
func lost_lead(region_id):
	var r = regions.get(region_id)
	if r != null:
		r.leading = false
	_next_heartbeat_at = OS.get_ticks_msec()


func on_datagram(message, host, port):
	emit_signal("datagram_received", message, host, port)


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
	_check_lease(now)
	_advance_primaries(now)
	_replication.poll(self, now)
	_expire_requests(now)
	if _done:
		return
	_check_stop_file(now)
	replay.poll(now)
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


func _check_stop_file(now):
	if stop_file == "" or now < _next_stop_check or _leaving:
		return
	_next_stop_check = now + 200
	if File.new().file_exists(stop_file):
		leave_and_quit()


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
	_claimed = {}
	for region_id in regions:
		var r = regions[region_id]
		claims.append({"region_id": region_id, "role": r.role, "epoch": r.epoch, "applied_seq": int(r.applied_seq)})
		if r.role == "primary":
			_claimed[region_id] = r.epoch
	var body = {"incarnation": incarnation, "seq": _hb_seq, "players": int(players), "regions": claims,
		"peers": _replication.silences(now)}
	# The next regular heartbeat is due one interval after this one was sent, whatever the latency.
	_next_heartbeat_at = now + _regular_interval_ms
	_main_request(now, "/mesh/servers/%s/heartbeat" % server_id, server_headers(), JSON.print(body))


func _send_leave():
	_leave_busy = true
	_leave_sent_at = OS.get_ticks_msec()
	var url = coordinator_url + "/mesh/servers/%s/leave" % server_id
	var err = _http_leave.request(url, server_headers(), true, HTTPClient.METHOD_POST, "")
	if err != OK:
		_leave_failed(Errors.NETWORK, "request() error %d" % err)


func _main_request(now, path, headers, body):
	_main_busy = true
	_main_sent_at = now
	var err = _http_main.request(coordinator_url + path, headers, true, HTTPClient.METHOD_POST, body)
	if err != OK:
		_main_busy = false
		_main_failed(now, Errors.NETWORK, "request() error %d" % err)


# HTTPRequest.timeout is whole seconds in Godot 3.2; heartbeats need a finer bound.
func _expire_requests(now):
	if _main_busy and now - _main_sent_at > request_timeout_ms:
		_http_main.cancel_request()
		_main_busy = false
		_main_failed(now, Errors.TIMEOUT, "timeout after %d ms" % request_timeout_ms)
	if _leave_busy and now - _leave_sent_at > request_timeout_ms:
		_http_leave.cancel_request()
		_leave_failed(Errors.TIMEOUT, "timeout after %d ms" % request_timeout_ms)


func _on_main_completed(result, code, _headers, body):
	_main_busy = false
	var now = OS.get_ticks_msec()
	if result != HTTPRequest.RESULT_SUCCESS:
		_main_failed(now, Errors.NETWORK, "network result %d" % result)
		return
	var parsed = JSON.parse(body.get_string_from_utf8())
	var doc = parsed.result if parsed.error == OK else null
	if server_id == "":
		_on_registered(now, code, doc)
	else:
		_on_heartbeat_reply(now, code, doc)


func _on_registered(now, code, doc):
	if code != 201 or typeof(doc) != TYPE_DICTIONARY:
		_main_failed(now, Errors.HTTP_STATUS if code != 201 else Errors.BAD_REPLY, "register answered %d" % code)
		return
	server_id = doc.server_id
	token = doc.token
	_regular_interval_ms = int(doc.heartbeat_interval_ms)
	_retry.reset()
	_next_heartbeat_at = now
	_save_identity()
	emit_signal("registered", server_id)


func _on_heartbeat_reply(now, code, doc):
	if code == 200 and typeof(doc) == TYPE_DICTIONARY:
		_retry.reset()
		_renew_lease(int(doc.get("lease_ms", 0)), now)
		var changed = _apply_reply(doc, now)
		_next_heartbeat_at = now if changed else _main_sent_at + int(doc.heartbeat_interval_ms)
		if _leaving and regions.empty() and replay.idle():
			_finish_leave()
	elif _leaving and code in [401, 403, 404, 409]:
		_finish_leave()  # already gone, or forgotten: nothing left to hand off
	elif code in [401, 403, 404, 409]:
		# The coordinator does not know this server (lost state, or it left): start over.
		report_error("heartbeat", Errors.FORGOTTEN, "answered %d; registering again" % code)
		_forget_server()
	else:
		_main_failed(now, Errors.HTTP_STATUS, "heartbeat answered %d" % code)


# Every retry waits a jittered, growing delay; a heartbeat retry never waits past its regular
# cadence, since the coordinator judges this server by the heartbeats that arrive.
func _main_failed(now, code, detail):
	var operation = "heartbeat" if server_id != "" else "register"
	report_error(operation, code, detail)
	var delay = _retry.next_delay_ms()
	if server_id == "":
		_next_register_at = now + delay
	else:
		_next_heartbeat_at = now + min(delay, _regular_interval_ms)


func _on_leave_completed(result, code, _headers, _body):
	_leave_busy = false
	if result != HTTPRequest.RESULT_SUCCESS or not (code in [202, 404, 409]):
		_leave_failed(Errors.NETWORK if result != HTTPRequest.RESULT_SUCCESS else Errors.HTTP_STATUS, "result %d, status %d" % [result, code])
	elif code == 404:
		_finish_leave()  # the coordinator does not know this server: nothing to hand off
	else:
		# 202 draining, 409 already left: heartbeat at once to learn what is left to hand off.
		_leave_accepted = true
		_next_heartbeat_at = OS.get_ticks_msec()


func _leave_failed(code, detail):
	_leave_busy = false
	_next_leave_at = OS.get_ticks_msec() + _retry.next_delay_ms()
	report_error("leave", code, detail)


func _finish_leave():
	_done = true
	for region_id in regions.keys():
		_drop_region(region_id)
	_replication.clear_peers()
	emit_signal("left")


func _forget_server():
	for region_id in regions.keys():
		_drop_region(region_id)
	_replication.clear_peers()
	server_id = ""
	token = ""
	incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_next_register_at = OS.get_ticks_msec()


# ---- identity across restarts -----------------------------------------------------------------

func _load_identity():
	if identity_path == "":
		return
	var f = File.new()
	if not f.file_exists(identity_path):
		return
	if f.open(identity_path, File.READ) != OK:
		report_error("identity", Errors.IDENTITY, "cannot read %s" % identity_path)
		return
	var parsed = JSON.parse(f.get_as_text())
	f.close()
	var doc = parsed.result if parsed.error == OK else null
	if typeof(doc) == TYPE_DICTIONARY and typeof(doc.get("server_id")) == TYPE_STRING and typeof(doc.get("token")) == TYPE_STRING:
		# Same identity, new incarnation: the coordinator learns this process restarted.
		server_id = doc.server_id
		token = doc.token
		_next_heartbeat_at = OS.get_ticks_msec()


func _save_identity():
	if identity_path == "":
		return
	var f = File.new()
	if f.open(identity_path, File.WRITE) != OK:
		report_error("identity", Errors.IDENTITY, "cannot write %s" % identity_path)
		return
	f.store_string(JSON.print({"server_id": server_id, "token": token}))
	f.close()


# ---- applying a reply -----------------------------------------------------------------------

# Returns true when a role or epoch changed (or a region was added): heartbeat again at once.
func _apply_reply(doc, now):
	status = doc.status
	for d in doc.demoted:
		var held = regions.get(d.region_id)
		if held != null and held.role == "primary":
			held.role = "backup"
			held.leading = false
			replay.forget_region(d.region_id)
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
	_replication.set_peers(peers, now)
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
		held = {"role": "", "epoch": 0, "applied_seq": 0.0, "primary_id": "", "fidelity": 1.0, "actions_pending": 0, "leading": false}
		regions[a.region_id] = held
	if changed and held.role == "primary":
		replay.forget_region(a.region_id)
	held.role = a.role
	held.epoch = epoch
	held.primary_id = a.primary.server_id if a.primary != null else ""
	held.fidelity = float(a.fidelity)
	held.actions_pending = int(a.actions_pending)
	# The heartbeat this reply answers claimed primary under this epoch: the promotion is acknowledged.
	var was_leading = held.leading
	held.leading = a.role == "primary" and _claimed.get(a.region_id, -1) == epoch
	if changed:
		emit_signal("role_changed", a.region_id, a.role, epoch)
	if held.leading and not was_leading:
		emit_signal("leading", a.region_id, epoch)
	if held.leading and held.actions_pending > 0:
		replay.want_collect(a.region_id)
	return changed


func _drop_region(region_id):
	regions.erase(region_id)
	replay.forget_region(region_id)
	emit_signal("region_dropped", region_id)


# One request in flight at a time, so replies arrive in send order: each one sets the lease. A reply
# to a heartbeat sent long ago (this process was paused) grants a lease that is already over.
func _renew_lease(lease_ms, now):
	_lease_until = _main_sent_at + lease_ms if lease_ms > 0 else 0
	if _lease_lost and now < _lease_until:
		_lease_lost = false
		emit_signal("lease_renewed")


func _check_lease(now):
	if now < _lease_until:
		return
	if _lease_lost:
		return
	for region_id in regions:
		if regions[region_id].role == "primary" and regions[region_id].leading:
			_lease_lost = true
			emit_signal("lease_lost")
			return


func _advance_primaries(now):
	var elapsed = now - _last_advance_at
	_last_advance_at = now
	for region_id in regions:
		var r = regions[region_id]
		if r.role == "primary":
			r.applied_seq += elapsed * seq_per_second / 1000.0


func _exit_tree():
	_replication.close()

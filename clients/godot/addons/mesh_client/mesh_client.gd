# MeshCoordinatorClient: keeps a Godot 3.x dedicated server in a mesh-coordinator mesh.
# The plugin registers it as the `MeshClient` autoload; it can also be added to a scene, or
# preloaded and instanced by a `-s` script. Set the settings, then call start(). It registers over
# HTTP, holds a session over WebSocket when the coordinator offers one (heartbeats, lease renewals,
# pushed assignments) and heartbeats over HTTP otherwise, obeys every reply and push (roles,
# epochs, demotions, drops), replicates a stand-in state over UDP, replays buffered player actions
# exactly once, posts and restores player snapshots, and leaves gracefully. See README.md beside
# this file. Works with Godot 3.2.3 or later 3.x (GDScript 1); no engine modules, no threads.
# This file is the facade (settings, signals, public methods) and the per-frame schedule; each
# concern lives in a script of its own, preloaded below.
extends Node
class_name MeshCoordinatorClient

const Errors = preload("errors.gd")
const ActionLedger = preload("action_ledger.gd")
const Replication = preload("replication.gd")
const ActionReplay = preload("action_replay.gd")
const Snapshots = preload("snapshots.gd")
const Lease = preload("lease.gd")
const Assignments = preload("assignments.gd")
const Identity = preload("identity.gd")
const CoordinatorLink = preload("coordinator_link.gd")
const CoordinatorUrls = preload("coordinator_urls.gd")
const HttpTransport = preload("http_transport.gd")
const SessionTransport = preload("session_transport.gd")

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
signal transport_changed(transport)                # String: "session" (a WebSocket is open) or "http"

# ---- settings: set before start() -------------------------------------------------------------
# The coordinator; or several, comma-separated, when `coordinator_urls` is empty.
export(String) var coordinator_url = "http://127.0.0.1:8080"
# Every coordinator replica (on etcd, one leads and the others redirect to it), in the order to try
# them; when set, `coordinator_url` is not used. The addon follows the leader (coordinator_urls.gd).
export(PoolStringArray) var coordinator_urls = PoolStringArray()
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
# Hold a WebSocket session when the coordinator offers one (false: HTTP heartbeats only).
export(bool) var use_session = true
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
var transport = "http"  # "session" while a WebSocket session is open
# The coordinators and the one in use now (`urls.current()`), set by start().
var urls
# region_id -> {role, epoch, applied_seq, primary_id, fidelity, actions_pending, leading}
var regions = {}
var ledger = ActionLedger.new()
var replayed_count = 0
var replay
var snapshots

var _replication = Replication.new()
var _lease = Lease.new()
var _assignments = Assignments.new(self)
var _http
var _session
var link  # to the coordinator over either transport (coordinator_link.gd); transports answer to it
var _started = false
var _next_stop_check = 0
var _last_advance_at = 0

func _ready():
	if drain_on_quit:
		get_tree().set_auto_accept_quit(false)


func _notification(what):
	if what == MainLoop.NOTIFICATION_WM_QUIT_REQUEST and drain_on_quit:
		leave_and_quit()


func start():
	assert(address != "")
	var listed = CoordinatorUrls.from_settings(coordinator_urls, coordinator_url)
	assert(not listed.empty())
	urls = CoordinatorUrls.new(listed)
	incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_http = _add(HttpTransport.new())
	_session = _add(SessionTransport.new())
	link = CoordinatorLink.new(self, _http, _session)
	replay = _add(ActionReplay.new())
	snapshots = _add(Snapshots.new())
	var port = replication_port if replication_port > 0 else Replication.split_address(address)[1]
	if _replication.listen(port, replication_bind_address) != OK:
		push_error("mesh_client: cannot listen on UDP port %d" % port)
	var identity = Identity.read(identity_path, self)
	if identity != null:
		# Same identity, new incarnation: the coordinator learns this process restarted.
		server_id = identity.server_id
		token = identity.token
		link.beat_now()
	_last_advance_at = OS.get_ticks_msec()
	_started = true


# True while this server is the acknowledged primary of the region under its current epoch and its
# primary lease runs: it may take player actions and collect buffered ones. Once the lease runs out
# without a renewal (the coordinator may be promoting a backup), false until the next one.
func leads(region_id):
	var r = regions.get(region_id)
	return r != null and r.role == "primary" and r.leading and _lease.runs(OS.get_ticks_msec())


# Milliseconds left on the primary lease (0: none, or it ran out).
func lease_remaining_ms():
	return _lease.remaining_ms(OS.get_ticks_msec())


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
	link.leave(OS.get_ticks_msec())


func leave_and_quit():
	if not is_connected("left", get_tree(), "quit"):
		connect("left", get_tree(), "quit", [], CONNECT_ONESHOT)
	if link.done:
		get_tree().quit()
	leave()


func _add(node):
	add_child(node)
	node.setup(self)
	return node


func _process(_delta):
	if not _started:
		return
	var now = OS.get_ticks_msec()
	# The lease first: a process that was paused past it says so before it reads what waited.
	_check_lease(now)
	_session.receive(now)
	_advance_primaries(now)
	_replication.poll(self, now)
	if _replication.fell_silent(now):
		link.beat_now()  # a peer's silence may confirm a crash: report it now
	_http.poll(now)
	if link.done:
		return
	_check_stop_file(now)
	replay.poll(now)
	link.step(now)
	_session.step(now)


func _check_stop_file(now):
	if stop_file == "" or now < _next_stop_check or link.leaving:
		return
	_next_stop_check = now + 200
	if File.new().file_exists(stop_file):
		leave_and_quit()


# ---- for the addon's scripts ------------------------------------------------------------------

func server_headers():
	return ["Content-Type: application/json", "Authorization: Bearer " + token, "X-Server-Id: " + server_id]


func report_error(operation, code, detail):
	emit_signal("request_failed", operation, code, detail)


# A collect or ack was refused: wait for the next heartbeat reply to confirm the lead again.
func lost_lead(region_id):
	_check_lease(OS.get_ticks_msec())
	var r = regions.get(region_id)
	if r != null:
		r.leading = false
	link.beat_now()


func on_datagram(message, host, port):
	emit_signal("datagram_received", message, host, port)


func set_replication_peers(peers, now):
	_replication.set_peers(peers, now)


func drop_region(region_id):
	regions.erase(region_id)
	replay.forget_region(region_id)
	emit_signal("region_dropped", region_id)


func drop_all_regions():
	for region_id in regions.keys():
		drop_region(region_id)
	_replication.clear_peers()


func apply_assignment(doc, claimed, now):
	_check_lease(now)
	return _assignments.apply(doc, claimed, now)


func grant_lease(sent_at, lease_ms, now):
	if _lease.grant(sent_at, lease_ms, now):
		emit_signal("lease_renewed")


func peer_silences(now):
	return _replication.silences(now)


func set_transport(name):
	transport = name
	emit_signal("transport_changed", name)


# Emits `lease_lost` once if the lease ran out while leading; also run before an answer ends a lead,
# since HTTP answers come before `_process` and may demote a process paused past its lease.
func _check_lease(now):
	if _lease.ran_out(now, _leads_any()):
		emit_signal("lease_lost")


func _leads_any():
	for region_id in regions:
		if regions[region_id].role == "primary" and regions[region_id].leading:
			return true
	return false


func _advance_primaries(now):
	var elapsed = now - _last_advance_at
	_last_advance_at = now
	for region_id in regions:
		var r = regions[region_id]
		if r.role == "primary":
			r.applied_seq += elapsed * seq_per_second / 1000.0


func _exit_tree():
	_replication.close()

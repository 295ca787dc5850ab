# Headless demo of a mesh-coordinated Godot dedicated server, built on addons/mesh_client.
#
#   godot3-server --no-window -s clients/godot/demo_server.gd -- \
#     --coordinator http://127.0.0.1:8080[,URL...] --zone z1 --udp-port 7001 --name gd-1 \
#     [--host 127.0.0.1] [--admin-token TOKEN] [--stop-file PATH] [--identity PATH] [--action-log PATH]
#     [--session off]
#
# It prints one line per notable event on stdout, for people and for tests:
#   registered <server_id> | role <region> <primary|backup> <epoch> | leading <region> <epoch>
#   demoted <region> <epoch> | dropped <region> | fidelity <f> | restored <region> <player>
#   lease_lost | lease_renewed | transport <session|http>
#   left | error <operation> <code> <detail>
# --coordinator takes every coordinator replica's URL, comma-separated (the addon follows the leader).
# When the --stop-file appears, it drains (leaves the mesh gracefully) and exits with 0: Godot 3
# has no SIGTERM hook, so this stands in for an orchestrator's "please stop".
#
# Players send actions as UDP datagrams to the server's address:
#   {"t": "act", "r": region, "p": player, "s": seq, "a": after?, "payload": ...}
# The primary applies a player's actions in seq order, each at most once: `a` (after) names the
# player's previous action that this server has not confirmed yet (buffered at the coordinator or
# still in flight); the action waits until that one is applied. It answers with a cumulative
#   {"t": "ack", "r": region, "p": player, "through": seq, "e": epoch}
# or {"t": "nack", "r": region, "p": player, "s": seq, "e": epoch} when it does not lead the region.
# Every applied action, direct or replayed from the coordinator's buffer, is appended to the
# --action-log file as "<region> <player> <seq> <epoch> <direct|replay> <server_id> <unix ms>".
extends SceneTree

const MeshClient = preload("addons/mesh_client/mesh_client.gd")
const SNAPSHOT_EVERY = 20
const MAX_HELD_PER_PLAYER = 256

var client
var action_log = ""
# region_id -> {player_id -> {seq -> datagram}}: direct actions waiting for an earlier one
var held = {}
# "region/player" -> actions applied here, for snapshots
var applied_here = {}


func _initialize():
	var args = _parse_args()
	var host = args.get("host", "127.0.0.1")
	action_log = args.get("action-log", "")
	if action_log != "":
		var f = File.new()
		if not f.file_exists(action_log):
			f.open(action_log, File.WRITE)
			f.close()
	client = MeshClient.new()
	client.coordinator_url = args.get("coordinator", "http://127.0.0.1:8080")
	client.zone = args.get("zone", "default")
	client.server_name = args.get("name", "")
	client.admin_token = args.get("admin-token", "")
	client.address = "%s:%d" % [host, int(args.get("udp-port", "7001"))]
	client.replication_bind_address = host
	client.stop_file = args.get("stop-file", "")
	client.identity_path = args.get("identity", "")
	client.use_session = args.get("session", "on") != "off"
	client.connect("registered", self, "_say", ["registered"])
	client.connect("role_changed", self, "_on_role_changed")
	client.connect("leading", self, "_on_leading")
	client.connect("demoted", self, "_on_demoted")
	client.connect("lease_lost", self, "_on_lease_lost")
	client.connect("lease_renewed", self, "_on_lease_renewed")
	client.connect("transport_changed", self, "_say", ["transport"])
	client.connect("region_dropped", self, "_say", ["dropped"])
	client.connect("fidelity_changed", self, "_say", ["fidelity"])
	client.connect("request_failed", self, "_on_request_failed")
	client.connect("actions_ready", self, "_on_actions_ready")
	client.connect("snapshot_restored", self, "_on_snapshot_restored")
	client.connect("datagram_received", self, "_on_datagram")
	client.connect("left", self, "_on_left")
	root.add_child(client)
	client.start()


# Arguments after "--": "--key value" pairs.
func _parse_args():
	var args = {}
	var raw = Array(OS.get_cmdline_args())
	var start = raw.find("--")
	var i = start + 1 if start >= 0 else raw.size()
	while i < raw.size():
		var key = raw[i]
		if key.begins_with("--") and i + 1 < raw.size():
			args[key.substr(2, key.length())] = raw[i + 1]
			i += 2
		else:
			i += 1
	return args


# ---- player actions ---------------------------------------------------------------------------

func _on_datagram(msg, host, port):
	if typeof(msg) != TYPE_DICTIONARY or msg.get("t") != "act" or typeof(msg.get("r")) != TYPE_STRING or typeof(msg.get("p")) != TYPE_STRING:
		return
	var r = msg.r
	var p = msg.p
	var s = int(msg.get("s", -1))
	if not client.leads(r):
		var epoch = client.regions[r].epoch if client.regions.has(r) else 0
		_send(host, port, {"t": "nack", "r": r, "p": p, "s": s, "e": epoch})
		return
	msg["host"] = host
	msg["port"] = port
	var through = client.ledger.applied_through(r, p)
	if s <= through:
		_ack(r, p, host, port)
	elif msg.has("a") and int(msg.a) > through:
		_hold(r, p, s, msg)
	else:
		_apply([[r, p, s, "direct"]])
		_ack(r, p, host, port)
		_release(r, p)


func _hold(r, p, s, msg):
	if not held.has(r):
		held[r] = {}
	if not held[r].has(p):
		held[r][p] = {}
	if held[r][p].size() < MAX_HELD_PER_PLAYER:
		held[r][p][s] = msg  # beyond the bound it is dropped unanswered: the player sends it again


# Applies held actions whose predecessor is now applied, lowest seq first.
func _release(r, p):
	if not held.has(r) or not held[r].has(p):
		return
	var waiting = held[r][p]
	var seqs = waiting.keys()
	seqs.sort()
	for s in seqs:
		var msg = waiting[s]
		var through = client.ledger.applied_through(r, p)
		if msg.has("a") and int(msg.a) > through:
			break
		waiting.erase(s)
		if s > through:
			_apply([[r, p, s, "direct"]])
		_ack(r, p, msg.host, msg.port)


func _on_actions_ready(region_id, actions):
	var batch = []
	for a in actions:
		batch.append([region_id, a.player_id, a.seq, "replay"])
	_apply(batch)
	var players = {}
	for a in actions:
		players[a.player_id] = true
	for p in players:
		_release(region_id, p)


# Logs, then records, each action: the log is the game's effect, written before anyone is told.
func _apply(batch):
	if action_log != "":
		var f = File.new()
		if f.open(action_log, File.READ_WRITE) == OK:
			f.seek_end()
			var at = OS.get_system_time_msecs()
			for item in batch:
				var epoch = client.regions[item[0]].epoch if client.regions.has(item[0]) else 0
				f.store_line("%s %s %d %d %s %s %d" % [item[0], item[1], item[2], epoch, item[3], client.server_id, at])
			f.close()
	for item in batch:
		client.mark_applied(item[0], item[1], item[2])
		var key = "%s/%s" % [item[0], item[1]]
		applied_here[key] = applied_here.get(key, 0) + 1
		if applied_here[key] % SNAPSHOT_EVERY == 0:
			client.post_snapshot(item[0], item[1], {"applied_here": applied_here[key]})


func _ack(r, p, host, port):
	var epoch = client.regions[r].epoch if client.regions.has(r) else 0
	_send(host, port, {"t": "ack", "r": r, "p": p, "through": client.ledger.applied_through(r, p), "e": epoch})


func _send(host, port, doc):
	client.send_datagram(host, port, JSON.print(doc).to_utf8())


# ---- printing ---------------------------------------------------------------------------------

func _say(value, word):
	print("%s %s" % [word, str(value)])


func _on_role_changed(region_id, role, epoch):
	print("role %s %s %d" % [region_id, role, epoch])


func _on_leading(region_id, epoch):
	print("leading %s %d" % [region_id, epoch])


# Past its lease a primary takes no player action (client.leads() is false until the next reply):
# players are told nack and report it to the coordinator, which buffers their actions.
func _on_lease_lost():
	print("lease_lost")


func _on_lease_renewed():
	print("lease_renewed")


func _on_demoted(region_id, epoch):
	held.erase(region_id)
	print("demoted %s %d" % [region_id, epoch])


func _on_snapshot_restored(region_id, player_id, _state):
	print("restored %s %s" % [region_id, player_id])


func _on_request_failed(operation, code, detail):
	print("error %s %s %s" % [operation, code, detail])


func _on_left():
	print("left")
	quit()

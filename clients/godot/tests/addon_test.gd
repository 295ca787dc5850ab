# Unit checks of the addon's pure parts on the real engine: assignments (replies and pushes applied
# idempotently by epoch), the primary lease, and the list of coordinator URLs that follows the leader. Prints one line per failed check and a last line
# "addon_test: <n> checks, <m> failed"; exits 1 when any failed.
#
#   godot3-server --no-window -s clients/godot/tests/addon_test.gd
extends SceneTree

const MeshClient = preload("../addons/mesh_client/mesh_client.gd")
const Lease = preload("../addons/mesh_client/lease.gd")
const CoordinatorUrls = preload("../addons/mesh_client/coordinator_urls.gd")

var checks = 0
var failed = 0
var heard = []


class ReplayStub:
	var forgotten = []
	var wanted = []

	func forget_region(region_id):
		forgotten.append(region_id)

	func want_collect(region_id):
		wanted.append(region_id)


func _initialize():
	_assignment_checks()
	_lease_checks()
	_url_checks()
	print("addon_test: %d checks, %d failed" % [checks, failed])
	quit(1 if failed > 0 else 0)


func _check(what, ok):
	checks += 1
	if not ok:
		failed += 1
		print("FAIL ", what)


func _record(a = null, b = null, c = null, name = ""):
	var args = []
	for x in [a, b, c]:
		if x != null:
			args.append(str(x))
	heard.append(name + " " + PoolStringArray(args).join(" "))


func _take():
	var out = heard
	heard = []
	return out


func _doc(regions, demoted = [], fidelity = 1.0):
	return {"status": "alive", "fidelity": fidelity, "heartbeat_interval_ms": 1000, "lease_ms": 300, "regions": regions, "demoted": demoted}


func _region(role, epoch, pending = 0):
	return {"region_id": "r", "role": role, "epoch": epoch, "primary": {"server_id": "me", "address": "127.0.0.1:1"} if role == "primary" else {"server_id": "p", "address": "127.0.0.1:2"},
		"backups": [], "fidelity": 1.0, "actions_pending": pending}


func _assignment_checks():
	var client = MeshClient.new()
	client.server_id = "me"
	var replay = ReplayStub.new()
	client.replay = replay
	for s in [["role_changed", 3], ["leading", 2], ["demoted", 2], ["region_dropped", 1], ["fidelity_changed", 1]]:
		var binds = []
		for _i in range(3 - s[1]):
			binds.append(null)
		binds.append(s[0])
		client.connect(s[0], self, "_record", binds)
	# A push names this server primary at epoch 2: a role change, not yet led (nothing was claimed).
	_check("push: changed", client.apply_assignment(_doc([_region("primary", 2)]), null, 0))
	_check("push: role_changed only", _take() == ["role_changed r primary 2"])
	_check("push: not led", client.regions.r.leading == false)
	# The same push again changes nothing and emits nothing.
	_check("repeated push: unchanged", not client.apply_assignment(_doc([_region("primary", 2)]), null, 0))
	_check("repeated push: silent", _take() == [])
	# The reply to a heartbeat that claimed primary at epoch 2 acknowledges it: led, once.
	client.apply_assignment(_doc([_region("primary", 2, 3)]), {"r": 2}, 0)
	_check("claimed reply: leading", _take() == ["leading r 2"] and client.regions.r.leading)
	_check("claimed reply: actions wanted", replay.wanted == ["r"])
	client.apply_assignment(_doc([_region("primary", 2)]), {"r": 2}, 0)
	_check("repeated reply: silent", _take() == [])
	# A push keeps the lead; a reply to a heartbeat that did not claim the epoch does not give it.
	client.apply_assignment(_doc([_region("primary", 2)]), null, 0)
	_check("push keeps the lead", client.regions.r.leading and _take() == [])
	# An older epoch (a late answer) is ignored: no going back to epoch 1.
	_check("older epoch: unchanged", not client.apply_assignment(_doc([_region("backup", 1)]), null, 0))
	_check("older epoch: ignored", client.regions.r.role == "primary" and client.regions.r.epoch == 2 and _take() == [])
	# A demotion at the held epoch is not newer: ignored. One at epoch 3 demotes, once.
	client.apply_assignment(_doc([_region("primary", 2)], [{"region_id": "r", "epoch": 2}]), null, 0)
	_check("stale demotion ignored", client.regions.r.role == "primary" and _take() == [])
	client.apply_assignment(_doc([_region("backup", 3)], [{"region_id": "r", "epoch": 3}]), null, 0)
	_check("demotion", _take() == ["demoted r 3", "role_changed r backup 3"] and not client.regions.r.leading)
	client.apply_assignment(_doc([_region("backup", 3)], [{"region_id": "r", "epoch": 3}]), null, 0)
	_check("repeated demotion: silent", _take() == [])
	# Fidelity and drops, once each.
	client.apply_assignment(_doc([_region("backup", 3)], [], 0.5), null, 0)
	client.apply_assignment(_doc([_region("backup", 3)], [], 0.5), null, 0)
	_check("fidelity once", _take() == ["fidelity_changed 0.5"])
	client.apply_assignment(_doc([], [], 0.5), null, 0)
	client.apply_assignment(_doc([], [], 0.5), null, 0)
	var dropped = _take()
	_check("dropped once: %s" % str(dropped), dropped == ["region_dropped r"] and client.regions.empty())
	client.free()


func _lease_checks():
	var lease = Lease.new()
	_check("no lease at first", not lease.runs(0))
	lease.grant(100, 300, 150)
	_check("counted from the send time", lease.runs(399) and not lease.runs(400))
	lease.grant(50, 1000, 160)
	_check("an answer to an older message is ignored", not lease.runs(400))
	_check("lease_lost once", lease.ran_out(400, true) and not lease.ran_out(401, true))
	_check("late grant already spent", not lease.grant(120, 300, 500) and lease.lost)
	_check("renewed", lease.grant(450, 300, 500) and not lease.lost and lease.remaining_ms(500) == 250)
	_check("no lease_lost without a led region", not lease.ran_out(800, false))
	lease.grant(700, 0, 710)
	_check("lease_ms 0 ends it", not lease.runs(710))


func _url_checks():
	var a = "http://127.0.0.1:8001"
	var b = "http://127.0.0.1:8002"
	var c = "https://c.example:8443"
	# Settings: the list wins; else coordinator_url, one URL or several comma-separated; paths dropped.
	_check("one url", CoordinatorUrls.from_settings(PoolStringArray(), a + "/") == [a])
	_check("comma-separated", CoordinatorUrls.from_settings(PoolStringArray(), " %s/x , %s,,%s?q" % [a, b, c]) == [a, b, c])
	_check("the list wins", CoordinatorUrls.from_settings(PoolStringArray([b, c]), a) == [b, c])
	_check("not a url dropped", CoordinatorUrls.from_settings(PoolStringArray(["ftp://x", "nothing", a]), "") == [a])
	var urls = CoordinatorUrls.new([a, b, c])
	_check("starts at the first", urls.current() == a and not urls.leader_known())
	# A coordinator that failed is left for the next; a late failure of one not in use changes nothing.
	urls.failed(a + "/mesh/servers")
	_check("failed: next", urls.current() == b)
	urls.failed(a)
	_check("late failure ignored", urls.current() == b)
	# A 307's Location names the leader: used from then on, whatever the list says.
	urls.leader_is(c + "/mesh/servers/s-1/heartbeat?x=1")
	_check("leader named", urls.current() == c and urls.leader_known())
	urls.failed(b)
	_check("failure of another ignored", urls.current() == c)
	# The leader fails: back to the list where it was, not past it.
	urls.failed(c)
	_check("leader failed: back to the list", urls.current() == b and not urls.leader_known())
	urls.failed(b)
	urls.failed(c)
	_check("wraps around", urls.current() == a)
	urls.leader_is("/relative")
	_check("a relative location names nobody", urls.current() == a)
	var single = CoordinatorUrls.new([a])
	single.failed(a)
	_check("one url stays", single.current() == a)
	# Answers: the Location header, the no-leader problem, the 4002 close reason.
	_check("location", CoordinatorUrls.location(["Content-Type: application/json", "location: %s/p" % b]) == b + "/p")
	_check("no location", CoordinatorUrls.location(["Content-Type: application/json"]) == "")
	var no_leader = JSON.print({"type": CoordinatorUrls.NO_LEADER, "status": 503}).to_utf8()
	_check("no-leader problem", CoordinatorUrls.is_no_leader(503, no_leader))
	_check("other 503", not CoordinatorUrls.is_no_leader(503, JSON.print({"type": "about:blank"}).to_utf8()))
	_check("no-leader needs 503", not CoordinatorUrls.is_no_leader(200, no_leader))
	_check("not json", not CoordinatorUrls.is_no_leader(503, "<html>".to_utf8()))
	_check("4002 names the leader", CoordinatorUrls.leader_in_close(4002, "not the leader; leader: %s" % b) == b)
	_check("4002 without a leader", CoordinatorUrls.leader_in_close(4002, "not the leader any more; no leader is known yet") == "")
	_check("other close codes name nobody", CoordinatorUrls.leader_in_close(1001, "leader: %s" % b) == "")

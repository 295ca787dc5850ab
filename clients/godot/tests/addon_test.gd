# Unit checks of the addon's pure parts on the real engine: assignments (replies and pushes applied
# idempotently by epoch) and the primary lease. Prints one line per failed check and a last line
# "addon_test: <n> checks, <m> failed"; exits 1 when any failed.
#
#   godot3-server --no-window -s clients/godot/tests/addon_test.gd
extends SceneTree

const MeshClient = preload("../addons/mesh_client/mesh_client.gd")
const Lease = preload("../addons/mesh_client/lease.gd")

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

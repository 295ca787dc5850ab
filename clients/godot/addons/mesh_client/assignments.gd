# Applies what the coordinator says about this server, a heartbeat reply or a pushed assignment
# (the same HeartbeatResponse document), to `client.regions`, idempotently by epoch: a region never
# goes back to an older epoch, a demotion older than what is held is ignored, and a repeated
# document changes nothing and emits nothing. A region is led (`leading`: the acknowledged primary
# of its epoch) once the reply to a heartbeat that claimed it primary under that epoch still names
# it primary; a push never makes it so (nothing was claimed), it only keeps or ends it.
extends Reference

var client


func _init(owner_client):
	client = owner_client


# `claimed` is region_id -> epoch claimed as primary by the heartbeat this reply answers, or null
# for a push. Returns true when a role or epoch changed or a region was added: heartbeat at once.
func apply(doc, claimed, now):
	client.status = doc.status
	_demote(doc.demoted)
	var changed = false
	var given = {}
	var peers = {}
	for a in doc.regions:
		given[a.region_id] = true
		if _assign(a, claimed):
			changed = true
		for e in [a.primary] + a.backups:
			if e != null and e.server_id != client.server_id:
				peers[e.server_id] = e.address
	for region_id in client.regions.keys():
		if not given.has(region_id):
			client.drop_region(region_id)
	client.set_replication_peers(peers, now)
	var f = float(doc.fidelity)
	if abs(f - client.fidelity) > 0.001:
		client.fidelity = f
		client.emit_signal("fidelity_changed", f)
	return changed


func _demote(demotions):
	for d in demotions:
		var held = client.regions.get(d.region_id)
		var epoch = int(d.epoch)
		if held == null or held.role != "primary" or held.epoch >= epoch:
			continue  # not held as primary, or a demotion this server already took or outgrew
		held.role = "backup"
		held.leading = false
		client.replay.forget_region(d.region_id)
		client.emit_signal("demoted", d.region_id, epoch)


func _assign(a, claimed):
	var epoch = int(a.epoch)
	var held = client.regions.get(a.region_id)
	if held != null and epoch < held.epoch:
		return false  # older than what this server holds (a late answer): ignored
	var changed = held == null or held.role != a.role or held.epoch != epoch
	if held == null:
		# A new region: a backup starts empty and catches up from its primary's packets.
		held = {"role": "", "epoch": 0, "applied_seq": 0.0, "primary_id": "", "fidelity": 1.0, "actions_pending": 0, "leading": false}
		client.regions[a.region_id] = held
	if changed and held.role == "primary":
		client.replay.forget_region(a.region_id)
	held.role = a.role
	held.epoch = epoch
	held.primary_id = a.primary.server_id if a.primary != null else ""
	held.fidelity = float(a.fidelity)
	held.actions_pending = int(a.actions_pending)
	var was_leading = held.leading
	if claimed != null:
		# The heartbeat this reply answers claimed primary under this epoch: the promotion is acknowledged.
		held.leading = a.role == "primary" and claimed.get(a.region_id, -1) == epoch
	elif changed:
		held.leading = false
	if changed:
		client.emit_signal("role_changed", a.region_id, a.role, epoch)
	if held.leading and not was_leading:
		client.emit_signal("leading", a.region_id, epoch)
	if held.leading and held.actions_pending > 0:
		client.replay.want_collect(a.region_id)
	return changed

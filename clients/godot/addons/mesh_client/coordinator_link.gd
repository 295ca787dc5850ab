# The server's link to the coordinator: registration, the heartbeat schedule over whichever
# transport is up (the session when open, HTTP otherwise), every answer (replies, pushes, leases,
# refusals) and the graceful leave. The transports (session_transport.gd, http_transport.gd) only
# carry messages; what an answer means is decided here, the same for both.
extends Reference

const Errors = preload("errors.gd")
const Backoff = preload("backoff.gd")
const Identity = preload("identity.gd")

var client
var http
var session
var leaving = false
var done = false
var _leave_in_flight = false
var _leave_accepted = false
var _next_leave_at = 0
var _leave_deadline = 0
var _regular_interval_ms = 1000
var _next_heartbeat_at = 0
# Heartbeat at the next chance, whatever the schedule (a role or the transport changed, a peer fell silent).
var _beat_now = false
var _last_beat_sent_at = -1
var _next_register_at = 0
var _hb_seq = 0
var _retry = Backoff.new(200, 5000)


func _init(owner_client, http_transport, session_transport):
	client = owner_client
	http = http_transport
	session = session_transport


func beat_now():
	_beat_now = true


func leave(now):
	if leaving or done:
		return
	leaving = true
	_leave_deadline = now + client.leave_timeout_ms
	if client.server_id == "":
		http.cancel()  # a registration in flight: never complete it
		finish_leave()


# Once a frame, after the answers were read: leave, register or heartbeat when due.
func step(now):
	if leaving:
		_leave_step(now)
	if done:
		return
	if client.server_id == "":
		if not leaving and now >= _next_register_at and not http.busy():
			_register(now)
	elif (_beat_now or now >= _next_heartbeat_at) and (session.can_send() if session.is_open() else not http.busy()):
		_heartbeat(now)


func _leave_step(now):
	if now >= _leave_deadline:
		finish_leave()
	elif not _leave_accepted and not _leave_in_flight and now >= _next_leave_at:
		if session.is_open():
			_leave_in_flight = session.leave(now)
		elif not http.leave_busy():
			_leave_in_flight = true
			http.leave(now)


func _register(now):
	var body = {"address": client.address, "zone": client.zone, "capacity": client.capacity}
	if client.server_name != "":
		body["name"] = client.server_name
	http.register(body, now)


func _heartbeat(now):
	_hb_seq += 1
	var claims = []
	var claimed = {}
	for region_id in client.regions:
		var r = client.regions[region_id]
		claims.append({"region_id": region_id, "role": r.role, "epoch": r.epoch, "applied_seq": int(r.applied_seq)})
		if r.role == "primary":
			claimed[region_id] = r.epoch
	var body = {"incarnation": client.incarnation, "seq": _hb_seq, "players": int(client.players), "regions": claims,
		"peers": client.peer_silences(now)}
	# The next regular heartbeat is due one interval after this one was sent, whatever the latency.
	_beat_now = false
	_last_beat_sent_at = now
	_next_heartbeat_at = now + _regular_interval_ms
	if session.is_open():
		session.heartbeat(body, claimed, now)
	else:
		http.heartbeat(body, claimed, now)


# ---- answers, from either transport ----------------------------------------------------------

func on_registered(doc, now):
	client.server_id = doc.server_id
	client.token = doc.token
	_regular_interval_ms = int(doc.heartbeat_interval_ms)
	_retry.reset()
	_beat_now = true
	Identity.write(client.identity_path, client.server_id, client.token, client)
	client.emit_signal("registered", client.server_id)


func on_register_failed(code, detail, now):
	client.report_error("register", code, detail)
	_next_register_at = now + _retry.next_delay_ms()


# A heartbeat reply (`claimed`: what its heartbeat claimed, sent at `sent_at`) or a push (null, -1).
func on_assignment(doc, claimed, sent_at, now):
	if claimed != null:
		_retry.reset()
		client.grant_lease(sent_at, int(doc.get("lease_ms", 0)), now)
	var changed = client.apply_assignment(doc, claimed, now)
	var interval = int(doc.heartbeat_interval_ms)
	if changed:
		_beat_now = true  # acknowledges a promotion at once
		session.renew_soon()
	elif claimed == null:
		_next_heartbeat_at = min(_next_heartbeat_at, now + interval)
	elif sent_at == _last_beat_sent_at:
		_next_heartbeat_at = sent_at + interval
	if leaving and client.regions.empty() and client.replay.idle():
		finish_leave()


# A lease over the session, answering a renew sent at `sent_at`.
func on_lease(sent_at, lease_ms, now):
	client.grant_lease(sent_at, lease_ms, now)


# Every retry waits a jittered, growing delay; a heartbeat retry never waits past its regular
# cadence, since the coordinator judges this server by the heartbeats that arrive.
func on_heartbeat_failed(code, detail, now):
	client.report_error("heartbeat", code, detail)
	_next_heartbeat_at = now + min(_retry.next_delay_ms(), _regular_interval_ms)


func on_heartbeat_refused(code, detail):
	if leaving:
		finish_leave()  # already gone, or forgotten: nothing left to hand off
		return
	# The coordinator does not know this server (lost state, or it left): start over.
	client.report_error("heartbeat", Errors.FORGOTTEN, "answered %d (%s); registering again" % [code, detail])
	_forget_server()


func on_leave_answer(code, detail):
	_leave_in_flight = false
	if code == 404:
		finish_leave()  # the coordinator does not know this server: nothing to hand off
	elif code == 202 or code == 409:
		# Draining, or already left: heartbeat at once to learn what is left to hand off.
		_leave_accepted = true
		_beat_now = true
	else:
		on_leave_failed(Errors.HTTP_STATUS, "leave answered %d: %s" % [code, detail])


func on_leave_failed(code, detail):
	_leave_in_flight = false
	_next_leave_at = OS.get_ticks_msec() + _retry.next_delay_ms()
	client.report_error("leave", code, detail)


func on_session_changed(open):
	if open:
		http.cancel()  # its answer would be older than the session's first
	_beat_now = true
	client.set_transport("session" if open else "http")


func finish_leave():
	done = true
	session.close()
	client.drop_all_regions()
	client.emit_signal("left")


func _forget_server():
	session.close()
	http.cancel()
	client.drop_all_regions()
	client.server_id = ""
	client.token = ""
	client.incarnation = "%d-%d" % [OS.get_unix_time(), OS.get_process_id()]
	_next_register_at = OS.get_ticks_msec()

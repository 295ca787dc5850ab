# The session with the coordinator (asyncapi.yaml): one WebSocket that carries this server's
# heartbeats, lease renewals and leave, and brings back their answers, in order, and the
# coordinator's pushes (an `assignment` the moment a decision that concerns this server is durable).
# Answers are matched to what they answer by order (a FIFO of what was sent); nothing else is sent
# while a leave waits for its answer, which the coordinator gives only once it is durable. A session
# that cannot be opened, closes, or leaves a message unanswered for `request_timeout_ms` is retried
# with jittered exponential back-off; meanwhile the client heartbeats over HTTP.
# With several coordinators (replicas on etcd) the session opens at the one that leads as far as
# the client knows (coordinator_urls.gd): a close with 4002 names the new leader, and a leader named
# by anyone (that close, an HTTP request's 307) is tried at once instead of after the back-off. Godot 3's
# WebSocketClient does not show a refused handshake's status, so a follower's 307 to the handshake
# reads as any failure; the HTTP heartbeats sent meanwhile learn the leader from the same 307.
# The token goes in the `Authorization` header: Godot 3.2.3's connect_to_url carries custom headers
# (checked on the engine), so the `mesh.bearer.<token>` subprotocol (for clients that cannot) is not used.
extends Node

const Errors = preload("errors.gd")
const Backoff = preload("backoff.gd")
const CoordinatorUrls = preload("coordinator_urls.gd")
const PROTOCOL = "mesh.v1"
# Largest message taken in, KiB: an assignment names every region the server holds.
const IN_BUFFER_KB = 1024

var client
var _ws = null
# Which connection attempt the signals come from: those of an abandoned one are ignored.
var _generation = 0
# The abandoned client, kept until the next frame: it may be in the middle of emitting a signal.
var _retired = null
var _open = false
var _connecting_since = -1
var _next_connect_at = 0
var _backoff = Backoff.new(200, 10000)
var _close_code = -1
var _close_reason = ""
# What was sent and not answered yet, oldest first: {kind: heartbeat|renew|leave, sent_at, claimed}
var _pending = []
var _renew_seq = 0
var _next_renew_at = 0
# The coordinator this session was last opened at (or tried).
var _url = ""


func setup(owner_client):
	client = owner_client


func is_open():
	return _open


# True when a heartbeat or a renew may be sent now (none while a leave waits for its answer).
func can_send():
	return _open and not _leave_pending()


# A renew goes out at once (this server just became primary of a region).
func renew_soon():
	_next_renew_at = 0


func heartbeat(body, claimed, now):
	_send(now, "heartbeat", {"type": "heartbeat", "body": body}, claimed)


# Sends `leave` once nothing else waits for an answer; returns false when it could not yet.
func leave(now):
	if not _open or not _pending.empty():
		return false
	_send(now, "leave", {"type": "leave"}, null)
	return true


func close():
	_ended()
	if _retired != null:
		_retired.disconnect_from_host(1000, "closed by the server")


# Reads what arrived and dispatches it. First in every frame: a paused process reads what waited.
func receive(now):
	_retired = null
	if _ws == null:
		return
	_ws.poll()
	if _ws == null:
		return
	if _connecting_since >= 0 and now - _connecting_since > client.request_timeout_ms:
		client.urls.failed(_url)
		_fail(now, Errors.TIMEOUT, "no handshake within %d ms" % client.request_timeout_ms)
	elif _open and not _pending.empty() and now - _pending[0].sent_at > client.request_timeout_ms:
		client.urls.failed(_url)  # a coordinator that does not answer (paused) is left for the next
		_fail(now, Errors.TIMEOUT, "%s unanswered for %d ms" % [_pending[0].kind, client.request_timeout_ms])


# Opens the session when due, renews the lease when due, then sends what was queued this frame.
func step(now):
	if _ws == null and client.use_session and client.server_id != "" and (now >= _next_connect_at or _new_leader_known()):
		_connect(now)
	if can_send() and now >= _next_renew_at and _primary_anywhere() and not _renew_pending():
		_renew_seq += 1
		_send(now, "renew", {"type": "renew", "body": {"seq": _renew_seq}}, null)
		_next_renew_at = now + client.request_timeout_ms  # until a lease says when
	if _ws != null:
		_ws.poll()


func _connect(now):
	_generation += 1
	_ws = WebSocketClient.new()
	_ws.set_buffers(IN_BUFFER_KB, 1024, 64, 1024)
	_ws.connect("connection_established", self, "_on_established", [_generation])
	_ws.connect("connection_error", self, "_on_error", [_generation])
	_ws.connect("connection_closed", self, "_on_closed", [_generation])
	_ws.connect("server_close_request", self, "_on_close_request", [_generation])
	_ws.connect("data_received", self, "_on_data", [_generation])
	_connecting_since = now
	_close_code = -1
	_url = client.urls.current()
	var url = _url.replace("http://", "ws://").replace("https://", "wss://")
	url += "/mesh/servers/%s/session" % client.server_id.http_escape()
	var headers = PoolStringArray(["Authorization: Bearer " + client.token])
	var err = _ws.connect_to_url(url, PoolStringArray([PROTOCOL]), false, headers)
	if err != OK:
		_fail(now, Errors.SESSION_UNAVAILABLE, "connect_to_url error %d" % err)


func _on_established(_protocol, generation):
	if generation != _generation or _ws == null:
		return
	_connecting_since = -1
	_open = true
	_pending = []
	_next_renew_at = 0
	_ws.get_peer(1).set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)
	client.link.on_session_changed(true)


func _on_error(generation):
	if generation == _generation and _ws != null:
		_fail(OS.get_ticks_msec(), Errors.SESSION_UNAVAILABLE,
			"cannot open a session at %s (coordinator down, not the leader, handshake refused, or no WebSocket route); heartbeats go over HTTP" % _url)


func _on_close_request(code, reason, generation):
	if generation == _generation:
		_close_code = code
		_close_reason = reason


func _on_closed(_clean, generation):
	if generation != _generation or _ws == null:
		return
	var leader = CoordinatorUrls.leader_in_close(_close_code, _close_reason)
	if leader != "":
		client.urls.leader_is(leader)  # the coordinator stepped down: reconnect to the leader it named at once
	elif not _close_code in [4000, 4001]:
		client.urls.failed(_url)  # not replaced by a newer session of ours: try the next coordinator
	_fail(OS.get_ticks_msec(), Errors.SESSION_CLOSED, "closed (code %d%s); heartbeats go over HTTP" %
		[_close_code, ": " + _close_reason if _close_reason != "" else ""])


func _on_data(generation):
	var now = OS.get_ticks_msec()
	while generation == _generation and _ws != null and _ws.get_peer(1).get_available_packet_count() > 0:
		var text = _ws.get_peer(1).get_packet().get_string_from_utf8()
		var parsed = JSON.parse(text)
		var msg = parsed.result if parsed.error == OK else null
		if typeof(msg) != TYPE_DICTIONARY or typeof(msg.get("type")) != TYPE_STRING:
			client.report_error("session", Errors.BAD_REPLY, "not a session message: %s" % text.left(200))
		elif msg.type == "assignment" and typeof(msg.get("body")) == TYPE_DICTIONARY:
			client.link.on_assignment(msg.body, null, -1, now)
		else:
			_answered(msg, now)


# An answer to the oldest message in flight.
func _answered(msg, now):
	if _pending.empty():
		client.report_error("session", Errors.BAD_REPLY, "a %s answers nothing in flight" % msg.type)
		return
	var sent = _pending.pop_front()
	var body = msg.get("body")
	var ok = typeof(body) == TYPE_DICTIONARY
	if msg.type == "heartbeat_reply" and sent.kind == "heartbeat" and ok:
		_backoff.reset()
		client.link.on_assignment(body, sent.claimed, sent.sent_at, now)
	elif msg.type == "lease" and sent.kind == "renew" and ok:
		client.link.on_lease(sent.sent_at, int(body.get("lease_ms", 0)), now)
		_next_renew_at = now + int(body.get("renew_in_ms", 100))
	elif msg.type == "left" and sent.kind == "leave":
		client.link.on_leave_answer(202, "")
	elif msg.type == "problem" and ok:
		_refused(sent, int(body.get("status", 0)), str(body.get("detail", "")), now)
	else:
		_fail(now, Errors.BAD_REPLY, "a %s answered a %s" % [msg.type, sent.kind])


func _refused(sent, status, detail, now):
	if sent.kind == "leave":
		client.link.on_leave_answer(status, detail)
	elif sent.kind == "heartbeat" and status in [401, 403, 404, 409]:
		client.link.on_heartbeat_refused(status, detail)
	else:
		client.report_error(sent.kind, Errors.PROBLEM, "refused (%d): %s" % [status, detail])
		if sent.kind == "renew":
			_next_renew_at = now + _backoff.next_delay_ms()
		else:
			client.link.on_heartbeat_failed(Errors.PROBLEM, "refused (%d): %s" % [status, detail], now)


func _send(now, kind, doc, claimed):
	_pending.append({"kind": kind, "sent_at": now, "claimed": claimed})
	var err = _ws.get_peer(1).put_packet(JSON.print(doc).to_utf8())
	if err != OK:
		_fail(now, Errors.NETWORK, "%s: put_packet error %d" % [kind, err])


# Ends the session and retries after a back-off; what was in flight is reported to the client.
func _fail(now, code, detail):
	var leave_lost = _leave_pending()
	var delay = _backoff.next_delay_ms()
	_ended()
	if _retired != null:
		_retired.disconnect_from_host(1000, "")
	_next_connect_at = now + delay
	var again = "at once at the leader %s" % client.urls.current() if _new_leader_known() else "in %d ms" % delay
	client.report_error("session", code, "%s; again %s" % [detail, again])
	if leave_lost:
		client.link.on_leave_failed(code, "the session ended before the leave was answered")


# Forgets the client (kept as `_retired` until the next frame); its late signals find no `_ws`.
func _ended():
	if _ws != null:
		_retired = _ws
	_ws = null
	_connecting_since = -1
	_pending = []
	if _open:
		_open = false
		client.link.on_session_changed(false)


# True when the client knows a leader other than the coordinator the last attempt was at: a leader
# just named is tried at once, the one that just failed only after the back-off.
func _new_leader_known():
	return client.urls.leader_known() and client.urls.current() != _url


func _leave_pending():
	for sent in _pending:
		if sent.kind == "leave":
			return true
	return false


func _renew_pending():
	for sent in _pending:
		if sent.kind == "renew":
			return true
	return false


func _primary_anywhere():
	for region_id in client.regions:
		if client.regions[region_id].role == "primary":
			return true
	return false

# Registration, heartbeats and leave over HTTP: the way in (registration is always HTTP) and the
# fallback whenever no session is open. One registration or heartbeat is in flight at a time, so
# each answer is the freshest; a leave has a request of its own. HTTPRequest.timeout is whole
# seconds in Godot 3.2, so requests are timed here, to the millisecond. Requests go to the
# coordinator that leads (leader_request.gd); one that times out is left for the next.
extends Node

const Errors = preload("errors.gd")
const LeaderRequest = preload("leader_request.gd")

var client
var _main
var _leave
var _main_busy = false
var _main_sent_at = 0
# region_id -> epoch claimed as primary by the heartbeat in flight; null while registering
var _claimed = null
var _leave_busy = false
var _leave_sent_at = 0


func setup(owner_client):
	client = owner_client
	_main = _make_request("_on_main_completed")
	_leave = _make_request("_on_leave_completed")


func busy():
	return _main_busy


func leave_busy():
	return _leave_busy


func register(body, now):
	var headers = ["Content-Type: application/json"]
	if client.admin_token != "":
		headers.append("Authorization: Bearer " + client.admin_token)
	_claimed = null
	_send_main(now, "/mesh/servers", headers, JSON.print(body))


func heartbeat(body, claimed, now):
	_claimed = claimed
	_send_main(now, "/mesh/servers/%s/heartbeat" % client.server_id, client.server_headers(), JSON.print(body))


func leave(now):
	_leave_busy = true
	_leave_sent_at = now
	var err = _leave.send("/mesh/servers/%s/leave" % client.server_id, client.server_headers(), HTTPClient.METHOD_POST, "")
	if err != OK:
		_leave_busy = false
		client.link.on_leave_failed(Errors.NETWORK, "request() error %d" % err)


# Drops the heartbeat or registration in flight without an answer (a session opened, the server
# was forgotten or left): an answer arriving after the session's would be older than it.
func cancel():
	if _main_busy:
		_main.cancel_request()
		_main_busy = false


func poll(now):
	if _main_busy and now - _main_sent_at > client.request_timeout_ms:
		_main.give_up()
		_main_busy = false
		_main_failed(now, Errors.TIMEOUT, "timeout after %d ms" % client.request_timeout_ms)
	if _leave_busy and now - _leave_sent_at > client.request_timeout_ms:
		_leave.give_up()
		_leave_busy = false
		client.link.on_leave_failed(Errors.TIMEOUT, "timeout after %d ms" % client.request_timeout_ms)


func _make_request(callback):
	var http = LeaderRequest.new(client.urls)
	add_child(http)
	http.connect("answered", self, callback)
	return http


func _send_main(now, path, headers, body):
	_main_busy = true
	_main_sent_at = now
	var err = _main.send(path, headers, HTTPClient.METHOD_POST, body)
	if err != OK:
		_main_busy = false
		_main_failed(now, Errors.NETWORK, "request() error %d" % err)


func _main_failed(now, code, detail):
	if _claimed == null:
		client.link.on_register_failed(code, detail, now)
	else:
		client.link.on_heartbeat_failed(code, detail, now)


func _on_main_completed(result, code, _headers, body):
	_main_busy = false
	var now = OS.get_ticks_msec()
	if result != HTTPRequest.RESULT_SUCCESS:
		_main_failed(now, Errors.NETWORK, "network result %d" % result)
		return
	var doc = parse(body)
	if _claimed == null:
		if code == 201 and typeof(doc) == TYPE_DICTIONARY:
			client.link.on_registered(doc, now)
		else:
			client.link.on_register_failed(Errors.HTTP_STATUS if code != 201 else Errors.BAD_REPLY, "register answered %d: %s" % [code, detail_of(doc)], now)
	elif code == 200 and typeof(doc) == TYPE_DICTIONARY:
		client.link.on_assignment(doc, _claimed, _main_sent_at, now)
	elif code in [401, 403, 404, 409]:
		client.link.on_heartbeat_refused(code, detail_of(doc))
	else:
		_main_failed(now, Errors.HTTP_STATUS if code != 200 else Errors.BAD_REPLY, "heartbeat answered %d: %s" % [code, detail_of(doc)])


func _on_leave_completed(result, code, _headers, body):
	_leave_busy = false
	if result != HTTPRequest.RESULT_SUCCESS:
		client.link.on_leave_failed(Errors.NETWORK, "network result %d" % result)
	else:
		client.link.on_leave_answer(code, detail_of(parse(body)))


static func parse(body):
	var parsed = JSON.parse(body.get_string_from_utf8())
	return parsed.result if parsed.error == OK else null


static func detail_of(doc):
	if typeof(doc) == TYPE_DICTIONARY and doc.has("detail"):
		return str(doc.detail)
	return "no problem document"

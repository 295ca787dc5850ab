# Collects the player actions the coordinator buffered for regions this server leads, hands them
# to the game (`actions_ready`) and acknowledges them once applied. Only the acknowledged primary of
# the current epoch collects: the client confirms its promotion by heartbeat first. Each
# (player_id, seq) is applied at most once per region: what the ledger already holds is
# acknowledged without being handed out again (a re-collection after a lost ack, a reconnect, or
# an action this server already applied through the game's own path).
extends Node

const Errors = preload("errors.gd")
const Backoff = preload("backoff.gd")
const LeaderRequest = preload("leader_request.gd")

var client
var collect_limit = 500
var _http
var _busy = false
var _sent_at = 0
var _op = ""
var _op_region = ""
var _op_count = 0
# region_id -> true: buffered actions wait (the last heartbeat said so, or a collect was full)
var _want = {}
# region_id -> [{player_id, seq}] applied here, not yet acknowledged to the coordinator
var _acks = {}
var _next_try_at = 0
var _backoff = Backoff.new(100, 5000)
# Collected actions held back while snapshots of their unknown players load.
var _waiting = null


func setup(owner_client):
	client = owner_client
	_http = LeaderRequest.new(client.urls)
	add_child(_http)
	_http.connect("answered", self, "_on_completed")


func want_collect(region_id):
	_want[region_id] = true


# The region is no longer led here: the next primary collects what is left, and its ledger (which
# this server streamed to it) filters out what was applied here.
func forget_region(region_id):
	_want.erase(region_id)
	_acks.erase(region_id)
	if _waiting != null and _waiting.region_id == region_id:
		_waiting = null


func idle():
	return not _busy and _waiting == null and _want.empty() and _acks.empty()


func poll(now):
	if _busy:
		if now - _sent_at > client.request_timeout_ms:
			_http.give_up()
			_busy = false
			_failed(now, Errors.TIMEOUT, "%s timed out after %d ms" % [_op, client.request_timeout_ms])
		return
	if _waiting != null or now < _next_try_at:
		return
	for region_id in _acks:
		if not _acks[region_id].empty() and client.leads(region_id):
			_send(now, "ack", region_id, {"acks": _acks[region_id].slice(0, min(_acks[region_id].size(), 1000) - 1)})
			return
	for region_id in _want:
		if client.leads(region_id):
			_send(now, "collect", region_id, {"limit": collect_limit})
			return


func _send(now, op, region_id, body):
	_op = op
	_op_region = region_id
	_op_count = body.acks.size() if op == "ack" else 0
	_busy = true
	_sent_at = now
	var path = "/mesh/regions/%s/actions/%s" % [region_id.http_escape(), op]
	var err = _http.send(path, client.server_headers(), HTTPClient.METHOD_POST, JSON.print(body))
	if err != OK:
		_busy = false
		_failed(now, Errors.NETWORK, "%s: request() error %d" % [op, err])


func _on_completed(result, code, _headers, body):
	_busy = false
	var now = OS.get_ticks_msec()
	if result != HTTPRequest.RESULT_SUCCESS:
		_failed(now, Errors.NETWORK, "%s: network result %d" % [_op, result])
		return
	var parsed = JSON.parse(body.get_string_from_utf8())
	var doc = parsed.result if parsed.error == OK else null
	if code == 409:
		# No longer the acknowledged primary: whatever is left goes to the one that is.
		client.report_error("actions_" + _op, Errors.NOT_PRIMARY, "region %s: %s" % [_op_region, _detail(doc)])
		client.lost_lead(_op_region)
		forget_region(_op_region)
	elif code == 200 and typeof(doc) == TYPE_DICTIONARY:
		_backoff.reset()
		if _op == "ack":
			var left = _acks.get(_op_region, [])
			_acks[_op_region] = left.slice(_op_count, left.size() - 1) if left.size() > _op_count else []
		else:
			_collected(_op_region, doc)
	else:
		_failed(now, Errors.HTTP_STATUS if code != 200 else Errors.BAD_REPLY, "%s answered %d: %s" % [_op, code, _detail(doc)])


func _failed(now, code, detail):
	client.report_error("actions_" + _op, code, detail)
	_next_try_at = now + _backoff.next_delay_ms()


func _collected(region_id, doc):
	var held = client.regions.get(region_id)
	if held == null or not client.leads(region_id) or int(doc.get("epoch", -1)) != held.epoch or typeof(doc.get("actions")) != TYPE_ARRAY:
		return  # an answer for an epoch this server no longer leads under
	var actions = doc.actions
	if actions.size() < collect_limit:
		_want.erase(region_id)
	var fresh = []
	var unknown = {}
	for a in actions:
		if client.ledger.is_applied(region_id, a.player_id, int(a.seq)):
			_queue_ack(region_id, a)
		else:
			fresh.append(a)
			if client.restore_snapshots and not client.ledger.knows_player(region_id, a.player_id):
				unknown[a.player_id] = true
	if fresh.empty():
		return
	if unknown.empty():
		_deliver(region_id, fresh)
		return
	_waiting = {"region_id": region_id, "epoch": held.epoch, "actions": fresh, "players": unknown}
	for player_id in unknown:
		client.snapshots.fetch(region_id, player_id)


# A snapshot fetch ended (found, missing or failed): deliver once none is outstanding.
func snapshot_done(region_id, player_id):
	if _waiting == null or _waiting.region_id != region_id:
		return
	_waiting.players.erase(player_id)
	if not _waiting.players.empty():
		return
	var w = _waiting
	_waiting = null
	var held = client.regions.get(region_id)
	if held != null and held.epoch == w.epoch and client.leads(region_id):
		_deliver(region_id, w.actions)


# Hands the actions to the game and acknowledges them when the handler returns (the handler must
# have applied every action it was given by then).
func _deliver(region_id, actions):
	var todo = []
	for a in actions:
		var seq = int(a.seq)
		if client.ledger.is_applied(region_id, a.player_id, seq):
			_queue_ack(region_id, a)  # a restored snapshot already holds it
		else:
			todo.append({"player_id": a.player_id, "seq": seq, "payload": a.get("payload"), "accepted_at": a.get("accepted_at")})
	if todo.empty():
		return
	client.emit_signal("actions_ready", region_id, todo)
	for a in todo:
		client.ledger.mark_applied(region_id, a.player_id, a.seq)
		_queue_ack(region_id, a)
	client.replayed_count += todo.size()


func _queue_ack(region_id, a):
	if not _acks.has(region_id):
		_acks[region_id] = []
	_acks[region_id].append({"player_id": a.player_id, "seq": int(a.seq)})


static func _detail(doc):
	if typeof(doc) == TYPE_DICTIONARY and doc.has("detail"):
		return str(doc.detail)
	return "no problem document"

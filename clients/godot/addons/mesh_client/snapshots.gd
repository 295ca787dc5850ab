# Player snapshots: the primary posts a player's state (bounded in size) so that a server promoted
# later can restore a player it has no state for. The stored state is wrapped as
# {"applied_through": N, "data": <the game's state>}: the state includes the player's actions up to
# seq N, so a restoring server marks them applied and never applies them a second time.
# A post is not retried: the next post of the same player supersedes it.
extends Node

const Errors = preload("errors.gd")
const LeaderRequest = preload("leader_request.gd")

var client
var max_snapshot_bytes = 65536


func setup(owner_client):
	client = owner_client


# Returns "" when sent, or an error code (Errors) when not.
func post(region_id, player_id, state):
	var wrapped = {"applied_through": client.ledger.applied_through(region_id, player_id), "data": state}
	var text = JSON.print(wrapped)
	if text.to_utf8().size() > max_snapshot_bytes:
		client.report_error("snapshot_put", Errors.SNAPSHOT_TOO_LARGE,
			"snapshot of %s is %d bytes, over %d" % [player_id, text.to_utf8().size(), max_snapshot_bytes])
		return Errors.SNAPSHOT_TOO_LARGE
	_request(HTTPClient.METHOD_PUT, region_id, player_id, "{\"state\":%s}" % text)
	return ""


func fetch(region_id, player_id):
	_request(HTTPClient.METHOD_GET, region_id, player_id, "")


func _request(method, region_id, player_id, body):
	var http = LeaderRequest.new(client.urls)
	http.timeout = int(ceil(client.request_timeout_ms / 1000.0))
	add_child(http)
	http.connect("answered", self, "_on_completed", [http, method, region_id, player_id])
	var path = "/mesh/regions/%s/players/%s/snapshot" % [region_id.http_escape(), player_id.http_escape()]
	var err = http.send(path, client.server_headers(), method, body)
	if err != OK:
		_on_completed(HTTPRequest.RESULT_CANT_CONNECT, 0, [], PoolByteArray(), http, method, region_id, player_id)


func _on_completed(result, code, _headers, body, http, method, region_id, player_id):
	http.queue_free()
	var op = "snapshot_put" if method == HTTPClient.METHOD_PUT else "snapshot_get"
	var parsed = JSON.parse(body.get_string_from_utf8()) if result == HTTPRequest.RESULT_SUCCESS else null
	var doc = parsed.result if parsed != null and parsed.error == OK else null
	if result != HTTPRequest.RESULT_SUCCESS:
		client.report_error(op, Errors.NETWORK if result != HTTPRequest.RESULT_TIMEOUT else Errors.TIMEOUT, "network result %d" % result)
	elif method == HTTPClient.METHOD_GET and code == 200 and typeof(doc) == TYPE_DICTIONARY:
		_restore(region_id, player_id, doc.get("state"))
	elif not (code == 200 or (method == HTTPClient.METHOD_GET and code == 404)):
		client.report_error(op, Errors.HTTP_STATUS, "%s answered %d" % [op, code])
	if method == HTTPClient.METHOD_GET:
		client.replay.snapshot_done(region_id, player_id)


func _restore(region_id, player_id, state):
	var data = state
	if typeof(state) == TYPE_DICTIONARY and state.has("applied_through") and state.has("data"):
		client.ledger.merge_region(region_id, {player_id: state.applied_through})
		data = state.data
	client.emit_signal("snapshot_restored", region_id, player_id, data)

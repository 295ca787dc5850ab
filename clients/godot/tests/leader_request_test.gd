# Checks leader_request.gd on the real engine against loopback HTTP servers that
# tests/e2e/godot-addon-units.test.ts starts: a follower (307 to the leader, same path), a leader
# (answers 200 with what it received), one that answers 503 `no-leader`, one that redirects to
# itself, one that never answers, and a closed port. Prints one line per failed check and a last
# line "leader_request_test: <n> checks, <m> failed"; exits 1 when any failed.
#
#   godot3-server --no-window -s clients/godot/tests/leader_request_test.gd -- \
#     --follower URL --leader URL --no-leader URL --loop URL --silent URL --closed URL
extends SceneTree

const CoordinatorUrls = preload("../addons/mesh_client/coordinator_urls.gd")
const LeaderRequest = preload("../addons/mesh_client/leader_request.gd")
const HEADERS = ["Content-Type: application/json", "Authorization: Bearer server-token", "X-Server-Id: s-1"]
const BODY = "{\"seq\":7,\"regions\":[]}"
const PATH = "/mesh/servers/s-1/heartbeat?x=1"

var checks = 0
var failed = 0
var args = {}


func _initialize():
	args = _parse_args()
	# A check that waits forever (an answer that never comes) ends the run instead of hanging it.
	create_timer(20).connect("timeout", self, "_timed_out")
	_run()


func _timed_out():
	print("FAIL timed out; leader_request_test: %d checks, %d failed" % [checks, failed + 1])
	quit(1)


func _check(what, ok):
	checks += 1
	if not ok:
		failed += 1
		print("FAIL ", what)


# Sends PATH through a LeaderRequest on `urls` and waits for its answer: [result, code, headers, body].
func _send(urls, give_up_after_ms = -1):
	var request = LeaderRequest.new(urls)
	root.add_child(request)
	request.send(PATH, HEADERS, HTTPClient.METHOD_POST, BODY)
	if give_up_after_ms >= 0:
		yield(create_timer(give_up_after_ms / 1000.0), "timeout")
		request.give_up()
		request.queue_free()
		return null
	var answer = yield(request, "answered")
	request.queue_free()
	return answer


func _run():
	# A follower's 307: the same method, path, Authorization and body reach the leader, which the list keeps.
	var urls = CoordinatorUrls.new([args.follower, args.leader])
	var answer = yield(_send(urls), "completed")
	var echo = JSON.parse(answer[3].get_string_from_utf8()).result
	_check("307 followed: %s" % str(answer.slice(0, 1)), answer[0] == HTTPRequest.RESULT_SUCCESS and answer[1] == 200)
	_check("same request at the leader: %s" % str(echo), typeof(echo) == TYPE_DICTIONARY and echo.get("method") == "POST"
		and echo.get("url") == PATH and echo.get("authorization") == "Bearer server-token" and echo.get("body") == BODY)
	_check("the leader is kept", urls.current() == args.leader and urls.leader_known())
	# 503 no-leader reaches the caller, and its retry goes to the next coordinator.
	urls = CoordinatorUrls.new([args["no-leader"], args.leader])
	answer = yield(_send(urls), "completed")
	_check("no-leader answered: %d" % answer[1], answer[0] == HTTPRequest.RESULT_SUCCESS and answer[1] == 503)
	_check("no-leader: next", urls.current() == args.leader and not urls.leader_known())
	answer = yield(_send(urls), "completed")
	_check("the retry reaches the leader", answer[1] == 200 and urls.leader_known())
	# An unreachable coordinator: a network failure, then the next.
	urls = CoordinatorUrls.new([args.closed, args.leader])
	answer = yield(_send(urls), "completed")
	_check("closed port: a network failure", answer[0] != HTTPRequest.RESULT_SUCCESS)
	_check("closed port: next", urls.current() == args.leader)
	# One that never answers: the caller gives up, and the list moves on.
	urls = CoordinatorUrls.new([args.silent, args.leader])
	yield(_send(urls, 300), "completed")
	_check("silent: next", urls.current() == args.leader)
	# A redirect loop ends: the 307 reaches the caller after a bounded number of hops.
	urls = CoordinatorUrls.new([args.loop])
	answer = yield(_send(urls), "completed")
	_check("redirect loop bounded: %d" % answer[1], answer[0] == HTTPRequest.RESULT_SUCCESS and answer[1] == 307)
	print("leader_request_test: %d checks, %d failed" % [checks, failed])
	quit(1 if failed > 0 else 0)


# Arguments after "--": "--key value" pairs.
func _parse_args():
	var parsed = {}
	var raw = Array(OS.get_cmdline_args())
	var i = raw.find("--") + 1 if raw.find("--") >= 0 else raw.size()
	while i + 1 < raw.size():
		parsed[raw[i].substr(2, raw[i].length())] = raw[i + 1]
		i += 2
	return parsed

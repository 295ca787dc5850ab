# An HTTPRequest that goes to the coordinator that leads (coordinator_urls.gd): it sends to the
# current coordinator, follows a follower's 307 itself with the same method, headers (the
# `Authorization` among them) and body, and tells the list when a coordinator failed, so that the
# caller's retry goes to the next one. The caller gets one `answered` signal per send, with the
# arguments of `request_completed`; a 503 `no-leader` or a network failure reaches it as such and
# is retried with the caller's back-off. Any other answer below 500 comes from the leader (a
# follower answers the addon's requests only with 307 or 503), which the list then knows.
# Godot 3's HTTPRequest follows only 301 and 302, so a 307 comes here as a plain answer.
extends HTTPRequest

signal answered(result, code, headers, body)

const CoordinatorUrls = preload("coordinator_urls.gd")

var urls
var _path = ""
var _headers = []
var _method = HTTPClient.METHOD_GET
var _body = ""
var _url = ""
var _redirects = 0


func _init(coordinator_urls):
	urls = coordinator_urls
	use_threads = false
	connect("request_completed", self, "_on_completed")


# Sends `path` (with its query) to the current coordinator; returns the error of request().
func send(path, headers, method, body):
	_path = path
	_headers = headers
	_method = method
	_body = body
	_redirects = 0
	return _send()


# The caller stopped waiting: a coordinator that does not answer in time (a paused process accepts
# connections and never replies) is left, or every request would wait on it.
func give_up():
	cancel_request()
	urls.failed(_url)


func _send():
	_url = urls.current()
	return request(_url + _path, _headers, true, _method, _body)


func _on_completed(result, code, headers, body):
	if result != RESULT_SUCCESS:
		urls.failed(_url)
	elif code == 307 and _redirects <= urls.size() and CoordinatorUrls.origin(CoordinatorUrls.location(headers)) != "":
		urls.leader_is(CoordinatorUrls.location(headers))
		_redirects += 1
		if _send() == OK:
			return
		urls.failed(_url)
		result = RESULT_CANT_CONNECT
	elif CoordinatorUrls.is_no_leader(code, body):
		urls.failed(_url)
	elif code != 307 and code < 500:
		urls.leader_is(_url)  # only the leader answers anything but a 307 or a 503 to the addon's requests
	emit_signal("answered", result, code, headers, body)

# The coordinators this server knows (replicas on etcd: one leads, the others redirect to it) and the
# one it talks to now, as the TypeScript client's coordinator-urls.ts does it. A follower's 307, or a
# session closed with 4002, names the leader; a coordinator that cannot be reached, does not answer
# in time, or answers 503 `no-leader`, is left for the next one in the list. Every request and the
# session go to current(). With one URL (a single coordinator) nothing here ever changes.
extends Reference

const NO_LEADER = "https://mesh-coordinator.dev/problems/no-leader"
# Session close code of a coordinator that stopped leading; its reason ends "leader: <url>" when known.
const NOT_LEADER_CLOSE = 4002

var _urls = []
var _index = 0
var _leader = ""


# `urls`: base URLs (`http://host:port`), in the order to try them; at least one.
func _init(urls):
	for url in urls:
		var o = origin(url)
		if o != "":
			_urls.append(o)
	assert(not _urls.empty())


# The list the settings give: `coordinator_urls` when set, else `coordinator_url`, which may also
# hold several URLs separated by commas (handy on a command line or in an environment variable).
static func from_settings(coordinator_urls, coordinator_url):
	var raw = Array(coordinator_urls) if coordinator_urls.size() > 0 else Array(coordinator_url.split(",", false))
	var urls = []
	for url in raw:
		if origin(url) != "":
			urls.append(origin(url))
	return urls


# Where to send now: the leader last named, else the current entry of the list.
func current():
	return _leader if _leader != "" else _urls[_index]


func leader_known():
	return _leader != ""


func size():
	return _urls.size()


# A coordinator named the leader (a 307's `Location`, a 4002 close reason), or answered as the leader.
func leader_is(url):
	var o = origin(url)
	if o != "":
		_leader = o


# The coordinator at `url` failed (unreachable, no answer in time, no leader known): move on to the
# next. An answer from one no longer in use (a late answer) changes nothing.
func failed(url):
	if origin(url) != current():
		return
	if _leader != "":
		_leader = ""
	else:
		_index = (_index + 1) % _urls.size()


# "http://host:port/any/path" -> "http://host:port"; "" when it is not an http(s) URL.
static func origin(url):
	var u = url.strip_edges()
	var scheme_end = u.find("://")
	if scheme_end <= 0:
		return ""
	var scheme = u.left(scheme_end).to_lower()
	var rest = u.substr(scheme_end + 3, u.length())
	for cut in ["/", "?", "#"]:
		if rest.find(cut) >= 0:
			rest = rest.left(rest.find(cut))
	if not scheme in ["http", "https"] or rest == "":
		return ""
	return scheme + "://" + rest


# The `Location` among a response's headers ("Name: value" strings), "" when there is none.
static func location(headers):
	for h in headers:
		if h.to_lower().begins_with("location:"):
			return h.substr(9, h.length()).strip_edges()
	return ""


# True for a 503 whose problem document says no coordinator leads now (an election is under way).
static func is_no_leader(code, body):
	if code != 503:
		return false
	var parsed = JSON.parse(body.get_string_from_utf8())
	return parsed.error == OK and typeof(parsed.result) == TYPE_DICTIONARY and parsed.result.get("type") == NO_LEADER


# The leader a session close names (4002, reason "... leader: <url>"), "" when it names none.
static func leader_in_close(code, reason):
	var at = reason.rfind("leader: ")
	if code != NOT_LEADER_CLOSE or at < 0:
		return ""
	return origin(reason.substr(at + 8, reason.length()))

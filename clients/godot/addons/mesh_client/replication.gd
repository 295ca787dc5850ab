# The replication stand-in over UDP. Every `interval_ms` a primary sends each replication peer (the
# primary and backups of its regions, at the `host:port` they registered) a small JSON packet with,
# per region it leads, its epoch, `applied_seq` and action ledger. A backup follows only the primary
# the coordinator named (a fenced old primary is ignored). Every packet proves its sender alive; the
# heartbeat reports each peer's silence, which lets the coordinator confirm a dead primary quickly.
# Datagrams that are not replication packets (a game's own player traffic on the same port) are
# handed to `on_datagram(packet, host, port)` of the owner.
extends Reference

var interval_ms = 100
# A peer silent this long has fallen silent (its process may have died): the client heartbeats at
# once to report it. Two send intervals: one late packet is jitter, two missing ones are not.
var silence_report_ms = 200
var _udp = PacketPeerUDP.new()
var _next_send_at = 0
# server_id -> {host, port, known_since}
var _peers = {}
# server_id -> last time (ticks ms) a packet from it arrived
var _heard = {}
# server_id -> true: reported as fallen silent, until a packet from it arrives again
var _reported_silent = {}


func listen(port, bind_address):
	return _udp.listen(port, bind_address)


func close():
	_udp.close()


func send_to(host, port, bytes):
	_udp.set_dest_address(host, port)
	return _udp.put_packet(bytes)


# Peers named by the last heartbeat reply: server_id -> "host:port".
func set_peers(addresses, now):
	var next = {}
	for peer_id in addresses:
		var hp = split_address(addresses[peer_id])
		if hp[1] <= 0:
			continue  # not a host:port we can reach over UDP; we cannot judge its silence either
		var since = _peers[peer_id].known_since if _peers.has(peer_id) else now
		next[peer_id] = {"host": hp[0], "port": hp[1], "known_since": since}
	_peers = next


func clear_peers():
	_peers.clear()


# `peers` of a heartbeat: how long each replication peer has been silent.
func silences(now):
	var out = []
	for peer_id in _peers:
		var heard = max(_heard.get(peer_id, -1), _peers[peer_id].known_since)
		out.append({"server_id": peer_id, "silent_for_ms": int(max(0, now - heard))})
	return out


# True once per silence when a peer has just fallen silent for `silence_report_ms`.
func fell_silent(now):
	var fresh = false
	for peer_id in _peers:
		var heard = max(_heard.get(peer_id, -1), _peers[peer_id].known_since)
		if now - heard < silence_report_ms:
			_reported_silent.erase(peer_id)
		elif not _reported_silent.has(peer_id):
			_reported_silent[peer_id] = true
			fresh = true
	return fresh


# Sends the led regions' state when due; receives everything waiting.
func poll(client, now):
	_receive(client, now)
	if now < _next_send_at:
		return
	_next_send_at = now + interval_ms
	if client.server_id == "" or _peers.empty():
		return
	var led = {}
	for region_id in client.regions:
		var r = client.regions[region_id]
		if r.role == "primary":
			led[region_id] = [r.epoch, int(r.applied_seq), client.ledger.export_region(region_id)]
	var packet = JSON.print({"s": client.server_id, "r": led}).to_utf8()
	for peer_id in _peers:
		send_to(_peers[peer_id].host, _peers[peer_id].port, packet)


func _receive(client, now):
	while _udp.get_available_packet_count() > 0:
		var bytes = _udp.get_packet()
		var host = _udp.get_packet_ip()
		var port = _udp.get_packet_port()
		var parsed = JSON.parse(bytes.get_string_from_utf8())
		var msg = parsed.result if parsed.error == OK else null
		if typeof(msg) != TYPE_DICTIONARY or typeof(msg.get("s")) != TYPE_STRING or typeof(msg.get("r")) != TYPE_DICTIONARY:
			client.on_datagram(msg, host, port)
			continue
		_heard[msg.s] = now
		for region_id in msg.r:
			var r = client.regions.get(region_id)
			var state = msg.r[region_id]
			if r != null and r.role == "backup" and r.primary_id == msg.s and typeof(state) == TYPE_ARRAY and state.size() >= 2:
				r.applied_seq = max(r.applied_seq, float(state[1]))
				if state.size() >= 3:
					client.ledger.merge_region(region_id, state[2])


# "host:port" or "[v6]:port" or "scheme://host:port/..." -> [host, port]; port 0 if none.
static func split_address(text):
	var s = text
	var scheme = s.find("://")
	if scheme >= 0:
		s = s.substr(scheme + 3, s.length())
		var slash = s.find("/")
		if slash >= 0:
			s = s.substr(0, slash)
	var colon = s.find_last(":")
	if colon < 0:
		return [s, 0]
	var host = s.substr(0, colon).replace("[", "").replace("]", "")
	var port_text = s.substr(colon + 1, s.length())
	return [host, int(port_text) if port_text.is_valid_integer() else 0]

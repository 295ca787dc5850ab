# The server's identity (server_id and token) kept in a file across restarts: a restarted process
# heartbeats as the same server with a new incarnation, and the coordinator tells it what it no
# longer leads instead of counting a new server.
extends Reference

const Errors = preload("errors.gd")


# {server_id, token} from `path`, or null when there is none (or it cannot be read: reported).
static func read(path, client):
	var f = File.new()
	if path == "" or not f.file_exists(path):
		return null
	if f.open(path, File.READ) != OK:
		client.report_error("identity", Errors.IDENTITY, "cannot read %s" % path)
		return null
	var parsed = JSON.parse(f.get_as_text())
	f.close()
	var doc = parsed.result if parsed.error == OK else null
	if typeof(doc) == TYPE_DICTIONARY and typeof(doc.get("server_id")) == TYPE_STRING and typeof(doc.get("token")) == TYPE_STRING:
		return doc
	return null


static func write(path, server_id, token, client):
	if path == "":
		return
	var f = File.new()
	if f.open(path, File.WRITE) != OK:
		client.report_error("identity", Errors.IDENTITY, "cannot write %s" % path)
		return
	f.store_string(JSON.print({"server_id": server_id, "token": token}))
	f.close()

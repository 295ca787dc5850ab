# Headless demo of a mesh-coordinated Godot dedicated server.
#
#   godot3-server --no-window -s clients/godot/demo_server.gd -- \
#     --coordinator http://127.0.0.1:8080 --zone z1 --udp-port 7001 --name gd-1 \
#     [--host 127.0.0.1] [--admin-token TOKEN] [--stop-file PATH]
#
# It prints one line per notable event on stdout, for people and for tests:
#   registered <server_id> | role <region> <primary|backup> <epoch> | demoted <region> <epoch>
#   dropped <region> | fidelity <f> | left | error <operation> <detail>
# When --stop-file names a file that appears, it leaves the mesh gracefully and exits with 0
# (Godot 3 has no SIGTERM hook, so this stands in for an orchestrator's "please stop").
extends SceneTree

const MeshClient = preload("mesh_client.gd")

var client
var stop_file = ""
var next_stop_check = 0


func _initialize():
	var args = _parse_args()
	var host = args.get("host", "127.0.0.1")
	var udp_port = int(args.get("udp-port", "7001"))
	stop_file = args.get("stop-file", "")
	client = MeshClient.new()
	client.coordinator_url = args.get("coordinator", "http://127.0.0.1:8080")
	client.zone = args.get("zone", "default")
	client.server_name = args.get("name", "")
	client.admin_token = args.get("admin-token", "")
	client.address = "%s:%d" % [host, udp_port]
	client.replication_bind_address = host
	client.connect("registered", self, "_say", ["registered"])
	client.connect("role_changed", self, "_on_role_changed")
	client.connect("demoted", self, "_on_demoted")
	client.connect("region_dropped", self, "_say", ["dropped"])
	client.connect("fidelity_changed", self, "_say", ["fidelity"])
	client.connect("request_failed", self, "_on_request_failed")
	client.connect("left", self, "_on_left")
	root.add_child(client)
	client.start()


# Arguments after "--": "--key value" pairs.
func _parse_args():
	var args = {}
	var raw = Array(OS.get_cmdline_args())
	var start = raw.find("--")
	var i = start + 1 if start >= 0 else raw.size()
	while i < raw.size():
		var key = raw[i]
		if key.begins_with("--") and i + 1 < raw.size():
			args[key.substr(2, key.length())] = raw[i + 1]
			i += 2
		else:
			i += 1
	return args


func _idle(_delta):
	var now = OS.get_ticks_msec()
	if stop_file != "" and now >= next_stop_check:
		next_stop_check = now + 200
		if File.new().file_exists(stop_file):
			stop_file = ""
			print("leaving")
			client.leave()
	return false


func _say(value, word):
	print("%s %s" % [word, str(value)])


func _on_role_changed(region_id, role, epoch):
	print("role %s %s %d" % [region_id, role, epoch])


func _on_demoted(region_id, epoch):
	print("demoted %s %d" % [region_id, epoch])


func _on_request_failed(operation, detail):
	print("error %s %s" % [operation, detail])


func _on_left():
	print("left")
	quit()

# Enabling the plugin registers the `MeshClient` autoload (a MeshCoordinatorClient node);
# disabling it removes the autoload again.
tool
extends EditorPlugin

const AUTOLOAD_NAME = "MeshClient"


func enable_plugin():
	add_autoload_singleton(AUTOLOAD_NAME, "res://addons/mesh_client/mesh_client.gd")


func disable_plugin():
	remove_autoload_singleton(AUTOLOAD_NAME)

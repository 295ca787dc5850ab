# Which player actions this server has applied, per region: the highest `seq` applied per player.
# Actions of one player are applied in `seq` order (the coordinator hands them out in that order and
# the game's own path must keep it), so "applied through N" names every applied action at once.
# The ledger outlives a region being dropped and the server re-registering (a `seq` at or below the
# mark was applied here and must never be applied again), and the primary streams it to its
# backups, so a promoted backup starts from what its primary had applied.
extends Reference

# region_id -> {player_id -> highest applied seq}
var _regions = {}


func is_applied(region_id, player_id, seq):
	return seq <= applied_through(region_id, player_id)


# The highest applied seq of the player in the region, or -1 when none is known.
func applied_through(region_id, player_id):
	var players = _regions.get(region_id)
	if players == null:
		return -1
	return int(players.get(player_id, -1))


func knows_player(region_id, player_id):
	return _regions.has(region_id) and _regions[region_id].has(player_id)


# Records that the game applied (player_id, seq) in the region.
func mark_applied(region_id, player_id, seq):
	if not _regions.has(region_id):
		_regions[region_id] = {}
	var players = _regions[region_id]
	players[player_id] = max(int(players.get(player_id, -1)), int(seq))


# What a primary sends its backups for one region.
func export_region(region_id):
	return _regions.get(region_id, {}).duplicate()


# Merges what the primary sent (or a restored snapshot said): marks only ever go up.
func merge_region(region_id, players):
	if typeof(players) != TYPE_DICTIONARY:
		return
	for player_id in players:
		if typeof(player_id) == TYPE_STRING and (typeof(players[player_id]) == TYPE_REAL or typeof(players[player_id]) == TYPE_INT):
			mark_applied(region_id, player_id, int(players[player_id]))

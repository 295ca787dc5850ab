# Jittered exponential back-off ("equal jitter"): the n-th retry waits between half and all of
# min(max_ms, base_ms * 2^n). The jitter keeps many servers that lost the coordinator at once from
# retrying in lockstep when it comes back.
extends Reference

var base_ms = 100
var max_ms = 5000
var _attempt = 0
var _rng = RandomNumberGenerator.new()


func _init(base = 100, maximum = 5000):
	base_ms = base
	max_ms = maximum
	_rng.randomize()


# The delay before the next retry; each call doubles the ceiling up to max_ms.
func next_delay_ms():
	var ceiling = min(max_ms, base_ms * pow(2, min(_attempt, 20)))
	_attempt += 1
	return int(ceiling / 2.0 + _rng.randf() * ceiling / 2.0)


# A success: the next failure starts again from base_ms.
func reset():
	_attempt = 0


func attempts():
	return _attempt

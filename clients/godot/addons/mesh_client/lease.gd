# The primary lease (FAULT_TOLERANCE_DEPLOYMENT.md §1.2): until when this server may take players'
# actions as primary. Every grant is counted from when the server SENT the message it answers, on
# OS.get_ticks_msec(), so a grant that arrives late (a paused process, a slow network) is already
# partly or wholly spent. Grants are taken in send order: an answer to a message sent before the
# one whose answer set the lease changes nothing, whichever transport (session or HTTP) carried it.
extends Reference

var until_ms = 0
# True from `lease_lost` until a grant renews the lease.
var lost = false
var _basis_sent_at = -1


# Takes a grant of `lease_ms` (0: none) answering a message sent at `sent_at`. Returns true when it
# ends a lost lease (the client emits `lease_renewed`).
func grant(sent_at, lease_ms, now):
	if sent_at < _basis_sent_at:
		return false
	_basis_sent_at = sent_at
	until_ms = sent_at + lease_ms if lease_ms > 0 else 0
	if lost and now < until_ms:
		lost = false
		return true
	return false


func runs(now):
	return now < until_ms


func remaining_ms(now):
	return max(0, until_ms - now)


# True once when the lease has run out while the server leads a region (the client emits `lease_lost`).
func ran_out(now, leads_any):
	if now < until_ms or lost or not leads_any:
		return false
	lost = true
	return true

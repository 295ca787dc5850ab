# Error codes of `request_failed(operation, code, detail)`: the code is for the game's logic, the
# detail for people. Every failed request is retried (with back-off) unless the code says otherwise.
extends Reference

# The request could not be sent or the connection failed (coordinator down or unreachable).
const NETWORK = "network"
# No answer within `request_timeout_ms`.
const TIMEOUT = "timeout"
# An answer with an unexpected status (5xx, 429, ...); detail has the status and problem text.
const HTTP_STATUS = "http_status"
# An answer that was not the JSON the contract promises.
const BAD_REPLY = "bad_reply"
# The coordinator forgot this server (401/403/404): it drops every region and registers again.
const FORGOTTEN = "forgotten"
# A collect or ack was refused: this server no longer leads the region (not retried).
const NOT_PRIMARY = "not_primary"
# A snapshot larger than `max_snapshot_bytes` (not sent).
const SNAPSHOT_TOO_LARGE = "snapshot_too_large"
# The identity file could not be read or written.
const IDENTITY = "identity"
# No session could be opened (coordinator down, handshake refused, or no WebSocket route there):
# heartbeats go over HTTP meanwhile, and the session is tried again with back-off.
const SESSION_UNAVAILABLE = "session_unavailable"
# An open session closed (detail: the close code and reason): HTTP meanwhile, reconnect with back-off.
const SESSION_CLOSED = "session_closed"
# The coordinator refused a session message with a problem document (detail: status and text).
const PROBLEM = "problem"

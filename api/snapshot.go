package api

// Backup and restore: GET /v1/snapshot streams the state as an
// application/octet-stream snapshot (its format is fsm's, documented in
// docs/API.md); POST /v1/snapshot replaces the whole cluster's state with
// the snapshot in its body and answers a RestoreResponse.

const (
	// HeaderSnapshotIndex, on a GET /v1/snapshot answer, is the raft index
	// of the last entry applied to the state in the snapshot.
	HeaderSnapshotIndex = "X-Statenode-Snapshot-Index"
	// HeaderSnapshotRevision, on a GET /v1/snapshot answer, is the store
	// revision of the state in the snapshot.
	HeaderSnapshotRevision = "X-Statenode-Snapshot-Revision"

	// CodeRestoreInProgress: another restore is running on this member;
	// nothing changed (409).
	CodeRestoreInProgress = "restore_in_progress"
)

// SnapshotInfo describes a snapshot saved from GET /v1/snapshot.
type SnapshotInfo struct {
	Index    uint64 `json:"index"`    // raft index of the last entry applied to the saved state
	Revision int64  `json:"revision"` // store revision of the saved state
	Size     int64  `json:"size"`     // bytes, CRC trailer included
}

// RestoreResponse is the answer of POST /v1/snapshot: the snapshot that was
// restored and the state the cluster now holds.
type RestoreResponse struct {
	// Index is the raft index the restored state is applied at: above
	// every index the cluster and the snapshot had used.
	Index uint64 `json:"index"`
	// Revision is the store revision after the restore: one above both the
	// cluster's revision before it and the snapshot's. History before it is
	// compacted.
	Revision int64 `json:"revision"`
	// SnapshotIndex and SnapshotRevision are the snapshot's own.
	SnapshotIndex    uint64 `json:"snapshot_index"`
	SnapshotRevision int64  `json:"snapshot_revision"`
	Keys             int    `json:"keys"`     // keys restored
	Sessions         int    `json:"sessions"` // sessions restored (with a fresh TTL)
	Size             int64  `json:"size"`     // bytes of the snapshot received
}

package gossip

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statenode/statenode/crdt"
)

var (
	bucketMeta     = []byte("meta")
	bucketObjects  = []byte("objects")
	keyIncarnation = []byte("incarnation")
	keyClean       = []byte("clean")
)

// store persists CRDT state in DataDir/crdt.db: one record per object
// holding its full canonical encoding, plus the replica incarnation and a
// clean-shutdown marker.
type store struct {
	db *bolt.DB
}

// openStore opens (creating) the database and returns the objects it
// holds and the incarnation to run with. The incarnation is kept only
// after a clean shutdown: after a crash, the node may have sent updates it
// never wrote, so it takes a fresh one and never issues a dot or counter
// value twice.
func openStore(dir string) (*store, map[key]crdt.State, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, "", fmt.Errorf("gossip: data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "crdt.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, nil, "", fmt.Errorf("gossip: open store: %w", err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	objects := map[key]crdt.State{}
	var inc string
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		objs, err := tx.CreateBucketIfNotExists(bucketObjects)
		if err != nil {
			return err
		}
		if meta.Get(keyClean) != nil && meta.Get(keyIncarnation) != nil {
			inc = string(meta.Get(keyIncarnation))
		} else {
			inc = newIncarnation()
		}
		if err := meta.Put(keyIncarnation, []byte(inc)); err != nil {
			return err
		}
		if err := meta.Delete(keyClean); err != nil {
			return err
		}
		return objs.ForEach(func(k, v []byte) error {
			ok, err := parseStoreKey(k)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrCorruptStore, err)
			}
			s, err := crdt.Decode(v)
			if err != nil || s.Kind() != ok.kind {
				return fmt.Errorf("%w: object %v: %v", ErrCorruptStore, ok, err)
			}
			objects[ok] = s
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrCorruptStore) {
			return nil, nil, "", err
		}
		return nil, nil, "", fmt.Errorf("gossip: load store: %w", err)
	}
	return &store{db: db}, objects, inc, nil
}

func newIncarnation() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// write stores the current encoding of each object, read inside the write
// transaction: transactions are serialized and states only grow, so the
// stored state never goes back. Concurrent callers share one fsync
// (bolt.DB.Batch).
func (s *store) write(objs []*object) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketObjects)
		for _, o := range objs {
			enc, err := o.encode()
			if err != nil {
				return err
			}
			if err := b.Put(o.key.storeKey(), enc); err != nil {
				return err
			}
		}
		return nil
	})
}

// close records a clean shutdown (if clean) and closes the database.
func (s *store) close(clean bool) error {
	var err error
	if clean {
		err = s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyClean, []byte{1})
		})
	}
	return errors.Join(err, s.db.Close())
}

package natsstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// instanceBucket holds one key per live serve instance, rewritten every
// third of the lease time; the bucket's TTL drops the keys of instances
// that died, so the count is of the living (within one TTL). Instances
// use it to take a fair share of the folders.
const instanceBucket = "rgs_instances"

// Instances is this instance's entry in the set of live instances.
type Instances struct {
	kv  jetstream.KeyValue
	key string
}

// OpenInstances opens the bucket (creating it with this TTL) for the
// instance named instance.
func OpenInstances(ctx context.Context, js jetstream.JetStream, instance string, ttl time.Duration, replicas int) (*Instances, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: instanceBucket, TTL: ttl, Replicas: max(replicas, 1), Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: creating the instance bucket %s: %w", instanceBucket, err)
	}
	// Instance names (host:pid) may hold characters keys may not.
	return &Instances{kv: kv, key: hex.EncodeToString([]byte(instance))}, nil
}

// Beat says this instance is alive, and returns how many are.
func (i *Instances) Beat(ctx context.Context) (int, error) {
	if _, err := i.kv.Put(ctx, i.key, nil); err != nil {
		return 0, fmt.Errorf("natsstore: announcing this instance: %w", err)
	}
	keys, err := i.kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsstore: counting instances: %w", err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return max(n, 1), nil
}

// Leave removes this instance at a graceful stop.
func (i *Instances) Leave(ctx context.Context) error {
	if err := i.kv.Delete(ctx, i.key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsstore: leaving the instance set: %w", err)
	}
	return nil
}

package backends

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidateKey checks key against the rules every store shares: non-empty,
// at most MaxKeySize bytes, valid UTF-8, no NUL byte.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeySize)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: contains a NUL byte", ErrInvalidKey)
	}
	return nil
}

// ValidatePrefix checks a List prefix: like a key, but may be empty.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidateKey(prefix)
}

// ValidateValue checks a caller's value against MaxValueSize.
func ValidateValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), MaxValueSize)
	}
	return nil
}

// ValidateStored checks a value a store is asked to keep: MaxValueSize plus
// ValueOverhead, the room wrappers may use for headers.
func ValidateStored(value []byte) error {
	if len(value) > MaxValueSize+ValueOverhead {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), MaxValueSize)
	}
	return nil
}

// ValidateOptions checks WriteOptions: a non-negative TTL and a valid fence
// lock name.
func ValidateOptions(opts WriteOptions) error {
	if opts.TTL < 0 {
		return fmt.Errorf("backends: negative TTL %v", opts.TTL)
	}
	if opts.Fence != nil {
		if err := ValidateKey(opts.Fence.Lock); err != nil {
			return fmt.Errorf("fence lock: %w", err)
		}
	}
	return nil
}

// ValidatePut checks a Put or CompareAndSwap as a store receives it.
func ValidatePut(key string, value []byte, opts WriteOptions) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ValidateStored(value); err != nil {
		return err
	}
	return ValidateOptions(opts)
}

// ValidateItems checks a PutMany batch as a store receives it.
func ValidateItems(items []Item, opts WriteOptions) error {
	for _, it := range items {
		if err := ValidateKey(it.Key); err != nil {
			return err
		}
		if err := ValidateStored(it.Value); err != nil {
			return fmt.Errorf("key %q: %w", it.Key, err)
		}
	}
	return ValidateOptions(opts)
}

// ValidateKeys checks the keys of a GetMany or DeleteMany batch.
func ValidateKeys(keys []string) error {
	for _, k := range keys {
		if err := ValidateKey(k); err != nil {
			return err
		}
	}
	return nil
}

// PageLimit returns the effective page size of opts.
func (o ListOptions) PageLimit() int {
	if o.Limit <= 0 {
		return DefaultListLimit
	}
	return o.Limit
}

// CheckContext returns ctx.Err() so that stores answering from memory still
// honour a cancelled context.
func CheckContext(ctx context.Context) error { return ctx.Err() }

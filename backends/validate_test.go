package backends_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/statenode/statenode/backends"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want error
	}{
		{"ok", nil},
		{"", backends.ErrInvalidKey},
		{strings.Repeat("x", backends.MaxKeySize), nil},
		{strings.Repeat("x", backends.MaxKeySize+1), backends.ErrInvalidKey},
		{"a\x00b", backends.ErrInvalidKey},
		{"\xc3\x28", backends.ErrInvalidKey},
	} {
		if err := backends.ValidateKey(tc.key); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("ValidateKey(%q) = %v, want %v", tc.key, err, tc.want)
		}
	}
	if err := backends.ValidateValue(make([]byte, backends.MaxValueSize+1)); !errors.Is(err, backends.ErrTooLarge) {
		t.Error(err)
	}
	if err := backends.ValidateStored(make([]byte, backends.MaxValueSize+backends.ValueOverhead)); err != nil {
		t.Error(err)
	}
	if err := backends.ValidateOptions(backends.WriteOptions{TTL: -time.Second}); err == nil {
		t.Error("negative TTL accepted")
	}
	fe := &backends.FencedError{Lock: "l", Token: 1, Seen: 2}
	if !errors.Is(fe, backends.ErrFenced) || !strings.HasPrefix(fe.Error(), "backends: ") {
		t.Error(fe)
	}
}

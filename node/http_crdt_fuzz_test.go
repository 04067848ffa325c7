package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/crdt"
	"github.com/statenode/statenode/crdt/gossip"
	"github.com/statenode/statenode/fsm"
)

// FuzzCRDTOp feeds arbitrary POST /v1/crdt bodies, for every type, through
// decoding, application and rendering on a real (unstarted) gossip
// member. It must never panic; every failure is a typed error the HTTP
// layer maps onto a 4xx; the rendered value is valid JSON.
func FuzzCRDTOp(f *testing.F) {
	for _, s := range []string{
		`{"op":"inc","delta":1}`, `{"op":"dec","delta":9223372036854775807}`, `{"op":"inc","delta":-9223372036854775808}`,
		`{"op":"add","value":"x"}`, `{"op":"rm","value":"x"}`, `{"op":"set","value_base64":"/wA="}`,
		`{"op":"put","key":"k","value":"v"}`, `{"op":"delete","key":""}`, `{"op":"transfer","to":"n2~1","delta":1}`,
		`{"op":"set","value":"a","value_base64":"YQ=="}`, `{"op":"x"}`, `{}`, `null`, `[]`, `{"op":"inc"} {}`,
	} {
		for k := crdt.KindGCounter; k <= crdt.KindBoundedCounter; k++ {
			f.Add(uint8(k), []byte(s))
		}
	}
	gc := gossip.DefaultLocalConfig()
	gc.NodeID = "f"
	g, err := gossip.New(gc)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	n := &Node{limits: fsm.DefaultLimits()}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := crdt.Kind(kind%7 + 1)
		var op api.CRDTOp
		err := decodeCRDTOp(body, &op)
		if err == nil {
			err = n.applyCRDTOp(context.Background(), g, k, "obj", &op)
		}
		var ae *apiError
		switch {
		case err == nil, errors.As(err, &ae), errors.Is(err, crdt.ErrInsufficientRights),
			errors.Is(err, crdt.ErrInvalidArgument), errors.Is(err, fsm.ErrTooLarge):
		default:
			t.Fatalf("untyped error for %s %q: %v", k, body, err)
		}
		v, err := crdtValue(g, k, "obj", "f")
		if err != nil {
			t.Fatalf("render %s: %v", k, err)
		}
		if !json.Valid(v.Value) {
			t.Fatalf("render %s: invalid JSON %q", k, v.Value)
		}
	})
}

package node

// HTTP routes of gossip membership and CRDTs (docs/API.md, docs/CRDT.md):
//
//	GET  /v1/crdt                      objects this node holds
//	GET  /v1/crdt/{type}/{name...}     one object's value, as this node sees it
//	POST /v1/crdt/{type}/{name...}     apply an operation on this node
//	GET  /v1/members/watch             NDJSON stream of gossip member events
//
// CRDT requests are served by the node that receives them, never
// forwarded: that is the point of a CRDT. Responses name the serving node.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/crdt"
	"github.com/statenode/statenode/crdt/gossip"
	"github.com/statenode/statenode/fsm"
)

// crdtAliases maps the short type names accepted in paths.
var crdtAliases = map[string]crdt.Kind{
	"counter":  crdt.KindPNCounter,
	"set":      crdt.KindORSet,
	"register": crdt.KindLWWRegister,
	"map":      crdt.KindLWWMap,
	"bcounter": crdt.KindBoundedCounter,
}

// registerGossipAPI registers the CRDT and member-watch routes.
func (n *Node) registerGossipAPI(handle func(pattern string, h apiHandler)) {
	handle("GET /v1/crdt", n.handleCRDTList)
	handle("GET /v1/crdt/{type}/{name...}", n.handleCRDTGet)
	handle("POST /v1/crdt/{type}/{name...}", n.handleCRDTPost)
	handle("GET /v1/members/watch", n.handleMembersWatch)
}

// writeGossipError maps the errors of gossip and crdt, then falls back on
// the node's own mapping.
func (n *Node) writeGossipError(w http.ResponseWriter, err error) int {
	e := &api.Error{Message: err.Error()}
	switch {
	case errors.Is(err, ErrGossipDisabled):
		e.Code = api.CodeGossipDisabled
		return writeAPIError(w, e, http.StatusNotImplemented)
	case errors.Is(err, crdt.ErrInsufficientRights):
		e.Code = api.CodeInsufficientRights
		return writeAPIError(w, e, http.StatusConflict)
	case errors.Is(err, gossip.ErrInvalidName), errors.Is(err, crdt.ErrUnknownKind), errors.Is(err, crdt.ErrInvalidArgument):
		e.Code = api.CodeInvalid
		return writeAPIError(w, e, http.StatusBadRequest)
	case errors.Is(err, gossip.ErrClosed):
		e.Code = api.CodeStopped
		return writeAPIError(w, e, http.StatusServiceUnavailable)
	}
	return n.writeError(w, err)
}

// crdtTarget resolves the {type} and {name} of a request.
func (n *Node) crdtTarget(r *http.Request) (*gossip.Gossip, crdt.Kind, string, error) {
	g := n.CRDT()
	if g == nil {
		return nil, 0, "", ErrGossipDisabled
	}
	t := r.PathValue("type")
	k, ok := crdtAliases[t]
	if !ok {
		var err error
		if k, err = crdt.ParseKind(t); err != nil {
			return nil, 0, "", fmt.Errorf("%w (types: gcounter, pncounter or counter, boundedcounter or bcounter, orset or set, lwwregister or register, mvregister, lwwmap or map)", err)
		}
	}
	name := r.PathValue("name")
	if name == "" || len(name) > gossip.MaxNameLen {
		return nil, 0, "", fmt.Errorf("%w: name must be 1 to %d bytes", gossip.ErrInvalidName, gossip.MaxNameLen)
	}
	return g, k, name, nil
}

func (n *Node) handleCRDTList(w http.ResponseWriter, r *http.Request) int {
	g := n.CRDT()
	if g == nil {
		return n.writeGossipError(w, ErrGossipDisabled)
	}
	objs := g.Objects()
	out := make([]api.CRDTObject, len(objs))
	for i, o := range objs {
		out[i] = api.CRDTObject{Type: o.Kind.String(), Name: o.Name}
	}
	return writeJSONValue(w, http.StatusOK, out)
}

func (n *Node) handleCRDTGet(w http.ResponseWriter, r *http.Request) int {
	g, k, name, err := n.crdtTarget(r)
	if err != nil {
		return n.writeGossipError(w, err)
	}
	return n.writeCRDTValue(w, g, k, name)
}

func (n *Node) handleCRDTPost(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	g, k, name, err := n.crdtTarget(r)
	if err != nil {
		return n.writeGossipError(w, err)
	}
	p, err := readBody(w, r, n.jsonBodyLimit())
	if err != nil {
		return n.writeError(w, err)
	}
	var op api.CRDTOp
	err = decodeCRDTOp(*p, &op)
	putAPIBuf(p)
	if err == nil {
		err = n.applyCRDTOp(ctx, g, k, name, &op)
	}
	if err != nil {
		return n.writeGossipError(w, err)
	}
	return n.writeCRDTValue(w, g, k, name)
}

// decodeCRDTOp decodes a POST body strictly (unknown members rejected).
func decodeCRDTOp(body []byte, op *api.CRDTOp) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(op); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("trailing data after the JSON body")
	}
	return nil
}

// applyCRDTOp applies op to kind k / name on g; errors are bad requests,
// crdt.ErrInsufficientRights, or the handle's errors.
func (n *Node) applyCRDTOp(ctx context.Context, g *gossip.Gossip, k crdt.Kind, name string, op *api.CRDTOp) error {
	value := []byte(op.Value)
	if op.ValueBase64 != nil {
		if op.Value != "" {
			return badRequest(`"value" and "value_base64" are exclusive`)
		}
		value = op.ValueBase64
	}
	if len(value) > n.limits.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes exceeds %d", fsm.ErrTooLarge, len(value), n.limits.MaxValueSize)
	}
	if op.Delta < 0 && (k == crdt.KindGCounter || k == crdt.KindBoundedCounter) {
		return badRequest("%s: delta must not be negative", k)
	}
	switch {
	case k == crdt.KindPNCounter && op.Op == api.CRDTOpInc:
		return g.Counter(name).Inc(ctx, op.Delta)
	case k == crdt.KindPNCounter && op.Op == api.CRDTOpDec:
		return g.Counter(name).Dec(ctx, op.Delta)
	case k == crdt.KindGCounter && op.Op == api.CRDTOpInc:
		return g.GCounter(name).Inc(ctx, uint64(op.Delta))
	case k == crdt.KindBoundedCounter && op.Op == api.CRDTOpInc:
		return g.BoundedCounter(name).Inc(ctx, uint64(op.Delta))
	case k == crdt.KindBoundedCounter && op.Op == api.CRDTOpDec:
		return g.BoundedCounter(name).Dec(ctx, uint64(op.Delta))
	case k == crdt.KindBoundedCounter && op.Op == api.CRDTOpTransfer:
		if op.To == "" {
			return badRequest(`transfer needs "to" (a replica ID)`)
		}
		return g.BoundedCounter(name).Transfer(ctx, op.To, uint64(op.Delta))
	case k == crdt.KindORSet && op.Op == api.CRDTOpAdd:
		return g.Set(name).Add(ctx, string(value))
	case k == crdt.KindORSet && (op.Op == api.CRDTOpRemove || op.Op == "rm"):
		return g.Set(name).Remove(ctx, string(value))
	case k == crdt.KindLWWRegister && op.Op == api.CRDTOpSet:
		return g.Register(name).Set(ctx, value)
	case k == crdt.KindMVRegister && op.Op == api.CRDTOpSet:
		return g.MVRegister(name).Set(ctx, value)
	case k == crdt.KindLWWMap && op.Op == api.CRDTOpPut:
		return g.Map(name).Put(ctx, op.Key, value)
	case k == crdt.KindLWWMap && op.Op == api.CRDTOpDelete:
		return g.Map(name).Delete(ctx, op.Key)
	}
	return badRequest("op %q does not apply to %s (see docs/CRDT.md)", op.Op, k)
}

// writeCRDTValue renders this node's state of kind/name.
func (n *Node) writeCRDTValue(w http.ResponseWriter, g *gossip.Gossip, k crdt.Kind, name string) int {
	out, err := crdtValue(g, k, name, n.cfg.ID)
	if err != nil {
		return n.writeGossipError(w, err)
	}
	return writeJSONValue(w, http.StatusOK, out)
}

// crdtValue renders g's state of kind/name as served by node.
func crdtValue(g *gossip.Gossip, k crdt.Kind, name, node string) (*api.CRDTValue, error) {
	s, err := g.Snapshot(k, name)
	if err != nil {
		return nil, err
	}
	out := &api.CRDTValue{Type: k.String(), Name: name, Node: node, Replica: g.ReplicaID()}
	var v any
	switch s := s.(type) {
	case *crdt.GCounter:
		v = s.Value()
	case *crdt.PNCounter:
		v = s.Value()
	case *crdt.BoundedCounter:
		v = s.Value()
		r := s.Rights(g.ReplicaID())
		out.Rights = &r
	case *crdt.ORSet:
		v = bytesValues(out, stringsToBytes(s.Elements()))
	case *crdt.MVRegister:
		v = bytesValues(out, s.Values())
	case *crdt.LWWRegister:
		b, ts, ok := s.Get()
		if ok {
			v = bytesValues(out, [][]byte{b})[0]
			out.Timestamp = &api.CRDTTimestamp{Wall: ts.Wall, Logical: uint32(min(ts.Logical, 1<<32-1)), Replica: ts.Replica}
		}
	case *crdt.LWWMap:
		keys := s.Keys()
		vals := make([][]byte, len(keys))
		for i, key := range keys {
			vals[i], _ = s.Get(key)
		}
		enc := bytesValues(out, vals)
		m := make(map[string]string, len(keys))
		for i, key := range keys {
			m[key] = enc[i]
		}
		v = m
	default:
		return nil, fmt.Errorf("%w: %s", crdt.ErrUnknownKind, k)
	}
	if out.Value, err = json.Marshal(v); err != nil {
		return nil, err
	}
	return out, nil
}

func stringsToBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// bytesValues returns vals as strings, all base64 (and out.Encoding set)
// if any is not valid UTF-8. Never nil.
func bytesValues(out *api.CRDTValue, vals [][]byte) []string {
	b64 := false
	for _, v := range vals {
		b64 = b64 || !utf8.Valid(v)
	}
	res := make([]string, len(vals))
	for i, v := range vals {
		if b64 {
			res[i] = base64.StdEncoding.EncodeToString(v)
		} else {
			res[i] = string(v)
		}
	}
	if b64 {
		out.Encoding = "base64"
	}
	return res
}

// gossipStateName is a member's state as the API names it.
func gossipStateName(s gossip.MemberState) string {
	if s == gossip.StateNone {
		return ""
	}
	return s.String()
}

// withGossip adds gossip state to the member list of GET /v1/members, and
// lists members alive in gossip but not in the Raft configuration with
// RaftRole "none". Unchanged without gossip.
func (n *Node) withGossip(out []api.Member) []api.Member {
	gm, err := n.GossipMembers()
	if err != nil {
		return out
	}
	byID := make(map[string]gossip.Member, len(gm))
	for _, m := range gm {
		byID[m.ID] = m
	}
	for i := range out {
		m := &out[i]
		m.RaftRole = api.RaftRoleNonvoter
		if m.Voter {
			m.RaftRole = api.RaftRoleVoter
		}
		if g, ok := byID[m.ID]; ok {
			m.Gossip, m.GossipAddr = gossipStateName(g.State), g.Addr
			delete(byID, m.ID)
		}
	}
	for _, g := range gm {
		if _, ok := byID[g.ID]; !ok || g.State == gossip.StateLeft {
			continue // in Raft (done above), or gone for good
		}
		out = append(out, api.Member{
			ID: g.ID, RaftAddr: g.Meta[metaRaft], HTTPAddr: g.Meta[metaHTTP],
			RaftRole: api.RaftRoleNone, Gossip: gossipStateName(g.State), GossipAddr: g.Addr,
		})
	}
	return out
}

func memberEventToAPI(ev gossip.MemberEvent) api.MemberEvent {
	m := ev.Member
	return api.MemberEvent{
		ID: m.ID, GossipAddr: m.Addr, State: gossipStateName(m.State), Previous: gossipStateName(ev.Previous),
		RaftAddr: m.Meta[metaRaft], HTTPAddr: m.Meta[metaHTTP], Voter: m.Meta[metaVoter] != "false",
		SinceMillis: m.Since.UnixMilli(),
	}
}

// handleMembersWatch streams gossip member events as NDJSON until the
// client goes away or the node shuts down.
func (n *Node) handleMembersWatch(w http.ResponseWriter, r *http.Request) int {
	g := n.CRDT()
	if g == nil {
		return n.writeGossipError(w, ErrGossipDisabled)
	}
	events := g.Watch(r.Context())
	h := w.Header()
	h["Content-Type"] = hdrNDJSON
	h["Cache-Control"] = hdrNoCache
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	_ = rc.Flush()
	idle := time.NewTimer(watchProgressInterval)
	defer idle.Stop()
	for {
		var line api.MemberEvent
		select {
		case <-r.Context().Done():
			return http.StatusOK
		case <-n.ctx.Done():
			return http.StatusOK
		case ev, ok := <-events:
			if !ok {
				return http.StatusOK
			}
			line = memberEventToAPI(ev)
		case <-idle.C:
			line = api.MemberEvent{Heartbeat: true}
		}
		if err := enc.Encode(&line); err != nil {
			return http.StatusOK
		}
		// Send what is queued together, then flush.
		if len(events) == 0 {
			if err := rc.Flush(); err != nil {
				return http.StatusOK
			}
		}
		idle.Reset(watchProgressInterval)
	}
}

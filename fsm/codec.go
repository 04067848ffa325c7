package fsm

import (
	"encoding/binary"
	"fmt"
)

// Envelope constants. The byte layout is documented in doc.go and DESIGN.md.
const (
	// formatVersion is byte 0 of every command, batch and response envelope.
	formatVersion byte = 1

	// kindCommand and kindBatch are byte 1 of a log entry envelope.
	kindCommand byte = 1
	kindBatch   byte = 2

	// Flags of an encoded Op.
	opFlagPrefix byte = 1 << 0
	opFlagPrevKV byte = 1 << 1
	// opFlagSession: a uvarint session ID (never 0) follows the op's limit.
	// Ops without it encode exactly as before the flag existed.
	opFlagSession byte = 1 << 2
	opFlagsKnown       = opFlagPrefix | opFlagPrevKV | opFlagSession

	// Flags of an encoded Response and OpResult.
	respFlagSucceeded byte = 1 << 0
	resultFlagMore    byte = 1 << 0

	// Smallest possible encodings, used to reject forged counts before
	// allocating: a count can never exceed remaining bytes / minimum size.
	minCompareSize  = 5 // target, result, key len, value len, number
	minOpSize       = 5 // type, flags, key len, value len, limit
	minResultSize   = 4 // type, flags, count, kv count
	minKVSize       = 5 // key len, value len, create, mod, version
	minBatchItem    = 4 // item len, version, kind, type
	commandOverhead = 3 // version, kind, type
)

// AppendCommand appends the encoding of c to dst and returns the extended
// slice. It does not validate c (see Command.Validate): a nil Txn encodes as
// an empty request, a nil Member as an empty one.
func AppendCommand(dst []byte, c *Command) []byte {
	dst = append(dst, formatVersion, kindCommand, byte(c.Type))
	dst = binary.AppendVarint(dst, c.Time)
	switch c.Type {
	case CmdTxn:
		dst = appendRequest(dst, c.Txn)
	case CmdPutMember:
		var m Member
		if c.Member != nil {
			m = *c.Member
		}
		dst = appendString(dst, m.ID)
		dst = appendString(dst, m.RaftAddr)
		dst = appendString(dst, m.HTTPAddr)
	case CmdRemoveMember:
		var id string
		if c.Member != nil {
			id = c.Member.ID
		}
		dst = appendString(dst, id)
	case CmdCoord:
		dst = appendCoordRequest(dst, c.Coord)
	case CmdFencedTxn:
		dst = appendFence(dst, c.Fence)
		dst = appendRequest(dst, c.Txn)
	}
	return dst
}

// EncodeCommand returns the encoding of c in a new slice of exactly the
// right size.
func EncodeCommand(c *Command) []byte {
	return AppendCommand(make([]byte, 0, commandSize(c)), c)
}

// DecodeCommand decodes one command envelope as produced by EncodeCommand.
// Malformed input returns an error wrapping ErrCorrupt, ErrUnsupportedVersion
// or ErrUnknownCommand; DecodeCommand never panics and never allocates more
// than a small multiple of len(b). A batch envelope is an error (use
// DecodeBatch).
//
// The byte slices of the returned Command alias b: b must not be modified
// while the Command is in use. The command is not validated beyond its
// structure (see Command.Validate).
func DecodeCommand(b []byte) (*Command, error) {
	// One allocation for the command and its payload.
	a := &struct {
		c Command
		r Request
		m Member
	}{}
	if err := decodeCommandInto(b, &a.c, &a.r, &a.m); err != nil {
		return nil, err
	}
	return &a.c, nil
}

// EncodeBatch packs several encoded commands (each from EncodeCommand) into
// one batch envelope, so that one raft log entry carries them all. Applying
// the entry applies them in order and yields one ApplyResult each.
func EncodeBatch(cmds [][]byte) []byte {
	size := 2 + uvarintLen(uint64(len(cmds)))
	for _, c := range cmds {
		size += uvarintLen(uint64(len(c))) + len(c)
	}
	dst := make([]byte, 0, size)
	dst = append(dst, formatVersion, kindBatch)
	dst = binary.AppendUvarint(dst, uint64(len(cmds)))
	for _, c := range cmds {
		dst = appendBytes(dst, c)
	}
	return dst
}

// DecodeBatch decodes a batch envelope produced by EncodeBatch into its
// commands, in order. Errors are as for DecodeCommand; a single-command
// envelope is an error wrapping ErrCorrupt. The commands alias b.
func DecodeBatch(b []byte) ([]*Command, error) {
	items, err := splitBatch(b, nil)
	if err != nil {
		return nil, err
	}
	cmds := make([]*Command, len(items))
	for i, it := range items {
		if cmds[i], err = DecodeCommand(it); err != nil {
			return nil, fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return cmds, nil
}

// isBatch reports whether b carries a batch envelope of a known version.
func isBatch(b []byte) bool {
	return len(b) >= 2 && b[0] == formatVersion && b[1] == kindBatch
}

// splitBatch checks the framing of a batch envelope and returns its items
// (aliasing b), appended to items. Each item must be a single-command
// envelope of a known version; the commands themselves are not decoded.
func splitBatch(b []byte, items [][]byte) ([][]byte, error) {
	d := decoder{b: b}
	if err := d.envelope(kindBatch); err != nil {
		return nil, err
	}
	n := d.count(minBatchItem)
	for i := uint64(0); i < n && d.err == nil; i++ {
		it := d.bytes()
		if d.err == nil && (len(it) < commandOverhead || it[1] != kindCommand) {
			return nil, fmt.Errorf("%w: batch item %d is not a command envelope", ErrCorrupt, i)
		}
		items = append(items, it)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return items, nil
}

// AppendResponse appends the encoding of r to dst. Used to send the result of
// a forwarded write back to the node that received it.
func AppendResponse(dst []byte, r *Response) []byte {
	var flags byte
	if r.Succeeded {
		flags |= respFlagSucceeded
	}
	if r.Coord != nil {
		flags |= respFlagCoord
	}
	dst = append(dst, formatVersion, flags)
	dst = binary.AppendVarint(dst, r.Revision)
	dst = binary.AppendUvarint(dst, uint64(len(r.Results)))
	for i := range r.Results {
		res := &r.Results[i]
		var rf byte
		if res.More {
			rf |= resultFlagMore
		}
		dst = append(dst, byte(res.Type), rf)
		dst = binary.AppendVarint(dst, res.Count)
		dst = binary.AppendUvarint(dst, uint64(len(res.KVs)))
		for j := range res.KVs {
			dst = appendKV(dst, &res.KVs[j])
		}
	}
	if r.Coord != nil {
		dst = appendCoordResult(dst, r.Coord)
	}
	return dst
}

// DecodeResponse decodes a Response produced by AppendResponse. Errors wrap
// ErrCorrupt or ErrUnsupportedVersion; it never panics. The byte slices of
// the result alias b.
func DecodeResponse(b []byte) (*Response, error) {
	d := decoder{b: b}
	v := d.byte()
	if d.err == nil && v != formatVersion {
		return nil, fmt.Errorf("%w: response version %d", ErrUnsupportedVersion, v)
	}
	flags := d.byte()
	if d.err == nil && flags&^(respFlagSucceeded|respFlagCoord) != 0 {
		d.fail("unknown response flags %#x", flags)
	}
	r := &Response{Succeeded: flags&respFlagSucceeded != 0}
	r.Revision = d.varint()
	if n := d.count(minResultSize); n > 0 {
		r.Results = make([]OpResult, n)
		for i := range r.Results {
			res := &r.Results[i]
			res.Type = OpType(d.byte())
			rf := d.byte()
			if d.err == nil && rf&^resultFlagMore != 0 {
				d.fail("unknown result flags %#x", rf)
			}
			res.More = rf&resultFlagMore != 0
			res.Count = d.varint()
			if m := d.count(minKVSize); m > 0 {
				res.KVs = make([]KeyValue, m)
				for j := range res.KVs {
					d.kv(&res.KVs[j])
				}
			}
			if d.err != nil {
				break
			}
		}
	}
	if flags&respFlagCoord != 0 {
		r.Coord = &CoordResult{}
		d.coordResult(r.Coord)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeCommandInto decodes a single-command envelope into c. If req or m
// are non-nil they are reused (their slices truncated and refilled) to avoid
// allocating on the apply path; otherwise fresh ones are allocated.
func decodeCommandInto(b []byte, c *Command, req *Request, m *Member) error {
	d := decoder{b: b}
	if err := d.envelope(kindCommand); err != nil {
		return err
	}
	t := CommandType(d.byte())
	*c = Command{Type: t, Time: d.varint()}
	if d.err != nil {
		return d.err
	}
	switch t {
	case CmdTxn:
		if req == nil {
			req = &Request{}
		}
		d.request(req)
		c.Txn = req
	case CmdPutMember, CmdRemoveMember:
		if m == nil {
			m = &Member{}
		}
		*m = Member{ID: d.string()}
		if t == CmdPutMember {
			m.RaftAddr = d.string()
			m.HTTPAddr = d.string()
		}
		c.Member = m
	case CmdCoord:
		c.Coord = &CoordRequest{}
		d.coordRequest(c.Coord)
	case CmdFencedTxn:
		c.Fence = &Fence{Lock: d.string(), Token: d.uvarint()}
		if req == nil {
			req = &Request{}
		}
		d.request(req)
		c.Txn = req
	case CmdNoop:
	default:
		return fmt.Errorf("%w: %d", ErrUnknownCommand, t)
	}
	return d.finish()
}

func appendRequest(dst []byte, r *Request) []byte {
	if r == nil {
		return append(dst, 0, 0, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Compare)))
	for i := range r.Compare {
		c := &r.Compare[i]
		dst = append(dst, byte(c.Target), byte(c.Result))
		dst = appendBytes(dst, c.Key)
		dst = appendBytes(dst, c.Value)
		dst = binary.AppendVarint(dst, c.Number)
	}
	dst = appendOps(dst, r.Success)
	return appendOps(dst, r.Failure)
}

func appendOps(dst []byte, ops []Op) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for i := range ops {
		op := &ops[i]
		var flags byte
		if op.Prefix {
			flags |= opFlagPrefix
		}
		if op.PrevKV {
			flags |= opFlagPrevKV
		}
		if op.Session != 0 {
			flags |= opFlagSession
		}
		dst = append(dst, byte(op.Type), flags)
		dst = appendBytes(dst, op.Key)
		dst = appendBytes(dst, op.Value)
		dst = binary.AppendVarint(dst, op.Limit)
		if op.Session != 0 {
			dst = binary.AppendUvarint(dst, op.Session)
		}
	}
	return dst
}

func appendKV(dst []byte, kv *KeyValue) []byte {
	dst = appendBytes(dst, kv.Key)
	dst = appendBytes(dst, kv.Value)
	dst = binary.AppendVarint(dst, kv.CreateRevision)
	dst = binary.AppendVarint(dst, kv.ModRevision)
	return binary.AppendVarint(dst, kv.Version)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// commandSize is the exact length of EncodeCommand(c).
func commandSize(c *Command) int {
	n := commandOverhead + varintLen(c.Time)
	switch c.Type {
	case CmdTxn:
		n += requestSize(c.Txn)
	case CmdPutMember:
		if c.Member == nil {
			return n + 3
		}
		n += bytesLen(len(c.Member.ID)) + bytesLen(len(c.Member.RaftAddr)) + bytesLen(len(c.Member.HTTPAddr))
	case CmdRemoveMember:
		if c.Member == nil {
			return n + 1
		}
		n += bytesLen(len(c.Member.ID))
	case CmdCoord:
		n += coordRequestSize(c.Coord)
	case CmdFencedTxn:
		n += fenceSize(c.Fence) + requestSize(c.Txn)
	}
	return n
}

func requestSize(r *Request) int {
	if r == nil {
		return 3
	}
	n := uvarintLen(uint64(len(r.Compare)))
	for i := range r.Compare {
		c := &r.Compare[i]
		n += 2 + bytesLen(len(c.Key)) + bytesLen(len(c.Value)) + varintLen(c.Number)
	}
	return n + opsSize(r.Success) + opsSize(r.Failure)
}

func opsSize(ops []Op) int {
	n := uvarintLen(uint64(len(ops)))
	for i := range ops {
		op := &ops[i]
		n += 2 + bytesLen(len(op.Key)) + bytesLen(len(op.Value)) + varintLen(op.Limit)
		if op.Session != 0 {
			n += uvarintLen(op.Session)
		}
	}
	return n
}

func bytesLen(n int) int { return uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// decoder reads a byte slice with a sticky error: after the first failure
// every read returns a zero value, so callers check d.err once at the end.
// It accepts only canonical (shortest) varints, so that every valid input
// re-encodes to identical bytes.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format+" at offset %d", append([]any{ErrCorrupt}, append(args, d.off)...)...)
	}
}

// envelope reads the version and kind bytes.
func (d *decoder) envelope(kind byte) error {
	if len(d.b) < 2 {
		return fmt.Errorf("%w: envelope of %d bytes is too short", ErrCorrupt, len(d.b))
	}
	if d.b[0] != formatVersion {
		return fmt.Errorf("%w: envelope version %d", ErrUnsupportedVersion, d.b[0])
	}
	if d.b[1] != kind {
		return fmt.Errorf("%w: envelope kind %d, want %d", ErrCorrupt, d.b[1], kind)
	}
	d.off = 2
	return nil
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		if d.off+i >= len(d.b) {
			d.fail("truncated varint")
			return 0
		}
		c := d.b[d.off+i]
		if i == 9 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.fail("non-canonical varint")
				return 0
			}
			d.off += i + 1
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// count reads an element count and rejects it if the remaining bytes cannot
// hold that many elements of at least minSize bytes each.
func (d *decoder) count(minSize int) uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)-d.off)/uint64(minSize) {
		d.fail("count %d exceeds the remaining %d bytes", n, len(d.b)-d.off)
		return 0
	}
	return n
}

// bytes reads a length-prefixed byte string aliasing d.b; empty is nil.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("length %d exceeds the remaining %d bytes", n, len(d.b)-d.off)
		return nil
	}
	if n == 0 {
		return nil
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) kv(kv *KeyValue) {
	kv.Key = d.bytes()
	kv.Value = d.bytes()
	kv.CreateRevision = d.varint()
	kv.ModRevision = d.varint()
	kv.Version = d.varint()
}

func (d *decoder) request(r *Request) {
	n := d.count(minCompareSize)
	r.Compare = resize(r.Compare, n)
	for i := range r.Compare {
		c := &r.Compare[i]
		c.Target = CompareTarget(d.byte())
		c.Result = CompareResult(d.byte())
		c.Key = d.bytes()
		c.Value = d.bytes()
		c.Number = d.varint()
	}
	r.Success = d.ops(r.Success)
	r.Failure = d.ops(r.Failure)
}

func (d *decoder) ops(ops []Op) []Op {
	n := d.count(minOpSize)
	ops = resize(ops, n)
	for i := range ops {
		op := &ops[i]
		op.Type = OpType(d.byte())
		flags := d.byte()
		if d.err == nil && flags&^opFlagsKnown != 0 {
			d.fail("unknown op flags %#x", flags)
		}
		op.Prefix = flags&opFlagPrefix != 0
		op.PrevKV = flags&opFlagPrevKV != 0
		op.Key = d.bytes()
		op.Value = d.bytes()
		op.Limit = d.varint()
		op.Session = 0
		if flags&opFlagSession != 0 {
			if op.Session = d.uvarint(); op.Session == 0 && d.err == nil {
				d.fail("op session flag with session 0")
			}
		}
	}
	return ops
}

// resize returns s with length n, reusing its array when large enough. A nil
// s stays nil for n == 0, so that fresh decodes compare equal to literals.
func resize[T any](s []T, n uint64) []T {
	if n == 0 {
		if s == nil {
			return nil
		}
		return s[:0]
	}
	if uint64(cap(s)) >= n {
		return s[:n]
	}
	return make([]T, n)
}

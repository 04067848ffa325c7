// Package compressed is a backends.Backend wrapper that compresses values
// with zstd or snappy (github.com/klauspost/compress) above a size
// threshold. Each stored value starts with a header byte naming its
// encoding, so values written uncompressed, with zstd or with snappy (or
// by a differently configured node) all read back.
//
//	b, err := compressed.New(store, compressed.DefaultConfig())
package compressed

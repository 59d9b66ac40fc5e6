package chatserver

import (
	"compress/gzip"
	"errors"
	"io"

	"connectrpc.com/connect"
)

// errInflateLimit stops a decompression that has produced more than the
// largest message the server reads.
var errInflateLimit = errors.New("decompressed message exceeds the size limit")

// boundedGzip replaces Connect's gzip: it inflates at most limit+1 bytes
// and then fails. Connect's own limit (WithReadMaxBytes) detects an
// oversized message only after reading limit+1 bytes, and then reads the
// rest of the stream to report its size: a 1 MB gzip body of zeros cost a
// gigabyte of inflating. With boundedGzip the work per message is bounded
// by limit, whatever the ratio of the compressed body.
func boundedGzip(limit int64) connect.HandlerOption {
	return connect.WithCompression("gzip",
		func() connect.Decompressor { return &boundedGzipReader{limit: limit} },
		func() connect.Compressor { return gzip.NewWriter(io.Discard) },
	)
}

// boundedGzipReader is a gzip.Reader that fails once it has produced more
// than limit+1 bytes since its last Reset.
type boundedGzipReader struct {
	zr    gzip.Reader
	limit int64
	n     int64
}

// Read inflates into p, never past limit+1 bytes in total.
func (r *boundedGzipReader) Read(p []byte) (int, error) {
	if r.n > r.limit {
		return 0, errInflateLimit
	}
	if left := r.limit + 1 - r.n; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.zr.Read(p)
	r.n += int64(n)
	return n, err
}

// Reset starts reading a new gzip stream from src.
func (r *boundedGzipReader) Reset(src io.Reader) error {
	r.n = 0
	return r.zr.Reset(src)
}

// Close closes the gzip stream, not src.
func (r *boundedGzipReader) Close() error { return r.zr.Close() }

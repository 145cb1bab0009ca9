package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader frames failover messages from a TCP byte stream: each message
// starts with its 2-byte length, which counts the whole message (fw §1).
// Reads are unbuffered beyond the message at hand; wrap the connection in a
// bufio.Reader to save system calls.
type Reader struct {
	r   io.Reader
	buf [MaxMessageLen]byte
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the bytes of the next message, valid until the following
// call. At a clean end of stream (between messages) it returns io.EOF; a
// stream ending inside a message gives io.ErrUnexpectedEOF. A length outside
// 12..2048 gives a *DecodeError (ErrLength) and leaves the stream
// unframeable: the link must be closed, as ISC closes it (fw §1).
func (r *Reader) Next() ([]byte, error) {
	if _, err := io.ReadFull(r.r, r.buf[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(r.buf[:2]))
	if err := checkLength(n); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r.r, r.buf[2:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.buf[:n], nil
}

// ReadMessage reads and decodes the next message. Errors are those of Next
// and Unmarshal; after any of them the link should be closed.
func (r *Reader) ReadMessage() (*Message, error) {
	b, err := r.Next()
	if err != nil {
		return nil, err
	}
	return Unmarshal(b)
}

// SplitMessages is a bufio.SplitFunc that yields one whole message per
// token. It fails on a length outside 12..2048 and on a stream that ends
// inside a message.
func SplitMessages(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) < 2 {
		if atEOF && len(data) > 0 {
			return 0, nil, fmt.Errorf("failover stream: %w in a length field", io.ErrUnexpectedEOF)
		}
		return 0, nil, nil
	}
	n := int(binary.BigEndian.Uint16(data))
	if err := checkLength(n); err != nil {
		return 0, nil, err
	}
	if len(data) < n {
		if atEOF {
			return 0, nil, fmt.Errorf("failover stream: %w: %d of %d bytes", io.ErrUnexpectedEOF, len(data), n)
		}
		return 0, nil, nil
	}
	return n, data[:n], nil
}

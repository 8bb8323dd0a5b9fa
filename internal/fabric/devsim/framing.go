package devsim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// NETCONF over SSH framing (RFC 6242): every message is framed with the base:1.0 end-of-message
// marker until both hellos are exchanged; when both sides advertised base:1.1 every later message
// is chunked: one or more "\n#<len>\n<data>" chunks, then "\n##\n".

const (
	endOfMessage = "]]>]]>"
	// maxMessage bounds one message, whatever its framing says: a peer cannot make the simulator
	// hold more than this.
	maxMessage = 32 << 20
	// maxChunk is the largest chunk-size RFC 6242 allows.
	maxChunk = 4294967295
)

// errFraming is a message whose framing is broken; RFC 6242 says to end the session then.
var errFraming = errors.New("netconf framing error")

// msgReader reads NETCONF messages from one session.
type msgReader struct {
	r       *bufio.Reader
	chunked bool // base:1.1 chunked framing, else base:1.0 end-of-message
	max     int
}

func newMsgReader(r io.Reader) *msgReader {
	return &msgReader{r: bufio.NewReaderSize(r, 64<<10), max: maxMessage}
}

// read returns the next message without its framing. It returns io.EOF when the peer ended the
// session between messages, and an error wrapping errFraming or io.ErrUnexpectedEOF otherwise.
func (m *msgReader) read() ([]byte, error) {
	if m.chunked {
		return m.readChunked()
	}
	return m.readEOM()
}

func (m *msgReader) readEOM() ([]byte, error) {
	var buf []byte
	for {
		b, err := m.r.ReadSlice('>')
		buf = append(buf, b...)
		if len(buf) > m.max+len(endOfMessage) {
			return nil, fmt.Errorf("%w: message longer than %d bytes", errFraming, m.max)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(bytes.TrimSpace(buf)) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w: session ended inside a message", io.ErrUnexpectedEOF)
		case err != nil:
			return nil, err
		}
		if bytes.HasSuffix(buf, []byte(endOfMessage)) {
			return buf[:len(buf)-len(endOfMessage)], nil
		}
	}
}

func (m *msgReader) readChunked() ([]byte, error) {
	var msg []byte
	chunks := 0
	for {
		if err := m.expect('\n', chunks == 0); err != nil {
			return nil, err
		}
		if err := m.expect('#', false); err != nil {
			return nil, err
		}
		c, err := m.byte()
		if err != nil {
			return nil, err
		}
		if c == '#' {
			if err := m.expect('\n', false); err != nil {
				return nil, err
			}
			if chunks == 0 {
				return nil, fmt.Errorf("%w: end of chunks before any chunk", errFraming)
			}
			return msg, nil
		}
		// chunk-size = [1-9][0-9]*, at most 4294967295
		if c < '1' || c > '9' {
			return nil, fmt.Errorf("%w: chunk size starts with %q, want a digit 1-9", errFraming, c)
		}
		digits := []byte{c}
		for {
			c, err = m.byte()
			if err != nil {
				return nil, err
			}
			if c == '\n' {
				break
			}
			if c < '0' || c > '9' || len(digits) == 10 {
				return nil, fmt.Errorf("%w: bad chunk size %q", errFraming, append(digits, c))
			}
			digits = append(digits, c)
		}
		size, err := strconv.ParseUint(string(digits), 10, 64)
		if err != nil || size > maxChunk {
			return nil, fmt.Errorf("%w: chunk size %s is over %d", errFraming, digits, uint64(maxChunk))
		}
		if uint64(len(msg))+size > uint64(m.max) {
			return nil, fmt.Errorf("%w: message longer than %d bytes", errFraming, m.max)
		}
		start := len(msg)
		msg = append(msg, make([]byte, size)...)
		if _, err := io.ReadFull(m.r, msg[start:]); err != nil {
			return nil, fmt.Errorf("%w: session ended inside a chunk", io.ErrUnexpectedEOF)
		}
		chunks++
	}
}

// byte reads one byte; an end of input inside a message is io.ErrUnexpectedEOF.
func (m *msgReader) byte() (byte, error) {
	c, err := m.r.ReadByte()
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%w: session ended inside a message", io.ErrUnexpectedEOF)
	}
	return c, err
}

// expect reads want; atStart says the message has not begun, where the end of input is io.EOF.
func (m *msgReader) expect(want byte, atStart bool) error {
	c, err := m.r.ReadByte()
	if errors.Is(err, io.EOF) && atStart {
		return io.EOF
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: session ended inside a message", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("%w: got %q, want %q", errFraming, c, want)
	}
	return nil
}

// frame returns msg framed for the wire: chunked as one chunk, or with the end-of-message marker.
func frame(chunked bool, msg []byte) []byte {
	if !chunked {
		out := make([]byte, 0, len(msg)+len(endOfMessage))
		out = append(out, msg...)
		return append(out, endOfMessage...)
	}
	out := make([]byte, 0, len(msg)+16)
	out = append(out, '\n', '#')
	out = strconv.AppendInt(out, int64(len(msg)), 10)
	out = append(out, '\n')
	out = append(out, msg...)
	return append(out, "\n##\n"...)
}

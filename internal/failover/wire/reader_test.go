package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func stream(t *testing.T, msgs ...*Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.AppendTo(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

var streamMsgs = []*Message{
	{Type: MsgContact, Time: 1, XID: 0},
	everyOption(MsgBndUpd),
	{Type: MsgState, Time: 2, XID: 1, ServerState: Some(StateNormal), ServerFlags: Some[ServerFlags](0), STOS: Some[uint32](5)},
}

func TestReader(t *testing.T) {
	data := stream(t, streamMsgs...)
	// One byte per read: framing must not depend on how TCP segments the
	// stream.
	r := NewReader(iotest.OneByteReader(bytes.NewReader(data)))
	for i, want := range streamMsgs {
		got, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("message %d (-want +got):\n%s", i, diff)
		}
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	data := stream(t, streamMsgs...)
	for _, tc := range []struct {
		name string
		in   []byte
		n    int // messages read before the error
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"ends in a length field", data[:len(data)-streamMsgLen(t, 2)+1], 2, io.ErrUnexpectedEOF},
		{"ends inside a message", data[:len(data)-1], 2, io.ErrUnexpectedEOF},
		{"ends after a header", data[:HeaderLen-1], 0, io.ErrUnexpectedEOF},
		{"length 11", []byte{0, 11, 11, 12, 0, 0, 0, 0, 0, 0, 0}, 0, ErrLength},
		{"length 4096", append(bytes.Clone(data[:12]), 0x10, 0x00), 1, ErrLength},
		{"bad message", []byte{0, 13, 11, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, ErrTruncatedOption},
	} {
		r := NewReader(bytes.NewReader(tc.in))
		var err error
		for i := 0; i <= tc.n; i++ {
			if _, err = r.ReadMessage(); err != nil {
				if i != tc.n {
					t.Errorf("%s: error after %d messages, want %d: %v", tc.name, i, tc.n, err)
				}
				break
			}
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func streamMsgLen(t *testing.T, i int) int {
	b, err := streamMsgs[i].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestSplitMessages(t *testing.T) {
	data := stream(t, streamMsgs...)
	sc := bufio.NewScanner(iotest.HalfReader(bytes.NewReader(data)))
	sc.Split(SplitMessages)
	var got []*Message
	for sc.Scan() {
		m, err := Unmarshal(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(streamMsgs, got, cmpOpts); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated message", data[:len(data)-1], io.ErrUnexpectedEOF},
		{"truncated length", append(bytes.Clone(data), 0), io.ErrUnexpectedEOF},
		{"bad length", append(bytes.Clone(data), 0, 2), ErrLength},
	} {
		sc := bufio.NewScanner(bytes.NewReader(tc.in))
		sc.Split(SplitMessages)
		n := 0
		for sc.Scan() {
			n++
		}
		if !errors.Is(sc.Err(), tc.want) || n != len(streamMsgs)-boolInt(tc.name == "truncated message") {
			t.Errorf("%s: %d messages then %v, want %v", tc.name, n, sc.Err(), tc.want)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

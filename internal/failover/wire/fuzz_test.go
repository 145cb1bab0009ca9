package wire

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzUnmarshal: no input may panic the decoder, and whatever decodes must
// re-encode and decode to an equal Message, with the re-encoding stable.
func FuzzUnmarshal(f *testing.F) {
	for _, name := range []string{startupCapture, partitionCapture} {
		for _, fl := range loadCapture(f, name) {
			for _, raw := range fl.raws {
				f.Add(raw)
			}
		}
	}
	for typ := MessageType(0); typ <= maxMessageType+1; typ++ {
		m := everyOption(typ)
		if typ > maxMessageType {
			m = &Message{Type: typ}
		}
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 16, 3, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0})  // DDNS
	f.Add([]byte{0, 14, 11, 14, 0, 0, 0, 0, 0, 0, 0, 1, 0xab, 0xcd}) // payload offset 14

	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Unmarshal(in)
		if err != nil {
			if m != nil {
				t.Fatalf("message returned with error %v", err)
			}
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %x but cannot re-encode: %v", in, err)
		}
		if len(enc) > MaxMessageLen {
			t.Fatalf("re-encoding is %d bytes", len(enc))
		}
		m2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-encoding %x of %x does not decode: %v", enc, in, err)
		}
		if diff := cmp.Diff(m, m2, cmpOpts); diff != "" {
			t.Fatalf("round trip of %x changed the message (-first +second):\n%s", in, diff)
		}
		enc2, err := m2.MarshalBinary()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %x then %x (%v)", enc, enc2, err)
		}
	})
}

// FuzzReader: arbitrary byte streams must frame or fail, never panic or
// loop.
func FuzzReader(f *testing.F) {
	for _, fl := range loadCapture(f, partitionCapture) {
		f.Add(bytes.Join(fl.raws, nil))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		for i := 0; i <= len(in)/HeaderLen; i++ {
			if _, err := r.ReadMessage(); err != nil {
				return
			}
		}
		t.Fatalf("read more messages than %d bytes can hold", len(in))
	})
}
